//! Batched tokenizer inference on the CPU's core shares: the batch is cut into one part per
//! share (`crate::cores`), each part runs on its own thread within its share, and the parts are
//! joined. On a GPU, on a training (autodiff) device, or for one clip, the whole batch runs in
//! one pass. Every item is computed alone (group norms are per item, bit norms use their
//! running statistics at inference), so the parts give the one-pass tokens and pixels.

use burn::prelude::*;

use super::model::{Encoded, Tokenizer};
use crate::cores::{self, CoreShares};

/// Every layer's tokens of a batch, coarsest first: codes `[B, bits_j, t_j, h_j, w_j]` (±1)
/// and ids `[B, t_j, h_j, w_j]`.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub codes: Vec<Tensor<5>>,
    pub indices: Vec<Tensor<4, Int>>,
}

impl Tokens {
    fn of(enc: Encoded) -> Self {
        let (codes, indices) = enc.layers.into_iter().map(|o| (o.codes, o.indices)).unzip();
        Self { codes, indices }
    }

    /// The parts' tokens joined along the batch, in order.
    fn cat(parts: Vec<Tokens>) -> Self {
        let layers = parts.first().map_or(0, |p| p.codes.len());
        let codes = (0..layers).map(|j| Tensor::cat(parts.iter().map(|p| p.codes[j].clone()).collect(), 0)).collect();
        let indices = (0..layers).map(|j| Tensor::cat(parts.iter().map(|p| p.indices[j].clone()).collect(), 0)).collect();
        Self { codes, indices }
    }
}

/// The part sizes a batch of `items` is cut into on `shares`; `None` for one pass.
fn plan(shares: Option<&CoreShares>, items: usize) -> Option<(&CoreShares, Vec<usize>)> {
    let shares = shares?;
    let sizes = cores::part_sizes(items, shares.workers());
    (sizes.len() > 1).then_some((shares, sizes))
}

/// Runs `jobs` on `shares`, one each; a panicking part panics the caller with its own panic.
fn join<T: Send, F: FnOnce() -> T + Send>(jobs: Vec<F>, shares: &CoreShares) -> Vec<T> {
    cores::run_scoped(jobs, Some(shares)).into_iter().map(|r| r.unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
}

impl Tokenizer {
    /// Encodes video `x` `[B, 3, T, H, W]` in `[-1, 1]` for inference (hard codes, no losses):
    /// every layer's tokens, split over the CPU's core shares (see the module docs).
    pub fn encode_batch(&self, x: Tensor<5>) -> Tokens {
        let shares = cores::inference_shares(&x.device());
        self.encode_on(x, shares)
    }

    /// [`Tokenizer::encode_batch`] on given core shares (`None`: one pass).
    fn encode_on(&self, x: Tensor<5>, shares: Option<&CoreShares>) -> Tokens {
        let Some((shares, sizes)) = plan(shares, x.dims()[0]) else {
            return Tokens::of(self.encode(x, 1.0));
        };
        let jobs: Vec<_> = x
            .split_with_sizes(sizes, 0)
            .into_iter()
            .map(|part| {
                let model = self.clone();
                move || Tokens::of(model.encode(part, 1.0))
            })
            .collect();
        Tokens::cat(join(jobs, shares))
    }

    /// [`Tokenizer::decode`] for inference, split over the CPU's core shares: video
    /// `[B, 3, T, H, W]` from the codes of the `k` coarsest layers (`[B, bits_j, t_j, h_j, w_j]`
    /// each).
    pub fn decode_batch(&self, codes: &[Tensor<5>]) -> Tensor<5> {
        let shares = codes.first().and_then(|c| cores::inference_shares(&c.device()));
        self.decode_on(codes, shares)
    }

    /// [`Tokenizer::decode_batch`] on given core shares (`None`: one pass).
    fn decode_on(&self, codes: &[Tensor<5>], shares: Option<&CoreShares>) -> Tensor<5> {
        let Some((shares, sizes)) = plan(shares, codes.first().map_or(0, |c| c.dims()[0])) else {
            return self.decode(codes);
        };
        let mut parts: Vec<Vec<Tensor<5>>> = vec![Vec::with_capacity(codes.len()); sizes.len()];
        for c in codes {
            for (part, piece) in parts.iter_mut().zip(c.clone().split_with_sizes(sizes.clone(), 0)) {
                part.push(piece);
            }
        }
        let jobs: Vec<_> = parts
            .into_iter()
            .map(|part| {
                let model = self.clone();
                move || model.decode(&part)
            })
            .collect();
        Tensor::cat(join(jobs, shares), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::TokenizerConfig;

    #[test]
    fn split_inference_gives_the_one_pass_tokens_and_pixels() {
        let device = Device::flex();
        let shares = CoreShares::with_threads(2, 2).expect("two workers");
        // Five clips run as parts of 3 and 2; one clip in one pass.
        assert_eq!(plan(Some(&shares), 5).map(|(_, sizes)| sizes), Some(vec![3, 2]));
        assert!(plan(Some(&shares), 1).is_none() && plan(None, 5).is_none());
        device.seed(3);
        let model = TokenizerConfig::preset("tiny").expect("tiny").init(&device);
        let cfg = TokenizerConfig::preset("tiny").expect("tiny");
        let x = Tensor::<5>::random([5, 3, cfg.frames, cfg.height, cfg.width], burn::tensor::Distribution::Uniform(-1.0, 1.0), &device);
        let whole = model.encode(x.clone(), 1.0);
        let split = model.encode_on(x, Some(&shares));
        assert_eq!(split.indices.len(), whole.layers.len());
        for (s, w) in split.indices.iter().zip(&whole.layers) {
            assert_eq!(s.dims(), w.indices.dims());
            s.clone().into_data().assert_eq(&w.indices.clone().into_data(), true);
        }
        for k in [1, whole.layers.len()] {
            let codes: Vec<_> = whole.layers[..k].iter().map(|o| o.codes.clone()).collect();
            let one = model.decode(&codes);
            let parts = model.decode_on(&split.codes[..k], Some(&shares));
            assert_eq!(parts.dims(), one.dims());
            let diff = (parts - one).abs().max().into_scalar::<f32>();
            assert!(diff < 1e-5, "k = {k}: {diff}");
        }
    }
}

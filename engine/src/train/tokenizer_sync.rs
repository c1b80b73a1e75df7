//! The tokenizer's batch statistics across data-parallel replicas, so that a step on several
//! replicas is the step on one device at the same batch, up to rounding (as synchronized batch
//! norm is in other frameworks). Two terms of a tokenizer step see the whole batch:
//!
//! - **Bit norms** centre and scale each bit by the batch's mean and variance. Forward: the
//!   replicas sum their per-bit sums, then their squared deviations ([`AllReduce`]), and each
//!   normalizes its part with the whole batch's statistics, as constants. Backward: batch norm's
//!   gradient needs two sums over the whole batch of the gradient `g` reaching the normalized
//!   values `ŷ`: `dL/du = (g - mean(g) - ŷ mean(g ŷ)) / σ`. So the normalized values are cut
//!   from the encoder's graph (fresh leaves): a first backward pass runs from the losses to
//!   them, the replicas sum `g` and `g ŷ`, and a second one runs `dL/du` through the encoder.
//! - **Codebook entropy** is the entropy of the batch-average code distribution: the replicas
//!   sum their code sums and each computes the whole batch's entropy with the others' sums as
//!   constants. Its gradient then reaches each replica's positions exactly, so its weight in
//!   each replica's loss is the number of replicas (each replica's loss is scaled by its share
//!   of the batch; this term is the whole batch's).
//!
//! A replica holds an [`AbortGuard`] while it runs, so that one failing does not leave the
//! others waiting.

use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;

use super::sync::AllReduce;
use crate::tokenizer::lfq::{self, LfqOutput};
use crate::tokenizer::{Encoded, Tokenizer};

/// The bit-normalized layers of one micro-batch encoded by [`encode`], cut from the encoder's
/// graph: what its two-pass backward needs.
pub(crate) struct Cuts {
    norms: Vec<NormCut>,
}

/// The whole batch's statistics of one bit norm: layer (coarsest = 0), mean and variance
/// (`[D]` each), for the model's own thread to move the running statistics with.
pub(crate) type BitStatistics = (usize, Tensor<1>, Tensor<1>);

/// A bit-normalized layer cut from the encoder's graph.
struct NormCut {
    /// The projection before the norm, `[b, D, t, h, w]`, on the encoder's graph.
    projection: Tensor<5>,
    /// The normalized values, `[b, D, t, h, w]`: a fresh leaf the losses' graph starts from.
    leaf: Tensor<5>,
    layer: usize,
    mean: Tensor<1>,
    var: Tensor<1>,
    /// `1 / sqrt(var + eps)` of the whole batch, `[D]`.
    inv_std: Tensor<1>,
    /// Positions of the whole batch.
    positions: usize,
}

/// The values of a (small) tensor as f32.
fn values(t: Tensor<1>) -> Vec<f32> {
    crate::tensor::floats(t, "batch statistics").unwrap_or_else(|e| panic!("{e}"))
}

/// `sums / count` as a `[D]` tensor on `like`'s device, in its dtype.
fn averages<const N: usize>(sums: &[f32], count: f32, like: &Tensor<N>) -> Tensor<1> {
    let d = sums.len();
    Tensor::<1>::from_data(TensorData::new(sums.iter().map(|s| s / count).collect(), [d]), &like.device()).cast(like.dtype())
}

/// Encodes micro-batch `x` (`[b, 3, T, H, W]`) of one replica among `sync.parties()`, all of
/// which call this with their parts of the batch at once: the quantized layers, coarsest first
/// (what `Tokenizer::encode` gives, with the whole batch's statistics), and the cuts.
pub(crate) fn encode(model: &Tokenizer, x: Tensor<5>, tau: f32, sync: &AllReduce) -> (Encoded, Cuts) {
    let projections = model.projections(model.latents(x));
    // Every normed layer's values per bit, `[D, b t h w]`, without their gradient path.
    let flats: Vec<Tensor<2>> =
        projections.iter().enumerate().filter(|(j, _)| model.bit_norm(*j).is_some()).map(|(_, u)| lfq::per_bit(u.clone().detach())).collect();
    // Means: every normed layer's per-bit sums and its positions, in one exchange.
    let mut local = Vec::new();
    for flat in &flats {
        local.extend(values(flat.clone().sum_dim(1).reshape([-1])));
        local.push(flat.dims()[1] as f32);
    }
    let sums = sync.sum(&local);
    let mut means = Vec::new();
    let (mut at, mut local) = (0, Vec::new());
    for flat in flats {
        let d = flat.dims()[0];
        let n = sums[at + d];
        let mean = averages(&sums[at..at + d], n, &flat);
        let dev = flat - mean.clone().reshape([d, 1]);
        local.extend(values((dev.clone() * dev).sum_dim(1).reshape([-1])));
        means.push((mean, n as usize));
        at += d + 1;
    }
    // Variances: the squared deviations from the whole batch's mean.
    let squares = sync.sum(&local);
    let mut stats = means.into_iter();
    let mut at = 0;
    let mut norms = Vec::new();
    let mut logits = Vec::new();
    for (j, u) in projections.into_iter().enumerate() {
        let Some(norm) = model.bit_norm(j) else {
            logits.push(u);
            continue;
        };
        let Some((mean, positions)) = stats.next() else { unreachable!("one statistic per normed layer") };
        let d = u.dims()[1];
        let var = averages(&squares[at..at + d], positions as f32, &u);
        at += d;
        let leaf = norm.forward_with(u.clone().detach(), mean.clone(), var.clone()).detach().require_grad();
        logits.push(leaf.clone());
        let inv_std = var.clone().add_scalar(1e-5).sqrt().recip();
        norms.push(NormCut { projection: u, leaf, layer: j, mean, var, inv_std, positions });
    }
    (Encoded { layers: codebook_entropies(logits, tau, sync) }, Cuts { norms })
}

/// Quantizes every layer's `logits` with the whole batch's codebook entropy (one exchange).
fn codebook_entropies(logits: Vec<Tensor<5>>, tau: f32, sync: &AllReduce) -> Vec<LfqOutput> {
    let parts: Vec<_> = logits.into_iter().map(|z| lfq::quantize_part(z, tau)).collect();
    let mut local = Vec::new();
    for (_, sums) in &parts {
        local.extend(values(sums.values()));
        local.push(sums.positions() as f32);
    }
    let total = sync.sum(&local);
    let replicas = sync.parties() as f32;
    let mut at = 0;
    parts
        .into_iter()
        .map(|(mut out, sums)| {
            let own = sums.values();
            let [n] = own.dims();
            let all = Tensor::<1>::from_data(TensorData::new(total[at..at + n].to_vec(), [n]), &own.device()).cast(own.dtype());
            let positions = total[at + n] as usize;
            at += n + 1;
            let h = sums.entropy(all - own, positions);
            // The whole batch's value, with `replicas` times its gradient (see the module doc).
            out.codebook_entropy = h.clone().mul_scalar(replicas) - h.detach().mul_scalar(replicas - 1.0);
            out
        })
        .collect()
}

impl Cuts {
    /// The whole batch's statistics of every bit norm.
    pub fn statistics(&self) -> Vec<BitStatistics> {
        self.norms.iter().map(|c| (c.layer, c.mean.clone(), c.var.clone())).collect()
    }

    /// The gradients of `loss` (this replica's scaled loss, computed from [`encode`]'s layers) for
    /// `master`'s parameters, with the bit norms' whole-batch terms: a backward pass to the
    /// cut, one exchange, and a backward pass through the encoder.
    pub fn backward(self, loss: Tensor<1>, master: &Tokenizer, sync: &AllReduce) -> GradientsParams {
        let mut grads = loss.backward();
        let cuts = self.norms;
        let upstream: Vec<Tensor<5>> =
            cuts.iter().map(|c| c.leaf.grad_remove(&mut grads).unwrap_or_else(|| Tensor::zeros(c.leaf.dims(), &c.leaf.device()).inner())).collect();
        let mut total = GradientsAccumulator::<Tokenizer>::new();
        total.accumulate(master, GradientsParams::from_grads(grads, master));
        if cuts.is_empty() {
            return total.grads();
        }
        // Per normed layer: Σ g and Σ g ŷ per bit over the whole batch.
        let mut local = Vec::new();
        for (c, g) in cuts.iter().zip(&upstream) {
            let y = c.leaf.clone().inner();
            local.extend(values(lfq::per_bit(g.clone()).sum_dim(1).reshape([-1])));
            local.extend(values(lfq::per_bit(g.clone() * y).sum_dim(1).reshape([-1])));
        }
        let sums = sync.sum(&local);
        let mut at = 0;
        let mut surrogate: Option<Tensor<1>> = None;
        for (c, g) in cuts.into_iter().zip(upstream) {
            let d = c.inv_std.dims()[0];
            let column = |v: &[f32]| averages(v, c.positions as f32, &g).reshape([1, d, 1, 1, 1]);
            let (mean_g, mean_gy) = (column(&sums[at..at + d]), column(&sums[at + d..at + 2 * d]));
            at += 2 * d;
            let y = c.leaf.inner();
            let inv_std = c.inv_std.inner().reshape([1, d, 1, 1, 1]);
            // dL/du, a constant; the encoder's gradient is that of Σ u dL/du.
            let du = (g - mean_g - y * mean_gy) * inv_std;
            let term = (c.projection * du).sum();
            surrogate = Some(match surrogate {
                Some(s) => s + term,
                None => term,
            });
        }
        if let Some(s) = surrogate {
            total.accumulate(master, GradientsParams::from_grads(s.backward(), master));
        }
        total.grads()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::TokenizerConfig;
    use crate::train::data::ClipSource;
    use crate::train::tokenizer::{TokenizerTrainConfig, TokenizerTrainer};

    #[test]
    fn replicas_on_fresh_threads_keep_the_running_statistics() {
        // Replicas on GPUs run on a fresh thread every step (CPU replicas on their core
        // shares' long-lived threads). Burn's running state keeps a value per thread until that
        // thread reads again, so updates from such threads would sit unread; the model's own
        // thread moves the running statistics instead, as one device's step does.
        let device = Device::flex();
        let cfg = TokenizerConfig::preset("tiny").expect("preset");
        let data = ClipSource::synthetic(12, 0, cfg.frames, cfg.height, cfg.fps);
        // Epsilon 1e-4: the projections' biases before the norms have only rounding for a
        // gradient, which AdamW would turn into steps at a small epsilon (engine/tests/split_steps.rs).
        let train =
            TokenizerTrainConfig::new().with_batch(4).with_steps(10).with_warmup(1).with_epsilon(1e-4).with_adversarial_weight(0.0).with_stage_fraction(0.0);
        let mut one = TokenizerTrainer::new(cfg.clone(), train.clone(), &device);
        let mut two = TokenizerTrainer::new(cfg, train, &device);
        two.set_devices(&[Device::flex()]).expect("two devices");
        two.cores = None;
        for step in 0..3 {
            let x = data.train_batch(step, 4, 0, &device).expect("batch");
            one.train_step(x.clone());
            two.train_step(x);
        }
        // Inference normalizes by the running statistics.
        let x = data.val_batch(0..4, &device).expect("batch");
        let (a, b) = (one.model.valid().code_logits(x.clone()), two.model.valid().code_logits(x));
        for (j, (a, b)) in a.into_iter().zip(b).enumerate() {
            let d = (a - b).abs().max().into_scalar::<f32>();
            eprintln!("layer {j}: pre-sign values differ by at most {d}");
            assert!(d < 1e-4, "layer {j}: pre-sign values differ by {d} after 3 steps");
        }
    }
}

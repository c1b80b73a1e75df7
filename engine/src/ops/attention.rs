//! Scaled dot-product attention with a hand-written backward, for training on the CPU
//! (issue 22).
//!
//! Burn's autodiff differentiates attention through its decomposed fallback: about a dozen
//! tracked operations over `[B, H, S, S]`, among them a row maximum whose gradient is a
//! scatter and a softmax differentiated one operation at a time. This op computes the same
//! forward with the inner backend's primitives, keeps the probabilities `P`, and writes the
//! gradient the way PyTorch's math attention does: five products and one softmax term,
//!
//! ```text
//! dV = Pᵀ dO    dP = dO Vᵀ    dS = P ⊙ (dP − rowsum(dP ⊙ P))    dQ = s dS K    dK = s dSᵀ Q
//! ```
//!
//! where `s` is the scale. Masked positions have `P = 0`, so they get no gradient, as in the
//! fallback. The softmax is the backend's fused one (Flex: one parallel pass over the rows).
//! It is used on Flex with autodiff (without gradient checkpointing), where it is measured
//! faster (docs/benchmarks.md, issue 22); everywhere else the call is Burn's `attention`, so
//! GPUs keep their fused kernels and inference is unchanged.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{CheckpointStrategy, NoCheckpointing};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::{BoolTensor, FloatTensor};
use burn::backend::{Backend, Flex, TensorMetadata};
use burn::prelude::*;
use burn::tensor::ops::AttentionModuleOptions;

use super::{FlexAd, flex_ad, uses_fused_backward};

/// Attention of `q` `[B, H, S, D]` over `k`, `v` `[B, H, S_k, D]`, where `mask` `[B, H, S, S_k]`
/// is TRUE at the positions not attended, with the scale `1 / sqrt(D)`: `[B, H, S, D]`.
/// The same mathematics as `burn::tensor::module::attention` with that mask and no bias.
pub fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, mask: Tensor<4, Bool>) -> Tensor<4> {
    let scale = 1.0 / (q.dims()[3] as f64).sqrt();
    if !uses_fused_backward(&q.device()) {
        let opts = AttentionModuleOptions { scale: Some(scale), softcap: None, is_causal: false };
        return burn::tensor::module::attention(q, k, v, Some(mask), None, opts);
    }
    // The device check above names the backend these tensors live on.
    let mask = mask.try_into_primitive::<FlexAd>().expect("a mask on the Flex autodiff device converts to its primitive");
    Tensor::from_primitive::<FlexAd>(fused::<Flex, NoCheckpointing>(flex_ad(q), flex_ad(k), flex_ad(v), mask, scale))
}

/// The probabilities `softmax((s Q) Kᵀ)` with masked positions at zero, `[B, H, S, S_k]`, from the
/// scaled queries `qs = s Q`. Masked scores are set to the dtype's most negative finite value
/// before the backend's fused softmax (`ActivationOps::softmax`): in a row with one key or more
/// attended, their weight is exactly zero as with `-inf`; a row with every key masked averages all
/// values instead of giving zeros (Burn's fallback) or NaN. The generator's masks never have
/// such a row (`generator::model::attention_mask`).
fn probabilities<B: Backend>(qs: FloatTensor<B>, k: FloatTensor<B>, mask: BoolTensor<B>) -> FloatTensor<B> {
    let scores = B::float_matmul(qs, B::float_transpose(k));
    let finfo = scores.dtype().finfo().expect("attention scores are floats");
    B::softmax(B::float_mask_fill(scores, mask, finfo.min.into()), 3)
}

/// The autodiff op: forward through [`probabilities`] (kept for the backward), backward as in
/// the module documentation. Untracked calls take the inner backend's own attention.
fn fused<B: Backend, C: CheckpointStrategy>(
    q: FloatTensor<Autodiff<B, C>>,
    k: FloatTensor<Autodiff<B, C>>,
    v: FloatTensor<Autodiff<B, C>>,
    mask: BoolTensor<B>,
    scale: f64,
) -> FloatTensor<Autodiff<B, C>> {
    #[derive(Debug)]
    struct AttentionBackward;

    impl<B: Backend> Backward<B, 3> for AttentionBackward {
        /// `s Q`, `K`, `V`, `P` and the scale `s`.
        type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, f64);

        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
            let [node_q, node_k, node_v] = ops.parents;
            let d_out = grads.consume::<B>(&ops.node);
            let (qs, k, v, p, scale) = ops.state;
            if let Some(node) = node_v {
                grads.register::<B>(node.id, B::float_matmul(B::float_transpose(p.clone()), d_out.clone()));
            }
            if node_q.is_none() && node_k.is_none() {
                return;
            }
            let dp = B::float_matmul(d_out, B::float_transpose(v));
            let row = B::float_sum_dim(B::float_mul(dp.clone(), p.clone()), 3);
            let ds = B::float_mul(p, B::float_sub(dp, row));
            if let Some(node) = node_k {
                grads.register::<B>(node.id, B::float_matmul(B::float_transpose(ds.clone()), qs));
            }
            if let Some(node) = node_q {
                grads.register::<B>(node.id, B::float_mul_scalar(B::float_matmul(ds, k), scale.into()));
            }
        }
    }

    match AttentionBackward.prepare::<C>([q.node(), k.node(), v.node()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            // The scale goes on Q (`[B, H, S, D]`), not on the scores (`S_k / D` times larger).
            let qs = B::float_mul_scalar(q.into_primitive(), scale.into());
            let (k, v) = (k.into_primitive(), v.into_primitive());
            let p = probabilities::<B>(qs.clone(), k.clone(), mask);
            let out = B::float_matmul(p.clone(), v.clone());
            prep.finish((qs, k, v, p, scale), out)
        }
        OpsKind::UnTracked(prep) => {
            let opts = AttentionModuleOptions { scale: Some(scale), softcap: None, is_causal: false };
            prep.finish(B::attention(q.into_primitive(), k.into_primitive(), v.into_primitive(), Some(mask), None, opts))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    /// Gradients of a weighted sum of the output, through this op and through Burn's.
    fn grads(fused: bool) -> [Vec<f32>; 4] {
        let dev = Device::flex().autodiff();
        assert!(uses_fused_backward(&dev));
        let (b, h, s, sk, d) = (2, 3, 5, 7, 4);
        let seeded = |shape: [usize; 4], seed: u64| crate::ops::test_values(shape, seed as f32, &Device::flex()) * 2.0;
        let q = Tensor::<4>::from_data(seeded([b, h, s, d], 1).into_data(), &dev).require_grad();
        let k = Tensor::<4>::from_data(seeded([b, h, sk, d], 2).into_data(), &dev).require_grad();
        let v = Tensor::<4>::from_data(seeded([b, h, sk, d], 3).into_data(), &dev).require_grad();
        let w = Tensor::<4>::from_data(seeded([b, h, s, d], 4).into_data(), &dev);
        // A causal-like mask offset by the cached keys; row 0 of batch 1 attends its first key only.
        let mut m = vec![false; b * h * s * sk];
        for (i, x) in m.iter_mut().enumerate() {
            let (bi, row, col) = (i / (h * s * sk), (i / sk) % s, i % sk);
            *x = col > row + (sk - s) || (bi == 1 && row == 0 && col > 0);
        }
        let mask = Tensor::<4, Bool>::from_data(burn::tensor::TensorData::new(m, [b, h, s, sk]), &dev);
        let out = if fused {
            attention(q.clone(), k.clone(), v.clone(), mask)
        } else {
            let opts = AttentionModuleOptions { scale: None, softcap: None, is_causal: false };
            burn::tensor::module::attention(q.clone(), k.clone(), v.clone(), Some(mask), None, opts)
        };
        let g = (out.clone() * w).sum().backward();
        let vec = |t: Tensor<4>| t.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32");
        [vec(out.inner()), vec(q.grad(&g).expect("q grad")), vec(k.grad(&g).expect("k grad")), vec(v.grad(&g).expect("v grad"))]
    }

    #[test]
    fn matches_burns_attention_and_its_gradients() {
        let ours = grads(true);
        let burn = grads(false);
        for (name, (a, b)) in ["output", "dQ", "dK", "dV"].iter().zip(ours.iter().zip(&burn)) {
            assert_eq!(a.len(), b.len());
            assert!(a.iter().all(|x| x.is_finite()), "{name} has non-finite values");
            let max = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            assert!(max < 1e-5, "{name} differs from Burn's by {max}");
            assert!(a.iter().any(|x| x.abs() > 1e-3), "{name} is all zero");
        }
    }

    #[test]
    fn a_row_with_every_key_masked_averages_the_values() {
        let dev = Device::flex().autodiff();
        let q = Tensor::<4>::random([1, 1, 2, 4], Distribution::Normal(0.0, 1.0), &dev).require_grad();
        let v =
            Tensor::<4>::from_data(burn::tensor::TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0], [1, 1, 3, 4]), &dev);
        let k = Tensor::<4>::random([1, 1, 3, 4], Distribution::Normal(0.0, 1.0), &dev);
        let mask = Tensor::<4, Bool>::from_data(burn::tensor::TensorData::new(vec![true, true, true, false, true, true], [1, 1, 2, 3]), &dev);
        let out = attention(q.clone(), k, v, mask);
        let g = out.clone().sum().backward();
        let rows = out.inner().into_data().convert::<f32>().try_into_vec::<f32>().expect("f32");
        // Row 0 (every key masked): the mean of the values; row 1: the first value.
        let expected = [5.0, 6.0, 7.0, 8.0, 1.0, 2.0, 3.0, 4.0];
        assert!(rows.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-5), "{rows:?}");
        let dq = q.grad(&g).expect("q grad").into_data().convert::<f32>().try_into_vec::<f32>().expect("f32");
        assert!(dq.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn other_devices_take_burns_attention() {
        assert!(!uses_fused_backward(&Device::flex()));
        assert!(!uses_fused_backward(&Device::flex().autodiff().gradient_checkpointing()));
    }
}

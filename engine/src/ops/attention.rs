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
//! fallback. It is used on Flex with autodiff (without gradient checkpointing), where it is
//! measured faster (docs/benchmarks.md, issue 22); everywhere else the call is Burn's
//! `attention`, so GPUs keep their fused kernels and inference is unchanged.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{CheckpointStrategy, NoCheckpointing};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::{BoolTensor, FloatTensor};
use burn::backend::{Backend, Flex, GradientCheckpointingStrategy, TensorMetadata};
use burn::prelude::*;
use burn::tensor::ops::AttentionModuleOptions;

/// The Flex autodiff backend the fused backward runs on.
type FlexAd = Autodiff<Flex, NoCheckpointing>;

/// Whether tensors on `device` take the hand-written backward: Flex with autodiff and no
/// gradient checkpointing (the backend type the primitives are converted to).
pub fn uses_fused_backward(device: &Device) -> bool {
    device.gradient_checkpointing_strategy() == Some(GradientCheckpointingStrategy::Disabled) && *device == Device::flex()
}

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
    let prim = |t: Tensor<4>| t.try_into_primitive::<FlexAd>().expect("a tensor on the Flex autodiff device converts to its primitive");
    let mask = mask.try_into_primitive::<FlexAd>().expect("a mask on the Flex autodiff device converts to its primitive");
    Tensor::from_primitive::<FlexAd>(fused::<Flex, NoCheckpointing>(prim(q), prim(k), prim(v), mask, scale))
}

/// The probabilities `softmax(s Q Kᵀ)` with masked positions at zero, `[B, H, S, S_k]`, NaN-safe
/// for fully masked rows as Burn's fallback is (the row maximum is clamped to the most negative
/// finite value and the row sum to the smallest positive one).
fn probabilities<B: Backend>(q: FloatTensor<B>, k: FloatTensor<B>, mask: BoolTensor<B>, scale: f64) -> FloatTensor<B> {
    let scores = B::float_mul_scalar(B::float_matmul(q, B::float_transpose(k)), scale.into());
    let scores = B::float_mask_fill(scores, mask, f32::NEG_INFINITY.into());
    let finfo = scores.dtype().finfo().expect("attention scores are floats");
    let max = B::float_clamp_min(B::float_max_dim(scores.clone(), 3), finfo.min.into());
    let num = B::float_exp(B::float_sub(scores, max));
    let sum = B::float_clamp_min(B::float_sum_dim(num.clone(), 3), finfo.min_positive.into());
    B::float_div(num, sum)
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
        /// `Q`, `K`, `V`, `P` and the scale.
        type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, f64);

        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
            let [node_q, node_k, node_v] = ops.parents;
            let d_out = grads.consume::<B>(&ops.node);
            let (q, k, v, p, scale) = ops.state;
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
                grads.register::<B>(node.id, B::float_mul_scalar(B::float_matmul(B::float_transpose(ds.clone()), q), scale.into()));
            }
            if let Some(node) = node_q {
                grads.register::<B>(node.id, B::float_mul_scalar(B::float_matmul(ds, k), scale.into()));
            }
        }
    }

    match AttentionBackward.prepare::<C>([q.node(), k.node(), v.node()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let (q, k, v) = (q.into_primitive(), k.into_primitive(), v.into_primitive());
            let p = probabilities::<B>(q.clone(), k.clone(), mask, scale);
            let out = B::float_matmul(p.clone(), v.clone());
            prep.finish((q, k, v, p, scale), out)
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
        let seeded = |shape: [usize; 4], seed: u64| {
            let plain = Device::flex();
            plain.seed(seed);
            Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &plain)
        };
        let q = Tensor::<4>::from_data(seeded([b, h, s, d], 1).into_data(), &dev).require_grad();
        let k = Tensor::<4>::from_data(seeded([b, h, sk, d], 2).into_data(), &dev).require_grad();
        let v = Tensor::<4>::from_data(seeded([b, h, sk, d], 3).into_data(), &dev).require_grad();
        let w = Tensor::<4>::from_data(seeded([b, h, s, d], 4).into_data(), &dev);
        // A causal-like mask offset by the cached keys, with row 0 of batch 1 fully masked.
        let mut m = vec![false; b * h * s * sk];
        for (i, x) in m.iter_mut().enumerate() {
            let (bi, row, col) = (i / (h * s * sk), (i / sk) % s, i % sk);
            *x = col > row + (sk - s) || (bi == 1 && row == 0);
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
    fn other_devices_take_burns_attention() {
        assert!(!uses_fused_backward(&Device::flex()));
        assert!(!uses_fused_backward(&Device::flex().autodiff().gradient_checkpointing()));
    }
}

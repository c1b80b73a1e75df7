//! 3D convolution whose weight gradient is computed as 27 products over shifted views, for
//! training on the CPU (issue 22).
//!
//! Burn's autodiff takes a convolution's weight gradient from the backend's
//! `conv3d_weight_backward`. Flex has none of its own, so Burn's generic one runs a forward
//! convolution with the batch and channels swapped and the output gradient as the kernel: an
//! im2col of the whole input per input channel and a product of 27 rows. For a stride-1 3x3x3
//! convolution with the space padded by one, the gradient of each kernel tap `(kt, kh, kw)` is
//! instead one product between the output gradient and the input shifted by that tap:
//!
//! ```text
//! dW[:, :, kt, kh, kw] = Σ_b  G_b [C_out, N] · X_b[shift(kt, kh, kw) ..][N, C_in]
//! ```
//!
//! With the input laid out channels-last on its zero-padded grid (`[B, T Hp Wp, C_in]`, where
//! `Hp = H + 2`, `Wp = W + 2`) and the output gradient placed on the same grid (zeros in the
//! padding columns and rows, `N = T_out Hp Wp`), every shift is a plain offset into the rows,
//! so each tap is a view, not a copy: one channels-last copy of the input and one padded copy
//! of the gradient replace the im2col. The cost is the padded grid's extra positions (27% at
//! 16x16, 56% at 8x8), so it is used where it measures faster: grids of 16x16 and more
//! (docs/benchmarks.md, session 15). The forward, the input gradient and the bias gradient
//! are the backend's own.

use burn::backend::Flex;
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::prelude::*;
use burn::tensor::ops::{ConvOptions, PadMode};

use super::attention::uses_fused_backward;

/// The Flex autodiff backend the op runs on.
type FlexAd = Autodiff<Flex, NoCheckpointing>;

/// The smallest output grid (`H_out W_out`) the shifted products are used for: below it the
/// padded grid's extra positions cost more than the generic gradient (docs/benchmarks.md).
pub const MIN_GRID: usize = 16 * 16;

/// Whether a convolution of `x` `[B, C_in, T, H, W]` with `weight` `[C_out, C_in, kt, kh, kw]`
/// and `options` takes the shifted-product weight gradient: on Flex with autodiff, a 3x3x3
/// kernel, stride 1, padding `(0, 1, 1)`, no dilation or groups, and an output grid of at least
/// [`MIN_GRID`].
pub fn uses_shifted_weight_grad(x: &Tensor<5>, weight: &Tensor<5>, options: &ConvOptions<3>) -> bool {
    let [_, _, _, h, w] = x.dims();
    let [_, _, kt, kh, kw] = weight.dims();
    uses_fused_backward(&x.device())
        && [kt, kh, kw] == [3, 3, 3]
        && options.stride == [1, 1, 1]
        && options.padding == [(0, 0), (1, 1), (1, 1)]
        && options.dilation == [1, 1, 1]
        && options.groups == 1
        && h * w >= MIN_GRID
}

/// `conv3d(x, weight, bias, options)`: `x` `[B, C_in, T, H, W]`, `weight`
/// `[C_out, C_in, kt, kh, kw]`, `bias` `[C_out]` -> `[B, C_out, T_out, H_out, W_out]`. The same
/// mathematics as `burn::tensor::module::conv3d`; where [`uses_shifted_weight_grad`] holds, the
/// weight gradient is the shifted products of the module documentation.
pub fn conv3d(x: Tensor<5>, weight: Tensor<5>, bias: Tensor<1>, options: ConvOptions<3>) -> Tensor<5> {
    if !uses_shifted_weight_grad(&x, &weight, &options) {
        return burn::tensor::module::conv3d(x, weight, Some(bias), options);
    }
    // The device check above names the backend these tensors live on.
    let x = x.try_into_primitive::<FlexAd>().expect("a tensor on the Flex autodiff device converts to its primitive");
    let weight = weight.try_into_primitive::<FlexAd>().expect("a tensor on the Flex autodiff device converts to its primitive");
    let bias = bias.try_into_primitive::<FlexAd>().expect("a tensor on the Flex autodiff device converts to its primitive");
    Tensor::from_primitive::<FlexAd>(conv3d_flex(x, weight, bias, options))
}

/// The weight gradient of a stride-1 3x3x3 convolution with padding `(0, 1, 1)`, from its
/// input `x` `[B, C_in, T, H, W]` and output gradient `g` `[B, C_out, T - 2, H, W]`:
/// `[C_out, C_in, 3, 3, 3]`.
pub fn shifted_weight_grad(x: Tensor<5>, g: Tensor<5>) -> Tensor<5> {
    let [b, ci, t, h, w] = x.dims();
    let [_, co, to, ho, wo] = g.dims();
    let (hp, wp) = (h + 2, w + 2);
    let device = x.device();
    // The input channels-last on its padded grid, per clip, with a zero tail so that the largest
    // shift of the last output frame stays inside: [B, T Hp Wp + 2 Wp + 2, C_in].
    let xp = x.pad([(0, 0), (1, 1), (1, 1)], PadMode::Constant(0.0)).permute([0, 2, 3, 4, 1]).reshape([b, t * hp * wp, ci]);
    let xp = Tensor::cat(vec![xp, Tensor::zeros([b, 2 * wp + 2, ci], &device)], 1);
    // The output gradient on the output frames' padded grid: [B, C_out, T_out Hp Wp].
    let n = to * hp * wp;
    let gp = g.pad([(0, 0), (0, hp - ho), (0, wp - wo)], PadMode::Constant(0.0)).reshape([b, co, n]);
    let mut taps = Vec::with_capacity(27);
    for kt in 0..3 {
        for kh in 0..3 {
            for kw in 0..3 {
                let shift = (kt * hp + kh) * wp + kw;
                taps.push(gp.clone().matmul(xp.clone().narrow(1, shift, n)).sum_dim(0).reshape([co, ci, 1]));
            }
        }
    }
    Tensor::cat(taps, 2).reshape([co, ci, 3, 3, 3])
}

/// The autodiff op on Flex: the forward, input and bias gradients are Flex's, the weight
/// gradient is [`shifted_weight_grad`].
fn conv3d_flex(x: FloatTensor<FlexAd>, weight: FloatTensor<FlexAd>, bias: FloatTensor<FlexAd>, options: ConvOptions<3>) -> FloatTensor<FlexAd> {
    #[derive(Debug)]
    struct Conv3dBackward;

    impl Backward<Flex, 3> for Conv3dBackward {
        /// The input, the weight, the bias and the options.
        type State = (FloatTensor<Flex>, FloatTensor<Flex>, FloatTensor<Flex>, ConvOptions<3>);

        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
            let [node_x, node_w, node_b] = ops.parents;
            let g = grads.consume::<Flex>(&ops.node);
            let (x, weight, bias, options) = ops.state;
            if let Some(node) = node_b {
                grads.register::<Flex>(node.id, Flex::conv3d_bias_backward(x.clone(), bias, g.clone()));
            }
            if let Some(node) = node_w {
                let dw = shifted_weight_grad(Tensor::from_primitive::<Flex>(x.clone()), Tensor::from_primitive::<Flex>(g.clone()));
                grads.register::<Flex>(node.id, dw.try_into_primitive::<Flex>().expect("a Flex tensor converts to its primitive"));
            }
            if let Some(node) = node_x {
                grads.register::<Flex>(node.id, Flex::conv3d_x_backward(x, weight, g, options));
            }
        }
    }

    match Conv3dBackward.prepare::<NoCheckpointing>([x.node(), weight.node(), bias.node()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let (x, weight, bias) = (x.into_primitive(), weight.into_primitive(), bias.into_primitive());
            let out = Flex::conv3d(x.clone(), weight.clone(), Some(bias.clone()), options.clone());
            prep.finish((x, weight, bias, options), out)
        }
        OpsKind::UnTracked(prep) => prep.finish(Flex::conv3d(x.into_primitive(), weight.into_primitive(), Some(bias.into_primitive()), options)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fixed pseudo-random values (not the device's RNG, which tests running at once share).
    fn values<const D: usize>(shape: [usize; D], seed: f32, device: &Device) -> Tensor<D> {
        let n = shape.iter().product::<usize>();
        let v: Vec<f32> = (0..n).map(|i| ((i as f32 + 0.37 * seed) * 12.9898).sin()).collect();
        Tensor::from_data(burn::tensor::TensorData::new(v, shape), device)
    }

    /// The output and the three gradients of a weighted sum, through this op and Burn's.
    fn run(shifted: bool, [b, ci, co, t, h, w]: [usize; 6]) -> [Vec<f32>; 4] {
        let dev = Device::flex().autodiff();
        let x = values([b, ci, t, h, w], 1.0, &dev).require_grad();
        let weight = values([co, ci, 3, 3, 3], 2.0, &dev).require_grad();
        let bias = values([co], 3.0, &dev).require_grad();
        let options = ConvOptions::new([1, 1, 1], [0, 1, 1], [1, 1, 1], 1);
        assert_eq!(uses_shifted_weight_grad(&x, &weight, &options), h * w >= MIN_GRID);
        let out = if shifted {
            conv3d(x.clone(), weight.clone(), bias.clone(), options)
        } else {
            burn::tensor::module::conv3d(x.clone(), weight.clone(), Some(bias.clone()), options)
        };
        let grads = (out.clone() * values(out.dims(), 4.0, &dev)).sum().backward();
        let vec = |t: Tensor<5>| t.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32");
        let dw = vec(weight.grad(&grads).expect("weight grad"));
        let db = bias.grad(&grads).expect("bias grad").into_data().convert::<f32>().try_into_vec::<f32>().expect("f32");
        [vec(out.inner()), vec(x.grad(&grads).expect("x grad")), dw, db]
    }

    #[test]
    fn matches_burns_convolution_and_its_gradients() {
        // A grid of 16x18 takes the shifted products; non-square, with more output than input channels.
        let shape = [2, 3, 5, 4, 16, 18];
        let ours = run(true, shape);
        let burn = run(false, shape);
        for (name, (a, b)) in ["output", "dX", "dW", "dB"].iter().zip(ours.iter().zip(&burn)) {
            assert_eq!(a.len(), b.len());
            let scale = b.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            let max = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            assert!(scale > 1e-3, "{name} is all zero");
            assert!(max <= 1e-5 * scale.max(1.0), "{name} differs from Burn's by {max} (scale {scale})");
        }
    }

    #[test]
    fn small_grids_and_other_shapes_take_burns_convolution() {
        let dev = Device::flex().autodiff();
        let x = Tensor::<5>::zeros([1, 2, 4, 8, 8], &dev);
        let w = Tensor::<5>::zeros([2, 2, 3, 3, 3], &dev);
        let opts = ConvOptions::new([1, 1, 1], [0, 1, 1], [1, 1, 1], 1);
        assert!(!uses_shifted_weight_grad(&x, &w, &opts));
        let x = Tensor::<5>::zeros([1, 2, 4, 16, 16], &dev);
        assert!(uses_shifted_weight_grad(&x, &w, &opts));
        assert!(!uses_shifted_weight_grad(&x, &w, &ConvOptions::new([1, 2, 2], [0, 1, 1], [1, 1, 1], 1)));
        assert!(!uses_shifted_weight_grad(&x.clone().inner(), &w.clone().inner(), &opts));
    }
}

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
//! 16x16, 56% at 8x8), so it is used where it measures faster: stride 1 on grids of 16x16 and
//! more (docs/benchmarks.md, session 15). [`shifted_weight_grad`] also takes strides (the input
//! split into its stride phases), tested, but measured no faster there, so strided
//! convolutions keep Burn's gradient. A 1x1x1 convolution is the one-tap case (no padded grid)
//! and takes it at every size. The forward, the input gradient and the bias gradient are the
//! backend's own.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Flex, TensorMetadata};
use burn::prelude::*;
use burn::tensor::ops::{ConvOptions, PadMode};

use super::{FlexAd, flex_ad, uses_fused_backward};

/// The smallest output grid (`H_out W_out`) the shifted products are used for: below it the
/// padded grid's extra positions cost more than the generic gradient (docs/benchmarks.md).
pub const MIN_GRID: usize = 16 * 16;

/// Whether a convolution of `x` `[B, C_in, T, H, W]` with `weight` `[C_out, C_in, kt, kh, kw]`
/// and `options` takes the shifted-product weight gradient: on Flex with autodiff, stride 1, no
/// dilation or groups, and either a 3x3x3 kernel with padding `(0, 1, 1)` on a grid of at least
/// [`MIN_GRID`], or a 1x1x1 kernel without padding (one product, no padded grid: faster at
/// every size measured).
pub fn uses_shifted_weight_grad(x: &Tensor<5>, weight: &Tensor<5>, options: &ConvOptions<3>) -> bool {
    let [_, _, _, h, w] = x.dims();
    let [_, _, kt, kh, kw] = weight.dims();
    let cubic = [kt, kh, kw] == [3, 3, 3] && options.padding == [(0, 0), (1, 1), (1, 1)] && h * w >= MIN_GRID;
    let point = [kt, kh, kw] == [1, 1, 1] && options.padding == [(0, 0); 3];
    uses_fused_backward(&x.device()) && options.stride == [1, 1, 1] && options.dilation == [1, 1, 1] && options.groups == 1 && (cubic || point)
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
    Tensor::from_primitive::<FlexAd>(conv3d_flex(flex_ad(x), flex_ad(weight), flex_ad(bias), options))
}

/// The weight gradient of a convolution (any kernel, stride and padding; no dilation or groups)
/// from its input `x` `[B, C_in, T, H, W]` and output gradient `g` `[B, C_out, T_out, H_out,
/// W_out]`: `[C_out, C_in, kt, kh, kw]`.
///
/// With a stride, the input is split into its stride phases (space-to-depth by the stride), so
/// that each tap reads one phase at a whole-grid offset; with stride 1 there is one phase.
pub fn shifted_weight_grad(x: Tensor<5>, g: Tensor<5>, kernel: [usize; 3], options: &ConvOptions<3>) -> Tensor<5> {
    let [b, ci, ..] = x.dims();
    let [_, co, to, ho, wo] = g.dims();
    let [st, sh, sw] = options.stride;
    let device = x.device();
    // The padded input, each axis extended with zeros to a multiple of its stride.
    let [(t0, t1), (h0, h1), (w0, w1)] = options.padding;
    let x = x.pad([(t0, t1), (h0, h1), (w0, w1)], PadMode::Constant(0.0));
    let [_, _, tp, hp, wp] = x.dims();
    let (tg, hg, wg) = (tp.div_ceil(st), hp.div_ceil(sh), wp.div_ceil(sw));
    let x = x.pad([(0, tg * st - tp), (0, hg * sh - hp), (0, wg * sw - wp)], PadMode::Constant(0.0));
    // Phases channels-last on the phase grid: [B, st sh sw, Tg Hg Wg + tail, C_in], the zero
    // tail keeping the largest shift of the last rows inside.
    let phases = st * sh * sw;
    let len = tg * hg * wg;
    let xp = x.reshape([b, ci, tg, st, hg, sh, wg, sw]).permute([0, 3, 5, 7, 2, 4, 6, 1]).reshape([b, phases, len, ci]);
    let shift = |a: usize, c: usize, e: usize| ((a / st) * hg + c / sh) * wg + e / sw;
    let tail = shift(kernel[0] - 1, kernel[1] - 1, kernel[2] - 1);
    let xp = if tail > 0 { Tensor::cat(vec![xp, Tensor::zeros([b, phases, tail, ci], &device)], 2) } else { xp };
    // The output gradient on the phase grid (zeros past the outputs): [B, C_out, T_out Hg Wg].
    let n = to * hg * wg;
    let gp = g.pad([(0, 0), (0, hg - ho), (0, wg - wo)], PadMode::Constant(0.0)).reshape([b, co, n]);
    let mut taps = Vec::with_capacity(kernel.iter().product());
    for a in 0..kernel[0] {
        for c in 0..kernel[1] {
            for e in 0..kernel[2] {
                let phase = ((a % st) * sh + c % sh) * sw + e % sw;
                let rows = xp.clone().narrow(1, phase, 1).reshape([b, len + tail, ci]).narrow(1, shift(a, c, e), n);
                taps.push(gp.clone().matmul(rows).sum_dim(0).reshape([co, ci, 1]));
            }
        }
    }
    Tensor::cat(taps, 2).reshape([co, ci, kernel[0], kernel[1], kernel[2]])
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
                let kernel = weight.shape().dims::<5>();
                let kernel = [kernel[2], kernel[3], kernel[4]];
                let dw = shifted_weight_grad(Tensor::from_primitive::<Flex>(x.clone()), Tensor::from_primitive::<Flex>(g.clone()), kernel, &options);
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

    use crate::ops::test_values as values;

    /// The output and the three gradients of a weighted sum, through this op and Burn's.
    fn run(shifted: bool, [b, ci, co, t, h, w]: [usize; 6], k: usize) -> [Vec<f32>; 4] {
        let dev = Device::flex().autodiff();
        let x = values([b, ci, t, h, w], 1.0, &dev).require_grad();
        let weight = values([co, ci, k, k, k], 2.0, &dev).require_grad();
        let bias = values([co], 3.0, &dev).require_grad();
        let options = ConvOptions::new([1, 1, 1], [0, k / 2, k / 2], [1, 1, 1], 1);
        assert_eq!(uses_shifted_weight_grad(&x, &weight, &options), k == 1 || h * w >= MIN_GRID);
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
        // And a 1x1x1 convolution on a small grid.
        for (shape, k) in [([2, 3, 5, 4, 16, 18], 3), ([2, 6, 4, 3, 5, 7], 1)] {
            let ours = run(true, shape, k);
            let burn = run(false, shape, k);
            for (name, (a, b)) in ["output", "dX", "dW", "dB"].iter().zip(ours.iter().zip(&burn)) {
                assert_eq!(a.len(), b.len());
                let scale = b.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                let max = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
                assert!(scale > 1e-3, "{name} is all zero (kernel {k})");
                assert!(max <= 1e-5 * scale.max(1.0), "{name} differs from Burn's by {max} (scale {scale}, kernel {k})");
            }
        }
    }

    #[test]
    fn shifted_weight_grad_matches_burns_with_strides() {
        let dev = Device::flex().autodiff();
        for (stride, padding) in [([2, 2, 2], [0, 1, 1]), ([1, 2, 1], [1, 0, 2])] {
            let x = values([2, 3, 7, 9, 10], 5.0, &dev);
            let weight = values([4, 3, 3, 2, 3], 6.0, &dev).require_grad();
            let options = ConvOptions::new(stride, padding, [1, 1, 1], 1);
            let out = burn::tensor::module::conv3d(x.clone(), weight.clone(), None, options.clone());
            let g = values(out.dims(), 7.0, &dev);
            let reference = weight.grad(&(out * g.clone()).sum().backward()).expect("weight grad");
            let ours = shifted_weight_grad(x.inner(), g.inner(), [3, 2, 3], &options);
            let max = (reference.clone() - ours).abs().max().into_scalar::<f32>();
            let scale = reference.abs().max().into_scalar::<f32>();
            assert!(scale > 1e-3 && max <= 1e-5 * scale.max(1.0), "stride {stride:?}: {max} (scale {scale})");
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

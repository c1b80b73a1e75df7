//! 3D convolution whose weight gradient is computed as products over shifted views of the
//! input, for training on the CPU (issue 22).
//!
//! Burn's autodiff takes a convolution's weight gradient from the backend's
//! `conv3d_weight_backward`. Flex has none of its own, so Burn's generic one runs a forward
//! convolution with the batch and channels swapped and the output gradient as the kernel: an
//! im2col of the whole input per input channel and a product of 27 rows. For a stride-1
//! convolution the gradient of each kernel tap `(kt, kh, kw)` is instead one product between
//! the output gradient and the input *shifted by that tap*:
//!
//! ```text
//! dW[:, :, kt, kh, kw] = Σ_b  G_b [C_out, N] · X_b[shift(kt, kh, kw) ..][N, C_in]
//! ```
//!
//! With the input laid out channels-last on its zero-padded grid (`[B, T Hp Wp, C_in]`, where
//! `Hp = H + 2`, `Wp = W + 2`) and the output gradient placed on the same grid (zeros in the
//! padding columns and rows), every shift is a plain offset into the rows, so each tap is a
//! view, not a copy: one channels-last copy of the input and one padded copy of the gradient
//! replace the im2col.
//!
//! For a 3x3x3 kernel, [`nine_view_weight_grad`] goes one step further: the three taps of a
//! kernel row `(kt, kh, ·)` read three neighbouring input vectors, which lie side by side in
//! memory, so one view with the row stride `C_in` and `3 C_in` columns (rows overlapping) holds
//! all three. That makes nine products of `[C_out, 3 C_in]` (one batched product, the offsets of
//! the nine views as its batch strides) instead of 27 of `[C_out, C_in]`, each reading the
//! output gradient once. The cost is the padded grid's extra positions, so it is used on grids
//! of 8x8 and more, where it measures faster than Burn's (docs/benchmarks.md, session 16).
//!
//! [`shifted_weight_grad`] is the general form, one product per tap, for any kernel and stride
//! (the input split into its stride phases). A 1x1x1 convolution, its one-tap case with no
//! padded grid, takes it at every size; strided convolutions measured no faster with it
//! (tested, not used). The forward, the input gradient and the bias gradient are the backend's
//! own: the same nine views as a forward convolution (nine products and a sum) measured slower
//! than Flex's im2col (session 16).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::FloatTensorOps;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Flex, TensorMetadata};
use burn::prelude::*;
use burn::tensor::Shape;
use burn::tensor::ops::{ConvOptions, PadMode};
use burn_flex::{FlexTensor, Layout};

use super::{FlexAd, flex_ad, uses_fused_backward};

/// How a convolution's weight gradient is computed on Flex with autodiff (module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightGrad {
    /// [`nine_view_weight_grad`]: nine products of `[C_out, 3 C_in]`.
    NineViews,
    /// [`shifted_weight_grad`]: one product of `[C_out, C_in]` per kernel tap.
    Taps,
}

/// Which weight gradient a convolution of `x` `[B, C_in, T, H, W]` with `weight`
/// `[C_out, C_in, kt, kh, kw]` and `options` takes: `None` for Burn's, `Some` on Flex with
/// autodiff with stride 1, no dilation or groups, and
/// - a 1x1x1 kernel without padding: [`WeightGrad::Taps`] (one product, no padded grid),
/// - a 3x3x3 kernel with padding `(0, 1, 1)`: [`WeightGrad::NineViews`] for up to 64 input
///   channels and at most twice as many output channels on grids of 8x8 and more (grouping three
///   taps widens the thin products), [`WeightGrad::Taps`] for wider inputs on grids of 16x16
///   and more, and Burn's elsewhere: on smaller grids the padded grid's extra positions (56% at
///   8x8) cost more than they save, and a convolution to many more channels on an 8x8 grid
///   (the sub-pixel decoder's) is faster with Burn's. The bounds are measured
///   (`profile_conv_grad`, docs/benchmarks.md, session 16).
pub fn weight_grad(x: &Tensor<5>, weight: &Tensor<5>, options: &ConvOptions<3>) -> Option<WeightGrad> {
    let [_, _, _, h, w] = x.dims();
    let [co, ci, kt, kh, kw] = weight.dims();
    let plain = uses_fused_backward(&x.device()) && options.stride == [1, 1, 1] && options.dilation == [1, 1, 1] && options.groups == 1;
    if !plain {
        return None;
    }
    if [kt, kh, kw] == [1, 1, 1] && options.padding == [(0, 0); 3] {
        return Some(WeightGrad::Taps);
    }
    if [kt, kh, kw] != [3, 3, 3] || options.padding != [(0, 0), (1, 1), (1, 1)] {
        return None;
    }
    if ci <= 64 && co <= 2 * ci && h * w >= 8 * 8 {
        Some(WeightGrad::NineViews)
    } else if ci > 64 && h * w >= 16 * 16 {
        Some(WeightGrad::Taps)
    } else {
        None
    }
}

/// `conv3d(x, weight, bias, options)`: `x` `[B, C_in, T, H, W]`, `weight`
/// `[C_out, C_in, kt, kh, kw]`, `bias` `[C_out]` -> `[B, C_out, T_out, H_out, W_out]`. The same
/// mathematics as `burn::tensor::module::conv3d`; the weight gradient is the one [`weight_grad`]
/// chooses.
pub fn conv3d(x: Tensor<5>, weight: Tensor<5>, bias: Tensor<1>, options: ConvOptions<3>) -> Tensor<5> {
    let Some(path) = weight_grad(&x, &weight, &options) else {
        return burn::tensor::module::conv3d(x, weight, Some(bias), options);
    };
    // `weight_grad` checked the device: these tensors live on the Flex autodiff backend.
    Tensor::from_primitive::<FlexAd>(conv3d_flex(flex_ad(x), flex_ad(weight), flex_ad(bias), options, path))
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

/// The weight gradient of a stride-1 3x3x3 convolution with no time padding and the space
/// padded by one, from its input `x` `[B, C_in, T, H, W]` and output gradient `g`
/// `[B, C_out, T - 2, H, W]`, both on Flex without autodiff: `[C_out, C_in, 3, 3, 3]`.
/// Nine overlapping views of `x` (module documentation), each multiplied by the output
/// gradient on the padded grid: `dW[kt, kh] = Σ_b G_b [C_out, M] · X_b[kt, kh] [M, 3 C_in]`.
pub fn nine_view_weight_grad(x: Tensor<5>, g: Tensor<5>) -> Tensor<5> {
    let [b, ci, tp, h, w] = x.dims();
    let [gb, co, to, gh, gw] = g.dims();
    assert!([gb, to + 2, gh, gw] == [b, tp, h, w], "nine_view_weight_grad: gradient {:?} for input {:?}", g.dims(), x.dims());
    let (hp, wp) = (h + 2, w + 2);
    let plane = hp * wp;
    let len = tp * plane;
    // Rows up to the last valid output position: the furthest read, (kt, kh, kw) = (2, 2, 2)
    // from it, is the last number of the sample's padded grid.
    let m = (to - 1) * plane + (h - 1) * wp + w;
    let xp = flex_prim(x.pad([(0, 0), (1, 1), (1, 1)], PadMode::Constant(0.0)).permute([0, 2, 3, 4, 1])).to_contiguous();
    let furthest = (b - 1) * len * ci + (2 * plane + 2 * wp + m - 1) * ci + 3 * ci;
    assert!(furthest <= xp.layout().num_elements(), "nine_view_weight_grad: view past the input");
    let rhs_layout =
        Layout::new(Shape::from(vec![b, 3, 3, m, 3 * ci]), vec![(len * ci) as isize, (plane * ci) as isize, (wp * ci) as isize, ci as isize, 1], 0);
    let rhs = FlexTensor::from_arc(xp.data_arc(), rhs_layout, xp.dtype());
    // The gradient on the padded grid, its first M positions: [B, 1, 1, C_out, M] (the batch
    // dimensions of size 1 broadcast against the nine views).
    let gp = flex_prim(g.pad([(0, 0), (0, 2), (0, 2)], PadMode::Constant(0.0))).to_contiguous();
    let lhs_layout = Layout::new(Shape::from(vec![b, 1, 1, co, m]), vec![(co * to * plane) as isize, 0, 0, (to * plane) as isize, 1], 0);
    let lhs = FlexTensor::from_arc(gp.data_arc(), lhs_layout, gp.dtype());
    // [B, kt, kh, C_out, (kw, C_in)] summed over the batch, to [C_out, C_in, kt, kh, kw].
    let dw = Tensor::<5>::from_primitive::<Flex>(<Flex as FloatTensorOps<Flex>>::float_matmul(lhs, rhs));
    dw.sum_dim(0).reshape([3, 3, co, 3, ci]).permute([2, 4, 0, 1, 3])
}

/// `t`'s primitive; `t` lives on Flex without autodiff.
fn flex_prim<const D: usize>(t: Tensor<D>) -> FlexTensor {
    t.try_into_primitive::<Flex>().expect("a tensor on Flex converts to its primitive")
}

/// The autodiff op on Flex: the forward, input and bias gradients are Flex's, the weight
/// gradient takes `path`.
fn conv3d_flex(
    x: FloatTensor<FlexAd>,
    weight: FloatTensor<FlexAd>,
    bias: FloatTensor<FlexAd>,
    options: ConvOptions<3>,
    path: WeightGrad,
) -> FloatTensor<FlexAd> {
    #[derive(Debug)]
    struct Conv3dBackward(WeightGrad);

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
                let (xt, gt) = (Tensor::from_primitive::<Flex>(x.clone()), Tensor::from_primitive::<Flex>(g.clone()));
                let dw = match self.0 {
                    WeightGrad::NineViews => nine_view_weight_grad(xt, gt),
                    WeightGrad::Taps => shifted_weight_grad(xt, gt, kernel, &options),
                };
                grads.register::<Flex>(node.id, flex_prim(dw));
            }
            if let Some(node) = node_x {
                grads.register::<Flex>(node.id, Flex::conv3d_x_backward(x, weight, g, options));
            }
        }
    }

    match Conv3dBackward(path).prepare::<NoCheckpointing>([x.node(), weight.node(), bias.node()]).compute_bound().stateful() {
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
    fn run(shifted: bool, [b, ci, co, t, h, w]: [usize; 6], k: usize, path: WeightGrad) -> [Vec<f32>; 4] {
        let dev = Device::flex().autodiff();
        let x = values([b, ci, t, h, w], 1.0, &dev).require_grad();
        let weight = values([co, ci, k, k, k], 2.0, &dev).require_grad();
        let bias = values([co], 3.0, &dev).require_grad();
        let options = ConvOptions::new([1, 1, 1], [0, k / 2, k / 2], [1, 1, 1], 1);
        assert_eq!(weight_grad(&x, &weight, &options), Some(path));
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
        // The nine views on a non-square 16x18 grid with more output than input channels, and on
        // 8x8 and 8x9 grids (the smallest that take them), one frame out; a 1x1x1 convolution on
        // a small grid; the taps for a wide input on 16x16.
        for (shape, k, path) in [
            ([2, 3, 5, 4, 16, 18], 3, WeightGrad::NineViews),
            ([1, 8, 4, 3, 8, 8], 3, WeightGrad::NineViews),
            ([3, 2, 4, 5, 8, 9], 3, WeightGrad::NineViews),
            ([2, 6, 4, 3, 5, 7], 1, WeightGrad::Taps),
            ([1, 72, 3, 3, 16, 16], 3, WeightGrad::Taps),
        ] {
            let ours = run(true, shape, k, path);
            let burn = run(false, shape, k, path);
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
    fn each_shape_takes_the_measured_weight_gradient() {
        let dev = Device::flex().autodiff();
        let path = |[b, ci, t, h, w]: [usize; 5], co: usize, k: usize, stride: usize, dev: &Device| {
            let x = Tensor::<5>::zeros([b, ci, t, h, w], dev);
            let weight = Tensor::<5>::zeros([co, ci, k, k, k], dev);
            weight_grad(&x, &weight, &ConvOptions::new([stride; 3], [0, k / 2, k / 2], [1, 1, 1], 1))
        };
        assert_eq!(path([1, 32, 4, 8, 8], 32, 3, 1, &dev), Some(WeightGrad::NineViews));
        assert_eq!(path([1, 32, 4, 16, 16], 24, 3, 1, &dev), Some(WeightGrad::NineViews));
        assert_eq!(path([1, 32, 4, 4, 8], 32, 3, 1, &dev), None, "grid below 8x8");
        assert_eq!(path([1, 32, 4, 8, 8], 256, 3, 1, &dev), None, "sub-pixel convolution on 8x8");
        assert_eq!(path([1, 128, 4, 16, 16], 128, 3, 1, &dev), Some(WeightGrad::Taps));
        assert_eq!(path([1, 128, 4, 8, 8], 128, 3, 1, &dev), None, "wide input below 16x16");
        assert_eq!(path([1, 32, 4, 4, 4], 128, 1, 1, &dev), Some(WeightGrad::Taps));
        assert_eq!(path([1, 32, 4, 16, 16], 32, 3, 2, &dev), None, "strided");
        assert_eq!(path([1, 32, 4, 16, 16], 32, 3, 1, &Device::flex()), None, "no autodiff");
    }
}

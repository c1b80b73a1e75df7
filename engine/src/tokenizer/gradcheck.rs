//! Finite-difference checks of the gradients the tokenizer's building blocks get from Burn's
//! autodiff on the CPU backend: input and weight gradients of strided and unstrided causal
//! convolutions (explicit edge/zero padding, then an unpadded `Conv3d`), per-frame group norm,
//! ResNet blocks, upsampling and space-to-depth.

use burn::module::Param;
use burn::nn::conv::{Conv3d, Conv3dConfig};
use burn::prelude::*;
use burn::tensor::Distribution;

use super::blocks::{CausalConv3d, ResBlock, depth_to_space, frame_norm, group_norm, space_to_depth, upsample};

fn vec(t: Tensor<5>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 values")
}

/// `loss(x) = sum(f(x) * r)` for a fixed random `r`; returns it as f64.
fn loss(f: &dyn Fn(Tensor<5>) -> Tensor<5>, x: Tensor<5>, r: &Tensor<5>) -> f64 {
    f64::from((f(x) * r.clone()).sum().into_scalar::<f32>())
}

/// Compares autodiff's gradient of `loss` with central differences at `probes` positions of `x`.
fn check_input_grad(f: &dyn Fn(Tensor<5>) -> Tensor<5>, shape: [usize; 5], eps: f32, tol: f64) {
    let dev = Device::flex().autodiff();
    dev.seed(7);
    let x = Tensor::<5>::random(shape, Distribution::Normal(0.0, 1.0), &dev);
    let out_shape = f(x.clone()).dims();
    let r = Tensor::<5>::random(out_shape, Distribution::Normal(0.0, 1.0), &dev);
    let xg = x.clone().require_grad();
    let grads = (f(xg.clone()) * r.clone()).sum().backward();
    let g = xg.grad(&grads).map(|g| g.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 values")).expect("a gradient");
    let flat = vec(x.clone());
    assert_eq!(g.len(), flat.len(), "no gradient reached the input");
    let n = flat.len();
    for probe in 0..24 {
        let i = (probe * 7919 + 13) % n;
        let at = |delta: f32| {
            let mut v = flat.clone();
            v[i] += delta;
            loss(f, Tensor::<5>::from_data(TensorData::new(v, shape), &dev), &r)
        };
        let fd = (at(eps) - at(-eps)) / (2.0 * f64::from(eps));
        let ad = f64::from(g[i]);
        assert!((fd - ad).abs() <= tol * (1.0 + fd.abs()), "input gradient at {i}: autodiff {ad}, finite differences {fd}");
    }
}

/// The same for the weight of a `Conv3d` held in `conv`, with `apply` running it.
fn check_weight_grad(conv: Conv3d, apply: &dyn Fn(&Conv3d, Tensor<5>) -> Tensor<5>, x_shape: [usize; 5]) {
    let dev = Device::flex().autodiff();
    dev.seed(11);
    let x = Tensor::<5>::random(x_shape, Distribution::Normal(0.0, 1.0), &dev);
    let r = Tensor::<5>::random(apply(&conv, x.clone()).dims(), Distribution::Normal(0.0, 1.0), &dev);
    let grads = (apply(&conv, x.clone()) * r.clone()).sum().backward();
    let g = conv.weight.val().grad(&grads).map(|g| g.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 values")).expect("a gradient");
    let w = conv.weight.val();
    let shape = w.dims();
    let flat = vec(w);
    assert_eq!(g.len(), flat.len(), "no gradient reached the weight");
    for probe in 0..24 {
        let i = (probe * 104_729 + 5) % flat.len();
        let at = |delta: f32| {
            let mut v = flat.clone();
            v[i] += delta;
            let mut c = conv.clone();
            c.weight = Param::from_tensor(Tensor::<5>::from_data(TensorData::new(v, shape), &dev));
            f64::from((apply(&c, x.clone()) * r.clone()).sum().into_scalar::<f32>())
        };
        let fd = (at(1e-2) - at(-1e-2)) / 2e-2;
        let ad = f64::from(g[i]);
        assert!((fd - ad).abs() <= 2e-2 * (1.0 + fd.abs()), "weight gradient at {i}: autodiff {ad}, finite differences {fd}");
    }
}

#[test]
fn strided_causal_conv_input_gradient() {
    let dev = Device::flex().autodiff();
    let conv = CausalConv3d::new(4, 6, 3, [2, 2, 2], &dev);
    check_input_grad(&|x| conv.forward(x), [2, 4, 4, 8, 8], 1e-2, 2e-2);
    let conv = CausalConv3d::new(4, 6, 3, [1, 2, 2], &dev);
    check_input_grad(&|x| conv.forward(x), [1, 4, 2, 8, 8], 1e-2, 2e-2);
}

#[test]
fn conv_weight_gradients() {
    let dev = Device::flex().autodiff();
    // Plain strided Conv3d, then the same with the causal padding in front.
    let plain = Conv3dConfig::new([4, 6], [3, 3, 3]).with_stride([2, 2, 2]).init(&dev);
    check_weight_grad(plain.clone(), &|c, x| c.forward(x), [2, 4, 5, 9, 9]);
    check_weight_grad(plain, &|c, x| c.forward(x.pad([(2, 0), (1, 1), (1, 1)], burn::tensor::ops::PadMode::Edge)), [2, 4, 4, 8, 8]);
    let unstrided = Conv3dConfig::new([6, 5], [3, 3, 3]).init(&dev);
    check_weight_grad(unstrided, &|c, x| c.forward(x), [2, 6, 4, 6, 6]);
}

#[test]
fn norm_block_and_resampling_gradients() {
    let dev = Device::flex().autodiff();
    let gn = group_norm(8, &dev);
    check_input_grad(&|x| frame_norm(&gn, x), [2, 8, 3, 4, 4], 1e-2, 3e-2);
    let block = ResBlock::new(8, 4, &dev);
    check_input_grad(&|x| block.forward(x), [1, 8, 3, 6, 6], 1e-2, 3e-2);
    check_input_grad(&|x| upsample(x, [2, 2, 2]), [1, 3, 2, 3, 3], 1e-2, 1e-2);
    check_input_grad(&|x| depth_to_space(space_to_depth(x, 2, 2).mul_scalar(3.0), 2, 2), [1, 3, 4, 4, 4], 1e-2, 1e-2);
}

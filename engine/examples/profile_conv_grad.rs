//! A convolution's weight gradient at the tokenizers' shapes: Burn's (through autodiff, the
//! forward included) against `ops::conv::shifted_weight_grad` and, for stride-1 3x3x3
//! convolutions, `ops::conv::nine_view_weight_grad` alone, with their differences.
//! `cargo run -p hitvideo-engine --example profile_conv_grad`
mod common;
use burn::prelude::*;
use burn::tensor::module::conv3d;
use burn::tensor::ops::ConvOptions;
use common::time;
use hitvideo_engine::ops::conv::{nine_view_weight_grad, shifted_weight_grad};
fn main() {
    let ad = Device::flex().autodiff();
    let dev = Device::flex();
    // (B, Ci, Co, T, H, stride, kernel)
    for &(b, ci, co, tt, h, s, k) in &[
        (8, 3, 32, 17, 32, 2, 3),
        (8, 32, 32, 9, 16, 2, 3),
        (8, 32, 32, 6, 8, 1, 3),
        (8, 32, 256, 6, 8, 1, 3),
        (8, 32, 24, 10, 16, 1, 3),
        (8, 24, 128, 9, 32, 2, 3),
        (8, 128, 128, 6, 16, 1, 3),
        (8, 128, 32, 4, 16, 1, 1),
        (8, 32, 128, 4, 16, 1, 1),
        (8, 32, 10, 4, 8, 1, 1),
        (8, 32, 32, 4, 8, 1, 1),
    ] {
        let x = Tensor::<5>::random([b, ci, tt, h, h], burn::tensor::Distribution::Default, &dev);
        let w = Tensor::<5>::random([co, ci, k, k, k], burn::tensor::Distribution::Default, &dev);
        let opts = ConvOptions::new([s, s, s], [0, k / 2, k / 2], [1, 1, 1], 1);
        let y = conv3d(x.clone(), w.clone(), None, opts.clone());
        let g = Tensor::<5>::random(y.dims(), burn::tensor::Distribution::Default, &dev);
        let [_, _, to, ho, wo] = y.dims();
        println!("B{b} {ci}->{co} kernel {k} {tt}x{h}x{h} stride {s} -> {to}x{ho}x{wo}");
        time("  forward", || {
            let _ = conv3d(x.clone(), w.clone(), None, opts.clone()).slice([0..1, 0..1, 0..1, 0..1, 0..1]).into_data();
        });
        let xa = Tensor::<5>::from_data(x.to_data(), &ad);
        let wa = Tensor::<5>::from_data(w.to_data(), &ad).require_grad();
        let ga = Tensor::<5>::from_data(g.to_data(), &ad);
        time("  fwd + w-grad (Burn)", || {
            let gr = (conv3d(xa.clone(), wa.clone(), None, opts.clone()) * ga.clone()).sum().backward();
            let _ = wa.grad(&gr).expect("weight grad").slice([0..1, 0..1, 0..1, 0..1, 0..1]).into_data();
        });
        let gr = (conv3d(xa.clone(), wa.clone(), None, opts.clone()) * ga.clone()).sum().backward();
        let reference = wa.grad(&gr).expect("weight grad");
        let ours = shifted_weight_grad(x.clone(), g.clone(), [k, k, k], &opts);
        let err = (reference.clone() - ours).abs().max().into_scalar::<f32>() / reference.clone().abs().max().into_scalar::<f32>();
        time(&format!("  w-grad, shifted (rel err {err:.1e})"), || {
            let _ = shifted_weight_grad(x.clone(), g.clone(), [k, k, k], &opts).slice([0..1, 0..1, 0..1, 0..1, 0..1]).into_data();
        });
        if k == 3 && s == 1 {
            let ours = nine_view_weight_grad(x.clone(), g.clone());
            let err = (reference.clone() - ours).abs().max().into_scalar::<f32>() / reference.abs().max().into_scalar::<f32>();
            time(&format!("  w-grad, nine views (rel err {err:.1e})"), || {
                let _ = nine_view_weight_grad(x.clone(), g.clone()).slice([0..1, 0..1, 0..1, 0..1, 0..1]).into_data();
            });
        }
    }
}

//! Checks Flex's Conv3d at the tokenizer's real shapes against a naive loop and against
//! running each batch item alone.
//! `cargo run -p hitvideo-engine --example check_conv`
use burn::nn::conv::Conv3dConfig;
use burn::prelude::*;

fn main() {
    let dev = Device::flex();
    for &(cin, cout, stride, shape) in &[
        (24usize, 16usize, 1usize, [8usize, 24usize, 10usize, 18usize, 18usize]),
        (16, 16, 1, [8, 16, 10, 18, 18]),
        (16, 32, 2, [8, 16, 9, 17, 17]),
        (32, 32, 1, [8, 32, 6, 10, 10]),
        (48, 96, 2, [8, 48, 9, 18, 18]),
    ] {
        let conv = Conv3dConfig::new([cin, cout], [3, 3, 3]).with_stride([stride; 3]).init(&dev);
        let x = Tensor::<5>::random(shape, burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
        let y = conv.forward(x.clone());
        let [b, _, to, ho, wo] = y.dims();
        let yv = y.clone().into_data().try_to_vec::<f32>().expect("check");
        let xv = x.clone().into_data().try_to_vec::<f32>().expect("check");
        let wv = conv.weight.val().into_data().try_to_vec::<f32>().expect("check");
        let bv = conv.bias.as_ref().map(|b| b.val().into_data().try_to_vec::<f32>().expect("check")).expect("check");
        let [_, _, t, h, w] = shape;
        let mut maxerr = 0f32;
        for probe in 0..200usize {
            let (bi, co, ot, oh, ow) = (probe % b, (probe * 7) % cout, (probe * 3) % to, (probe * 5) % ho, (probe * 11) % wo);
            let mut s = bv[co];
            for ci in 0..cin {
                for kt in 0..3 {
                    for kh in 0..3 {
                        for kw in 0..3 {
                            let (it, ih, iw) = (ot * stride + kt, oh * stride + kh, ow * stride + kw);
                            s += xv[(((bi * cin + ci) * t + it) * h + ih) * w + iw] * wv[(((co * cin + ci) * 3 + kt) * 3 + kh) * 3 + kw];
                        }
                    }
                }
            }
            let got = yv[(((bi * cout + co) * to + ot) * ho + oh) * wo + ow];
            maxerr = maxerr.max((got - s).abs());
        }
        let mut batch_err = 0f32;
        for bi in 0..b {
            let yi = conv.forward(x.clone().slice(s![bi..bi + 1])).into_data().try_to_vec::<f32>().expect("check");
            let n = yi.len();
            for (a, c) in yi.iter().zip(&yv[bi * n..(bi + 1) * n]) {
                batch_err = batch_err.max((a - c).abs());
            }
        }
        // Weight gradient of sum(y * r) against the naive correlation.
        let ad = Device::flex().autodiff();
        let mut conv_a = Conv3dConfig::new([cin, cout], [3, 3, 3]).with_stride([stride; 3]).init(&ad);
        conv_a.weight = burn::module::Param::from_tensor(Tensor::<5>::from_data(conv.weight.val().into_data(), &ad));
        let xa = Tensor::<5>::from_data(x.clone().into_data(), &ad);
        let r = Tensor::<5>::random([b, cout, to, ho, wo], burn::tensor::Distribution::Normal(0.0, 1.0), &ad);
        let rv = r.clone().into_data().try_to_vec::<f32>().expect("check");
        let grads = (conv_a.forward(xa) * r).sum().backward();
        let g = conv_a.weight.val().grad(&grads).expect("check").into_data().try_to_vec::<f32>().expect("check");
        let mut gerr = 0f32;
        let mut gmax = 0f32;
        for probe in 0..40usize {
            let (co, ci, kt, kh, kw) = ((probe * 7) % cout, (probe * 5) % cin, probe % 3, (probe / 3) % 3, (probe / 9) % 3);
            let mut s = 0f32;
            for bi in 0..b {
                for ot in 0..to {
                    for oh in 0..ho {
                        for ow in 0..wo {
                            let (it, ih, iw) = (ot * stride + kt, oh * stride + kh, ow * stride + kw);
                            s += rv[(((bi * cout + co) * to + ot) * ho + oh) * wo + ow] * xv[(((bi * cin + ci) * t + it) * h + ih) * w + iw];
                        }
                    }
                }
            }
            let got = g[(((co * cin + ci) * 3 + kt) * 3 + kh) * 3 + kw];
            gerr = gerr.max((got - s).abs());
            gmax = gmax.max(s.abs());
        }
        println!("  weight grad max err {gerr:.2e} (max |grad| {gmax:.1})");
        // Input gradient of sum(y * r) against the naive transposed correlation.
        let xa = Tensor::<5>::from_data(x.clone().into_data(), &ad).require_grad();
        let r = Tensor::<5>::from_data(TensorData::new(rv.clone(), [b, cout, to, ho, wo]), &ad);
        let grads = (conv_a.forward(xa.clone()) * r).sum().backward();
        let gx = xa.grad(&grads).expect("check").into_data().try_to_vec::<f32>().expect("check");
        let (mut xerr, mut xmax) = (0f32, 0f32);
        for probe in 0..200usize {
            let (bi, ci, it, ih, iw) = (probe % b, (probe * 7) % cin, (probe * 3) % t, (probe * 5) % h, (probe * 11) % w);
            let mut s = 0f32;
            for co in 0..cout {
                for kt in 0..3 {
                    for kh in 0..3 {
                        for kw in 0..3 {
                            let (nt, nh, nw) = (it as isize - kt as isize, ih as isize - kh as isize, iw as isize - kw as isize);
                            if nt < 0
                                || nh < 0
                                || nw < 0
                                || !(nt as usize).is_multiple_of(stride)
                                || !(nh as usize).is_multiple_of(stride)
                                || !(nw as usize).is_multiple_of(stride)
                            {
                                continue;
                            }
                            let (ot, oh, ow) = (nt as usize / stride, nh as usize / stride, nw as usize / stride);
                            if ot >= to || oh >= ho || ow >= wo {
                                continue;
                            }
                            s += rv[(((bi * cout + co) * to + ot) * ho + oh) * wo + ow] * wv[(((co * cin + ci) * 3 + kt) * 3 + kh) * 3 + kw];
                        }
                    }
                }
            }
            xerr = xerr.max((gx[(((bi * cin + ci) * t + it) * h + ih) * w + iw] - s).abs());
            xmax = xmax.max(s.abs());
        }
        println!("  input grad max err {xerr:.2e} (max |grad| {xmax:.1})");
        println!("conv {cin}->{cout} stride {stride} {shape:?}: naive max err {maxerr:.2e}, per-item max err {batch_err:.2e}");
    }
}

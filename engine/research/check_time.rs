//! Checks that the tokenizer keeps time: space-to-depth layout, temporal upsampling, a causal
//! convolution's response to an impulse, and which latent / decoded frames change when one
//! input frame (or one latent frame) changes.
//! `cargo run -p hitvideo-engine --example check_time`
use burn::prelude::*;
use hitvideo_engine::tokenizer::TokenizerConfig;
use hitvideo_engine::tokenizer::blocks::{CausalConv3d, space_to_depth, upsample};

fn main() {
    let dev = Device::flex();
    let (t, h, w) = (4usize, 4usize, 4usize);
    let v: Vec<f32> = (0..t * h * w)
        .map(|i| {
            let (tt, hh, ww) = (i / (h * w), (i / w) % h, i % w);
            (tt * 100 + hh * 10 + ww) as f32
        })
        .collect();
    let x = Tensor::<5>::from_data(TensorData::new(v, [1, 1, t, h, w]), &dev);
    let y = space_to_depth(x.clone(), 2, 2);
    println!("s2d dims {:?}", y.dims());
    let yv = y.into_data().try_to_vec::<f32>().expect("check");
    for c in 0..8 {
        println!("channel {c}: {:?}", &yv[c * 8..c * 8 + 8]);
    }
    let u = upsample(Tensor::<5>::from_data(TensorData::new(vec![1f32, 2.0], [1, 1, 2, 1, 1]), &dev), [2, 1, 1]);
    println!("upsample t: {:?}", u.into_data().try_to_vec::<f32>().expect("check"));
    let cc = CausalConv3d::new(1, 1, 3, [1, 1, 1], &dev);
    let imp: Vec<f32> = (0..4 * 3 * 3).map(|i| if i / 9 == 2 && i % 9 == 4 { 1.0 } else { 0.0 }).collect();
    let r = cc.forward(Tensor::<5>::from_data(TensorData::new(imp, [1, 1, 4, 3, 3]), &dev));
    let rv = r.clone().into_data().try_to_vec::<f32>().expect("check");
    println!(
        "causal conv impulse at t=2, center; output dims {:?}; per-frame sums {:?}",
        r.dims(),
        (0..4).map(|f| rv[f * 9..f * 9 + 9].iter().map(|a| a.abs()).sum::<f32>()).collect::<Vec<_>>()
    );
    for name in ["tiny-single", "tiny"] {
        let cfg = TokenizerConfig::preset(name).expect("check");
        let m = cfg.init(&dev);
        let x = Tensor::<5>::random([1, 3, 16, 32, 32], burn::tensor::Distribution::Default, &dev);
        let z = m.code_logits(x);
        let mut z2 = z.clone();
        let last = z2.len() - 1;
        let [_, c, t, h, w] = z2[last].dims();
        let bump = Tensor::<5>::ones([1, c, 1, h, w], &dev);
        z2[last] = z2[last].clone().slice_assign([0..1, 0..c, t - 1..t, 0..h, 0..w], bump);
        let rec = (m.decode(&z2) - m.decode(&z)).abs().sum_dim(1).sum_dim(3).sum_dim(4).into_data().try_to_vec::<f32>().expect("check");
        println!("{name}: set the last latent frame of the finest layer to 1: decoded change per frame {rec:?}");
    }
    let cfg = TokenizerConfig::preset("tiny").expect("check");
    let m = cfg.init(&dev);
    let x = Tensor::<5>::random([1, 3, 16, 32, 32], burn::tensor::Distribution::Default, &dev);
    let base = m.code_logits(x.clone());
    for f in [0usize, 7, 15] {
        let mut xv = x.clone().into_data().try_to_vec::<f32>().expect("check");
        for c in 0..3 {
            for i in 0..32 * 32 {
                xv[(c * 16 + f) * 1024 + i] += 0.5;
            }
        }
        let x2 = Tensor::<5>::from_data(TensorData::new(xv, [1, 3, 16, 32, 32]), &dev);
        let z2 = m.code_logits(x2);
        let fin = (z2[3].clone() - base[3].clone()).abs().sum_dim(1).sum_dim(3).sum_dim(4).into_data().try_to_vec::<f32>().expect("check");
        let rec = (m.decode(&z2) - m.decode(&base)).abs().sum_dim(1).sum_dim(3).sum_dim(4).into_data().try_to_vec::<f32>().expect("check");
        println!("perturb frame {f}: finest latent change per latent frame {fin:?}\n   decoded change per frame {rec:?}");
    }
}

//! Times the pieces of a `tiny` tokenizer training step on the CPU (forward and backward).
//! `cargo run -p hitvideo-engine --example profile_tokenizer`

use std::time::Instant;

use burn::nn::conv::Conv3dConfig;
use burn::prelude::*;
use hitvideo_engine::tokenizer::TokenizerConfig;
use hitvideo_engine::tokenizer::blocks::{CausalConv3d, ResBlock, frame_norm, group_norm};

fn time<F: FnMut() -> f32>(name: &str, mut f: F) {
    f();
    let t = Instant::now();
    let n = 3;
    let mut s = 0.0;
    for _ in 0..n {
        s += f();
    }
    println!("{name:<48} {:>8.1} ms  ({s:.3})", t.elapsed().as_secs_f64() * 1000.0 / n as f64);
}

fn main() {
    let dev = Device::flex().autodiff();
    let shape = [4, 48, 8, 32, 32];
    let x = || Tensor::<5>::random(shape, burn::tensor::Distribution::Default, &dev).require_grad();
    let conv = Conv3dConfig::new([48, 48], [3, 3, 3]).init(&dev);
    time("conv3d 48->48 k3 valid fwd", || conv.forward(x()).mean().into_scalar::<f32>());
    time("conv3d 48->48 k3 valid fwd+bwd", || {
        let y = conv.forward(x()).mean();
        let _g = y.backward();
        0.0
    });
    let cc = CausalConv3d::new(48, 48, 3, [1, 1, 1], &dev);
    time("causal conv (pad + conv) fwd+bwd", || {
        let _g = cc.forward(x()).mean().backward();
        0.0
    });
    let gn = group_norm(48, &dev);
    time("frame group norm fwd+bwd", || {
        let _g = frame_norm(&gn, x()).mean().backward();
        0.0
    });
    time("pad only fwd+bwd", || {
        let _g = x().pad([(2, 0), (1, 1), (1, 1)], burn::tensor::ops::PadMode::Edge).mean().backward();
        0.0
    });
    let rb = ResBlock::new(48, 48, &dev);
    time("res block fwd+bwd", || {
        let _g = rb.forward(x()).mean().backward();
        0.0
    });
    let cfg = TokenizerConfig::preset("tiny").unwrap_or_else(|e| panic!("{e}"));
    let model = cfg.init(&dev);
    let v = || Tensor::<5>::random([4, 3, 16, 64, 64], burn::tensor::Distribution::Default, &dev);
    time("tiny encode fwd", || model.encode(v(), 1.0).layers[0].commitment.clone().into_scalar::<f32>());
    time("tiny encode+decode fwd+bwd", || {
        let e = model.encode(v(), 1.0);
        let codes: Vec<_> = e.layers.iter().map(|o| o.codes.clone()).collect();
        let _g = model.decode(&codes).mean().backward();
        0.0
    });
}

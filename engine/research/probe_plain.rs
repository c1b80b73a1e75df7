//! A plain 2D conv autoencoder on the same frames as the tokenizer probe, as a control: if it
//! learns shapes where the tokenizer does not, the tokenizer's architecture is at fault.
//! `cargo run -p hitvideo-engine --example probe_plain -- <steps> <batch> <lr> [gn]`
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, PaddingConfig2d};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::silu;
use hitvideo_engine::train::data::ClipSource;

/// The same network with the tokenizer's causal 3D convolutions and upsampling.
#[derive(Module, Debug)]
struct Plain3d {
    convs: Vec<hitvideo_engine::tokenizer::blocks::CausalConv3d>,
    norms: Vec<GroupNorm>,
    /// RES=1: the tokenizer's ResNet blocks after the first and before the last conv.
    res: Vec<hitvideo_engine::tokenizer::blocks::ResBlock>,
}

impl Plain3d {
    fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        use hitvideo_engine::tokenizer::blocks::{frame_norm, upsample};
        let act = |i: usize, h: Tensor<5>| silu(frame_norm(&self.norms[i], h));
        let mut h = act(0, self.convs[0].forward(x));
        if let Some(r) = self.res.first() {
            h = r.forward(h);
        }
        let h = act(1, self.convs[1].forward(h));
        let z = self.convs[2].forward(h).tanh();
        let h = act(2, self.convs[3].forward(z));
        let mut h = act(3, self.convs[4].forward(upsample(h, [2, 2, 2])));
        if let Some(r) = self.res.get(1) {
            h = r.forward(h);
        }
        self.convs[5].forward(upsample(h, [if std::env::var("T4").is_ok() { 2 } else { 1 }, 2, 2]))
    }
}

#[derive(Module, Debug)]
struct Plain {
    convs: Vec<Conv2d>,
    norms: Vec<GroupNorm>,
}

fn conv(i: usize, o: usize, k: usize, s: usize, d: &Device) -> Conv2d {
    Conv2dConfig::new([i, o], [k, k]).with_stride([s, s]).with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2)).init(d)
}

impl Plain {
    fn forward(&self, x: Tensor<4>, gn: bool) -> Tensor<4> {
        let act = |i: usize, h: Tensor<4>| silu(if gn { self.norms[i].forward(h) } else { h });
        let h = act(0, self.convs[0].forward(x));
        let h = act(1, self.convs[1].forward(h));
        let z = self.convs[2].forward(h).tanh();
        let h = act(2, self.convs[3].forward(z));
        let [b, c, hh, ww] = h.dims();
        let up = |h: Tensor<4>, c: usize, hh: usize, ww: usize| {
            h.unsqueeze_dim::<5>(3).repeat_dim(3, 2).reshape([b, c, hh * 2, ww]).unsqueeze_dim::<5>(4).repeat_dim(4, 2).reshape([b, c, hh * 2, ww * 2])
        };
        let h = act(3, self.convs[4].forward(up(h, c, hh, ww)));
        self.convs[5].forward(up(h, c, hh * 2, ww * 2))
    }
}

fn frames(x: Tensor<5>) -> Tensor<4> {
    let [b, c, t, h, w] = x.dims();
    x.swap_dims(1, 2).reshape([b * t, c, h, w])
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let steps: usize = a.get(1).and_then(|s| s.parse().ok()).unwrap_or(150);
    let batch: usize = a.get(2).and_then(|s| s.parse().ok()).unwrap_or(8);
    let lr: f64 = a.get(3).and_then(|s| s.parse().ok()).unwrap_or(1e-3);
    let gn = a.get(4).is_some_and(|s| s == "gn");
    if let Some(preset) = a.get(4).and_then(|s| s.strip_prefix("tok:")) {
        return main_tok(steps, batch, lr, preset);
    }
    if a.get(4).is_some_and(|s| s == "3d") {
        return main3d(steps, batch, lr);
    }
    let data = ClipSource::synthetic(4000, 0, 16, 32, 8.0);
    let dev = Device::flex().autodiff();
    dev.seed(0);
    let c = 32;
    let mut m = Plain {
        convs: vec![
            conv(3, c, 3, 2, &dev),
            conv(c, c, 3, 2, &dev),
            conv(c, 8, 1, 1, &dev),
            conv(8, c, 1, 1, &dev),
            conv(c, c, 3, 1, &dev),
            conv(c, 3, 3, 1, &dev),
        ],
        norms: (0..4).map(|_| GroupNormConfig::new(8, c).init(&dev)).collect(),
    };
    let mut opt = AdamWConfig::new().with_beta_2(0.99).init();
    for step in 0..steps {
        let x = frames(data.train_batch(step, batch, 0, &dev).expect("synthetic clips render"));
        let l1 = (m.forward(x.clone(), gn) - x).abs().mean();
        if (step + 1) % 25 == 0 {
            println!("step {} l1 {:.4}", step + 1, l1.clone().into_scalar::<f32>());
        }
        let g = GradientsParams::from_grads(l1.backward(), &m);
        m = opt.step(lr, m, g);
    }
    let x = frames(data.val_batch(0..8, &dev).expect("synthetic clips render"));
    let r = m.forward(x.clone(), gn).clamp(-1.0, 1.0);
    let mse = (r - x).powf_scalar(2.0).mean().into_scalar::<f32>() / 4.0;
    println!("val PSNR {:.2} dB", -10.0 * mse.log10());
}

fn main3d(steps: usize, batch: usize, lr: f64) {
    use hitvideo_engine::tokenizer::blocks::CausalConv3d;
    let data = ClipSource::synthetic(4000, 0, 16, 32, 8.0);
    let dev = Device::flex().autodiff();
    dev.seed(0);
    let c = 32;
    let lat = std::env::var("LAT").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    let mut m = Plain3d {
        convs: vec![
            CausalConv3d::new(3, c, 3, [if std::env::var("T4").is_ok() { 2 } else { 1 }, 2, 2], &dev),
            CausalConv3d::new(c, c, 3, [2, 2, 2], &dev),
            CausalConv3d::new(c, lat, 1, [1, 1, 1], &dev),
            CausalConv3d::new(lat, c, 1, [1, 1, 1], &dev),
            CausalConv3d::new(c, c, 3, [1, 1, 1], &dev),
            CausalConv3d::new(c, 3, 3, [1, 1, 1], &dev),
        ],
        norms: (0..4).map(|_| GroupNormConfig::new(8, c).init(&dev)).collect(),
        res: if std::env::var("RES").is_ok() { (0..2).map(|_| hitvideo_engine::tokenizer::blocks::ResBlock::new(c, c, &dev)).collect() } else { vec![] },
    };
    let mut opt = AdamWConfig::new().with_beta_2(0.99).init();
    for step in 0..steps {
        let x = data.train_batch(step, batch, 0, &dev).expect("synthetic clips render");
        let l1 = (m.forward(x.clone()) - x).abs().mean();
        if (step + 1) % 25 == 0 {
            println!("step {} l1 {:.4}", step + 1, l1.clone().into_scalar::<f32>());
        }
        let g = GradientsParams::from_grads(l1.backward(), &m);
        m = opt.step(lr, m, g);
    }
    let x = data.val_batch(0..8, &dev).expect("synthetic clips render");
    let r = m.forward(x.clone()).clamp(-1.0, 1.0);
    let mse = (r - x).powf_scalar(2.0).mean().into_scalar::<f32>() / 4.0;
    println!("val PSNR {:.2} dB", -10.0 * mse.log10());
}

/// The tokenizer network (continuous codes: tanh of the pre-quantization projections) in the
/// same loop as the controls.
fn main_tok(steps: usize, batch: usize, lr: f64, preset: &str) {
    let mut cfg = hitvideo_engine::tokenizer::TokenizerConfig::preset(preset.trim_end_matches("-8x8")).unwrap_or_else(|e| panic!("{e}"));
    if preset.ends_with("-8x8") {
        cfg.layers = vec![hitvideo_engine::tokenizer::config::LayerConfig::new(4, 8, 8, 10)];
    }
    if let Ok(b) = std::env::var("BLOCKS") {
        cfg.blocks_per_stage = b.parse().unwrap_or(1);
    }
    let data = ClipSource::synthetic(4000, 0, 16, 32, 8.0);
    let dev = Device::flex().autodiff();
    dev.seed(0);
    let mut m = cfg.init(&dev);
    let mut opt = AdamWConfig::new().with_beta_2(0.99).init();
    let run = |m: &hitvideo_engine::tokenizer::Tokenizer, x: Tensor<5>| {
        let codes: Vec<Tensor<5>> = m.code_logits(x).into_iter().map(|z| z.tanh()).collect();
        m.decode(&codes)
    };
    for step in 0..steps {
        let x = data.train_batch(step, batch, 0, &dev).expect("synthetic clips render");
        let l1 = (run(&m, x.clone()) - x).abs().mean();
        if (step + 1) % 25 == 0 {
            println!("step {} l1 {:.4}", step + 1, l1.clone().into_scalar::<f32>());
        }
        let g = GradientsParams::from_grads(l1.backward(), &m);
        m = opt.step(lr, m, g);
    }
    let x = data.val_batch(0..8, &dev).expect("synthetic clips render");
    let r = run(&m, x.clone()).clamp(-1.0, 1.0);
    let mse = (r - x).powf_scalar(2.0).mean().into_scalar::<f32>() / 4.0;
    println!("val PSNR {:.2} dB", -10.0 * mse.log10());
}

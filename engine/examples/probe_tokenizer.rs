//! Diagnoses tokenizer learning speed: trains a preset for a few steps with the quantizer on
//! (`lfq`) or bypassed (`continuous`, codes = tanh of the pre-quantization projection), L1 only,
//! and prints the training L1 and the validation PSNR.
//! `cargo run -p hitvideo-engine --example probe_tokenizer -- continuous 200 8 2e-3 tiny`

use std::time::Instant;

use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use hitvideo_engine::tokenizer::TokenizerConfig;
use hitvideo_engine::train::data::ClipSource;

/// The decoder's input: LFQ codes, or `tanh` of the logits for `continuous`.
fn codes_of(mode: &str, logits: Vec<Tensor<5>>) -> Vec<Tensor<5>> {
    match mode {
        "continuous" => logits.into_iter().map(|z| z.tanh()).collect(),
        _ => logits.into_iter().map(|z| hitvideo_engine::tokenizer::lfq::quantize(z, 1.0).codes).collect(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).cloned().unwrap_or_else(|| "lfq".into());
    let steps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200);
    let batch: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(8);
    let lr: f64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(2e-3);
    let preset = args.get(5).cloned().unwrap_or_else(|| "tiny".into());
    let overfit = std::env::var("OVERFIT").is_ok();
    let mut cfg = TokenizerConfig::preset(&preset).unwrap_or_else(|e| panic!("{e}"));
    if let Ok(ch) = std::env::var("CH") {
        cfg.channels = ch.split(',').filter_map(|c| c.parse().ok()).collect();
    }
    let l2 = std::env::var("L2").is_ok();
    let data = ClipSource::synthetic(4000, 0, cfg.frames, cfg.height, cfg.fps);
    let dev = Device::flex().autodiff();
    dev.seed(0);
    let mut model = cfg.init(&dev);
    let mut opt = AdamWConfig::new().with_beta_2(0.99).with_weight_decay(1e-4).init();
    let t0 = Instant::now();
    let mut avg = 0f32;
    for step in 0..steps {
        let x = data.train_batch(if overfit { 0 } else { step }, batch, 0, &dev);
        if step == 0 {
            let [b, ..] = x.dims();
            let flat = x.clone().reshape([b as i32, -1]);
            let base = (flat.clone() - flat.clone().mean_dim(1)).abs().mean().into_scalar::<f32>();
            println!("L1 of predicting each clip's mean: {base:.4}");
        }
        let logits = model.code_logits(x.clone());
        let codes = codes_of(&mode, logits);
        let err = model.decode(&codes) - x;
        let l1 = if l2 { err.clone().abs().mean() + err.powf_scalar(2.0).mean() } else { err.abs().mean() };
        let v = l1.clone().into_scalar::<f32>();
        avg += v / 10.0;
        let warm = ((step + 1) as f64 / 20.0).min(1.0);
        let grads = GradientsParams::from_grads(l1.backward(), &model);
        model = opt.step(lr * warm, model, grads);
        if (step + 1) % 10 == 0 {
            println!("step {:4} mean l1 of last 10 {avg:.4}", step + 1);
            avg = 0.0;
        }
        if step + 1 == steps {
            println!("step {step:4} l1 {v:.4}  {:.2} s/step", t0.elapsed().as_secs_f64() / (step + 1) as f64);
        }
    }
    // A strip of validation frames: inputs on top, reconstructions below.
    let m = model.valid();
    let x = if overfit { data.train_batch(0, batch, 0, &m.devices()[0]).slice([0..4]) } else { data.val_batch(0..4, &m.devices()[0]) };
    let logits = m.code_logits(x.clone());
    let codes = codes_of(&mode, logits);
    let r = m.decode(&codes).clamp(-1.0, 1.0);
    let [b, _, t, h, w] = x.dims();
    let to_vec = |v: Tensor<5>| v.into_data().try_to_vec::<f32>().unwrap_or_default();
    let (xv, rv) = (to_vec(x), to_vec(r));
    let frames = [0, t / 3, 2 * t / 3, t - 1];
    let mut img = image::RgbImage::new((b * frames.len() * w) as u32, (2 * h) as u32);
    for (row, v) in [&xv, &rv].into_iter().enumerate() {
        for bi in 0..b { for (fi, &f) in frames.iter().enumerate() { for y in 0..h { for xx in 0..w {
            let px = |c: usize| ((v[(((bi * 3 + c) * t + f) * h + y) * w + xx] + 1.0) * 127.5) as u8;
            img.put_pixel(((bi * frames.len() + fi) * w + xx) as u32, (row * h + y) as u32, image::Rgb([px(0), px(1), px(2)]));
        }}}}
    }
    let img = image::imageops::resize(&img, img.width() * 4, img.height() * 4, image::imageops::FilterType::Nearest);
    let _ = img.save("/tmp/probe_recon.png");
    let val = hitvideo_engine::train::tokenizer::validate(&model.valid(), &cfg, &data, 32, 1.0);
    println!("val {}", val);
}

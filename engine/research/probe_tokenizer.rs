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
    codes_soft(mode, logits, -1.0)
}

/// `anneal`: `alpha * tanh(z) + (1 - alpha) * sign(z)` (straight-through), `alpha` falling from
/// 1 to 0 over the first half of the run; the other modes ignore `alpha`.
fn codes_soft(mode: &str, logits: Vec<Tensor<5>>, alpha: f32) -> Vec<Tensor<5>> {
    match mode {
        "continuous" => logits.into_iter().map(|z| z.tanh()).collect(),
        // `mix`: continuous codes on the steps where the caller passes alpha = 1, sign otherwise.
        "mix" if alpha >= 1.0 => logits.into_iter().map(|z| z.tanh()).collect(),
        "anneal" if alpha > 0.0 => logits
            .into_iter()
            .map(|z| z.clone().tanh().mul_scalar(alpha) + hitvideo_engine::tokenizer::lfq::quantize(z, 1.0).codes.mul_scalar(1.0 - alpha))
            .collect(),
        // `stoch`: stochastic binarization while training (+1 with probability (1 + tanh z) / 2,
        // gradients through tanh); `alpha < 0` marks evaluation, which takes the sign.
        "stoch" if alpha >= 0.0 => logits
            .into_iter()
            .map(|z| {
                let m = z.tanh();
                let u = Tensor::<5>::random(m.shape(), burn::tensor::Distribution::Uniform(-1.0, 1.0), &m.device());
                let b = m.clone().greater(u).float().mul_scalar(2.0).sub_scalar(1.0);
                m.clone() + (b - m).detach()
            })
            .collect(),
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
    if let Ok(p) = std::env::var("PATCH") {
        let v: Vec<usize> = p.split(',').filter_map(|c| c.parse().ok()).collect();
        cfg.patch = [v[0], v[1]];
    }
    cfg.validate().unwrap_or_else(|e| panic!("{e}"));
    let l2 = std::env::var("L2").is_ok();
    let data = ClipSource::synthetic(4000, 0, cfg.frames, cfg.height, cfg.fps);
    let dev = Device::flex().autodiff();
    dev.seed(0);
    // CKPT=<run or step folder>: start from a trained tokenizer (steps 0: only look at it).
    let mut model = match std::env::var("CKPT") {
        Ok(path) => hitvideo_engine::tokenizer::load_tokenizer(std::path::Path::new(&path), None, &dev).unwrap_or_else(|e| panic!("{e}")).0,
        Err(_) => cfg.init(&dev),
    };
    let mut opt = AdamWConfig::new().with_beta_2(0.99).with_weight_decay(1e-4).init();
    let t0 = Instant::now();
    let mut avg = 0f32;
    for step in 0..steps {
        let x = data.train_batch(if overfit { 0 } else { step }, batch, 0, &dev).expect("synthetic clips render");
        if step == 0 {
            let [b, ..] = x.dims();
            let flat = x.clone().reshape([b as i32, -1]);
            let base = (flat.clone() - flat.clone().mean_dim(1)).abs().mean().into_scalar::<f32>();
            println!("L1 of predicting each clip's mean: {base:.4}");
        }
        let logits = model.logits_of_latents(model.latents(x.clone()), true);
        let alpha = match mode.as_str() {
            "mix" => f32::from(u8::from(step % 2 == 0)),
            // ANNEAL_FRAC: the share of the run over which alpha falls to 0 (default one half).
            _ => {
                let frac: f32 = std::env::var("ANNEAL_FRAC").ok().and_then(|v| v.parse().ok()).unwrap_or(0.5);
                (1.0 - step as f32 / (steps as f32 * frac).max(1.0)).max(0.0)
            }
        };
        let commit = if mode == "mix" {
            let mut c = Tensor::<1>::zeros([1], &dev);
            for z in &logits {
                let q = z.clone().sign().detach();
                c = c + (z.clone() - q).powf_scalar(2.0).mean().mul_scalar(0.25);
            }
            Some(c)
        } else {
            None
        };
        let codes = codes_soft(&mode, logits, alpha);
        let err = model.decode(&codes) - x;
        let l1 = if l2 { err.clone().abs().mean() + err.powf_scalar(2.0).mean() } else { err.abs().mean() };
        let l1 = match commit {
            Some(c) => l1 + c,
            None => l1,
        };
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
    let x = if overfit {
        data.train_batch(0, batch, 0, &m.devices()[0]).expect("synthetic clips render").slice(s![0..4])
    } else {
        data.val_batch(0..4, &m.devices()[0]).expect("synthetic clips render")
    };
    let logits = m.code_logits(x.clone());
    // How much each layer's codes change from one latent frame to the next (moving clips should
    // change; a time-averaged reconstruction with unchanging codes points at the encoder).
    for (j, z) in logits.iter().enumerate() {
        let [b, c, t, h, w] = z.dims();
        if t < 2 {
            continue;
        }
        let d = (z.clone().slice([0..b, 0..c, 1..t, 0..h, 0..w]) - z.clone().slice([0..b, 0..c, 0..t - 1, 0..h, 0..w])).abs().mean().into_scalar::<f32>();
        let l = m.latents(x.clone())[j].clone();
        let [_, lc, ..] = l.dims();
        let ld = (l.clone().slice([0..b, 0..lc, 1..t, 0..h, 0..w]) - l.clone().slice([0..b, 0..lc, 0..t - 1, 0..h, 0..w])).abs().mean().into_scalar::<f32>();
        println!(
            "layer {j}: mean |code change| between latent frames {d:.4} (mean |code| {:.4}); latent {ld:.4} (mean |latent| {:.4})",
            z.clone().abs().mean().into_scalar::<f32>(),
            l.abs().mean().into_scalar::<f32>()
        );
    }
    let codes = codes_of(&mode, logits);
    if std::env::var("LOCAL").is_ok() {
        // Locality: an 8x8 white patch in every frame of clip 0 (pixels 8..16), and the finest
        // codes of one latent cell (the patch's, h = w = 2) flipped.
        let [b, _, t, h, w] = x.dims();
        let patch = Tensor::<5>::ones([1, 3, t, 8, 8], &x.device());
        let x2 = x.clone().slice_assign([0..1, 0..3, 0..t, 8..16, 8..16], patch);
        let z1 = m.code_logits(x.clone());
        let z2 = m.code_logits(x2);
        let fine = z1.len() - 1;
        let dz = (z2[fine].clone() - z1[fine].clone()).abs().slice(s![0..1]).mean_dim(1).mean_dim(2);
        println!(
            "finest-code change per latent cell (mean over bits and frames) for a patch at cells (2..4, 2..4):\n{:?}",
            dz.into_data()
                .try_to_vec::<f32>()
                .unwrap_or_default()
                .chunks(8)
                .map(|r| r.iter().map(|v| format!("{v:.2}")).collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
        );
        let mut flipped = codes.clone();
        let [_, c, lt, _, _] = flipped[fine].dims();
        let cell = flipped[fine].clone().slice([0..1, 0..c, 0..lt, 2..3, 2..3]).neg();
        flipped[fine] = flipped[fine].clone().slice_assign([0..1, 0..c, 0..lt, 2..3, 2..3], cell);
        let dx = (m.decode(&flipped) - m.decode(&codes)).abs().slice(s![0..1]).mean_dim(1).mean_dim(2).reshape([h / 4, 4, w / 4, 4]).mean_dim(1).mean_dim(3);
        println!(
            "decoded change per 4x4 pixel block after flipping the codes of cell (2, 2):\n{:?}",
            dx.into_data()
                .try_to_vec::<f32>()
                .unwrap_or_default()
                .chunks(w / 4)
                .map(|r| r.iter().map(|v| format!("{v:.3}")).collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
        );
        let _ = b;
    }
    let r = m.decode(&codes).clamp(-1.0, 1.0);
    let [b, _, t, h, w] = x.dims();
    let to_vec = |v: Tensor<5>| v.into_data().try_to_vec::<f32>().unwrap_or_default();
    let (xv, rv) = (to_vec(x), to_vec(r));
    let frames = [0, t / 3, 2 * t / 3, t - 1];
    let mut img = image::RgbImage::new((b * frames.len() * w) as u32, (2 * h) as u32);
    for (row, v) in [&xv, &rv].into_iter().enumerate() {
        for bi in 0..b {
            for (fi, &f) in frames.iter().enumerate() {
                for y in 0..h {
                    for xx in 0..w {
                        let px = |c: usize| ((v[(((bi * 3 + c) * t + f) * h + y) * w + xx] + 1.0) * 127.5) as u8;
                        img.put_pixel(((bi * frames.len() + fi) * w + xx) as u32, (row * h + y) as u32, image::Rgb([px(0), px(1), px(2)]));
                    }
                }
            }
        }
    }
    let img = image::imageops::resize(&img, img.width() * 4, img.height() * 4, image::imageops::FilterType::Nearest);
    let _ = img.save("/tmp/probe_recon.png");
    let val = hitvideo_engine::train::tokenizer::validate(&model.valid(), &cfg, &data, 32).expect("synthetic clips render");
    println!("val {}", val);
}

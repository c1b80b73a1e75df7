//! Where a tokenizer training step's time goes, at the real shapes of a preset (or a config
//! file) and batch: encoder, quantizer and entropy terms, decoder, backward, optimizer.
//! `cargo run -p hitvideo-engine --example profile_step -- [preset|config.json] [batch]`

mod common;
use common::time;

use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use hitvideo_engine::tokenizer::TokenizerConfig;
use hitvideo_engine::tokenizer::lfq;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (preset, batch) = common::preset_and_batch();
    let preset = preset.as_str();
    let cfg = TokenizerConfig::preset_or_file(preset)?;
    let dev = Device::flex().autodiff();
    let model = cfg.init(&dev);
    let x = Tensor::<5>::random([batch, 3, cfg.frames, cfg.height, cfg.width], burn::tensor::Distribution::Uniform(-1.0, 1.0), &dev);
    let plain = Device::flex();
    let xv = x.clone().inner();
    let valid = model.valid();
    println!("{} at batch {batch}", cfg.name);
    time("encoder latents fwd (no autodiff)", || {
        let _ = valid.latents(xv.clone()).last().map(|z| z.clone().sum().into_scalar::<f32>());
    });
    let codes: Vec<Tensor<5>> = valid.encode(xv.clone(), 1.0).layers.iter().map(|o| o.codes.clone()).collect();
    time("decoder fwd (no autodiff)", || {
        let _ = valid.decode(&codes).sum().into_scalar::<f32>();
    });
    time("encoder latents fwd+bwd", || {
        let l = model.latents(x.clone());
        let s = l.into_iter().map(|z| z.powf_scalar(2.0).mean()).reduce(|a, b| a + b);
        if let Some(s) = s {
            let _ = s.backward();
        }
    });
    let logits: Vec<Tensor<5>> = model.logits_of_latents(model.latents(x.clone()), true).into_iter().map(|z| z.detach().require_grad()).collect();
    time("quantize + entropy terms fwd+bwd (all layers)", || {
        let mut s = Tensor::<1>::zeros([1], &dev);
        for z in &logits {
            let o = lfq::quantize(z.clone(), 1.0);
            s = s + o.commitment + o.sample_entropy - o.codebook_entropy + o.codes.mean();
        }
        let _ = s.backward();
    });
    let ad_codes: Vec<Tensor<5>> = codes.iter().map(|c| Tensor::from_inner(c.clone()).require_grad()).collect();
    time("decoder fwd+bwd (L1 + L2)", || {
        let r = model.decode(&ad_codes);
        let e = r - x.clone();
        let _ = (e.clone().abs().mean() + (e.clone() * e).mean()).backward();
    });
    let mut opt = AdamWConfig::new().init();
    let mut m = model.clone();
    time("full step: encode, quantize, decode, backward, AdamW", || {
        let enc = m.encode(x.clone(), 1.0);
        let cs: Vec<Tensor<5>> = enc.layers.iter().map(|o| o.codes.clone()).collect();
        let e = m.decode(&cs) - x.clone();
        let mut loss = e.clone().abs().mean() + (e.clone() * e).mean();
        for o in &enc.layers {
            loss = loss + o.commitment.clone() + o.sample_entropy.clone() - o.codebook_entropy.clone();
        }
        let g = GradientsParams::from_grads(loss.backward(), &m);
        m = opt.step(1e-4, m.clone(), g);
    });
    let _ = plain;
    Ok(())
}

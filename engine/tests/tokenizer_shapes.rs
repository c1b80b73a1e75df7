//! Latent shapes and token counts of the presets, checked by real forward passes.
//!
//! `tiny` and `tiny-single` run at their real widths. `paper` and `paper-single` run their real
//! geometry (64 frames of 256x256, every stride and adapter) with all channel widths set to 4,
//! which keeps a CPU forward pass to seconds; the widths do not change any shape.

use burn::prelude::*;
use hitvideo_engine::tokenizer::TokenizerConfig;

/// Encodes a constant clip and checks every layer's shapes; `thorough` also decodes from every
/// `k` and compares decoding ids with decoding codes (the paper geometry decodes k = 1 and all).
fn check(cfg: &TokenizerConfig, thorough: bool) {
    let device = Device::flex();
    let model = cfg.init(&device);
    let x = Tensor::<5>::zeros([1, 3, cfg.frames, cfg.height, cfg.width], &device).add_scalar(0.1);
    let enc = model.encode(x, 1.0);
    assert_eq!(enc.layers.len(), cfg.layers.len());
    let mut total = 0;
    for (out, l) in enc.layers.iter().zip(&cfg.layers) {
        assert_eq!(out.codes.dims(), [1, l.bits, l.t, l.h, l.w], "{} layer codes", cfg.name);
        assert_eq!(out.indices.dims(), [1, l.t, l.h, l.w], "{} layer ids", cfg.name);
        total += out.indices.dims().iter().product::<usize>();
    }
    assert_eq!(total, cfg.total_tokens());
    // Decoding from the k coarsest layers gives a full-size video.
    let ks: Vec<usize> = if thorough { (1..=cfg.layers.len()).collect() } else { vec![1, cfg.layers.len()] };
    for k in ks {
        let codes: Vec<_> = enc.layers[..k].iter().map(|o| o.codes.clone()).collect();
        assert_eq!(model.decode(&codes).dims(), [1, 3, cfg.frames, cfg.height, cfg.width], "{} k={k}", cfg.name);
    }
    if !thorough {
        return;
    }
    let ids: Vec<_> = enc.layers.iter().map(|o| o.indices.clone()).collect();
    let a = model.decode_indices(&ids).into_data().try_to_vec::<f32>().unwrap_or_default();
    let codes: Vec<_> = enc.layers.iter().map(|o| o.codes.clone()).collect();
    let b = model.decode(&codes).into_data().try_to_vec::<f32>().unwrap_or_default();
    assert_eq!(a, b, "decoding token ids must equal decoding codes");
}

fn narrow(mut cfg: TokenizerConfig) -> TokenizerConfig {
    cfg.channels = vec![4; cfg.channels.len()];
    cfg.latent_channels = 4;
    cfg.blocks_per_stage = 1;
    cfg
}

#[test]
fn tiny_presets_forward() {
    check(&TokenizerConfig::preset("tiny").unwrap(), true);
    check(&TokenizerConfig::preset("tiny-single").unwrap(), true);
}

#[test]
fn paper_geometry_forward_at_batch_1() {
    let paper = narrow(TokenizerConfig::preset("paper").unwrap());
    assert_eq!(paper.total_tokens(), 2448);
    check(&paper, false);
    let single = narrow(TokenizerConfig::preset("paper-single").unwrap());
    assert_eq!(single.total_tokens(), 2312);
    check(&single, false);
}

#[test]
fn encoder_is_causal_in_time() {
    // Changing the last frames must not change the first latent frame of the finest layer.
    let cfg = TokenizerConfig::preset("tiny").unwrap();
    let device = Device::flex();
    let model = cfg.init(&device);
    let a = Tensor::<5>::random([1, 3, 16, 64, 64], burn::tensor::Distribution::Uniform(-1.0, 1.0), &device);
    let tail = Tensor::<5>::random([1, 3, 8, 64, 64], burn::tensor::Distribution::Uniform(-1.0, 1.0), &device);
    let b = Tensor::cat(vec![a.clone().slice([0..1, 0..3, 0..8, 0..64, 0..64]), tail], 2);
    let za = model.latents(a).pop().map(|z| z.slice([0..1, 0..32, 0..1, 0..16, 0..16]));
    let zb = model.latents(b).pop().map(|z| z.slice([0..1, 0..32, 0..1, 0..16, 0..16]));
    let (za, zb) = (za.map(|z| z.into_data().try_to_vec::<f32>().unwrap_or_default()), zb.map(|z| z.into_data().try_to_vec::<f32>().unwrap_or_default()));
    assert_eq!(za, zb);
}

//! Latent shapes and token counts of the presets, checked by real forward passes.
//!
//! `tiny`, `tiny-single`, `tiny64` and `tiny64-single` run at their real widths. `paper` and `paper-single` run their real
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
    check(&TokenizerConfig::preset("tiny64").unwrap(), true);
    check(&TokenizerConfig::preset("tiny64-single").unwrap(), true);
    check(&TokenizerConfig::preset("general64").unwrap(), true);
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

#[test]
fn decoder_is_causal_in_time() {
    // Flipping every code of the last latent frame (which covers frames 12-15 of a `tiny` clip)
    // changes those frames and none before them, with sub-pixel upsampling (the presets) and with
    // the nearest-neighbour upsampling of configs saved before it.
    for subpixel in [true, false] {
        let cfg = TokenizerConfig::preset("tiny").unwrap().with_subpixel_decoder(subpixel);
        let device = Device::flex();
        let model = cfg.init(&device);
        let x = Tensor::<5>::random([1, 3, 16, 32, 32], burn::tensor::Distribution::Uniform(-1.0, 1.0), &device);
        let codes: Vec<Tensor<5>> = model.encode(x, 1.0).layers.into_iter().map(|o| o.codes).collect();
        let mut flipped = codes.clone();
        let last = flipped.len() - 1;
        let l = &cfg.layers[last];
        let head = flipped[last].clone().slice([0..1, 0..l.bits, 0..l.t - 1, 0..l.h, 0..l.w]);
        let tail = flipped[last].clone().slice([0..1, 0..l.bits, l.t - 1..l.t, 0..l.h, 0..l.w]).neg();
        flipped[last] = Tensor::cat(vec![head, tail], 2);
        let (a, b) = (model.decode(&codes), model.decode(&flipped));
        let early = |v: &Tensor<5>| v.clone().slice([0..1, 0..3, 0..12, 0..32, 0..32]).into_data().try_to_vec::<f32>().unwrap_or_default();
        assert_eq!(early(&a), early(&b), "subpixel {subpixel}: frames 0-11 depend on the last latent frame");
        let late = (a.slice([0..1, 0..3, 12..16, 0..32, 0..32]) - b.slice([0..1, 0..3, 12..16, 0..32, 0..32])).abs().max().into_scalar::<f32>();
        assert!(late > 1e-4, "subpixel {subpixel}: the last latent frame must reach frames 12-15 ({late})");
    }
}

//! `tokenizer info`: per-layer geometry, bits, bpp, compression, parameters, and an estimate of
//! training memory.

use burn::prelude::*;
use serde::Serialize;

use super::config::TokenizerConfig;

/// One layer's row.
#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    pub latent: [usize; 3],
    pub tokens: usize,
    pub bits: usize,
    pub codebook: u64,
    pub bpp: f64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct TokenizerInfo {
    pub name: String,
    pub input: [usize; 3],
    /// Coarsest first.
    pub layers: Vec<LayerInfo>,
    pub total_tokens: usize,
    pub pixels_per_token: f64,
    pub bpp: f64,
    pub compression_ratio: f64,
    pub parameters: usize,
    /// Estimated peak training memory at batch 1 and per extra clip, bytes.
    pub train_memory_batch1: u64,
    pub train_memory_per_clip: u64,
}

/// Activation bytes kept for the backward pass of one clip (an estimate: every conv, norm and
/// activation output of the encoder, decoder and discriminator, f32).
fn activation_bytes(cfg: &TokenizerConfig) -> u64 {
    let (t, h, w) = (cfg.frames, cfg.height, cfg.width);
    let ts = cfg.temporal_stages();
    let per_block = 6u64; // norm, act, conv, norm, act, conv
    let mut elems = 0u64;
    let mut vox = (t * h * w) as u64;
    for i in 0..cfg.stages() {
        let c = cfg.channels[i] as u64;
        vox /= if i < ts { 8 } else { 4 };
        elems += 3 * c * vox; // strided conv, norm, activation
        elems += per_block * cfg.blocks_per_stage as u64 * c * vox;
    }
    let enc = elems;
    // Decoder mirrors the encoder and also keeps the upsampled copies.
    let dec = enc + enc / 3;
    // Discriminator: two strided convs of width d, 2d.
    let d = cfg.disc_channels as u64;
    let disc = 3 * (d * (t * h * w) as u64 / 8 + 2 * d * (t * h * w) as u64 / 64);
    let latents: u64 = cfg.layers.iter().map(|l| 8 * (cfg.latent_channels + l.bits) as u64 * l.tokens() as u64).sum();
    4 * (enc + dec + disc + latents)
}

/// Estimated peak training memory, bytes, of a tokenizer of `parameters` parameters at `clips`
/// clips per micro-batch: weights, gradients and two AdamW moments, and the activations kept
/// for the backward pass (f32).
pub fn training_memory(cfg: &TokenizerConfig, parameters: usize, clips: usize) -> u64 {
    16 * parameters as u64 + activation_bytes(cfg) * clips.max(1) as u64
}

/// Builds the report; counts parameters by instantiating the model on the CPU.
pub fn info(cfg: &TokenizerConfig) -> TokenizerInfo {
    let model = cfg.init(&Device::flex());
    let parameters = model.num_params();
    let pixels = (cfg.frames * cfg.height * cfg.width) as f64;
    let layers = cfg
        .layers
        .iter()
        .map(|l| LayerInfo { latent: [l.t, l.h, l.w], tokens: l.tokens(), bits: l.bits, codebook: 1u64 << l.bits, bpp: (l.tokens() * l.bits) as f64 / pixels })
        .collect();
    // Weights, gradients and two AdamW moments for the tokenizer; the discriminator is small.
    let state = 16 * parameters as u64;
    let per_clip = activation_bytes(cfg);
    TokenizerInfo {
        name: cfg.name.clone(),
        input: [cfg.frames, cfg.height, cfg.width],
        layers,
        total_tokens: cfg.total_tokens(),
        pixels_per_token: cfg.pixels_per_token(),
        bpp: cfg.bpp(),
        compression_ratio: cfg.compression_ratio(),
        parameters,
        train_memory_batch1: state + per_clip,
        train_memory_per_clip: per_clip,
    }
}

fn gib(b: u64) -> String {
    format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)
}

impl std::fmt::Display for TokenizerInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "tokenizer preset '{}': input {} frames of {}x{}", self.name, self.input[0], self.input[1], self.input[2])?;
        writeln!(f, "  layer  latent (t x h x w)  tokens  bits  codebook   bpp")?;
        for (i, l) in self.layers.iter().enumerate() {
            writeln!(
                f,
                "  {:>5}  {:>18}  {:>6}  {:>4}  {:>8}  {:.5}",
                i,
                format!("{}x{}x{}", l.latent[0], l.latent[1], l.latent[2]),
                l.tokens,
                l.bits,
                format!("2^{}", l.bits),
                l.bpp
            )?;
        }
        writeln!(f, "  total tokens {}; {:.1} pixels per token", self.total_tokens, self.pixels_per_token)?;
        writeln!(f, "  {:.5} bits per pixel; compression ratio {:.0}:1 against RGB24", self.bpp, self.compression_ratio)?;
        writeln!(f, "  parameters {} ({:.2} M)", self.parameters, self.parameters as f64 / 1e6)?;
        write!(f, "  training memory (estimate): {} at batch 1, + {} per extra clip", gib(self.train_memory_batch1), gib(self.train_memory_per_clip))
    }
}

//! Batches for generator training: token ids of cached clips (per layer, with token dropout
//! on the inputs) and the prompt side (the embedded small encoder, or frozen MiniLM features
//! computed once per unique caption — synthetic captions repeat).

use std::collections::HashMap;

use burn::prelude::*;
use rand::Rng;

use crate::generator::token_cache::TokenCache;
use crate::generator::{Generator, GeneratorConfig, TextInput};
use crate::text::{MiniLm, TextEncoder, TextError};

/// Where the prompt features come from.
pub enum TextSource {
    /// The generator's own small encoder (trained with it).
    Embedded,
    /// A frozen MiniLM, with its features cached per caption (`[L * D]` values and `L`).
    MiniLm { encoder: Box<MiniLm>, cache: HashMap<String, (Vec<f32>, usize)> },
}

impl TextSource {
    /// The source `cfg` needs: `minilm` must be given for a MiniLM-conditioned generator.
    pub fn for_config(cfg: &GeneratorConfig, minilm: Option<MiniLm>) -> Result<Self, TextError> {
        if cfg.text.is_small() {
            return Ok(Self::Embedded);
        }
        let encoder = minilm.ok_or_else(|| TextError::MissingFile { dir: crate::text::default_model_dir(), file: "model.safetensors" })?;
        if encoder.dim() != cfg.text.dim {
            return Err(TextError::SmallConfig {
                reason: format!(
                    "the text encoder gives {}-d features but the generator expects {}; load the encoder it was trained with",
                    encoder.dim(),
                    cfg.text.dim
                ),
            });
        }
        Ok(Self::MiniLm { encoder: Box::new(encoder), cache: HashMap::new() })
    }

    /// Computes and keeps the frozen encoder's features of every caption in `captions` not
    /// yet cached, `batch` at a time (nothing to do for the embedded encoder). Training calls it
    /// once before its first step: encoded together, a dataset's captions cost a fraction of
    /// what they cost a few new ones at every step.
    pub fn prefill(&mut self, captions: &[&str], max_len: usize, batch: usize) -> Result<(), TextError> {
        match self {
            Self::Embedded => Ok(()),
            Self::MiniLm { encoder, cache } => fill_features(encoder, cache, captions, max_len, batch),
        }
    }

    /// Whether the prompt features come from the generator's own (embedded) encoder.
    pub fn is_embedded(&self) -> bool {
        matches!(self, Self::Embedded)
    }

    /// The text input of `captions` for `model` (on `device`, the model's), with the rows
    /// flagged in `uncond` taking the learned unconditional prefix.
    pub fn input(&mut self, model: &Generator, cfg: &GeneratorConfig, captions: &[&str], uncond: Vec<bool>, device: &Device) -> Result<TextInput, TextError> {
        let mut input = match self {
            Self::Embedded => return embedded_input(model, cfg, captions, uncond),
            Self::MiniLm { encoder, cache } => {
                fill_features(encoder, cache, captions, cfg.text.max_len, captions.len())?;
                let d = cfg.text.dim;
                let l = captions.iter().filter_map(|c| cache.get(*c).map(|e| e.1)).max().unwrap_or(1).max(1);
                let mut data = vec![0f32; captions.len() * l * d];
                let mut lengths = Vec::with_capacity(captions.len());
                for (r, c) in captions.iter().enumerate() {
                    let (row, n) = cache.get(*c).map(|(v, n)| (v.as_slice(), *n)).unwrap_or((&[], 1));
                    data[r * l * d..r * l * d + row.len()].copy_from_slice(row);
                    lengths.push(n.max(1));
                }
                let features = Tensor::<3>::from_data(TensorData::new(data, [captions.len(), l, d]), device);
                TextInput { features, lengths, uncond: vec![false; captions.len()] }
            }
        };
        input.uncond = uncond;
        Ok(input)
    }
}

/// The embedded encoder's text input of `captions` (on `model`'s device), with the rows flagged
/// in `uncond` taking the learned unconditional prefix.
pub fn embedded_input(model: &Generator, cfg: &GeneratorConfig, captions: &[&str], uncond: Vec<bool>) -> Result<TextInput, TextError> {
    let mut input = model.encode_prompts(captions, cfg.text.max_len)?;
    input.uncond = uncond;
    Ok(input)
}

/// Features (`[L * D]` values and `L`) of the captions missing from `cache`, encoded `batch` at a
/// time on the CPU (they are kept host-side).
fn fill_features(encoder: &MiniLm, cache: &mut HashMap<String, (Vec<f32>, usize)>, captions: &[&str], max_len: usize, batch: usize) -> Result<(), TextError> {
    let mut missing: Vec<&str> = captions.iter().copied().filter(|c| !cache.contains_key(*c)).collect();
    missing.sort_unstable();
    missing.dedup();
    for chunk in missing.chunks(batch.max(1)) {
        let f = encoder.encode(chunk, max_len, &Device::flex())?;
        let [_, l, d] = f.features.dims();
        let all = crate::tensor::floats(f.features, "text features")?;
        for (r, c) in chunk.iter().enumerate() {
            let n = f.lengths[r];
            cache.insert((*c).to_string(), (all.get(r * l * d..(r * l + n) * d).unwrap_or(&[]).to_vec(), n));
        }
    }
    Ok(())
}

/// Token ids of cache items `rows`, per layer: `out[j]` holds the `B * n_j` ids of layer `j`,
/// row-major `[B, n_j]`.
pub fn layer_ids(cache: &TokenCache, cfg: &GeneratorConfig, rows: &[usize]) -> Vec<Vec<u32>> {
    let off = crate::generator::config::layer_offsets(&cfg.layers);
    off.windows(2).map(|w| rows.iter().flat_map(|&r| cache.item_ids(r).get(w[0]..w[1]).unwrap_or(&[]).iter().copied()).collect()).collect()
}

/// Rows `range` of per-layer ids (`layers[j]` holds `B * n_j` ids, row-major `[B, n_j]`).
pub fn rows_of(layers: &[Vec<u32>], cfg: &GeneratorConfig, range: std::ops::Range<usize>) -> Vec<Vec<u32>> {
    layers.iter().zip(&cfg.layers).map(|(ids, l)| ids[range.start * l.tokens()..range.end * l.tokens()].to_vec()).collect()
}

/// Per-layer ids (`layers[j]` holds `B * n_j` ids) as `[B, n_j]` tensors.
pub fn to_tensors(layers: &[Vec<u32>], cfg: &GeneratorConfig, batch: usize, device: &Device) -> Vec<Tensor<2, Int>> {
    layers
        .iter()
        .zip(&cfg.layers)
        .map(|(ids, l)| Tensor::from_data(TensorData::new(ids.iter().map(|&v| i64::from(v)).collect::<Vec<_>>(), [batch, l.tokens()]), device))
        .collect()
}

/// Token dropout: each id replaced, with probability `p`, by a uniformly random id of its layer.
pub fn token_dropout<R: Rng>(layers: &[Vec<u32>], cfg: &GeneratorConfig, p: f64, rng: &mut R) -> Vec<Vec<u32>> {
    layers
        .iter()
        .zip(&cfg.layers)
        .map(|(ids, l)| ids.iter().map(|&v| if p > 0.0 && rng.random_bool(p) { rng.random_range(0..(1u32 << l.bits)) } else { v }).collect())
        .collect()
}

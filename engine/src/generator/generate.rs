//! Autoregressive generation: coarse layers first, with a KV-cache, classifier-free guidance
//! computed as one batch of conditional and unconditional rows, a seeded sampler per row, an
//! event after each finished layer, cancellation between steps, and re-roll (keep the given
//! coarse tokens, sample the rest).

use std::sync::atomic::{AtomicBool, Ordering};

use burn::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::config::{GeneratorConfig, layer_offsets};
use super::model::{Generator, TextInput, layer_of_positions, sequence_rope};
use super::sample::{CfgSchedule, SamplingConfig, SamplingError};
use crate::tensor::{ReadError, floats};

/// What to generate: one output row per entry of `seeds` (the text rows line up with them).
#[derive(Debug, Clone)]
pub struct GenerateSpec {
    pub sampling: SamplingConfig,
    pub cfg: CfgSchedule,
    /// One seed per row.
    pub seeds: Vec<u64>,
    /// Tokens to keep per row (the first `keep[r].len()` video tokens, i.e. whole coarse
    /// layers for a re-roll); empty to sample everything.
    pub keep: Vec<Vec<u32>>,
    /// Use the KV-cache (the default); without it every step reruns the whole sequence.
    pub use_cache: bool,
}

/// Reported while generating.
#[derive(Debug, Clone)]
pub enum GenEvent {
    /// A layer is complete for every row: `tokens[r]` holds all tokens so far (layers
    /// `0..=layer`, in sequence order).
    LayerDone { layer: usize, tokens: Vec<Vec<u32>> },
    /// `done` of `total` video tokens sampled.
    Progress { done: usize, total: usize },
}

/// Why generation stopped early.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Sampling(#[from] SamplingError),
    #[error("cancelled after {done} of {total} tokens")]
    Cancelled { done: usize, total: usize },
    #[error("bad request: {0}")]
    Request(String),
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// Generated token ids per row, all layers in sequence order (split with [`split_layers`]).
pub type Tokens = Vec<Vec<u32>>;

/// Splits one row's sequence into per-layer id lists, coarsest first.
pub fn split_layers(cfg: &GeneratorConfig, row: &[u32]) -> Vec<Vec<u32>> {
    let off = layer_offsets(&cfg.layers);
    off.windows(2).map(|w| row.get(w[0]..w[1].min(row.len())).map(<[u32]>::to_vec).unwrap_or_default()).collect()
}

/// Checks the kept tokens of a re-roll: none, or one row per prompt, all of the same length
/// (at most the sequence), every id within its layer's code width. Returns that length.
fn check_keep(cfg: &GeneratorConfig, keep: &[Vec<u32>], rows: usize) -> Result<usize, GenerateError> {
    if keep.is_empty() || keep.iter().all(Vec::is_empty) {
        return Ok(0);
    }
    if keep.len() != rows {
        return Err(GenerateError::Request(format!("{} rows of kept tokens for {rows} prompts; give one row per prompt (or none)", keep.len())));
    }
    let len = keep[0].len();
    if keep.iter().any(|k| k.len() != len) {
        return Err(GenerateError::Request("rows of kept tokens differ in length; keep the same layers in every row".into()));
    }
    if len > cfg.video_tokens() {
        return Err(GenerateError::Request(format!("{len} kept tokens, but a sequence has {}", cfg.video_tokens())));
    }
    let bits: Vec<usize> = cfg.layers.iter().flat_map(|l| std::iter::repeat_n(l.bits, l.tokens())).collect();
    for (r, row) in keep.iter().enumerate() {
        if let Some((i, &v)) = row.iter().enumerate().find(|(i, v)| u64::from(**v) >> bits[*i] != 0) {
            return Err(GenerateError::Request(format!("kept token {i} of row {r} is {v}, beyond its layer's {} bits", bits[i])));
        }
    }
    Ok(len)
}

/// Generates for `cond` (B rows) with the unconditional or negative-prompt rows `uncond`
/// (B rows; `None` = the learned unconditional embedding). With guidance on (any layer's scale
/// other than 1), conditional and unconditional rows run as one batch of `2B` rows and the
/// logits are mixed as `u + s_j (c - u)`. Calls `on_event` after each token and each finished
/// layer (kept layers of a re-roll are reported at once) and checks `cancel` between steps.
/// Returns every row's tokens, all layers in sequence order.
pub fn generate(
    model: &Generator,
    cfg: &GeneratorConfig,
    cond: &TextInput,
    uncond: Option<&TextInput>,
    spec: &GenerateSpec,
    cancel: &AtomicBool,
    mut on_event: impl FnMut(GenEvent),
) -> Result<Tokens, GenerateError> {
    spec.sampling.validate()?;
    let scales = spec.cfg.scales(cfg.layers.len()).map_err(SamplingError::from)?;
    let b = cond.rows();
    if b == 0 {
        return Err(GenerateError::Request("no prompts".into()));
    }
    if spec.seeds.len() != b {
        return Err(GenerateError::Request(format!("{} seeds for {} prompts; give one seed per prompt row", spec.seeds.len(), b)));
    }
    if let Some(u) = uncond.filter(|u| u.rows() != b) {
        return Err(GenerateError::Request(format!("{} negative-prompt rows for {b} prompts", u.rows())));
    }
    for t in std::iter::once(cond).chain(uncond) {
        let [rows, _, d] = t.features.dims();
        if d != cfg.text.dim || rows != t.rows() || t.uncond.len() != t.rows() {
            return Err(GenerateError::Request(format!(
                "text features [{rows}, _, {d}] with {} lengths do not fit this generator ({}-d features from its '{}' text encoder, one length per row)",
                t.rows(),
                cfg.text.dim,
                cfg.text.encoder
            )));
        }
    }
    let keep = check_keep(cfg, &spec.keep, b)?;
    let guided = scales.iter().any(|&s| (s - 1.0).abs() > 1e-6);
    let text = if guided { stack_uncond(cond, uncond) } else { cond.clone() };
    let rows = text.rows();
    let device = text.features.device();
    let n = cfg.video_tokens();
    let layer_of = layer_of_positions(cfg);
    let ends = layer_offsets(&cfg.layers);
    let mut rngs: Vec<ChaCha8Rng> = spec.seeds.iter().map(|&s| ChaCha8Rng::seed_from_u64(s)).collect();
    let mut tokens: Tokens = (0..b).map(|r| spec.keep.get(r).map(|k| k[..keep].to_vec()).unwrap_or_default()).collect();
    for (j, &end) in ends.iter().skip(1).enumerate() {
        if end <= keep {
            on_event(GenEvent::LayerDone { layer: j, tokens: tokens.iter().map(|t| t[..end].to_vec()).collect() });
        }
    }
    if keep == n {
        return Ok(tokens);
    }

    let prefix = model.prefix(&text);
    let p = prefix.embeddings.dims()[1];
    let total = p + n;
    let valid: Vec<Vec<bool>> = prefix.valid.iter().map(|v| v.iter().copied().chain(std::iter::repeat_n(true, n)).take(total).collect()).collect();
    let rope = sequence_rope(cfg, p, n, &device);
    let mut cache = spec.use_cache.then(|| model.new_cache(rows, total));
    // First pass: the prefix plus any kept tokens; its last hidden state predicts the next token.
    let mut x = prefix.embeddings.clone();
    if keep > 0 {
        x = Tensor::cat(vec![x, prefix.condition(model.embed_tokens(0, &ids_by_layer(cfg, &tokens, 0, keep, rows, &device)))], 1);
    }
    let first = x.dims()[1];
    let mut h = model.run(x.clone(), 0, &rope.slice(0..first), &valid, cache.as_mut());
    for (i, &j) in layer_of.iter().enumerate().skip(keep) {
        if cancel.load(Ordering::Relaxed) {
            return Err(GenerateError::Cancelled { done: i, total: n });
        }
        let last = h.dims()[1] - 1;
        let hl = h.clone().slice(s![.., last..last + 1, ..]);
        let groups = model.groups(j);
        let logits: Vec<Vec<f32>> = model.logits(j, hl).into_iter().map(|l| floats(l, "logits")).collect::<Result<_, _>>()?;
        for (r, rng) in rngs.iter_mut().enumerate() {
            let mut id = 0u32;
            let mut off = 0;
            for (g, l) in groups.iter().zip(&logits) {
                let v = 1usize << g;
                let c = l.get(r * v..(r + 1) * v).unwrap_or(&[]);
                let row: Vec<f32> = if guided {
                    let u = l.get((r + b) * v..(r + b + 1) * v).unwrap_or(&[]);
                    c.iter().zip(u).map(|(&c, &u)| u + scales[j] * (c - u)).collect()
                } else {
                    c.to_vec()
                };
                id |= (spec.sampling.sample(&row, rng) as u32) << off;
                off += g;
            }
            tokens[r].push(id);
        }
        if ends.get(j + 1) == Some(&(i + 1)) {
            on_event(GenEvent::LayerDone { layer: j, tokens: tokens.clone() });
        }
        on_event(GenEvent::Progress { done: i + 1, total: n });
        if i + 1 == n {
            break;
        }
        // Feed token i at position p + i.
        let e = prefix.condition(model.embed_tokens(j, &ids_by_layer(cfg, &tokens, i, i + 1, rows, &device)));
        h = match cache.as_mut() {
            Some(c) => model.run(e, p + i, &rope.slice(p + i..p + i + 1), &valid, Some(c)),
            None => {
                x = Tensor::cat(vec![x, e], 1);
                model.run(x.clone(), 0, &rope.slice(0..p + i + 1), &valid, None)
            }
        };
    }
    Ok(tokens)
}

/// Conditional rows followed by unconditional (or negative-prompt) rows.
fn stack_uncond(cond: &TextInput, uncond: Option<&TextInput>) -> TextInput {
    let b = cond.lengths.len();
    match uncond {
        Some(u) => {
            let (lc, lu) = (cond.features.dims()[1], u.features.dims()[1]);
            let l = lc.max(lu);
            let pad = |t: Tensor<3>, have: usize| if have < l { t.pad([(0, l - have), (0, 0)], burn::tensor::ops::PadMode::Constant(0.0)) } else { t };
            TextInput {
                features: Tensor::cat(vec![pad(cond.features.clone(), lc), pad(u.features.clone(), lu)], 0),
                lengths: cond.lengths.iter().chain(&u.lengths).copied().collect(),
                uncond: cond.uncond.iter().chain(&u.uncond).copied().collect(),
            }
        }
        None => TextInput {
            features: Tensor::cat(vec![cond.features.clone(), cond.features.clone()], 0),
            lengths: cond.lengths.iter().chain(&cond.lengths).copied().collect(),
            uncond: std::iter::repeat_n(false, b).chain(std::iter::repeat_n(true, b)).collect(),
        },
    }
}

/// Token ids of sequence positions `from..to` for `rows` rows (rows beyond `tokens.len()` —
/// the unconditional half — repeat the conditional rows), grouped by layer: one `[rows, n]`
/// tensor per layer touched, starting with the layer of `from`.
fn ids_by_layer(cfg: &GeneratorConfig, tokens: &Tokens, from: usize, to: usize, rows: usize, device: &Device) -> Vec<Tensor<2, Int>> {
    let off = layer_offsets(&cfg.layers);
    let b = tokens.len().max(1);
    let mut out = Vec::new();
    for w in off.windows(2) {
        let (s, e) = (w[0].max(from), w[1].min(to));
        if s >= e {
            continue;
        }
        let data: Vec<i64> = (0..rows).flat_map(|r| tokens[r % b][s..e].iter().map(|&t| i64::from(t))).collect();
        out.push(Tensor::from_data(TensorData::new(data, [rows, e - s]), device));
    }
    out
}

//! One clip through a tokenizer for the studio's Tokens view: the clip fitted to the
//! tokenizer's geometry (a window of a file, a clip in memory, or a generated clip's own
//! tokens), per layer the token ids with a codebook-usage histogram and perplexity, the clip
//! decoded from the k coarsest layers for every k with its PSNR, and the redundancy masks of
//! dynamic encoding with the clip decoded from the masked tokens.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::prelude::*;

use crate::metrics;
use crate::tensor::{to_tensor, to_videos};
use crate::tokenizer::dynamic::{FillStrategy, LayerIds, MaskConfig, decode_masked_ids, layer_masks};
use crate::tokenizer::lfq::{codes_from_indices, usage_and_perplexity};
use crate::tokenizer::{Tokenizer, TokenizerConfig};
use crate::video::clip::center_crop_resize;
use crate::video::{self, DecodeOptions, Video};

/// Most bars in a usage histogram (larger codebooks are binned).
const MAX_BINS: usize = 256;

/// What to tokenize.
#[derive(Debug, Clone)]
pub enum ClipInput {
    /// A clip already in memory (a synthetic clip, a generated one), with a label.
    Clip { video: Arc<Video>, label: String },
    /// Window `window` of a video file (the tokenizer's clip length each, from the start),
    /// decoded at the tokenizer's fps and size.
    File { path: PathBuf, window: usize },
    /// A generated clip's own tokens (all layers in sequence order, coarsest first).
    Generated { tokens: Vec<u32>, label: String },
}

/// How the redundancy masks are made.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskOptions {
    /// Largest fraction of a layer's maskable tokens that may be masked, 0 to 1.
    pub cap: f64,
    /// Largest changed fraction of a token's bits that still counts as redundant (0: only
    /// unchanged tokens), 0 to 1.
    pub tolerance: f64,
    /// Fill strategy of the masked decode.
    pub fill: FillStrategy,
}

/// One layer of a tokenized clip.
#[derive(Debug, Clone)]
pub struct LayerTokens {
    /// Latent grid `[t, h, w]`.
    pub shape: [usize; 3],
    pub bits: usize,
    /// Token ids, `t * h * w`, row-major.
    pub ids: Vec<u32>,
    /// Codebook usage histogram: `histogram[i]` counts ids in `i * bin .. (i + 1) * bin`.
    pub histogram: Vec<u64>,
    pub bin: usize,
    /// Distinct ids used in this clip.
    pub used: usize,
    pub perplexity: f64,
}

/// A layer's redundancy mask, as dynamic encoding computes it.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskView {
    /// Per position (`t * h * w`, row-major), the difference to the previous latent frame.
    pub diff: Vec<f32>,
    /// Per position, true when the token is masked (filled at decode time).
    pub mask: Vec<bool>,
    /// Realized mask ratio of the layer.
    pub ratio: f64,
}

impl MaskView {
    /// Mean of the difference matrix over latent frames `1..t` (the masking threshold's mean),
    /// for a layer of `t` latent frames.
    pub fn mean_diff(&self, t: usize) -> f64 {
        let plane = self.diff.len() / t.max(1);
        let rest = &self.diff[plane.min(self.diff.len())..];
        if rest.is_empty() { 0.0 } else { rest.iter().map(|&d| f64::from(d)).sum::<f64>() / rest.len() as f64 }
    }
}

/// The redundancy masks of a clip, or why there are none.
#[derive(Debug, Clone, PartialEq)]
pub enum Masks {
    /// Per layer (coarsest first; `None` for layers with one latent frame), with the cap and
    /// the fill strategy, the clip decoded from the masked tokens and its PSNR.
    Ready { layers: Vec<Option<MaskView>>, cap: f64, fill: String, ratio_all: f64, recon: Box<Video>, psnr: f64 },
    /// The masks cannot be made; the message says why.
    Unavailable(String),
}

/// A clip run through a tokenizer.
#[derive(Debug, Clone)]
pub struct TokenView {
    /// Which window of a file this is (0 for clips in memory), and how many the file has (its
    /// duration at the tokenizer's fps; `None` when unknown or not a file).
    pub window: usize,
    pub windows: Option<usize>,
    pub label: String,
    /// The clip at the tokenizer's geometry.
    pub original: Video,
    /// Frames added by repeating the last one (clips shorter than the tokenizer's length).
    pub padded: usize,
    pub layers: Vec<LayerTokens>,
    /// `recon[k - 1]`: decoded from the k coarsest layers.
    pub recon: Vec<Video>,
    /// PSNR (dB) of each `recon` against `original`.
    pub psnr: Vec<f64>,
    pub masks: Masks,
}

/// Why a clip could not be tokenized.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TokenizeError {
    #[error("{0}")]
    Failed(String),
    #[error("stopped after decoding {done} of {total} layer counts")]
    Cancelled { done: usize, total: usize },
}

/// `v` cropped/resized to the tokenizer's frame size, cut or padded (last frame repeated) to
/// its length; returns the clip and the number of padded frames.
pub fn fit(v: &Video, cfg: &TokenizerConfig) -> Result<(Video, usize), String> {
    if v.is_empty() {
        return Err("the clip has no frames".into());
    }
    let (w, h) = (cfg.width as u32, cfg.height as u32);
    let mut out = Video::new(w, h, cfg.fps);
    for t in 0..cfg.frames.min(v.len()) {
        if (v.width(), v.height()) == (w, h) {
            out.push_frame(v.frame(t));
        } else {
            out.push_frame(&center_crop_resize(v.frame(t), v.width(), v.height(), w, h));
        }
    }
    let padded = cfg.frames - out.len();
    let last = out.frame(out.len() - 1).to_vec();
    for _ in 0..padded {
        out.push_frame(&last);
    }
    Ok((out, padded))
}

fn layer_tokens(ids: Vec<u32>, shape: [usize; 3], bits: usize) -> LayerTokens {
    let size = 1usize << bits.min(24);
    let mut counts = vec![0u64; size];
    for &id in &ids {
        if let Some(c) = counts.get_mut(id as usize) {
            *c += 1;
        }
    }
    let (_, perplexity) = usage_and_perplexity(&counts);
    let used = counts.iter().filter(|&&c| c > 0).count();
    let bin = size.div_ceil(MAX_BINS).max(1);
    let histogram = counts.chunks(bin).map(|c| c.iter().sum()).collect();
    LayerTokens { shape, bits, ids, histogram, bin, used, perplexity }
}

/// Redundancy masks of one clip and the clip decoded from the masked tokens.
fn masks(model: &Tokenizer, cfg: &TokenizerConfig, layers: &[LayerTokens], original: &Video, opts: &MaskOptions, device: &Device) -> Masks {
    let (cap, tolerance, fill) = (opts.cap, opts.tolerance, opts.fill);
    if !(0.0..=1.0).contains(&cap) {
        return Masks::Unavailable(format!("mask cap {cap} is outside 0..=1; choose e.g. 0.85"));
    }
    if !(0.0..=1.0).contains(&tolerance) {
        return Masks::Unavailable(format!("mask tolerance {tolerance} is outside 0..=1; choose 0 to mask only unchanged tokens"));
    }
    let ids: Vec<LayerIds> = layers.iter().map(|l| LayerIds { shape: l.shape, bits: l.bits, ids: l.ids.clone() }).collect();
    let mask_cfg = MaskConfig::new().with_cap(cap).with_tolerance(tolerance);
    let made = match layer_masks(&ids, &mask_cfg) {
        Ok(m) => m,
        Err(e) => return Masks::Unavailable(e.to_string()),
    };
    let bools: Vec<Vec<bool>> = made.iter().map(|m| m.mask.clone()).collect();
    let video = match decode_masked_ids(model, &[ids], &[bools], fill, device) {
        Ok(x) => match to_videos(x, cfg.fps) {
            Ok(v) => v.into_iter().next(),
            Err(e) => return Masks::Unavailable(e.to_string()),
        },
        Err(e) => return Masks::Unavailable(e.to_string()),
    };
    let Some(recon) = video else { return Masks::Unavailable("the masked decode returned no frames".into()) };
    let (m, n) = made.iter().fold((0, 0), |(m, n), l| (m + l.masked, n + l.shape.iter().product::<usize>()));
    Masks::Ready {
        layers: made.into_iter().map(|l| l.maskable.then_some(MaskView { diff: l.diff, mask: l.mask, ratio: l.ratio })).collect(),
        cap,
        fill: fill.name().to_string(),
        ratio_all: m as f64 / n.max(1) as f64,
        psnr: metrics::psnr(original, &recon).unwrap_or(f64::NAN),
        recon: Box::new(recon),
    }
}

/// Per-layer ids and codes (`[1, bits_j, t_j, h_j, w_j]`) of one clip encoded by `model`.
fn encode(model: &Tokenizer, cfg: &TokenizerConfig, clip: &Video, device: &Device) -> Result<(Vec<LayerTokens>, Vec<Tensor<5>>), String> {
    let enc = model.encode(to_tensor(std::slice::from_ref(clip), device), 1.0);
    let mut layers = Vec::new();
    for (o, l) in enc.layers.iter().zip(&cfg.layers) {
        let ids =
            o.indices.clone().into_data().convert::<i64>().try_to_vec::<i64>().map_err(|e| format!("reading the token ids back from the device: {e:?}"))?;
        layers.push(layer_tokens(ids.into_iter().map(|i| i as u32).collect(), [l.t, l.h, l.w], l.bits));
    }
    Ok((layers, enc.layers.into_iter().map(|o| o.codes).collect()))
}

/// Per-layer ids and codes of a generated sequence (all layers, coarsest first).
fn from_ids(cfg: &TokenizerConfig, ids: &[u32], device: &Device) -> Result<(Vec<LayerTokens>, Vec<Tensor<5>>), String> {
    let want: usize = cfg.layers.iter().map(|l| l.tokens()).sum();
    if ids.len() != want {
        return Err(format!("{} tokens for a tokenizer of {want}; the clip was generated for another tokenizer", ids.len()));
    }
    let (mut layers, mut codes, mut at) = (Vec::new(), Vec::new(), 0);
    for l in &cfg.layers {
        let part = &ids[at..at + l.tokens()];
        at += l.tokens();
        let data: Vec<i64> = part.iter().map(|&v| i64::from(v)).collect();
        let idx = Tensor::<4, Int>::from_data(TensorData::new(data, [1, l.t, l.h, l.w]), device);
        codes.push(codes_from_indices(idx, l.bits));
        layers.push(layer_tokens(part.to_vec(), [l.t, l.h, l.w], l.bits));
    }
    Ok((layers, codes))
}

/// A clip ready to show: the clip, frames padded, its label, per-layer tokens and codes, the
/// window of a file and the file's window count.
type Prepared = (Video, usize, String, Vec<LayerTokens>, Vec<Tensor<5>>, usize, Option<usize>);

fn prepare(model: &Tokenizer, cfg: &TokenizerConfig, input: ClipInput, device: &Device) -> Result<Prepared, String> {
    let (clip, label, window, windows) = match input {
        ClipInput::Clip { video, label } => (video, label, 0, None),
        ClipInput::File { path, window } => {
            // How many windows the file has, from its header (a probe, no decoding).
            let windows = video::probe(&path).ok().map(|i| (i.duration * cfg.fps / cfg.frames as f64).ceil() as usize).filter(|&n| n > 0);
            let window = windows.map_or(window, |n| window.min(n - 1));
            let opts = DecodeOptions {
                fps: Some(cfg.fps),
                size: Some((cfg.width as u32, cfg.height as u32)),
                start: (window * cfg.frames) as f64 / cfg.fps,
                max_frames: Some(cfg.frames),
                ..DecodeOptions::default()
            };
            let v = video::decode(&path, &opts).map_err(|e| format!("cannot open this video: {e}"))?;
            let label = match windows {
                Some(n) if n > 1 => format!("{} · window {} of {n}", path.display(), window + 1),
                _ => path.display().to_string(),
            };
            (Arc::new(v), label, window, windows)
        }
        ClipInput::Generated { tokens, label } => {
            // The generated tokens themselves (not a re-encoding); the clip is their full decode.
            let (layers, codes) = from_ids(cfg, &tokens, device)?;
            let original = to_videos(model.decode(&codes), cfg.fps).map_err(|e| e.to_string())?.into_iter().next().ok_or("the decoder returned no frames")?;
            return Ok((original, 0, label, layers, codes, 0, None));
        }
    };
    let (original, padded) = fit(&clip, cfg).map_err(|e| format!("{label}: {e}"))?;
    let (layers, codes) = encode(model, cfg, &original, device)?;
    Ok((original, padded, label, layers, codes, window, windows))
}

/// Runs `input` through the tokenizer `model` (config `cfg`) on `device`; `cancel` stops
/// between the decodes.
pub fn tokenize(
    model: &Tokenizer,
    cfg: &TokenizerConfig,
    input: ClipInput,
    mask: &MaskOptions,
    device: &Device,
    cancel: &AtomicBool,
) -> Result<TokenView, TokenizeError> {
    let (original, padded, label, layers, codes, window, windows) = prepare(model, cfg, input, device).map_err(TokenizeError::Failed)?;
    let mut recon = Vec::new();
    let mut psnr = Vec::new();
    for k in 1..=codes.len() {
        if cancel.load(Ordering::Relaxed) {
            return Err(TokenizeError::Cancelled { done: k - 1, total: codes.len() });
        }
        let Some(v) = to_videos(model.decode(&codes[..k]), cfg.fps).map_err(|e| TokenizeError::Failed(e.to_string()))?.into_iter().next() else {
            return Err(TokenizeError::Failed("the decoder returned no frames".into()));
        };
        psnr.push(metrics::psnr(&original, &v).unwrap_or(f64::NAN));
        recon.push(v);
    }
    let masks = masks(model, cfg, &layers, &original, mask, device);
    Ok(TokenView { window, windows, label, original, padded, layers, recon, psnr, masks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_bin_large_codebooks_and_count_use() {
        let l = layer_tokens(vec![0, 0, 3, 1023], [1, 2, 2], 10);
        assert_eq!((l.bin, l.histogram.len(), l.used), (4, 256, 3));
        assert_eq!((l.histogram[0], l.histogram[255]), (3, 1));
        let small = layer_tokens(vec![1, 1], [1, 1, 2], 5);
        assert_eq!((small.bin, small.histogram.len(), small.used), (1, 32, 1));
        assert!((small.perplexity - 1.0).abs() < 1e-9);
    }

    #[test]
    fn clips_are_fitted_to_the_tokenizer() {
        let cfg = TokenizerConfig::preset("tiny").expect("preset");
        let v = Video::from_raw(64, 48, 8.0, vec![7; 64 * 48 * 3 * 5]).expect("clip");
        let (f, padded) = fit(&v, &cfg).expect("fits");
        assert_eq!((f.len(), f.width(), f.height(), padded), (16, 32, 32, 11));
        assert!(fit(&Video::new(8, 8, 8.0), &cfg).is_err());
    }
}

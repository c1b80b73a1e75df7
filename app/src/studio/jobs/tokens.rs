//! The tokens view's job: fit a clip to the tokenizer's geometry, encode it, and collect per
//! layer the token ids, a codebook-usage histogram and perplexity; decode from the k coarsest
//! layers for every k; and the redundancy masks (engine dynamic encoding) with the clip decoded
//! from the masked tokens.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use burn::prelude::*;
use hitvideo_engine::metrics;
use hitvideo_engine::tensor::{to_tensor, to_videos};
use hitvideo_engine::tokenizer::TokenizerConfig;
use hitvideo_engine::tokenizer::dynamic::{FillStrategy, LayerIds, MaskConfig, decode_masked_ids, layer_masks};
use hitvideo_engine::tokenizer::lfq::{codes_from_indices, usage_and_perplexity};
use hitvideo_engine::video::clip::center_crop_resize;
use hitvideo_engine::video::{self, DecodeOptions, Video};

use super::payload::{LayerTokens, MaskView, Masks, TokenPayload};
use super::protocol::{Event, Job, Outcome, TokenRequest, TokenSource};
use super::worker::{LoadedTokenizer, Worker};

/// Most bars in a usage histogram (larger codebooks are binned).
const MAX_BINS: usize = 256;

/// `v` cropped/resized to the tokenizer's frame size, cut or padded (last frame repeated) to
/// its length; returns the clip and the number of padded frames.
pub(super) fn fit(v: &Video, cfg: &TokenizerConfig) -> Result<(Video, usize), String> {
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

/// Redundancy masks of one clip (engine dynamic encoding) and the clip decoded from the
/// masked tokens with `fill`.
fn masks(tok: &LoadedTokenizer, layers: &[LayerTokens], original: &Video, cap: f64, tolerance: f64, fill: &str, device: &Device) -> Masks {
    let fill = match fill.parse::<FillStrategy>() {
        Ok(f) => f,
        Err(e) => return Masks::Unavailable(e.to_string()),
    };
    if !(0.0..=1.0).contains(&cap) {
        return Masks::Unavailable(format!("mask cap {cap} is outside 0..=1; choose e.g. 0.85"));
    }
    if !(0.0..=1.0).contains(&tolerance) {
        return Masks::Unavailable(format!("mask tolerance {tolerance} is outside 0..=1; choose 0 to mask only unchanged tokens"));
    }
    let ids: Vec<LayerIds> = layers.iter().map(|l| LayerIds { shape: l.shape, bits: l.bits, ids: l.ids.clone() }).collect();
    let cfg = MaskConfig::new().with_cap(cap).with_tolerance(tolerance);
    let made = match layer_masks(&ids, &cfg) {
        Ok(m) => m,
        Err(e) => return Masks::Unavailable(e.to_string()),
    };
    let bools: Vec<Vec<bool>> = made.iter().map(|m| m.mask.clone()).collect();
    let video = match decode_masked_ids(&tok.model, &[ids], &[bools], fill, device) {
        Ok(x) => to_videos(x, tok.cfg.fps).into_iter().next(),
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

/// Per-layer ids and codes (`[1, bits_j, t_j, h_j, w_j]`) of one clip encoded by `tok`.
fn encode(tok: &LoadedTokenizer, clip: &Video, device: &Device) -> (Vec<LayerTokens>, Vec<Tensor<5>>) {
    let enc = tok.model.encode(to_tensor(std::slice::from_ref(clip), device), 1.0);
    let mut layers = Vec::new();
    for (o, l) in enc.layers.iter().zip(&tok.cfg.layers) {
        let ids = o.indices.clone().into_data().convert::<i64>().try_to_vec::<i64>().unwrap_or_default();
        layers.push(layer_tokens(ids.into_iter().map(|i| i as u32).collect(), [l.t, l.h, l.w], l.bits));
    }
    (layers, enc.layers.into_iter().map(|o| o.codes).collect())
}

/// Per-layer ids and codes of a generated sequence (all layers, coarsest first).
fn from_ids(tok: &LoadedTokenizer, ids: &[u32], device: &Device) -> Result<(Vec<LayerTokens>, Vec<Tensor<5>>), String> {
    let want: usize = tok.cfg.layers.iter().map(|l| l.tokens()).sum();
    if ids.len() != want {
        return Err(format!("{} tokens for a tokenizer of {want}; the clip was generated for another tokenizer", ids.len()));
    }
    let (mut layers, mut codes, mut at) = (Vec::new(), Vec::new(), 0);
    for l in &tok.cfg.layers {
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

fn prepare(tok: &LoadedTokenizer, source: TokenSource, device: &Device) -> Result<Prepared, String> {
    let cfg = &tok.cfg;
    let (clip, label, window, windows) = match source {
        TokenSource::Clip { video, label } => (video, label, 0, None),
        TokenSource::File { path, window } => {
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
        TokenSource::Generated { tokens, label } => {
            // The generated tokens themselves (not a re-encoding); the clip is their full decode.
            let (layers, codes) = from_ids(tok, &tokens, device)?;
            let original = to_videos(tok.model.decode(&codes), cfg.fps).into_iter().next().ok_or("the decoder returned no frames")?;
            return Ok((original, 0, label, layers, codes, 0, None));
        }
    };
    let (original, padded) = fit(&clip, cfg).map_err(|e| format!("{label}: {e}"))?;
    let (layers, codes) = encode(tok, &original, device);
    Ok((original, padded, label, layers, codes, window, windows))
}

pub(super) fn tokenize(w: &mut Worker, job: &Job, req: TokenRequest) -> Outcome {
    // Files and clips through the general tokenizer (made for real footage) when asked and
    // loaded; generated tokens through the tokenizer that made them.
    let general = if req.general && !matches!(req.source, TokenSource::Generated { .. }) { w.general.as_ref() } else { None };
    let Some(tok) = general.or(w.tokenizer.as_ref()) else {
        return Outcome::Failed(
            "no tokenizer loaded: open a tokenizer checkpoint folder (Open tokenizer…) or press \
             \"Use untrained tiny models\" to try the pipeline"
                .into(),
        );
    };
    let (original, padded, label, layers, codes, window, windows) = match prepare(tok, req.source, &w.device) {
        Ok(x) => x,
        Err(e) => return Outcome::Failed(e),
    };
    let mut recon = Vec::new();
    let mut psnr = Vec::new();
    for k in 1..=codes.len() {
        if job.cancel.load(Ordering::Relaxed) {
            return Outcome::Cancelled(format!("stopped after decoding {} of {} layer counts", k - 1, codes.len()));
        }
        let Some(v) = to_videos(tok.model.decode(&codes[..k]), tok.cfg.fps).into_iter().next() else {
            return Outcome::Failed("the decoder returned no frames".into());
        };
        psnr.push(metrics::psnr(&original, &v).unwrap_or(f64::NAN));
        recon.push(v);
    }
    let summary = format!(
        "{label}: {} layers, {} tokens; PSNR from all layers {:.2} dB",
        layers.len(),
        layers.iter().map(|l| l.ids.len()).sum::<usize>(),
        psnr.last().copied().unwrap_or(f64::NAN)
    );
    let tokenizer = tok.label.clone();
    let masks = masks(tok, &layers, &original, req.cap, req.tolerance, &req.fill, &w.device);
    w.slots.tokens.put(TokenPayload { job: job.id, window, windows, label, tokenizer, original, padded, layers, recon, psnr, masks });
    w.emit(Event::Payload { job: job.id, slot: "tokens" });
    Outcome::Done(summary)
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

//! `tokenizer eval`: a loaded tokenizer on a list of clips. Per clip and averaged: PSNR, SSIM
//! and MS-SSIM (when frames are large enough) of the reconstruction from the `k` coarsest
//! layers for every `k`; bits per pixel and compression ratio; per-layer codebook usage and
//! perplexity; encode and decode time; optionally an H.264 baseline at the same bpp.
//!
//! Clips may have any length: they are encoded in padded windows as `tokenizer encode` does,
//! and measured over their true frames. The report is [`EvalReport`] (JSON via serde; a table
//! via `Display`, in `table.rs`).

use std::path::Path;
use std::time::Instant;

use super::h264::{self, H264Clip};
use crate::dataset::attributes::Shape;
use crate::dataset::synth;
use crate::eval::analyze::analyze;
use crate::metrics;
use crate::tokenizer::codec::{self, CodecError};
use crate::tokenizer::config::TokenizerConfig;
use crate::tokenizer::dynamic::{FillStrategy, MaskConfig};
use crate::tokenizer::lfq::usage_and_perplexity;
use crate::tokenizer::masked_codec::{self, MaskSummary};
use crate::tokenizer::model::Tokenizer;
use crate::train::data::{ClipSource, DataError};
use crate::video::{Video, VideoError};

/// PSNR reported for a perfect reconstruction (where the formula gives infinity).
pub const PSNR_CAP: f64 = 100.0;

/// How to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOptions {
    /// Windows per forward pass.
    pub batch: usize,
    /// Also run the H.264 baseline with this x264 preset (e.g. `medium`).
    pub h264_preset: Option<String>,
    /// Also evaluate dynamic encoding: mask every window with this rule and decode it (all
    /// layers) with each of these fill strategies.
    pub mask: Option<(MaskConfig, Vec<FillStrategy>)>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self { batch: codec::DEFAULT_BATCH, h264_preset: None, mask: None }
    }
}

/// Quality of masked decoding with one fill strategy (mean over clips).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FillQuality {
    pub fill: String,
    pub quality: Quality,
}

/// Dynamic encoding over every evaluated window: what was masked, the bits, and the quality
/// per fill strategy beside the unmasked decode.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DynamicReport {
    pub tolerance: f64,
    pub summary: MaskSummary,
    /// Ratio masked over maskable tokens, `summary.ratio()`.
    pub mask_ratio: f64,
    /// Masked over all tokens, `summary.saved()`.
    pub tokens_saved: f64,
    /// Bits per pixel of the masked streams and of the unmasked ids.
    pub bpp: f64,
    pub dense_bpp: f64,
    /// The unmasked decode from all layers (the reference the fills are compared with).
    pub unmasked: Quality,
    pub fills: Vec<FillQuality>,
}

/// Reconstruction quality of one clip (or a mean over clips).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Quality {
    /// dB, capped at [`PSNR_CAP`].
    pub psnr: f64,
    /// Gaussian-window SSIM per RGB channel, averaged (see [`crate::metrics`]).
    pub ssim: f64,
    /// 5-scale MS-SSIM; `None` when a frame side is under [`metrics::MS_SSIM_MIN_SIDE`].
    pub ms_ssim: Option<f64>,
}

impl Quality {
    /// Measures `test` against `reference`; `None` when shapes differ or frames are under 11x11.
    pub fn measure(reference: &Video, test: &Video) -> Option<Self> {
        Some(Self { psnr: metrics::psnr(reference, test)?.min(PSNR_CAP), ssim: metrics::ssim(reference, test)?, ms_ssim: metrics::ms_ssim(reference, test) })
    }

    /// The mean of several (MS-SSIM only when every item has it).
    pub fn mean(items: &[Quality]) -> Option<Self> {
        let n = items.len() as f64;
        let ms: Option<Vec<f64>> = items.iter().map(|q| q.ms_ssim).collect();
        (!items.is_empty()).then(|| Self {
            psnr: items.iter().map(|q| q.psnr).sum::<f64>() / n,
            ssim: items.iter().map(|q| q.ssim).sum::<f64>() / n,
            ms_ssim: ms.map(|v| v.iter().sum::<f64>() / n),
        })
    }
}

/// The tokenizer on one clip.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClipReport {
    pub name: String,
    /// True frames (windows are padded past them).
    pub frames: usize,
    pub windows: usize,
    /// Token bits per true pixel position.
    pub bpp: f64,
    /// Quality from the `k` coarsest layers, `k = 1 ..= layers` (the last is the full decode).
    pub by_layers: Vec<Quality>,
    /// PSNR of each true frame from all layers, dB, capped at [`PSNR_CAP`].
    pub psnr_by_frame: Vec<f64>,
    /// Per `k`, whether the analyzer reads the same `[color, shape, motion]` from the decode
    /// of the `k` coarsest layers as from the original; `None` when it finds no shape in the
    /// original (natural video).
    pub semantics_by_layers: Option<Vec<[bool; 3]>>,
    /// The analyzer's shape in the original and in the decode from all layers, with what it
    /// classified the decode by; `None` when it finds no shape in the original.
    pub shape_reading: Option<ShapeReading>,
    pub h264: Option<H264Clip>,
}

/// The shape the analyzer reads in a clip and in its decode from all layers.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ShapeReading {
    pub original: Shape,
    /// `None` when the analyzer finds no shape in the decode.
    pub decoded: Option<Shape>,
    /// The decode's median fraction of its bounding box filled (squares need 0.89, circles 0.64).
    pub fill: Option<f32>,
    /// The decode's median top-to-bottom width ratio (triangles are below 0.7).
    pub taper: Option<f32>,
}

/// How the decodes of the clips of one shape were read: the rows of the shape confusion
/// matrix, which says what the shape ceiling is lost to.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ShapeConfusion {
    pub original: Shape,
    pub clips: usize,
    pub as_circle: usize,
    pub as_square: usize,
    pub as_triangle: usize,
    /// Decodes in which the analyzer finds no shape.
    pub as_none: usize,
    /// Mean over the decodes with a shape of their bounding-box fill and taper.
    pub mean_fill: Option<f64>,
    pub mean_taper: Option<f64>,
}

impl ShapeConfusion {
    /// One row per shape that occurs among `readings`, in [`Shape::ALL`]'s order.
    pub fn rows(readings: &[ShapeReading]) -> Vec<Self> {
        Shape::ALL
            .into_iter()
            .filter_map(|original| {
                let of: Vec<&ShapeReading> = readings.iter().filter(|r| r.original == original).collect();
                let count = |s: Option<Shape>| of.iter().filter(|r| r.decoded == s).count();
                let mean = |f: &dyn Fn(&ShapeReading) -> Option<f32>| {
                    let v: Vec<f64> = of.iter().filter_map(|r| f(r).map(f64::from)).collect();
                    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
                };
                (!of.is_empty()).then(|| Self {
                    original,
                    clips: of.len(),
                    as_circle: count(Some(Shape::Circle)),
                    as_square: count(Some(Shape::Square)),
                    as_triangle: count(Some(Shape::Triangle)),
                    as_none: count(None),
                    mean_fill: mean(&|r| r.fill),
                    mean_taper: mean(&|r| r.taper),
                })
            })
            .collect()
    }
}

/// How often the analyzer reads from a decode the attributes it reads from the original,
/// over the clips where it found a shape in the original: whether the `k` coarsest layers
/// hold what a prompt asks for (the paper's claim that coarse layers carry the semantics).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Agreement {
    pub clips: usize,
    pub color: f64,
    pub shape: f64,
    pub motion: f64,
}

impl Agreement {
    pub fn mean(per_clip: &[[bool; 3]]) -> Option<Self> {
        let n = per_clip.len();
        let rate = |i: usize| per_clip.iter().filter(|a| a[i]).count() as f64 / n as f64;
        (n > 0).then(|| Self { clips: n, color: rate(0), shape: rate(1), motion: rate(2) })
    }
}

/// Codebook statistics of one layer over every evaluated window.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LayerUsage {
    /// `[t, h, w]` of the layer's grid.
    pub shape: [usize; 3],
    pub bits: usize,
    /// Fraction of the `2^bits` codes used at least once.
    pub usage: f64,
    /// `exp(entropy)` of the id histogram (at most `2^bits`).
    pub perplexity: f64,
}

/// Means of the H.264 baseline over clips.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct H264Summary {
    pub preset: String,
    pub bpp: f64,
    pub stream_bpp: f64,
    pub file_bpp: f64,
    /// Clips whose slices fit the token budget (the rest are at CRF 51).
    pub matched_clips: usize,
    pub quality: Quality,
    /// The analyzer's agreement between the H.264 decodes and the originals, over the clips
    /// with a shape (`None` when there are none): the codec's shape ceiling at the same bits.
    pub semantics: Option<Agreement>,
}

/// Everything `tokenizer eval` reports.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvalReport {
    pub preset: String,
    pub config_sha256: String,
    pub clips: usize,
    pub frames: usize,
    pub height: usize,
    pub width: usize,
    pub fps: f64,
    pub windows: usize,
    pub tokens_per_window: usize,
    /// Token bits over all true pixel positions of all clips.
    pub bpp: f64,
    /// `24 / bpp` (raw RGB24 bits per token bit).
    pub compression_ratio: f64,
    /// Mean over clips of the quality from the `k` coarsest layers, `k = 1 ..= layers`.
    pub mean_by_layers: Vec<Quality>,
    /// Per `k`, the analyzer's agreement between the decode of the `k` coarsest layers and
    /// the original (`None` when no clip has a shape the analyzer finds).
    pub semantics_by_layers: Option<Vec<Agreement>>,
    /// What the analyzer reads the decodes (all layers) of each shape as (empty when no clip
    /// has a shape).
    pub shape_confusion: Vec<ShapeConfusion>,
    /// Why MS-SSIM is missing, when it is.
    pub ms_ssim_note: Option<String>,
    pub layers: Vec<LayerUsage>,
    /// Wall time of encoding every window, and of decoding every window from all layers.
    pub encode_seconds: f64,
    pub decode_seconds: f64,
    pub h264: Option<H264Summary>,
    /// With `EvalOptions::mask`: dynamic encoding's figures.
    pub dynamic: Option<DynamicReport>,
    pub per_clip: Vec<ClipReport>,
}

/// Errors of an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error(transparent)]
    Video(#[from] VideoError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("{0}")]
    Invalid(String),
}

/// `n` clips of the held-out splits of synthetic dataset (`count`, `seed`) at the
/// tokenizer's geometry, named `synth-<index>`.
pub fn synthetic_clips(cfg: &TokenizerConfig, count: usize, seed: u64, n: usize) -> Vec<(String, Video)> {
    match ClipSource::synthetic(count, seed, cfg.frames, cfg.height, cfg.fps) {
        ClipSource::Synthetic { config, val, .. } => {
            val.iter().take(n).map(|&i| (format!("synth-{i}"), synth::item(&config, i).render(&config.render))).collect()
        }
        _ => Vec::new(),
    }
}

/// Up to `n` validation windows of a dataset folder (the validation clips, as in training).
pub fn dataset_clips(cfg: &TokenizerConfig, dir: &Path, n: usize) -> Result<Vec<(String, Video)>, EvalError> {
    if cfg.height != cfg.width {
        return Err(EvalError::Invalid(format!("dataset windows are square; tokenizer '{}' is {}x{}", cfg.name, cfg.width, cfg.height)));
    }
    Ok(match ClipSource::dataset(dir, cfg.frames, cfg.height, cfg.fps)? {
        ClipSource::Synthetic { config, val, .. } => {
            val.iter().take(n).map(|&i| (format!("synth-{i}"), synth::item(&config, i).render(&config.render))).collect()
        }
        ClipSource::Stream(s) => {
            let n = n.min(s.val_len());
            (0..n).map(|i| s.val_window(i).map(|v| (format!("{}#val-{i}", dir.display()), v))).collect::<Result<_, _>>()?
        }
        other => return Err(EvalError::Invalid(format!("{}: not a dataset folder ({})", dir.display(), other.describe()))),
    })
}

/// Evaluates `model` (config `cfg`) on named clips at the tokenizer's frame size.
pub fn evaluate(model: &Tokenizer, cfg: &TokenizerConfig, clips: &[(String, Video)], opts: &EvalOptions) -> Result<EvalReport, EvalError> {
    if clips.is_empty() {
        return Err(EvalError::Invalid("no clips to evaluate".into()));
    }
    if let Some((name, v)) = clips.iter().find(|(_, v)| v.is_empty() || (v.width() as usize, v.height() as usize) != (cfg.width, cfg.height)) {
        return Err(EvalError::Invalid(format!(
            "{name}: {} frames of {}x{}; tokenizer '{}' needs {}x{} frames (decode with its size)",
            v.len(),
            v.width(),
            v.height(),
            cfg.name,
            cfg.width,
            cfg.height
        )));
    }
    let n_layers = cfg.layers.len();
    let mut hist: Vec<Vec<u64>> = cfg.layers.iter().map(|l| vec![0u64; 1usize << l.bits]).collect();
    let (mut enc_s, mut dec_s) = (0f64, 0f64);
    let scratch = opts.h264_preset.as_ref().map(|_| h264::ScratchDir::new("h264")).transpose()?;
    let mut per_clip = Vec::with_capacity(clips.len());
    let mut masked = MaskedTotals::default();
    for (name, clip) in clips {
        let windows = codec::padded_windows(clip, cfg.frames);
        let started = Instant::now();
        let tokens = codec::encode_windows(model, cfg, &windows, opts.batch)?;
        enc_s += started.elapsed().as_secs_f64();
        for w in &tokens {
            for (h, l) in hist.iter_mut().zip(&w.layers) {
                for &id in &l.ids {
                    if let Some(c) = h.get_mut(id as usize) {
                        *c += 1;
                    }
                }
            }
        }
        let mut by_layers = Vec::with_capacity(n_layers);
        let wanted = analyze(clip).attributes();
        let mut semantics = wanted.map(|_| Vec::with_capacity(n_layers));
        let mut shape_reading = None;
        let mut psnr_by_frame = Vec::new();
        for k in 1..=n_layers {
            let started = Instant::now();
            let decoded = codec::decode_windows(model, &tokens, k, opts.batch, clip.fps())?;
            if k == n_layers {
                dec_s += started.elapsed().as_secs_f64();
            }
            let recon = codec::join_windows(&decoded, clip.len(), clip.fps())?;
            by_layers.push(Quality::measure(clip, &recon).ok_or_else(|| EvalError::Invalid(format!("{name}: reconstruction has another shape")))?);
            if k == n_layers {
                psnr_by_frame = metrics::psnr_by_frame(clip, &recon).unwrap_or_default().into_iter().map(|p| p.min(PSNR_CAP)).collect();
            }
            if let (Some(want), Some(v)) = (wanted, semantics.as_mut()) {
                let got = analyze(&recon);
                v.push(got.agrees_with(&want));
                if k == n_layers {
                    shape_reading = Some(ShapeReading { original: want.shape, decoded: got.shape, fill: got.fill, taper: got.taper });
                }
            }
        }
        if let Some((mcfg, fills)) = &opts.mask {
            masked.add_clip(model, cfg, clip, &tokens, mcfg, fills, opts.batch)?;
        }
        let bits = tokens.iter().flat_map(|w| &w.layers).map(|l| l.ids.len() * l.bits).sum::<usize>() as f64;
        let h264 = match (&opts.h264_preset, &scratch) {
            (Some(preset), Some(dir)) => Some(h264::h264_at_bits(clip, wanted.as_ref(), bits, preset, &dir.0)?),
            _ => None,
        };
        let pixels = (clip.len() * cfg.height * cfg.width) as f64;
        per_clip.push(ClipReport {
            name: name.clone(),
            frames: clip.len(),
            windows: windows.len(),
            bpp: bits / pixels,
            by_layers,
            psnr_by_frame,
            semantics_by_layers: semantics,
            shape_reading,
            h264,
        });
    }
    let frames: usize = per_clip.iter().map(|c| c.frames).sum();
    let windows: usize = per_clip.iter().map(|c| c.windows).sum();
    let total_bits: f64 = per_clip.iter().map(|c| c.bpp * (c.frames * cfg.height * cfg.width) as f64).sum();
    let bpp = total_bits / (frames * cfg.height * cfg.width) as f64;
    let mean_by_layers = (0..n_layers)
        .map(|k| Quality::mean(&per_clip.iter().map(|c| c.by_layers[k]).collect::<Vec<_>>()))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| EvalError::Invalid("no clips measured".into()))?;
    let with_shape: Vec<&Vec<[bool; 3]>> = per_clip.iter().filter_map(|c| c.semantics_by_layers.as_ref()).collect();
    let semantics_by_layers = (0..n_layers).map(|k| Agreement::mean(&with_shape.iter().map(|v| v[k]).collect::<Vec<_>>())).collect::<Option<Vec<_>>>();
    let shape_confusion = ShapeConfusion::rows(&per_clip.iter().filter_map(|c| c.shape_reading).collect::<Vec<_>>());
    let ms_ssim_note = mean_by_layers
        .first()
        .and_then(|q| q.ms_ssim)
        .is_none()
        .then(|| format!("MS-SSIM n/a: frames are {}x{}; 5 scales need at least {m}x{m}", cfg.width, cfg.height, m = metrics::MS_SSIM_MIN_SIDE));
    let layers = hist
        .iter()
        .zip(&cfg.layers)
        .map(|(h, l)| {
            let (usage, perplexity) = usage_and_perplexity(h);
            LayerUsage { shape: [l.t, l.h, l.w], bits: l.bits, usage, perplexity }
        })
        .collect();
    let h264 = opts.h264_preset.as_ref().and_then(|preset| summarize_h264(preset, &per_clip));
    let dynamic = opts.mask.as_ref().and_then(|(mcfg, _)| masked.report(mcfg, mean_by_layers.last().copied()));
    Ok(EvalReport {
        preset: cfg.name.clone(),
        config_sha256: crate::tokenizer::config_sha256(cfg),
        clips: clips.len(),
        frames,
        height: cfg.height,
        width: cfg.width,
        fps: cfg.fps,
        windows,
        tokens_per_window: cfg.total_tokens(),
        bpp,
        compression_ratio: 24.0 / bpp,
        ms_ssim_note,
        layers,
        encode_seconds: enc_s,
        decode_seconds: dec_s,
        h264,
        dynamic,
        mean_by_layers,
        semantics_by_layers,
        shape_confusion,
        per_clip,
    })
}

/// Dynamic-encoding figures accumulated over clips.
#[derive(Default)]
struct MaskedTotals {
    summary: Option<MaskSummary>,
    /// Per fill strategy, the quality of each clip.
    fills: Vec<(FillStrategy, Vec<Quality>)>,
}

impl MaskedTotals {
    #[allow(clippy::too_many_arguments)]
    fn add_clip(
        &mut self,
        model: &Tokenizer,
        cfg: &TokenizerConfig,
        clip: &Video,
        tokens: &[crate::tokenizer::tokens::TokenWindow],
        mcfg: &MaskConfig,
        fills: &[FillStrategy],
        batch: usize,
    ) -> Result<(), EvalError> {
        let mut windows = tokens.to_vec();
        let s = masked_codec::mask_windows(&mut windows, mcfg, cfg.frames * cfg.height * cfg.width)?;
        match &mut self.summary {
            Some(total) => total.merge(&s),
            None => self.summary = Some(s),
        }
        for &fill in fills {
            let decoded = masked_codec::decode_windows_masked(model, &windows, cfg.layers.len(), fill, batch, clip.fps())?;
            let recon = codec::join_windows(&decoded, clip.len(), clip.fps())?;
            let q = Quality::measure(clip, &recon).ok_or_else(|| EvalError::Invalid("masked reconstruction has another shape".into()))?;
            match self.fills.iter_mut().find(|(f, _)| *f == fill) {
                Some((_, v)) => v.push(q),
                None => self.fills.push((fill, vec![q])),
            }
        }
        Ok(())
    }

    fn report(&self, mcfg: &MaskConfig, unmasked: Option<Quality>) -> Option<DynamicReport> {
        let summary = self.summary.clone()?;
        Some(DynamicReport {
            tolerance: mcfg.tolerance,
            mask_ratio: summary.ratio(),
            tokens_saved: summary.saved(),
            bpp: summary.bpp(),
            dense_bpp: summary.dense_bpp(),
            summary,
            unmasked: unmasked?,
            fills: self.fills.iter().filter_map(|(f, q)| Some(FillQuality { fill: f.name().into(), quality: Quality::mean(q)? })).collect(),
        })
    }
}

fn summarize_h264(preset: &str, clips: &[ClipReport]) -> Option<H264Summary> {
    let runs: Vec<&H264Clip> = clips.iter().filter_map(|c| c.h264.as_ref()).collect();
    let n = runs.len() as f64;
    let quality = Quality::mean(&runs.iter().map(|r| r.quality).collect::<Vec<_>>())?;
    Some(H264Summary {
        preset: preset.to_string(),
        bpp: runs.iter().map(|r| r.bpp).sum::<f64>() / n,
        stream_bpp: runs.iter().map(|r| r.stream_bpp).sum::<f64>() / n,
        file_bpp: runs.iter().map(|r| r.file_bpp).sum::<f64>() / n,
        matched_clips: runs.iter().filter(|r| r.matched).count(),
        quality,
        semantics: Agreement::mean(&runs.iter().filter_map(|r| r.semantics).collect::<Vec<_>>()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_rows_count_each_reading_under_its_original() {
        let r = |original, decoded, fill| ShapeReading { original, decoded, fill, taper: fill.map(|_| 1.0) };
        let rows = ShapeConfusion::rows(&[
            r(Shape::Square, Some(Shape::Square), Some(0.95)),
            r(Shape::Square, Some(Shape::Circle), Some(0.75)),
            r(Shape::Square, None, None),
            r(Shape::Triangle, Some(Shape::Triangle), Some(0.5)),
        ]);
        assert_eq!(rows.len(), 2, "no row for a shape with no clips: {rows:?}");
        let sq = rows.iter().find(|c| c.original == Shape::Square).unwrap();
        assert_eq!((sq.clips, sq.as_square, sq.as_circle, sq.as_triangle, sq.as_none), (3, 1, 1, 0, 1));
        assert!((sq.mean_fill.unwrap() - 0.85).abs() < 1e-6, "the mean is over decodes with a shape: {sq:?}");
        assert_eq!(rows[0].original, Shape::Square, "rows follow Shape::ALL; circle has none here");
    }
}

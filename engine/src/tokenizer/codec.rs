//! Videos to token files and back: any clip the data layer reads is resampled to the
//! tokenizer's fps and size, cut into non-overlapping windows of its frame count (the last one
//! padded by repeating its last frame), and each window is encoded to ids; decoding turns the
//! ids of the `k` coarsest layers back into frames and drops the padding.
//!
//! The steps are separate functions ([`padded_windows`], [`encode_windows`],
//! [`decode_windows`]) so a step such as a dynamic-encoding mask can act on the
//! [`TokenFile`] between encoding and writing, or between reading and decoding.

use std::path::{Path, PathBuf};

use burn::prelude::*;

use super::config::TokenizerConfig;
use super::dynamic::FillStrategy;
use super::model::Tokenizer;
use super::tokens::{TokenFile, TokenFileError, TokenLayer, TokenWindow};
use crate::checkpoint::{self, CheckpointError};
use crate::tensor::{self, ReadError, to_tensor, to_videos};
use crate::video::{self, DecodeOptions, ExportMetadata, Video, VideoError};

/// Windows encoded or decoded per forward pass.
pub const DEFAULT_BATCH: usize = 4;

/// Errors of encoding and decoding; each names the file involved and the fix.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error(transparent)]
    Video(#[from] VideoError),
    #[error(transparent)]
    Tokens(#[from] TokenFileError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{0}")]
    Invalid(String),
}

fn model_device(model: &Tokenizer) -> Device {
    model.devices().first().cloned().unwrap_or_else(Device::flex)
}

/// Decodes `path` with the data layer at the tokenizer's fps and frame size (center crop,
/// then resize), whole length.
pub fn read_video(cfg: &TokenizerConfig, path: &Path) -> Result<Video, CodecError> {
    let opts = DecodeOptions { fps: Some(cfg.fps), size: Some((cfg.width as u32, cfg.height as u32)), ..DecodeOptions::default() };
    Ok(video::decode(path, &opts)?)
}

/// Non-overlapping windows of `frames` frames; the last is padded by repeating the clip's last
/// frame. Empty for an empty clip.
pub fn padded_windows(video: &Video, frames: usize) -> Vec<Video> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < video.len() && frames > 0 {
        let end = (start + frames).min(video.len());
        let mut w = video.slice(start..end);
        while w.len() < frames {
            w.push_frame(video.frame(video.len() - 1));
        }
        out.push(w);
        start = end;
    }
    out
}

/// Decoded windows back to one clip of `frames` frames (padding dropped).
pub fn join_windows(windows: &[Video], frames: usize, fps: f64) -> Result<Video, CodecError> {
    let first = windows.first().ok_or_else(|| CodecError::Invalid("no windows to join".into()))?;
    let mut out = Video::new(first.width(), first.height(), fps);
    for t in 0..frames {
        let w = windows.get(t / first.len().max(1)).ok_or_else(|| CodecError::Invalid(format!("{frames} frames need more windows")))?;
        out.push_frame(w.frame(t % first.len()));
    }
    Ok(out)
}

/// Encodes windows (`cfg.frames x cfg.height x cfg.width` each), `batch` per forward pass:
/// per window, per layer (coarsest first) the ids of its `[t, h, w]` grid.
pub fn encode_windows(model: &Tokenizer, cfg: &TokenizerConfig, windows: &[Video], batch: usize) -> Result<Vec<TokenWindow>, CodecError> {
    let want = (cfg.frames, cfg.height, cfg.width);
    if let Some(w) = windows.iter().find(|w| (w.len(), w.height() as usize, w.width() as usize) != want) {
        return Err(CodecError::Invalid(format!(
            "a window of {} frames of {}x{} does not fit tokenizer '{}' ({} frames of {}x{})",
            w.len(),
            w.width(),
            w.height(),
            cfg.name,
            cfg.frames,
            cfg.width,
            cfg.height
        )));
    }
    let device = model_device(model);
    let mut out = Vec::with_capacity(windows.len());
    for chunk in windows.chunks(batch.max(1)) {
        let enc = model.encode_batch(to_tensor(chunk, &device));
        let mut per: Vec<TokenWindow> = chunk.iter().map(|_| TokenWindow { layers: Vec::new() }).collect();
        for (indices, l) in enc.indices.into_iter().zip(&cfg.layers) {
            let ids = tensor::ids(indices, "token ids")?;
            for (b, w) in per.iter_mut().enumerate() {
                let n = l.tokens();
                let ids = ids.get(b * n..(b + 1) * n).ok_or_else(|| CodecError::Invalid("encoder returned too few ids".into()))?;
                w.layers.push(TokenLayer { shape: [l.t, l.h, l.w], bits: l.bits, ids: ids.to_vec(), mask: None });
            }
        }
        out.extend(per);
    }
    Ok(out)
}

/// Decodes windows from their `layers` coarsest layers, `batch` per forward pass; every
/// window must have the same layer shapes.
pub fn decode_windows(model: &Tokenizer, windows: &[TokenWindow], layers: usize, batch: usize, fps: f64) -> Result<Vec<Video>, CodecError> {
    let device = model_device(model);
    let mut out = Vec::with_capacity(windows.len());
    for chunk in windows.chunks(batch.max(1)) {
        let mut idx = Vec::with_capacity(layers);
        for j in 0..layers {
            let [t, h, w] = chunk[0].layers[j].shape;
            let data: Vec<i64> = chunk.iter().flat_map(|win| win.layers[j].ids.iter().map(|&i| i64::from(i))).collect();
            idx.push(Tensor::<4, Int>::from_data(TensorData::new(data, [chunk.len(), t, h, w]), &device));
        }
        out.extend(to_videos(model.decode_indices(&idx), fps)?);
    }
    Ok(out)
}

/// Encodes a whole clip at the tokenizer's frame size (see the module docs); the token file
/// keeps the clip's own fps (the tokenizer's, for clips from [`read_video`]).
pub fn encode_video(model: &Tokenizer, cfg: &TokenizerConfig, clip: &Video, source: Option<String>) -> Result<TokenFile, CodecError> {
    if clip.is_empty() {
        return Err(CodecError::Invalid(format!("{}: no frames to encode", source.as_deref().unwrap_or("clip"))));
    }
    let windows = encode_windows(model, cfg, &padded_windows(clip, cfg.frames), DEFAULT_BATCH)?;
    Ok(TokenFile {
        preset: cfg.name.clone(),
        config_sha256: super::config_sha256(cfg),
        weights_sha256: None,
        fps: clip.fps(),
        window_frames: cfg.frames,
        height: cfg.height,
        width: cfg.width,
        frames: clip.len(),
        source,
        fill: None,
        windows,
    })
}

/// Reads `input` with the data layer and encodes it.
pub fn encode_file(model: &Tokenizer, cfg: &TokenizerConfig, input: &Path) -> Result<TokenFile, CodecError> {
    let clip = read_video(cfg, input)?;
    encode_video(model, cfg, &clip, Some(input.display().to_string()))
}

/// Decodes a token file (read from `path`) from its `layers` coarsest layers (all when
/// `None`): checks that `cfg` made it and that its layers match, then drops the padding.
/// Layers that carry a dynamic-encoding mask are decoded with their masked positions filled
/// by the file's fill strategy (`repeat` when it names none); see [`decode_tokens_filled`].
pub fn decode_tokens(model: &Tokenizer, cfg: &TokenizerConfig, tokens: &TokenFile, path: &Path, layers: Option<usize>) -> Result<Video, CodecError> {
    decode_tokens_filled(model, cfg, tokens, path, layers, None)
}

/// [`decode_tokens`] with the fill strategy of masked positions chosen by `fill` (over the
/// file's own).
pub fn decode_tokens_filled(
    model: &Tokenizer,
    cfg: &TokenizerConfig,
    tokens: &TokenFile,
    path: &Path,
    layers: Option<usize>,
    fill: Option<FillStrategy>,
) -> Result<Video, CodecError> {
    tokens.check_config(cfg, path)?;
    let n = cfg.layers.len();
    let k = layers.unwrap_or(n);
    if k == 0 || k > n {
        return Err(CodecError::Invalid(format!("--layers {k}: tokenizer '{}' has layers 1..={n}", cfg.name)));
    }
    let shapes_ok =
        tokens.windows.iter().all(|w| w.layers.len() == n && w.layers.iter().zip(&cfg.layers).all(|(a, b)| a.shape == [b.t, b.h, b.w] && a.bits == b.bits));
    if !shapes_ok || (tokens.window_frames, tokens.height, tokens.width) != (cfg.frames, cfg.height, cfg.width) {
        let reason = format!("its layer grids do not match tokenizer '{}' although the checksums agree", cfg.name);
        return Err(TokenFileError::Damaged { path: path.to_path_buf(), reason }.into());
    }
    let masked = tokens.windows.iter().any(|w| w.layers.iter().take(k).any(|l| l.mask.is_some()));
    let decoded = if masked {
        let fill = fill.or(tokens.fill).unwrap_or(FillStrategy::Repeat);
        super::masked_codec::decode_windows_masked(model, &tokens.windows, k, fill, DEFAULT_BATCH, tokens.fps)?
    } else {
        decode_windows(model, &tokens.windows, k, DEFAULT_BATCH, tokens.fps)?
    };
    join_windows(&decoded, tokens.frames, tokens.fps)
}

/// SHA-256 of the weights (`model.bpk`) of the checkpoint at `path` (run or step folder).
pub fn weights_sha256(path: &Path) -> Result<String, CheckpointError> {
    let dir = checkpoint::resolve(path)?;
    Ok(checkpoint::sha256_hex(&checkpoint::read_file(&dir, "model.bpk")?))
}

/// Writes a decoded clip through the export path (MP4/GIF/PNG by extension) with metadata
/// naming the token file, the tokenizer and the layers used; returns the files written.
pub fn export_decoded(
    clip: &Video,
    out: &Path,
    tokens: &TokenFile,
    tokens_path: &Path,
    layers_used: usize,
    weights_sha256: Option<String>,
) -> Result<Vec<PathBuf>, CodecError> {
    let mut meta = ExportMetadata::for_video(clip);
    meta.source = Some(tokens_path.display().to_string());
    if let Some(sha) = weights_sha256 {
        meta.model_checksums.insert("tokenizer".into(), sha);
    }
    let layers_total = tokens.windows.first().map_or(0, |w| w.layers.len());
    meta.extra.insert("tokenizer_preset".into(), tokens.preset.clone().into());
    meta.extra.insert("tokenizer_config_sha256".into(), tokens.config_sha256.clone().into());
    meta.extra.insert("layers_used".into(), layers_used.into());
    meta.extra.insert("layers_total".into(), layers_total.into());
    if let Some(src) = &tokens.source {
        meta.extra.insert("encoded_from".into(), src.clone().into());
    }
    Ok(video::export(clip, out, &meta)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(frames: usize) -> Video {
        let mut v = Video::new(2, 2, 8.0);
        for t in 0..frames {
            v.push_frame(&[t as u8; 12]);
        }
        v
    }

    #[test]
    fn windows_pad_with_the_last_frame_and_join_drops_it() {
        let v = ramp(21);
        let w = padded_windows(&v, 16);
        assert_eq!(w.len(), 2);
        assert_eq!(w[1].len(), 16);
        assert_eq!(w[1].frame(4)[0], 20);
        assert_eq!(w[1].frame(15)[0], 20);
        assert_eq!(join_windows(&w, 21, 8.0).expect("join"), v);
        assert_eq!(padded_windows(&ramp(32), 16).len(), 2);
        assert!(padded_windows(&ramp(0), 16).is_empty());
        assert!(join_windows(&w, 40, 8.0).is_err());
    }
}

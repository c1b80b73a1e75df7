//! Building the generator's training data: every clip of a dataset encoded once by a tokenizer,
//! written as a token cache (the format is `generator/token_cache.rs`). A cache folder holds `cache.json` (header: tokenizer preset and checksum, layers, items
//! with caption and split) and `ids.bin` (u32 LE, `items x tokens`, sequence order: layers
//! coarsest first, each in `(t, h, w)` row-major order). Both are written atomically, the
//! header last. Sources: the synthetic shapes (re-rendered at the tokenizer's geometry) or an
//! imported dataset folder (every whole window of every clip, with the clip's caption).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use burn::prelude::*;

use crate::dataset::index::{DatasetIndex, DatasetKind};
use crate::dataset::shapes::RenderConfig;
use crate::dataset::synth::{self, SynthConfig};
use crate::generator::token_cache::{CacheError, CacheHeader, CacheItem, FORMAT_VERSION, TokenCache, split_name};
use crate::tensor::{self, ReadError, to_tensor};
use crate::tokenizer::{Tokenizer, TokenizerConfig, config_sha256};
use crate::video::{self as video, DecodeOptions, Video, WindowSpec};

/// Encodes clips with `model`: all layers' ids per clip in sequence order.
pub fn encode_clips(model: &Tokenizer, clips: &[Video], device: &Device) -> Result<Vec<Vec<u32>>, ReadError> {
    let x = to_tensor(clips, device);
    let enc = model.encode_batch(x);
    let mut out = vec![Vec::new(); clips.len()];
    for indices in enc.indices {
        let [b, t, h, w] = indices.dims();
        let ids = tensor::ids(indices, "token ids")?;
        for (row, chunk) in out.iter_mut().zip(ids.chunks_exact(t * h * w)).take(b) {
            row.extend_from_slice(chunk);
        }
    }
    Ok(out)
}

/// The synthetic dataset `count` clips of `seed` rendered at the tokenizer's geometry.
pub fn synthetic_config(count: usize, seed: u64, cfg: &TokenizerConfig) -> SynthConfig {
    SynthConfig { count, seed, render: RenderConfig { frames: cfg.frames, size: cfg.height as u32, fps: cfg.fps }, ..SynthConfig::default() }
}

fn header(cfg: &TokenizerConfig, synthetic: Option<SynthConfig>, items: Vec<CacheItem>) -> CacheHeader {
    CacheHeader {
        format_version: FORMAT_VERSION,
        tokenizer: cfg.name.clone(),
        tokenizer_sha256: config_sha256(cfg),
        layers: cfg.layers.clone(),
        synthetic,
        tokenizer_checkpoint: None,
        dataset: None,
        items,
    }
}

/// Clips are encoded this many at a time.
const BATCH: usize = 8;

/// Encodes the synthetic dataset `config` (all splits) with a tokenizer; the clips are
/// rendered at `config.render`, which must be the tokenizer's geometry (see
/// [`synthetic_config`]). `progress(done, total)` is called after each batch; `cancel` stops
/// between batches.
pub fn build_synthetic(
    model: &Tokenizer,
    cfg: &TokenizerConfig,
    config: &SynthConfig,
    device: &Device,
    cancel: &AtomicBool,
    mut progress: impl FnMut(usize, usize),
) -> Result<TokenCache, CacheError> {
    let r = config.render;
    if (r.frames, r.size as usize, r.size as usize) != (cfg.frames, cfg.height, cfg.width) {
        return Err(CacheError::Dataset {
            path: PathBuf::from("<synthetic>"),
            reason: format!(
                "clips of {}x{}x{} do not fit tokenizer '{}' ({}x{}x{}); render at its geometry",
                r.frames, r.size, r.size, cfg.name, cfg.frames, cfg.height, cfg.width
            ),
        });
    }
    let items = synth::items(config);
    let mut ids = Vec::with_capacity(items.len() * cfg.total_tokens());
    for (done, chunk) in items.chunks(BATCH).enumerate() {
        if cancel.load(Ordering::Relaxed) {
            return Err(CacheError::Cancelled);
        }
        let clips: Vec<Video> = chunk.iter().map(|it| it.render(&config.render)).collect();
        ids.extend(encode_clips(model, &clips, device)?.into_iter().flatten());
        progress(((done + 1) * BATCH).min(items.len()), items.len());
    }
    let cached = items
        .iter()
        .map(|it| CacheItem { caption: it.caption.clone(), split: split_name(it.split).into(), index: Some(it.index), source: None, start_frame: None })
        .collect();
    Ok(TokenCache { header: header(cfg, Some(*config), cached), ids })
}

/// Encodes a dataset folder: a synthetic one is re-rendered at the tokenizer's geometry; an
/// imported one is decoded at the tokenizer's fps and size and cut into whole windows of its
/// frame count, each with its clip's caption. Items keep their split; items without one put
/// every tenth window into `val`.
pub fn build_dataset(
    model: &Tokenizer,
    cfg: &TokenizerConfig,
    dir: &Path,
    device: &Device,
    cancel: &AtomicBool,
    mut progress: impl FnMut(usize, usize),
) -> Result<TokenCache, CacheError> {
    let bad = |reason: String| CacheError::Dataset { path: dir.to_path_buf(), reason };
    let index = DatasetIndex::read(dir).map_err(|e| bad(e.to_string()))?;
    if let DatasetKind::Synthetic { config } = &index.header.kind {
        let mut cache = build_synthetic(model, cfg, &synthetic_config(config.count, config.seed, cfg), device, cancel, progress)?;
        cache.header.dataset = Some(dir.display().to_string());
        return Ok(cache);
    }
    let (mut ids, mut items, mut pending, mut window_no) = (Vec::new(), Vec::new(), Vec::<(Video, CacheItem)>::new(), 0usize);
    let total = index.items.len();
    let flush = |pending: &mut Vec<(Video, CacheItem)>, ids: &mut Vec<u32>, items: &mut Vec<CacheItem>| -> Result<(), CacheError> {
        let clips: Vec<Video> = pending.iter().map(|(v, _)| v.clone()).collect();
        if !clips.is_empty() {
            ids.extend(encode_clips(model, &clips, device)?.into_iter().flatten());
            items.extend(pending.drain(..).map(|(_, it)| it));
        }
        Ok(())
    };
    for (n, item) in index.items.iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            return Err(CacheError::Cancelled);
        }
        let Some(rel) = &item.path else { continue };
        if item.caption.trim().is_empty() {
            return Err(bad(format!(
                "item {} ({rel}) has no caption (imported with --captions-optional, which is enough for a tokenizer only); \
                 the generator learns from captions: add a caption and import again",
                item.id
            )));
        }
        // Absolute, relative to the dataset folder, or (as `data import` writes them) to the
        // folder the import ran in.
        let path = if Path::new(rel).is_absolute() || !dir.join(rel).exists() { PathBuf::from(rel) } else { dir.join(rel) };
        let opts = DecodeOptions {
            fps: Some(cfg.fps),
            size: Some((cfg.width as u32, cfg.height as u32)),
            start: item.start.unwrap_or(0.0),
            end: item.end,
            ..DecodeOptions::default()
        };
        let clip = video::decode(&path, &opts).map_err(|e| bad(e.to_string()))?;
        let spec = WindowSpec { frames: cfg.frames, stride: cfg.frames };
        for (w, win) in video::windows(&clip, spec).map_err(|e| bad(e.to_string()))?.enumerate() {
            let split = match item.split {
                Some(s) => split_name(s).to_string(),
                None if window_no % 10 == 9 => "val".into(),
                None => "train".into(),
            };
            window_no += 1;
            let it =
                CacheItem { caption: item.caption.clone(), split, index: None, source: Some(path.display().to_string()), start_frame: Some(w * cfg.frames) };
            pending.push((win, it));
            if pending.len() == BATCH {
                flush(&mut pending, &mut ids, &mut items)?;
            }
        }
        progress(n + 1, total);
    }
    flush(&mut pending, &mut ids, &mut items)?;
    if items.is_empty() {
        return Err(bad(format!("no clip has {} frames at {} fps; add longer clips or train a tokenizer with fewer frames", cfg.frames, cfg.fps)));
    }
    // Fewer than ten windows and no splits given: hold out the last one for validation.
    if items.len() > 1
        && items.iter().all(|it| it.split == "train")
        && let Some(last) = items.last_mut()
    {
        last.split = "val".into();
    }
    let mut cache = TokenCache { header: header(cfg, None, items), ids };
    cache.header.dataset = Some(dir.display().to_string());
    Ok(cache)
}

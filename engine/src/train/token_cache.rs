//! The generator's training data: every clip of a dataset encoded once by a tokenizer.
//! A cache folder holds `cache.json` (header: tokenizer preset and checksum, layers, items
//! with caption and split) and `ids.bin` (u32 LE, `items x tokens`, sequence order: layers
//! coarsest first, each in `(t, h, w)` row-major order). Both are written atomically, the
//! header last. Sources: the synthetic shapes (re-rendered at the tokenizer's geometry) or an
//! imported dataset folder (every whole window of every clip, with the clip's caption).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dataset::index::{DatasetIndex, DatasetKind};
use crate::dataset::shapes::RenderConfig;
use crate::dataset::synth::{self, Split, SynthConfig};
use crate::tokenizer::{LayerConfig, Tokenizer, TokenizerConfig, config_sha256};
use crate::train::data::to_tensor;
use crate::video::{self as video, DecodeOptions, Video, WindowSpec};

/// One cached clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheItem {
    pub caption: String,
    /// `train`, `val`, `heldout_combo` or `heldout_template`.
    pub split: String,
    /// Synthetic item index (when the cache comes from synthetic shapes).
    pub index: Option<usize>,
    /// Source clip and first frame of the window (imported datasets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_frame: Option<usize>,
}

/// Format version of `cache.json`.
pub const FORMAT_VERSION: u32 = 1;
/// The most tokens one cached item may have (the paper's clip is 2,448).
pub const MAX_TOKENS_PER_ITEM: usize = 1 << 16;
/// The largest `cache.json` read (captions of a million items fit).
pub const MAX_HEADER_BYTES: u64 = 512 << 20;

/// `cache.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheHeader {
    pub format_version: u32,
    pub tokenizer: String,
    pub tokenizer_sha256: String,
    pub layers: Vec<LayerConfig>,
    pub synthetic: Option<SynthConfig>,
    /// The tokenizer checkpoint the ids came from (generation decodes with it by default).
    #[serde(default)]
    pub tokenizer_checkpoint: Option<String>,
    /// The dataset folder (imported or synthetic) the clips came from, if any.
    #[serde(default)]
    pub dataset: Option<String>,
    pub items: Vec<CacheItem>,
}

/// A loaded cache.
#[derive(Debug, Clone)]
pub struct TokenCache {
    pub header: CacheHeader,
    /// `items x tokens` ids.
    pub ids: Vec<u32>,
}

/// Errors reading or building a cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{path}: {source}; build the cache with `hitvideo lm cache`")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}; rebuild it with `hitvideo lm cache`")]
    Damaged { path: PathBuf, reason: String },
    #[error("token cache {path} was made by tokenizer '{cache}' ({cache_sha:.12}), not '{want}' ({want_sha:.12}); rebuild it with this tokenizer")]
    WrongTokenizer { path: PathBuf, cache: String, cache_sha: String, want: String, want_sha: String },
    #[error("{path}: {reason}")]
    Dataset { path: PathBuf, reason: String },
    #[error("cancelled")]
    Cancelled,
}

/// Split name as stored.
pub fn split_name(s: Split) -> &'static str {
    match s {
        Split::Train => "train",
        Split::Val => "val",
        Split::HeldoutCombo => "heldout_combo",
        Split::HeldoutTemplate => "heldout_template",
    }
}

impl TokenCache {
    /// Tokens per item.
    pub fn tokens_per_item(&self) -> usize {
        self.header.layers.iter().map(LayerConfig::tokens).sum()
    }

    /// Item count.
    pub fn len(&self) -> usize {
        self.header.items.len()
    }

    /// Whether the cache holds no items.
    pub fn is_empty(&self) -> bool {
        self.header.items.is_empty()
    }

    /// The ids of item `i`.
    pub fn item_ids(&self, i: usize) -> &[u32] {
        let n = self.tokens_per_item();
        self.ids.get(i * n..(i + 1) * n).unwrap_or(&[])
    }

    /// Indices of the items in `split`.
    pub fn split(&self, split: &str) -> Vec<usize> {
        self.header.items.iter().enumerate().filter(|(_, it)| it.split == split).map(|(i, _)| i).collect()
    }

    /// Indices of the items held out of training (every split but `train`).
    pub fn validation_items(&self) -> Vec<usize> {
        self.header.items.iter().enumerate().filter(|(_, it)| it.split != "train").map(|(i, _)| i).collect()
    }

    /// Writes `dir/cache.json` and `dir/ids.bin` atomically (ids first, header last).
    pub fn write(&self, dir: &Path) -> Result<(), CacheError> {
        let io = |path: PathBuf| move |source| CacheError::Io { path, source };
        std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
        let bytes: Vec<u8> = self.ids.iter().flat_map(|v| v.to_le_bytes()).collect();
        crate::fsutil::write_atomic(&dir.join("ids.bin"), &bytes).map_err(io(dir.join("ids.bin")))?;
        let json = serde_json::to_vec_pretty(&self.header).map_err(|e| CacheError::Io { path: dir.join("cache.json"), source: std::io::Error::other(e) })?;
        crate::fsutil::write_atomic(&dir.join("cache.json"), &json).map_err(io(dir.join("cache.json")))
    }

    /// Reads a cache folder, checking sizes and id ranges.
    pub fn read(dir: &Path) -> Result<Self, CacheError> {
        let hp = dir.join("cache.json");
        let hlen = std::fs::metadata(&hp).map_err(|source| CacheError::Io { path: hp.clone(), source })?.len();
        if hlen > MAX_HEADER_BYTES {
            return Err(CacheError::Damaged { path: hp, reason: format!("{hlen} bytes, more than the {MAX_HEADER_BYTES} a cache header may have") });
        }
        let text = std::fs::read(&hp).map_err(|source| CacheError::Io { path: hp.clone(), source })?;
        let header: CacheHeader = serde_json::from_slice(&text).map_err(|e| CacheError::Damaged { path: hp.clone(), reason: e.to_string() })?;
        if header.format_version != FORMAT_VERSION {
            return Err(CacheError::Damaged { path: hp, reason: format!("format version {} (this build reads {FORMAT_VERSION})", header.format_version) });
        }
        // The layers size every buffer below: each is checked before anything is allocated.
        let mut per = 0usize;
        for (j, l) in header.layers.iter().enumerate() {
            let n = [l.t, l.h, l.w].iter().try_fold(1usize, |a, &b| a.checked_mul(b)).filter(|&n| n > 0 && n <= MAX_TOKENS_PER_ITEM);
            match n {
                Some(n) if (1..=24).contains(&l.bits) => per = per.saturating_add(n),
                _ => {
                    return Err(CacheError::Damaged {
                        path: hp,
                        reason: format!(
                            "layer {j}: field `layers` has {}x{}x{} tokens of {} bits (1..=24 bits, 1..={MAX_TOKENS_PER_ITEM} tokens)",
                            l.t, l.h, l.w, l.bits
                        ),
                    });
                }
            }
        }
        if header.layers.is_empty() || per > MAX_TOKENS_PER_ITEM {
            return Err(CacheError::Damaged { path: hp, reason: format!("{per} tokens per item (1..={MAX_TOKENS_PER_ITEM} allowed)") });
        }
        let ip = dir.join("ids.bin");
        let expected = (header.items.len() as u64).checked_mul(per as u64 * 4);
        let found = std::fs::metadata(&ip).map_err(|source| CacheError::Io { path: ip.clone(), source })?.len();
        if expected != Some(found) {
            return Err(CacheError::Damaged { path: ip, reason: format!("{found} bytes, expected {} items x {per} tokens x 4", header.items.len()) });
        }
        let raw = std::fs::read(&ip).map_err(|source| CacheError::Io { path: ip.clone(), source })?;
        if raw.len() as u64 != found {
            return Err(CacheError::Damaged { path: ip, reason: "the file changed while it was read".into() });
        }
        let ids: Vec<u32> = raw.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let cache = Self { header, ids };
        let bits: Vec<usize> = cache.header.layers.iter().flat_map(|l| std::iter::repeat_n(l.bits, l.tokens())).collect();
        for i in 0..cache.len() {
            if let Some((p, &v)) = cache.item_ids(i).iter().enumerate().find(|(p, v)| u64::from(**v) >> bits[*p] != 0) {
                return Err(CacheError::Damaged { path: ip, reason: format!("item {i} token {p} is {v}, beyond {} bits", bits[p]) });
            }
        }
        Ok(cache)
    }

    /// Checks that the cache was made by `cfg`'s tokenizer.
    pub fn check_tokenizer(&self, dir: &Path, cfg: &TokenizerConfig) -> Result<(), CacheError> {
        let sha = config_sha256(cfg);
        if sha != self.header.tokenizer_sha256 {
            return Err(CacheError::WrongTokenizer {
                path: dir.to_path_buf(),
                cache: self.header.tokenizer.clone(),
                cache_sha: self.header.tokenizer_sha256.clone(),
                want: cfg.name.clone(),
                want_sha: sha,
            });
        }
        Ok(())
    }
}

/// Encodes clips with `model`: all layers' ids per clip in sequence order.
pub fn encode_clips(model: &Tokenizer, clips: &[Video], device: &Device) -> Vec<Vec<u32>> {
    let x = to_tensor(clips, device);
    let enc = model.encode(x, 1.0);
    let mut out = vec![Vec::new(); clips.len()];
    for layer in &enc.layers {
        let [b, t, h, w] = layer.indices.dims();
        let ids = layer.indices.clone().into_data().convert::<i64>().try_to_vec::<i64>().unwrap_or_default();
        for (r, row) in out.iter_mut().enumerate().take(b) {
            row.extend(ids[r * t * h * w..(r + 1) * t * h * w].iter().map(|&v| v as u32));
        }
    }
    out
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
        ids.extend(encode_clips(model, &clips, device).into_iter().flatten());
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
    let flush = |pending: &mut Vec<(Video, CacheItem)>, ids: &mut Vec<u32>, items: &mut Vec<CacheItem>| {
        let clips: Vec<Video> = pending.iter().map(|(v, _)| v.clone()).collect();
        if !clips.is_empty() {
            ids.extend(encode_clips(model, &clips, device).into_iter().flatten());
            items.extend(pending.drain(..).map(|(_, it)| it));
        }
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
                flush(&mut pending, &mut ids, &mut items);
            }
        }
        progress(n + 1, total);
    }
    flush(&mut pending, &mut ids, &mut items);
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

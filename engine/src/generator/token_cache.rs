//! The token cache format: a dataset's clips as token ids, the generator's training data.
//! `cache.json` (header: tokenizer preset and checksum, layers, items with caption and split)
//! and `ids.bin` (u32 LE, `items x tokens`, sequence order). Read and written here, checked
//! before anything is allocated; built by `train/token_cache.rs`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dataset::synth::{Split, SynthConfig};
use crate::tokenizer::{LayerConfig, TokenizerConfig, config_sha256};

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
    #[error(transparent)]
    Read(#[from] crate::tensor::ReadError),
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

    /// Reads a cache folder's `cache.json` alone (no ids), checking its size and version.
    pub fn read_header(dir: &Path) -> Result<CacheHeader, CacheError> {
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
        Ok(header)
    }

    /// Reads a cache folder, checking sizes and id ranges.
    pub fn read(dir: &Path) -> Result<Self, CacheError> {
        let header = Self::read_header(dir)?;
        let hp = dir.join("cache.json");
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

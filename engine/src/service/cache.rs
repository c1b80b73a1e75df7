//! A token cache built from a tokenizer checkpoint (`hitvideo lm cache` and the studio's
//! generator runs): every clip of a dataset folder or of the synthetic shapes encoded once,
//! with the tokenizer's checkpoint folder recorded so generation decodes with it by default.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use burn::tensor::Device;

use super::ServiceError;
use crate::checkpoint::{self, CheckpointState};
use crate::generator::token_cache::TokenCache;
use crate::tokenizer::{Tokenizer, TokenizerConfig, load_tokenizer};
use crate::train::token_cache;

/// The clips a cache is built from.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheSource {
    /// An imported dataset folder (every whole window of every clip, with its caption).
    Dataset(PathBuf),
    /// `count` synthetic shapes clips from `seed`, rendered at the tokenizer's geometry.
    Shapes { count: usize, seed: u64 },
}

/// A tokenizer checkpoint opened to encode a cache.
pub struct CacheTokenizer {
    pub model: Tokenizer,
    pub cfg: TokenizerConfig,
    pub state: CheckpointState,
    /// The step folder, absolute: what the cache records.
    pub dir: PathBuf,
}

/// Opens the tokenizer at `path` (a run or step folder).
pub fn open_tokenizer(path: &Path, device: &Device) -> Result<CacheTokenizer, ServiceError> {
    let (model, cfg, state) = load_tokenizer(path, None, device)?;
    let dir = checkpoint::resolve(path)?;
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    Ok(CacheTokenizer { model, cfg, state, dir })
}

/// Encodes `source` with `tok` (progress: clips done, clips in all; `cancel` stops between
/// batches) into a cache that records `tok`'s folder. Nothing is written: see
/// [`TokenCache::write`].
pub fn build(
    tok: &CacheTokenizer,
    source: &CacheSource,
    device: &Device,
    cancel: &AtomicBool,
    progress: impl FnMut(usize, usize),
) -> Result<TokenCache, ServiceError> {
    let mut cache = match source {
        CacheSource::Dataset(dir) => token_cache::build_dataset(&tok.model, &tok.cfg, dir, device, cancel, progress)?,
        CacheSource::Shapes { count, seed } => {
            let synth = token_cache::synthetic_config(*count, *seed, &tok.cfg);
            token_cache::build_synthetic(&tok.model, &tok.cfg, &synth, device, cancel, progress)?
        }
    };
    cache.header.tokenizer_checkpoint = Some(tok.dir.display().to_string());
    Ok(cache)
}

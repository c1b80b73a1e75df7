//! The operations both front ends run, written once: the CLI's commands and the studio's
//! engine-thread jobs call these functions, and phrase their typed errors for their own users
//! (flags in a terminal, buttons in the studio). This is the engine's top layer: it may use
//! every module below it, and nothing in the engine uses it.
//!
//! - `runs`: start, resume or fine-tune a tokenizer or generator run; describe a run folder.
//! - `text`: which text encoder a generator gets (`auto`, `minilm`, `small`) and loading it.
//! - `cache`: a token cache built from a tokenizer checkpoint over a dataset or the shapes.
//! - `reroll`: a clip's tokens checked against the loaded generator before a decode or a
//!   re-roll, and the coarse layers a re-roll keeps.
//! - `tokens`: one clip through a tokenizer for the views: per-layer tokens, decodes from the k
//!   coarsest layers, redundancy masks.

pub mod cache;
pub mod reroll;
pub mod runs;
pub mod text;
pub mod tokens;

use std::path::PathBuf;

use crate::checkpoint::CheckpointError;
use crate::generator::token_cache::CacheError;
use crate::text::TextError;
use crate::train::tokenizer::TrainError;

/// Why an operation could not be done; every message names the file or value and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{}: nothing to resume (no checkpoint yet); start a new run there instead", .0.display())]
    NothingToResume(PathBuf),
    #[error("{}: already holds a run; resume it or choose another run folder", .0.display())]
    RunExists(PathBuf),
    #[error("fine-tuning from {}: {source}", .from.display())]
    FineTune { from: PathBuf, source: CheckpointError },
    #[error("{}: this token cache was made by another tokenizer than the run's; use the run's own cache", .0.display())]
    CacheMismatch(PathBuf),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Text(#[from] TextError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Read(#[from] crate::tensor::ReadError),
}

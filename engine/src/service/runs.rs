//! Starting, resuming and fine-tuning training runs, the same for `hitvideo tokenizer train`,
//! `hitvideo lm train` and the studio's Train view. A run folder holds one run: starting a new
//! run in a folder that has one, or resuming a folder that has none, is refused with a typed
//! error that each front end phrases for its own controls. `describe_run` reads what a run
//! folder holds (the studio's Train view opens runs with it; `hitvideo models describe`).

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use super::ServiceError;
use super::text::EncoderChoice;
use crate::checkpoint::{self, CheckpointError};
use crate::generator::config::GeneratorPreset;
use crate::generator::token_cache::TokenCache;
use crate::generator::{GeneratorConfig, TextConditionConfig};
use crate::tensor::to_videos;
use crate::tokenizer::TokenizerConfig;
use crate::tokenizer::load_tokenizer;
use crate::train::data::ClipSource;
use crate::train::generator::{GeneratorTrainConfig, GeneratorTrainer};
use crate::train::tokenizer::{TokenizerTrainConfig, TokenizerTrainer};
use crate::video::Video;

/// How a tokenizer run begins.
#[derive(Debug, Clone)]
pub enum TokenizerStart {
    /// Continue the run in the folder with its own settings; `steps` may extend it.
    Resume { steps: usize },
    /// A fresh run of `cfg`.
    New { cfg: TokenizerConfig, train: TokenizerTrainConfig },
    /// A fresh run from another run's weights and network config (fine-tuning).
    FineTune { from: PathBuf, train: TokenizerTrainConfig },
}

/// Refuses a new run where one exists and a resume where none does.
pub fn check_folder(out: &Path, resume: bool) -> Result<(), ServiceError> {
    match (resume, checkpoint::resolve(out).is_ok()) {
        (true, false) => Err(ServiceError::NothingToResume(out.to_path_buf())),
        (false, true) => Err(ServiceError::RunExists(out.to_path_buf())),
        _ => Ok(()),
    }
}

/// The trainer of a tokenizer run in `out`.
pub fn start_tokenizer(out: &Path, start: TokenizerStart, device: &Device) -> Result<TokenizerTrainer, ServiceError> {
    check_folder(out, matches!(start, TokenizerStart::Resume { .. }))?;
    Ok(match start {
        TokenizerStart::Resume { steps } => TokenizerTrainer::resume(out, Some(steps), device)?,
        TokenizerStart::New { cfg, train } => TokenizerTrainer::new(cfg, train, device),
        TokenizerStart::FineTune { from, train } => {
            TokenizerTrainer::finetune_from(&from, train, device).map_err(|source| ServiceError::FineTune { from, source })?
        }
    })
}

/// A new generator over a token cache: the preset, the text encoder and the settings a person
/// may change; the tokenizer's layers come from the cache.
#[derive(Debug, Clone)]
pub struct NewGenerator {
    pub cache: PathBuf,
    pub preset: GeneratorPreset,
    pub encoder: EncoderChoice,
    /// Overrides of the preset's token and condition dropout and its RoPE grid.
    pub token_dropout: Option<f64>,
    pub cond_dropout: Option<f64>,
    pub rope_finest_grid: Option<bool>,
    /// The run's settings (its `cache` is set to the cache's absolute path).
    pub train: GeneratorTrainConfig,
}

/// How a generator run begins.
#[derive(Debug, Clone)]
pub enum GeneratorStart {
    /// Continue the run in the folder; `cache` (default: the one it was trained on) must come
    /// from the same tokenizer.
    Resume {
        steps: usize,
        cache: Option<PathBuf>,
    },
    New(Box<NewGenerator>),
}

/// A generator run ready to train: the trainer and its token cache.
pub struct GeneratorRun {
    pub trainer: GeneratorTrainer,
    pub cache: TokenCache,
    pub cache_dir: PathBuf,
}

/// The trainer of a generator run in `out`, MiniLM loaded from `text_model` (default: the model
/// folder) when the generator is conditioned on it.
pub fn start_generator(out: &Path, start: GeneratorStart, text_model: Option<&Path>, device: &Device) -> Result<GeneratorRun, ServiceError> {
    check_folder(out, matches!(start, GeneratorStart::Resume { .. }))?;
    let (trainer, cache_dir) = match start {
        GeneratorStart::Resume { steps, cache } => {
            let dir = checkpoint::resolve(out)?;
            let bytes = checkpoint::read_file(&dir, "config.json")?;
            let cfg = GeneratorConfig::from_json(&bytes).map_err(|e| checkpoint::damaged(&dir, "config.json", e))?;
            let text = cfg.text.load_encoder(text_model, device)?;
            let trainer = GeneratorTrainer::resume(out, Some(steps), text, device)?;
            let cache = cache.unwrap_or_else(|| PathBuf::from(&trainer.train.cache));
            (trainer, cache)
        }
        GeneratorStart::New(new) => {
            let header = TokenCache::read_header(&new.cache)?;
            let encoder = new.encoder.resolve(text_model);
            let mut cfg = GeneratorConfig::preset_for(
                new.preset.name(),
                &header.tokenizer,
                &header.tokenizer_sha256,
                &header.layers,
                TextConditionConfig::for_encoder(encoder.name()),
            )
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
            cfg.token_dropout = new.token_dropout.unwrap_or(cfg.token_dropout);
            cfg.cond_dropout = new.cond_dropout.unwrap_or(cfg.cond_dropout);
            cfg.rope_finest_grid = new.rope_finest_grid.unwrap_or(cfg.rope_finest_grid);
            let cache = std::fs::canonicalize(&new.cache).unwrap_or_else(|_| new.cache.clone());
            let train = new.train.clone().with_cache(cache.display().to_string());
            let text = cfg.text.load_encoder(text_model, device)?;
            (GeneratorTrainer::new(cfg, train, text, device)?, new.cache)
        }
    };
    let cache = TokenCache::read(&cache_dir)?;
    if cache.header.tokenizer_sha256 != trainer.cfg.tokenizer_sha256 {
        return Err(ServiceError::CacheMismatch(cache_dir));
    }
    Ok(GeneratorRun { trainer, cache, cache_dir })
}

/// A tokenizer checkpoint's reconstructions of the first `n` validation clips of `data`.
pub struct Strip {
    /// The checkpoint's step.
    pub step: usize,
    pub originals: Vec<Video>,
    pub recon: Vec<Video>,
}

/// Decodes the first `n` validation clips of `data` with the tokenizer saved at `checkpoint`
/// (the studio shows it after each checkpoint while the trainer goes on).
pub fn reconstruction_strip(checkpoint: &Path, data: &ClipSource, n: usize, device: &Device) -> Result<Strip, ServiceError> {
    let (model, cfg, state) = load_tokenizer(checkpoint, None, device)?;
    let x = data.val_batch(0..n, device).map_err(crate::train::tokenizer::TrainError::from)?;
    let codes = model.encode_batch(x.clone()).codes;
    let recon = to_videos(model.decode_batch(&codes), cfg.fps)?;
    Ok(Strip { step: state.step, originals: to_videos(x, cfg.fps)?, recon })
}

/// What kind of model a run trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    Tokenizer,
    Generator,
}

impl RunKind {
    /// The kind as `state.json` stores it.
    pub fn name(self) -> &'static str {
        match self {
            RunKind::Tokenizer => crate::tokenizer::load::KIND,
            RunKind::Generator => crate::generator::load::KIND,
        }
    }
}

/// What a folder is, by the files the engine writes into each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderKind {
    /// A run folder (a `latest` file) or one of its checkpoints (`state.json`).
    Run,
    /// A dataset folder (`dataset.json`, as `hitvideo data import` writes).
    Dataset,
    /// Neither.
    Other,
}

/// Tells a run from a dataset without reading either.
pub fn folder_kind(dir: &Path) -> FolderKind {
    if dir.join("latest").is_file() || dir.join("state.json").is_file() {
        FolderKind::Run
    } else if dir.join(crate::dataset::index::HEADER_FILE).is_file() {
        FolderKind::Dataset
    } else {
        FolderKind::Other
    }
}

/// A run found on disk: what it trains, where it stands, and the settings it was started with.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    /// The run folder (the one holding `latest` and the step-* checkpoints).
    pub dir: PathBuf,
    pub kind: RunKind,
    pub preset: String,
    /// Step of the newest checkpoint (the one `latest` names).
    pub step: usize,
    /// The checkpoint `latest` names.
    pub latest: PathBuf,
    /// Steps the run was set to reach (its `train.json`), when readable.
    pub steps: Option<usize>,
    /// Its batch size (its `train.json`), when readable.
    pub batch: Option<usize>,
    /// Its micro-batches per step (its `train.json`; 1 in runs from before accumulation).
    pub accumulate: Option<usize>,
    /// Its checkpoints, oldest first: (step, folder).
    pub checkpoints: Vec<(usize, PathBuf)>,
    /// Generator runs: the tokenizer checkpoint its token cache came from, if recorded.
    pub tokenizer: Option<PathBuf>,
}

/// Why a folder cannot be described as a run.
#[derive(Debug, thiserror::Error)]
pub enum RunInfoError {
    #[error("{}: not a training run (no `latest` file and no step-*/state.json); choose a run folder made by `hitvideo tokenizer train`, `lm train` or the studio's Train view", .0.display())]
    NotARun(PathBuf),
    #[error("{}: a single checkpoint, not a run folder (no `latest` file beside it), so it cannot be resumed; load it for inference, or start a new run", .0.display())]
    SingleCheckpoint(PathBuf),
    #[error("{}: a run of kind '{kind}', which cannot be trained further here (tokenizers and generators can); choose a tokenizer or generator run folder", .dir.display())]
    Kind { dir: PathBuf, kind: String },
    #[error("{}: holds a {other} checkpoint beside {kind} ones ({}); the run folder is mixed up — move that checkpoint out", .dir.display(), .checkpoint.display())]
    Mixed { dir: PathBuf, kind: String, other: String, checkpoint: PathBuf },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

fn json_usize(v: &serde_json::Value, key: &str) -> Option<usize> {
    v.get(key).and_then(serde_json::Value::as_u64).and_then(|n| usize::try_from(n).ok())
}

/// Reads the run in `path` (a run folder, or one of its step-* folders: then its run folder).
/// Only the small JSON files of the checkpoints are read (no weights), so a UI thread may call it.
pub fn describe_run(path: &Path) -> Result<RunInfo, RunInfoError> {
    let dir = if path.join("latest").is_file() {
        path.to_path_buf()
    } else if path.join("state.json").is_file() {
        match path.parent().filter(|p| p.join("latest").is_file()) {
            Some(parent) => parent.to_path_buf(),
            None => return Err(RunInfoError::SingleCheckpoint(path.to_path_buf())),
        }
    } else {
        return Err(RunInfoError::NotARun(path.to_path_buf()));
    };
    let latest = checkpoint::resolve(&dir)?;
    let state = checkpoint::read_state_any(&latest)?;
    let kind = match state.kind.as_str() {
        k if k == RunKind::Tokenizer.name() => RunKind::Tokenizer,
        k if k == RunKind::Generator.name() => RunKind::Generator,
        other => return Err(RunInfoError::Kind { dir, kind: other.to_string() }),
    };
    let mut checkpoints = Vec::new();
    for ck in checkpoint::list(&dir) {
        let s = checkpoint::read_state_any(&ck)?;
        if s.kind != state.kind {
            return Err(RunInfoError::Mixed { dir, kind: state.kind, other: s.kind, checkpoint: ck });
        }
        checkpoints.push((s.step, ck));
    }
    let train: serde_json::Value = checkpoint::read_file(&latest, "train.json").ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    // A generator's tokenizer: recorded by the token cache it trains on (its `train.json`
    // names it; the studio keeps it in the run folder).
    let cache_dir = train.get("cache").and_then(serde_json::Value::as_str).map_or_else(|| dir.join("cache"), PathBuf::from);
    let tokenizer =
        (kind == RunKind::Generator).then(|| TokenCache::read_header(&cache_dir).ok()).flatten().and_then(|h| h.tokenizer_checkpoint.map(PathBuf::from));
    Ok(RunInfo {
        dir,
        kind,
        preset: state.preset,
        step: state.step,
        latest,
        steps: json_usize(&train, "steps"),
        batch: json_usize(&train, "batch"),
        accumulate: json_usize(&train, "accumulate").or(train.is_object().then_some(1)),
        checkpoints,
        tokenizer,
    })
}

//! Starting, resuming and fine-tuning training runs, the same for `hitvideo tokenizer train`,
//! `hitvideo lm train` and the studio's Train view. A run folder holds one run: starting a new
//! run in a folder that has one, or resuming a folder that has none, is refused with a typed
//! error that each front end phrases for its own controls.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use super::ServiceError;
use super::text::{EncoderChoice, load_encoder};
use crate::checkpoint;
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
    pub preset: String,
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
            let text = load_encoder(&cfg.text.encoder, text_model, device)?;
            let trainer = GeneratorTrainer::resume(out, Some(steps), text, device)?;
            let cache = cache.unwrap_or_else(|| PathBuf::from(&trainer.train.cache));
            (trainer, cache)
        }
        GeneratorStart::New(new) => {
            let header = TokenCache::read(&new.cache)?.header;
            let encoder = new.encoder.resolve(text_model);
            let mut cfg = GeneratorConfig::preset_for(
                &new.preset,
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
            let text = load_encoder(encoder.name(), text_model, device)?;
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
    let enc = model.encode(x.clone(), 1.0);
    let codes: Vec<_> = enc.layers.into_iter().map(|o| o.codes).collect();
    let recon = to_videos(model.decode(&codes), cfg.fps)?;
    Ok(Strip { step: state.step, originals: to_videos(x, cfg.fps)?, recon })
}

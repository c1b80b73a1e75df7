//! Text to clip: a trained generator, the tokenizer its tokens belong to and (for MiniLM
//! conditioning) the frozen text encoder, loaded together and checked against each other;
//! prompts x seeds in one batch; decoding (whole clips, or coarse previews after each layer);
//! and the reproducibility metadata of every export.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use burn::prelude::*;

use super::config::GeneratorConfig;
use super::generate::{GenEvent, GenerateError, GenerateSpec, generate, split_layers};
use super::model::{Generator, TextInput};
use super::sample::{CfgSchedule, SamplingConfig};
use super::token_cache::TokenCache;
use crate::checkpoint::{self, CheckpointError};
use crate::generator::load_generator;
use crate::tensor::{ReadError, to_videos};
use crate::text::{MiniLm, TextEncoder, TextError};
use crate::tokenizer::load_tokenizer;
use crate::tokenizer::{Tokenizer, TokenizerConfig, config_sha256};
use crate::video::{ExportMetadata, Video};

/// Why a pipeline could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Text(#[from] TextError),
    #[error(transparent)]
    Generate(#[from] GenerateError),
    #[error("{}: this generator was trained on tokens of tokenizer '{gen_tok}' ({gen_sha:.12}), but the tokenizer given is '{tok}' ({tok_sha:.12}); pass the tokenizer checkpoint its token cache was built with", .path.display())]
    Mismatch { path: PathBuf, gen_tok: String, gen_sha: String, tok: String, tok_sha: String },
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{}: the run does not record which tokenizer made its tokens (no readable token cache); pass --tokenizer", .0.display())]
    NoTokenizer(PathBuf),
}

/// What to generate: one output row per (prompt, seed), prompts outer.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipRequest {
    pub prompts: Vec<String>,
    /// Replaces the learned unconditional prefix of CFG for every row.
    pub negative: Option<String>,
    pub seeds: Vec<u64>,
    pub sampling: SamplingConfig,
    pub cfg: CfgSchedule,
    /// Re-roll: the ids to keep (the first whole layers), one row for all rows or one per row.
    pub keep: Vec<Vec<u32>>,
    pub use_cache: bool,
}

impl ClipRequest {
    /// A fresh request (nothing kept) at a constant CFG `scale`, as sweeps and evaluations
    /// make them.
    pub fn at_cfg(prompts: Vec<String>, seeds: Vec<u64>, scale: f32, sampling: &SamplingConfig, negative: Option<String>, use_cache: bool) -> Self {
        Self { prompts, negative, seeds, sampling: sampling.clone(), cfg: CfgSchedule::Constant { scale }, keep: Vec::new(), use_cache }
    }

    /// `(prompt, seed)` of every output row.
    pub fn rows(&self) -> Vec<(&str, u64)> {
        self.prompts.iter().flat_map(|p| self.seeds.iter().map(move |&s| (p.as_str(), s))).collect()
    }
}

/// A loaded generator, tokenizer and text encoder.
pub struct Pipeline {
    pub model: Generator,
    pub cfg: GeneratorConfig,
    pub tokenizer: Tokenizer,
    pub tok_cfg: TokenizerConfig,
    /// `generator`, `tokenizer` (SHA-256 of the weights files) and `text_encoder` (its name).
    pub checksums: BTreeMap<String, String>,
    pub generator_dir: PathBuf,
    pub tokenizer_dir: PathBuf,
    minilm: Option<MiniLm>,
    device: Device,
}

/// The tokenizer checkpoint recorded by a generator run (through its token cache).
pub fn recorded_tokenizer(generator: &Path) -> Option<PathBuf> {
    let dir = checkpoint::resolve(generator).ok()?;
    let train: serde_json::Value = serde_json::from_slice(&checkpoint::read_file(&dir, "train.json").ok()?).ok()?;
    let header = TokenCache::read_header(Path::new(train["cache"].as_str()?)).ok()?;
    header.tokenizer_checkpoint.map(PathBuf::from)
}

impl Pipeline {
    /// The device the models live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Loads the generator at `generator`, the tokenizer at `tokenizer` (default: the one its
    /// token cache records) and, for a MiniLM-conditioned generator, MiniLM from `text_model`
    /// (default: [`crate::text::default_model_dir`]).
    pub fn load(generator: &Path, tokenizer: Option<&Path>, text_model: Option<&Path>, device: &Device) -> Result<Self, PipelineError> {
        let g = load_generator(generator, None, device)?;
        let tok_path = match tokenizer {
            Some(p) => p.to_path_buf(),
            None => recorded_tokenizer(generator).ok_or_else(|| PipelineError::NoTokenizer(generator.to_path_buf()))?,
        };
        let (tok, tok_cfg, _) = load_tokenizer(&tok_path, None, device)?;
        let tok_dir = checkpoint::resolve(&tok_path)?;
        let tok_sha = config_sha256(&tok_cfg);
        if tok_sha != g.cfg.tokenizer_sha256 {
            return Err(PipelineError::Mismatch {
                path: tok_path,
                gen_tok: g.cfg.tokenizer.clone(),
                gen_sha: g.cfg.tokenizer_sha256.clone(),
                tok: tok_cfg.name.clone(),
                tok_sha,
            });
        }
        let minilm = g.cfg.text.load_encoder(text_model, device)?;
        let mut checksums = BTreeMap::new();
        checksums.insert("generator".to_string(), g.weights_sha256.clone());
        checksums.insert("tokenizer".to_string(), checkpoint::sha256_hex(&checkpoint::read_file(&tok_dir, "model.bpk")?));
        checksums.insert("text_encoder".to_string(), minilm.as_ref().map_or_else(|| "small (in the generator)".to_string(), |m| m.name().to_string()));
        Ok(Self {
            model: g.model,
            cfg: g.cfg,
            tokenizer: tok,
            tok_cfg,
            checksums,
            generator_dir: g.dir,
            tokenizer_dir: tok_dir,
            minilm,
            device: device.clone(),
        })
    }

    /// A pipeline from models in memory (untrained ones included, for tests and benchmarks).
    pub fn from_parts(model: Generator, cfg: GeneratorConfig, tokenizer: Tokenizer, tok_cfg: TokenizerConfig, minilm: Option<MiniLm>, device: &Device) -> Self {
        Self {
            model,
            cfg,
            tokenizer,
            tok_cfg,
            checksums: BTreeMap::new(),
            generator_dir: PathBuf::new(),
            tokenizer_dir: PathBuf::new(),
            minilm,
            device: device.clone(),
        }
    }

    /// A copy of the models on `device`: a pipeline loaded from folders is loaded again there
    /// (its text encoder included), one made from parts is moved. `self` is left as it is.
    pub fn copy_to(&self, device: &Device) -> Result<Self, PipelineError> {
        if self.generator_dir.as_os_str().is_empty() {
            let (model, tokenizer) = (self.model.clone().to_device(device), self.tokenizer.clone().to_device(device));
            return Ok(Self::from_parts(model, self.cfg.clone(), tokenizer, self.tok_cfg.clone(), None, device));
        }
        Self::load(&self.generator_dir, Some(&self.tokenizer_dir), None, device)
    }

    /// Encodes prompts with the generator's text encoder (all rows conditional).
    pub fn text_input(&self, prompts: &[&str]) -> Result<TextInput, PipelineError> {
        Ok(match &self.minilm {
            Some(m) => TextInput::from_features(m.encode(prompts, self.cfg.text.max_len.min(m.max_positions()), &self.device)?),
            None => self.model.encode_prompts(prompts, self.cfg.text.max_len)?,
        })
    }

    /// For each prompt longer than the text encoder's limit, a message saying so (the model
    /// sees only its first tokens); empty when every prompt fits.
    pub fn truncation_notes(&self, prompts: &[&str]) -> Result<Vec<String>, PipelineError> {
        // The tokenizers alone say it; no encoder forward pass is needed.
        let (truncated, limit) = match &self.minilm {
            Some(m) => {
                let limit = self.cfg.text.max_len.min(m.max_positions());
                (prompts.iter().map(|p| m.tokenize(p, limit).map(|(_, t)| t)).collect::<Result<Vec<bool>, _>>()?, limit)
            }
            None => match self.model.text_encoder() {
                Some(e) => {
                    let limit = self.cfg.text.max_len.min(e.max_len());
                    (e.prepare(prompts, limit, &self.device)?.truncated, limit)
                }
                None => (Vec::new(), self.cfg.text.max_len),
            },
        };
        Ok(prompts
            .iter()
            .zip(truncated)
            .filter(|(_, t)| *t)
            .map(|(p, _)| {
                let head: String = p.chars().take(40).collect();
                format!("prompt \"{head}…\" is longer than the text encoder's {limit} tokens: only its beginning is used")
            })
            .collect())
    }

    /// Generates every row of `req` as one batch; `on_event` sees the generator's events.
    pub fn generate(&self, req: &ClipRequest, cancel: &AtomicBool, on_event: impl FnMut(GenEvent)) -> Result<Vec<Vec<u32>>, PipelineError> {
        let rows = req.rows();
        if rows.is_empty() {
            return Err(GenerateError::Request("no prompts or no seeds".into()).into());
        }
        let prompts: Vec<&str> = rows.iter().map(|r| r.0).collect();
        let cond = self.text_input(&prompts)?;
        let uncond = match &req.negative {
            Some(n) => Some(self.text_input(&vec![n.as_str(); rows.len()])?),
            None => None,
        };
        let keep = match req.keep.len() {
            1 if rows.len() > 1 => vec![req.keep[0].clone(); rows.len()],
            _ => req.keep.clone(),
        };
        let spec =
            GenerateSpec { sampling: req.sampling.clone(), cfg: req.cfg.clone(), seeds: rows.iter().map(|r| r.1).collect(), keep, use_cache: req.use_cache };
        Ok(generate(&self.model, &self.cfg, &cond, uncond.as_ref(), &spec, cancel, on_event)?)
    }

    /// Decodes the `layers` coarsest layers of each row (rows hold tokens in sequence order, at
    /// least those layers); a coarse preview when `layers` is less than all.
    pub fn decode(&self, rows: &[Vec<u32>], layers: usize) -> Result<Vec<Video>, ReadError> {
        let split: Vec<Vec<Vec<u32>>> = rows.iter().map(|r| split_layers(&self.cfg, r)).collect();
        let mut indices = Vec::new();
        for (j, l) in self.cfg.layers.iter().enumerate().take(layers.max(1)) {
            let data: Vec<i64> = split.iter().flat_map(|s| s[j].iter().map(|&v| i64::from(v))).collect();
            if data.len() != rows.len() * l.tokens() {
                break;
            }
            indices.push(Tensor::<4, Int>::from_data(TensorData::new(data, [rows.len(), l.t, l.h, l.w]), &self.device));
        }
        if indices.is_empty() {
            return Ok(Vec::new());
        }
        to_videos(self.tokenizer.decode_indices(&indices), self.tok_cfg.fps)
    }

    /// The metadata of row `(prompt, seed)` of `req`, with its `tokens` (so a re-roll can start
    /// from the file).
    pub fn metadata(&self, req: &ClipRequest, prompt: &str, seed: u64, tokens: &[u32], video: &Video) -> ExportMetadata {
        let mut m = ExportMetadata::for_video(video);
        m.prompt = Some(prompt.to_string());
        m.negative_prompt = req.negative.clone();
        m.seed = Some(seed);
        let scales = req.cfg.scales(self.cfg.layers.len()).unwrap_or_default();
        m.cfg = scales.last().copied();
        m.cfg_schedule = Some(req.cfg.clone());
        m.sampler.temperature = Some(req.sampling.temperature);
        m.sampler.top_k = req.sampling.top_k;
        m.sampler.top_p = Some(req.sampling.top_p);
        m.model_checksums = self.checksums.clone();
        let mut extra = BTreeMap::new();
        extra.insert("generator".to_string(), serde_json::json!(self.generator_dir.display().to_string()));
        extra.insert("tokenizer".to_string(), serde_json::json!(self.tokenizer_dir.display().to_string()));
        extra.insert("generator_preset".to_string(), serde_json::json!(self.cfg.name));
        extra.insert("greedy".to_string(), serde_json::json!(req.sampling.greedy));
        extra.insert("cfg_scales".to_string(), serde_json::json!(scales));
        extra.insert("kv_cache".to_string(), serde_json::json!(req.use_cache));
        extra.insert("kept_tokens".to_string(), serde_json::json!(req.keep.first().map_or(0, Vec::len)));
        extra.insert("tokens".to_string(), serde_json::json!(tokens));
        m.extra = extra;
        m
    }
}

/// The tokens an export recorded (see [`Pipeline::metadata`]).
pub fn tokens_from_metadata(meta: &ExportMetadata) -> Option<Vec<u32>> {
    meta.extra.get("tokens")?.as_array()?.iter().map(|v| v.as_u64().and_then(|x| u32::try_from(x).ok())).collect()
}

//! Loading a generator from a run or step folder (`config.json` checked against `state.json`,
//! `model.bpk`), for inference and for the trainer that resumes it.

use std::path::{Path, PathBuf};

use burn::prelude::*;

use super::config::GeneratorConfig;
use super::model::Generator;
use crate::checkpoint::{self, CheckpointError, CheckpointState, damaged, load_module};

/// Checkpoint kind written in `state.json`.
pub const KIND: &str = "generator";

/// Reads `config.json` and checks it against the checksum in `state.json`.
pub fn read_config(dir: &Path, state: &CheckpointState) -> Result<GeneratorConfig, CheckpointError> {
    let bytes = checkpoint::read_file(dir, "config.json")?;
    if checkpoint::sha256_hex(&bytes) != state.config_sha256 {
        return Err(damaged(dir, "config.json", "its checksum does not match state.json"));
    }
    let cfg = GeneratorConfig::from_json(&bytes).map_err(|e| damaged(dir, "config.json", e))?;
    cfg.validate().map_err(|e| damaged(dir, "config.json", e))?;
    Ok(cfg)
}

/// A generator loaded for inference from a run or step folder, with its checkpoint state and
/// the SHA-256 of its weights file (for export metadata).
pub struct LoadedGenerator {
    pub model: Generator,
    pub cfg: GeneratorConfig,
    pub state: CheckpointState,
    pub weights_sha256: String,
    /// The step folder it came from.
    pub dir: PathBuf,
}

/// Loads a generator (weights only) from a run or step folder, checking the kind and, if
/// given, the preset.
pub fn load_generator(path: &Path, preset: Option<&str>, device: &Device) -> Result<LoadedGenerator, CheckpointError> {
    let dir = checkpoint::resolve(path)?;
    let state = checkpoint::read_state(&dir, KIND, preset)?;
    let cfg = read_config(&dir, &state)?;
    let weights = checkpoint::read_file(&dir, "model.bpk")?;
    let weights_sha256 = checkpoint::sha256_hex(&weights);
    let model = load_module(cfg.init(device), &dir, "model.bpk")?;
    Ok(LoadedGenerator { model, cfg, state, weights_sha256, dir })
}

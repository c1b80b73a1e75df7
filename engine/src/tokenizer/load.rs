//! Loading a tokenizer from a run or step folder (`config.json` checked against `state.json`,
//! `model.bpk`), for inference and for the trainers that resume or fine-tune it.

use std::path::Path;

use burn::prelude::*;

use super::config::TokenizerConfig;
use super::model::Tokenizer;
use crate::checkpoint::{self, CheckpointError, CheckpointState, damaged};

/// Checkpoint kind written in `state.json`.
pub const KIND: &str = "tokenizer";

/// Loads a tokenizer (weights only) from a run or step folder, for inference.
pub fn load_tokenizer(path: &Path, preset: Option<&str>, device: &Device) -> Result<(Tokenizer, TokenizerConfig, CheckpointState), CheckpointError> {
    let dir = checkpoint::resolve(path)?;
    let state = checkpoint::read_state(&dir, KIND, preset)?;
    let cfg = read_model_config(&dir, &state)?;
    let model = load_model(cfg.init(device), &dir)?;
    Ok((model, cfg, state))
}

/// Reads `config.json` and checks it against the checksum in `state.json`.
pub fn read_model_config(dir: &Path, state: &CheckpointState) -> Result<TokenizerConfig, CheckpointError> {
    let cfg_bytes = checkpoint::read_file(dir, "config.json")?;
    let cfg = TokenizerConfig::from_json(&cfg_bytes).map_err(|e| damaged(dir, "config.json", e))?;
    if checkpoint::sha256_hex(&cfg_bytes) != state.config_sha256 {
        return Err(damaged(dir, "config.json", "its checksum does not match state.json"));
    }
    cfg.validate().map_err(|e| damaged(dir, "config.json", e))?;
    Ok(cfg)
}

/// Loads `model.bpk`; a checkpoint from before the mask embeddings loads with them at zero.
pub fn load_model(m: Tokenizer, dir: &Path) -> Result<Tokenizer, CheckpointError> {
    m.load_weights(checkpoint::read_file(dir, "model.bpk")?).map_err(|e| damaged(dir, "model.bpk", e))
}

//! Text encoders: prompts → per-token features the generator attends to.
//!
//! Two encoders sit behind one interface, [`TextEncoder`]:
//! - [`MiniLm`]: a frozen pretrained BERT-family encoder (default all-MiniLM-L6-v2) loaded from
//!   a Hugging Face folder (`config.json`, `model.safetensors`, `tokenizer.json`). The app never
//!   downloads it: `scripts/setup` installs it in [`default_model_dir`], and any other folder
//!   with those three files can be chosen.
//! - [`SmallTextEncoder`]: a small trainable encoder with its own byte/word-hash tokenization,
//!   for machines without the pretrained model; the generator trains it jointly.
//!
//! Every prompt first goes through [`normalize_prompt`] (see there for the rules). Prompts
//! longer than `max_len` tokens are truncated and the truncation is reported per prompt in
//! [`TextFeatures::truncated`]; the paper uses [`DEFAULT_MAX_LEN`] = 120 tokens.

mod bert;
mod loader;
mod minilm;
mod prompt;
mod small;

use std::path::{Path, PathBuf};

use burn::prelude::*;

pub use bert::{BertConfig, BertModel};
pub use loader::{HF_KEY_REMAP, load_bert_config, load_bert_weights};
pub use minilm::MiniLm;
pub use prompt::{MAX_PROMPT_CHARS, Prompt, normalize_prompt, validate_prompt};
pub use small::{BOS_ID, PAD_ID, SmallTextEncoder, SmallTextEncoderConfig, TokenBatch};

/// The paper's maximum text length in tokens.
pub const DEFAULT_MAX_LEN: usize = 120;

/// Folder name of the default pretrained encoder inside the model cache.
pub const DEFAULT_MODEL_NAME: &str = "all-MiniLM-L6-v2";

/// Encoded prompts.
#[derive(Debug, Clone)]
pub struct TextFeatures {
    /// `[B, L, D]` token features, right-padded: row `b` is valid for `t < lengths[b]` and zero
    /// beyond. `L` is the longest of `lengths` (at most the `max_len` asked for).
    pub features: Tensor<3>,
    /// Tokens kept per prompt (special tokens included), each in `1..=L`.
    pub lengths: Vec<usize>,
    /// Per prompt: it was longer than `max_len` tokens (or [`MAX_PROMPT_CHARS`] characters)
    /// and its tail was dropped.
    pub truncated: Vec<bool>,
}

impl TextFeatures {
    /// `[B, L]` padding mask, TRUE where a position is padding (the attention-mask convention
    /// of Burn's `attention`: TRUE = not attended).
    pub fn padding_mask(&self) -> Tensor<2, Bool> {
        let [b, l, _] = self.features.dims();
        let device = self.features.device();
        let pad: Vec<bool> = self.lengths.iter().flat_map(|&n| (0..l).map(move |t| t >= n)).collect();
        Tensor::<1, Bool>::from_data(TensorData::new(pad, [b * l]), &device).reshape([b, l])
    }
}

/// A text encoder: prompts in, per-token features out.
pub trait TextEncoder {
    /// Feature width `D`.
    fn dim(&self) -> usize;
    /// A short name for messages, metadata and checkpoints (e.g. `all-MiniLM-L6-v2`).
    fn name(&self) -> &str;
    /// Encodes `prompts` (each normalized by [`normalize_prompt`]; an empty or blank one is an
    /// error) to `[B, L, D]` features on `device`, keeping at most `max_len` tokens per prompt.
    fn encode(&self, prompts: &[&str], max_len: usize, device: &Device) -> Result<TextFeatures, TextError>;
}

/// Errors of text encoding and of loading an encoder; every message names the file or input
/// and the fix.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error("the prompt is empty or only whitespace/control characters; describe the video in words, e.g. \"a red circle moves left\"")]
    EmptyPrompt,
    #[error("prompt {index}: {source}")]
    Prompt { index: usize, source: Box<TextError> },
    #[error("no prompts were given to the {encoder} text encoder; pass at least one")]
    NoPrompts { encoder: String },
    #[error("max_len {max_len} is outside {min}..={max} for the {encoder} text encoder; choose a value in that range (the paper uses {DEFAULT_MAX_LEN})")]
    MaxLen { encoder: String, max_len: usize, min: usize, max: usize },
    #[error(
        "text encoder folder {dir} has no {file}; run scripts/setup to install {DEFAULT_MODEL_NAME} there, or choose a folder with config.json, model.safetensors and tokenizer.json"
    )]
    MissingFile { dir: PathBuf, file: &'static str },
    #[error("cannot read {path}: {source}; check that the file exists and is readable")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a usable BERT config: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("{path}: cannot load the tokenizer: {reason}; use the tokenizer.json that came with the model (run scripts/setup again to restore it)")]
    Tokenizer { path: PathBuf, reason: String },
    #[error("small text encoder config: {reason}; fix the value in the generator's config")]
    SmallConfig { reason: String },
    #[error(
        "{path}: cannot load the weights: {reason}; the file must be the model.safetensors that matches config.json (run scripts/setup again to restore it)"
    )]
    Weights { path: PathBuf, reason: String },
    #[error(transparent)]
    Read(#[from] crate::tensor::ReadError),
}

impl TextError {
    /// Tags an error with the index of the prompt it came from.
    pub(crate) fn at(self, index: usize) -> Self {
        TextError::Prompt { index, source: Box::new(self) }
    }
}

/// The model cache: `$HITVIDEO_MODELS`, else `$XDG_CACHE_HOME/hitvideo/models`, else
/// `$HOME/.cache/hitvideo/models` (empty variables count as unset), the same rule as
/// `scripts/setup`.
pub fn models_dir() -> PathBuf {
    models_dir_from(|name| std::env::var_os(name))
}

/// [`models_dir`]'s rule over any variable lookup.
fn models_dir_from(lookup: impl Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    let var = |name: &str| lookup(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("HITVIDEO_MODELS") {
        return dir;
    }
    let cache = var("XDG_CACHE_HOME").unwrap_or_else(|| var("HOME").unwrap_or_default().join(".cache"));
    cache.join("hitvideo").join("models")
}

/// Where `scripts/setup` installs the default encoder: `models_dir()/all-MiniLM-L6-v2`.
pub fn default_model_dir() -> PathBuf {
    models_dir().join(DEFAULT_MODEL_NAME)
}

/// Whether `dir` holds the three files [`MiniLm::load`] needs.
pub fn is_model_dir(dir: &Path) -> bool {
    ["config.json", "model.safetensors", "tokenizer.json"].iter().all(|f| dir.join(f).is_file())
}

/// Checks `max_len` against `min..=max` for `encoder`.
pub(crate) fn check_max_len(encoder: &str, max_len: usize, min: usize, max: usize) -> Result<(), TextError> {
    if (min..=max).contains(&max_len) { Ok(()) } else { Err(TextError::MaxLen { encoder: encoder.to_string(), max_len, min, max }) }
}

/// Right-pads id rows to the longest: `[B, L]` ids (padding `pad`) on `device`, and the lengths.
pub(crate) fn pad_ids(rows: &[Vec<u32>], pad: u32, device: &Device) -> (Tensor<2, Int>, Vec<usize>) {
    let lengths: Vec<usize> = rows.iter().map(Vec::len).collect();
    let l = lengths.iter().copied().max().unwrap_or(0).max(1);
    let flat: Vec<i64> = rows.iter().flat_map(|r| (0..l).map(move |t| i64::from(r.get(t).copied().unwrap_or(pad)))).collect();
    let ids = Tensor::<1, Int>::from_data(TensorData::new(flat, [rows.len() * l]), device).reshape([rows.len(), l]);
    (ids, lengths)
}

/// `[B, L]` float mask, 1.0 at valid positions and 0.0 at padding.
pub(crate) fn valid_mask(lengths: &[usize], l: usize, device: &Device) -> Tensor<2> {
    let m: Vec<f32> = lengths.iter().flat_map(|&n| (0..l).map(move |t| if t < n { 1.0 } else { 0.0 })).collect();
    Tensor::<1>::from_data(TensorData::new(m, [lengths.len() * l]), device).reshape([lengths.len(), l])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_helpers_agree() {
        let device = Device::flex();
        let (ids, lengths) = pad_ids(&[vec![5, 6, 7], vec![9]], 0, &device);
        assert_eq!(lengths, vec![3, 1]);
        let got: Vec<i64> = ids.into_data().convert::<i64>().try_to_vec().expect("i64 ids");
        assert_eq!(got, vec![5, 6, 7, 9, 0, 0]);
        let m: Vec<f32> = valid_mask(&lengths, 3, &device).into_data().try_to_vec().expect("f32 mask");
        assert_eq!(m, vec![1.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
        let f = TextFeatures { features: Tensor::zeros([2, 3, 4], &device), lengths, truncated: vec![false; 2] };
        let pad: Vec<bool> = f.padding_mask().into_data().try_to_vec().expect("bool mask");
        assert_eq!(pad, vec![false, false, false, false, true, true]);
    }

    #[test]
    fn model_dir_follows_the_setup_script() {
        use std::ffi::OsString;
        let env = |pairs: &'static [(&'static str, &'static str)]| move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| OsString::from(v));
        let got = models_dir_from(env(&[("HITVIDEO_MODELS", "/m"), ("XDG_CACHE_HOME", "/x"), ("HOME", "/h")]));
        assert_eq!(got, PathBuf::from("/m"));
        let got = models_dir_from(env(&[("HITVIDEO_MODELS", ""), ("XDG_CACHE_HOME", "/x"), ("HOME", "/h")]));
        assert_eq!(got, PathBuf::from("/x/hitvideo/models"));
        let got = models_dir_from(env(&[("XDG_CACHE_HOME", ""), ("HOME", "/h")]));
        assert_eq!(got, PathBuf::from("/h/.cache/hitvideo/models"));
        assert!(default_model_dir().ends_with("hitvideo/models/all-MiniLM-L6-v2") || std::env::var_os("HITVIDEO_MODELS").is_some());
    }

    #[test]
    fn max_len_range_is_checked() {
        assert!(check_max_len("x", 3, 3, 512).is_ok());
        let e = check_max_len("x", 2, 3, 512).expect_err("below the range");
        assert!(e.to_string().contains("outside 3..=512"), "{e}");
        assert!(check_max_len("x", 513, 3, 512).is_err());
    }
}

//! [`MiniLm`]: a frozen pretrained BERT-family encoder from a Hugging Face folder (default
//! all-MiniLM-L6-v2), with its own `tokenizer.json` (word pieces, `[CLS] … [SEP]`).

use std::path::{Path, PathBuf};

use burn::prelude::*;
use tokenizers::{Tokenizer, TruncationDirection};

use super::{
    BertConfig, BertModel, TextEncoder, TextError, TextFeatures, check_max_len, load_bert_config, load_bert_weights, normalize_prompt, pad_ids, valid_mask,
};

/// A pretrained BERT encoder and its tokenizer. Its weights are frozen: it only runs forward.
#[derive(Debug)]
pub struct MiniLm {
    model: BertModel,
    config: BertConfig,
    tokenizer: Tokenizer,
    /// Special tokens the tokenizer's post-processor adds to one sequence (`[CLS]`, `[SEP]`).
    added: usize,
    pad_id: u32,
    name: String,
    dir: PathBuf,
    device: Device,
}

impl MiniLm {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir` onto `device`.
    /// Takes about a second on the CPU for MiniLM-L6 (90 MB).
    pub fn load(dir: &Path, device: &Device) -> Result<Self, TextError> {
        for file in ["config.json", "tokenizer.json", "model.safetensors"] {
            if !dir.join(file).is_file() {
                return Err(TextError::MissingFile { dir: dir.to_path_buf(), file });
            }
        }
        let config = load_bert_config(&dir.join("config.json"))?;
        let tok_path = dir.join("tokenizer.json");
        let tok_err = |reason: String| TextError::Tokenizer { path: tok_path.clone(), reason };
        let mut tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| tok_err(e.to_string()))?;
        let pad_id = match tokenizer.get_padding() {
            Some(p) => p.pad_id,
            None => tokenizer.token_to_id("[PAD]").unwrap_or(0),
        };
        // Truncation and padding are done here, per call, so the file's settings are dropped.
        tokenizer.with_truncation(None).map_err(|e| tok_err(e.to_string()))?;
        tokenizer.with_padding(None);
        let vocab = tokenizer.get_vocab_size(true);
        if vocab > config.vocab_size {
            return Err(tok_err(format!("it has {vocab} tokens but config.json's vocab_size is {}", config.vocab_size)));
        }
        let added = tokenizer.get_post_processor().map_or(0, |pp| tokenizers::PostProcessor::added_tokens(pp, false));
        let mut model = config.init(device);
        load_bert_weights(&mut model, &dir.join("model.safetensors"))?;
        let name = dir.file_name().map_or_else(|| "bert".to_string(), |n| n.to_string_lossy().into_owned());
        Ok(Self { model, config, tokenizer, added, pad_id, name, dir: dir.to_path_buf(), device: device.clone() })
    }

    /// The folder the model was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The model's geometry.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// Longest `max_len` this model accepts (its position table).
    pub fn max_positions(&self) -> usize {
        self.config.max_position_embeddings
    }

    /// Word-piece ids of one prompt, `[CLS]` and `[SEP]` included, at most `max_len` of them;
    /// and whether the prompt was truncated (too many tokens, or clamped by
    /// [`normalize_prompt`]). Truncation keeps the first `max_len - 2` word pieces, as Hugging
    /// Face does.
    pub fn tokenize(&self, prompt: &str, max_len: usize) -> Result<(Vec<u32>, bool), TextError> {
        check_max_len(&self.name, max_len, self.added + 1, self.max_positions())?;
        let p = normalize_prompt(prompt)?;
        let tok_err = |e: tokenizers::Error| TextError::Tokenizer { path: self.dir.join("tokenizer.json"), reason: e.to_string() };
        let mut enc = self.tokenizer.encode(p.text.as_str(), false).map_err(tok_err)?;
        let keep = max_len - self.added;
        let truncated = p.clamped || enc.len() > keep;
        enc.truncate(keep, 0, TruncationDirection::Right);
        let enc = self.tokenizer.post_process(enc, None, true).map_err(tok_err)?;
        let ids = enc.get_ids().to_vec();
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= self.config.vocab_size) {
            return Err(TextError::Tokenizer {
                path: self.dir.join("tokenizer.json"),
                reason: format!("token id {bad} is outside the model's vocabulary of {}", self.config.vocab_size),
            });
        }
        Ok((ids, truncated))
    }

    /// Token features on the model's device: `[B, L, D]` (zero past each length), lengths,
    /// truncation flags.
    fn features(&self, prompts: &[&str], max_len: usize) -> Result<TextFeatures, TextError> {
        if prompts.is_empty() {
            return Err(TextError::NoPrompts { encoder: self.name.clone() });
        }
        check_max_len(&self.name, max_len, self.added + 1, self.max_positions())?;
        let mut rows = Vec::with_capacity(prompts.len());
        let mut truncated = Vec::with_capacity(prompts.len());
        for (i, p) in prompts.iter().enumerate() {
            let (ids, t) = self.tokenize(p, max_len).map_err(|e| e.at(i))?;
            rows.push(ids);
            truncated.push(t);
        }
        let (ids, lengths) = pad_ids(&rows, self.pad_id, &self.device);
        let l = ids.dims()[1];
        let hidden = self.model.forward(ids, &lengths);
        let features = hidden * valid_mask(&lengths, l, &self.device).unsqueeze_dim(2);
        Ok(TextFeatures { features, lengths, truncated })
    }

    /// Sentence embeddings as sentence-transformers computes them for this model (its
    /// `modules.json`): the last hidden state mean-pooled over the valid tokens, then L2
    /// normalized. `[B, D]` on the model's device.
    pub fn sentence_embedding(&self, prompts: &[&str], max_len: usize) -> Result<Tensor<2>, TextError> {
        let f = self.features(prompts, max_len)?;
        let counts: Vec<f32> = f.lengths.iter().map(|&n| n as f32).collect();
        let counts = Tensor::<1>::from_data(TensorData::new(counts, [prompts.len()]), &self.device).unsqueeze_dim(1);
        let mean = f.features.sum_dim(1).squeeze_dim::<2>(1) / counts;
        let norm = mean.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
        Ok(mean / norm)
    }
}

impl TextEncoder for MiniLm {
    fn dim(&self) -> usize {
        self.config.hidden_size
    }

    fn name(&self) -> &str {
        &self.name
    }

    /// Runs on the device the model was loaded on and moves the result to `device`.
    fn encode(&self, prompts: &[&str], max_len: usize, device: &Device) -> Result<TextFeatures, TextError> {
        let mut f = self.features(prompts, max_len)?;
        if *device != self.device {
            f.features = f.features.to_device(device);
        }
        Ok(f)
    }
}

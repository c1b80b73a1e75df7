//! [`SmallTextEncoder`]: a small trainable text encoder for machines and vocabularies without
//! the pretrained model. The generator embeds it as a sub-module and trains it jointly.
//!
//! Tokenization never fails on any UTF-8: the prompt is normalized ([`normalize_prompt`]'s
//! rules, without the error) and lowercased; each run of letters/digits is one token, and every
//! other visible character (punctuation, symbol, emoji) is a token of its own. A token's id is
//! the FNV-1a hash of its UTF-8 bytes into `vocab - 2` buckets, after two reserved ids
//! ([`PAD_ID`], [`BOS_ID`]; every sequence starts with `BOS`). Then token + learned position
//! embeddings go through `layers` pre-LN transformer blocks and a final LayerNorm.

use burn::config::Config;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::gelu;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

use super::{DEFAULT_MAX_LEN, TextEncoder, TextError, TextFeatures, check_max_len, normalize_prompt, pad_ids, valid_mask};

/// Padding id (never produced by [`SmallTextEncoder::tokenize`]).
pub const PAD_ID: u32 = 0;
/// Begin-of-sequence id, the first token of every sequence.
pub const BOS_ID: u32 = 1;
const RESERVED: u32 = 2;

/// Geometry of the small text encoder.
#[derive(Config, Debug, PartialEq)]
pub struct SmallTextEncoderConfig {
    /// Token ids: hash buckets plus the 2 reserved ids (at least 3).
    #[config(default = 4096)]
    pub vocab: usize,
    /// Feature width `D`; a multiple of `heads`.
    #[config(default = 128)]
    pub dim: usize,
    /// Transformer blocks (MLP width `2 * dim`).
    #[config(default = 2)]
    pub layers: usize,
    /// Attention heads.
    #[config(default = 4)]
    pub heads: usize,
    /// Longest sequence in tokens (`BOS` included): the position table's size.
    #[config(default = "DEFAULT_MAX_LEN")]
    pub max_len: usize,
}

impl SmallTextEncoderConfig {
    /// Checks the geometry (for configs that come from users or files).
    pub fn validate(&self) -> Result<(), TextError> {
        let bad = |reason: String| Err(TextError::SmallConfig { reason });
        if self.vocab <= RESERVED as usize || self.vocab > u32::MAX as usize {
            return bad(format!("vocab {} must be in 3..={}", self.vocab, u32::MAX));
        }
        if self.dim == 0 || self.heads == 0 || !self.dim.is_multiple_of(self.heads) {
            return bad(format!("dim {} must be a positive multiple of heads {}", self.dim, self.heads));
        }
        if self.max_len < 2 {
            return bad(format!("max_len {} must be at least 2 (BOS and one word)", self.max_len));
        }
        Ok(())
    }

    /// A freshly initialized encoder. Panics if [`validate`](Self::validate) fails.
    pub fn init(&self, device: &Device) -> SmallTextEncoder {
        if let Err(e) = self.validate() {
            panic!("{e}");
        }
        let d = self.dim;
        let blocks = (0..self.layers)
            .map(|_| SmallBlock {
                norm1: LayerNormConfig::new(d).init(device),
                qkv: LinearConfig::new(d, 3 * d).init(device),
                proj: LinearConfig::new(d, d).init(device),
                norm2: LayerNormConfig::new(d).init(device),
                up: LinearConfig::new(d, 2 * d).init(device),
                down: LinearConfig::new(2 * d, d).init(device),
                heads: self.heads,
            })
            .collect();
        SmallTextEncoder {
            tokens: EmbeddingConfig::new(self.vocab, d).init(device),
            positions: EmbeddingConfig::new(self.max_len, d).init(device),
            blocks,
            norm: LayerNormConfig::new(d).init(device),
            vocab: self.vocab,
            dim: self.dim,
            max_len: self.max_len,
        }
    }

    /// Token ids of `prompt` (untruncated, `BOS` first); see the module docs. Deterministic
    /// across runs and machines; never fails.
    pub fn tokenize(&self, prompt: &str) -> Vec<u32> {
        tokenize(prompt, self.vocab)
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn tokenize(prompt: &str, vocab: usize) -> Vec<u32> {
    let buckets = (vocab as u64).saturating_sub(u64::from(RESERVED)).max(1);
    let id = |word: &str| RESERVED + (fnv1a(word.as_bytes()) % buckets) as u32;
    let text = normalize_prompt(prompt).map(|p| p.text).unwrap_or_default().to_lowercase();
    let mut ids = vec![BOS_ID];
    let mut word = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            ids.push(id(&word));
            word.clear();
        }
        if !c.is_whitespace() {
            ids.push(id(c.encode_utf8(&mut [0; 4])));
        }
    }
    if !word.is_empty() {
        ids.push(id(&word));
    }
    ids
}

/// One pre-LN transformer block with padding-masked self-attention.
#[derive(Module, Debug)]
pub struct SmallBlock {
    norm1: LayerNorm,
    qkv: Linear,
    proj: Linear,
    norm2: LayerNorm,
    up: Linear,
    down: Linear,
    heads: usize,
}

impl SmallBlock {
    /// `x` `[B, L, D]`, `mask` `[B, 1, 1, L]` (TRUE = padding key) → `[B, L, D]`.
    pub fn forward(&self, x: Tensor<3>, mask: Tensor<4, Bool>) -> Tensor<3> {
        let [b, l, d] = x.dims();
        let (h, dh) = (self.heads, d / self.heads);
        let qkv = self.qkv.forward(self.norm1.forward(x.clone())).reshape([b, l, 3, h, dh]);
        let part = |i: usize| qkv.clone().slice(s![.., .., i..i + 1, .., ..]).reshape([b, l, h, dh]).swap_dims(1, 2);
        let opts = AttentionModuleOptions { scale: None, softcap: None, is_causal: false };
        let ctx = attention(part(0), part(1), part(2), Some(mask.expand([b, h, l, l])), None, opts);
        let x = x + self.proj.forward(ctx.swap_dims(1, 2).reshape([b, l, d]));
        let mlp = self.down.forward(gelu(self.up.forward(self.norm2.forward(x.clone()))));
        x + mlp
    }
}

/// Tokenized prompts, ready for [`SmallTextEncoder::forward`].
#[derive(Debug, Clone)]
pub struct TokenBatch {
    /// `[B, L]` token ids, right-padded with [`PAD_ID`]; `L` is the longest length.
    pub ids: Tensor<2, Int>,
    /// Tokens per prompt (`BOS` included).
    pub lengths: Vec<usize>,
    /// Per prompt: longer than `max_len` tokens, or clamped by [`normalize_prompt`].
    pub truncated: Vec<bool>,
}

/// The small trainable text encoder.
#[derive(Module, Debug)]
pub struct SmallTextEncoder {
    tokens: Embedding,
    positions: Embedding,
    blocks: Vec<SmallBlock>,
    norm: LayerNorm,
    vocab: usize,
    dim: usize,
    max_len: usize,
}

impl SmallTextEncoder {
    /// Token ids of `prompt`, untruncated, `BOS` first (see the module docs). Never fails.
    pub fn tokenize(&self, prompt: &str) -> Vec<u32> {
        tokenize(prompt, self.vocab)
    }

    /// Longest sequence the encoder takes (its position table).
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Validates and tokenizes `prompts` (at most `max_len` tokens each) for
    /// [`forward`](Self::forward), on `device`.
    pub fn prepare(&self, prompts: &[&str], max_len: usize, device: &Device) -> Result<TokenBatch, TextError> {
        if prompts.is_empty() {
            return Err(TextError::NoPrompts { encoder: self.name().to_string() });
        }
        check_max_len(self.name(), max_len, 2, self.max_len)?;
        let mut rows = Vec::with_capacity(prompts.len());
        let mut truncated = Vec::with_capacity(prompts.len());
        for (i, p) in prompts.iter().enumerate() {
            let clamped = normalize_prompt(p).map_err(|e| e.at(i))?.clamped;
            let mut ids = self.tokenize(p);
            truncated.push(clamped || ids.len() > max_len);
            ids.truncate(max_len);
            rows.push(ids);
        }
        let (ids, lengths) = pad_ids(&rows, PAD_ID, device);
        Ok(TokenBatch { ids, lengths, truncated })
    }

    /// `ids` `[B, L]` right-padded token ids (`L <= max_len`; ids at or past `vocab` are clamped
    /// to the last one), `lengths[b]` valid tokens of row `b` → `[B, L, D]` features, zero past
    /// each length. Differentiable: train it as part of the generator. Panics if `L > max_len`
    /// or `lengths.len() != B` (caller bugs; [`prepare`](Self::prepare) never produces them).
    pub fn forward(&self, ids: Tensor<2, Int>, lengths: &[usize]) -> Tensor<3> {
        let [b, l] = ids.dims();
        assert!(l <= self.max_len, "SmallTextEncoder: {l} tokens exceed max_len {}", self.max_len);
        assert_eq!(lengths.len(), b, "SmallTextEncoder: one length per row");
        let device = ids.device();
        let pos = Tensor::<1, Int>::arange(0..l as i64, &device).reshape([1, l]);
        let mut x = self.tokens.forward(ids.clamp(0, self.vocab as i64 - 1)) + self.positions.forward(pos);
        let pad: Vec<bool> = lengths.iter().flat_map(|&n| (0..l).map(move |t| t >= n.max(1))).collect();
        let mask = Tensor::<1, Bool>::from_data(TensorData::new(pad, [b * l]), &device).reshape([b, 1, 1, l]);
        for block in &self.blocks {
            x = block.forward(x, mask.clone());
        }
        self.norm.forward(x) * valid_mask(lengths, l, &device).unsqueeze_dim(2)
    }
}

impl TextEncoder for SmallTextEncoder {
    fn dim(&self) -> usize {
        self.dim
    }

    fn name(&self) -> &str {
        "small"
    }

    /// Runs on the device of the encoder's parameters and moves the result to `device`.
    fn encode(&self, prompts: &[&str], max_len: usize, device: &Device) -> Result<TextFeatures, TextError> {
        let own = self.tokens.weight.val().device();
        let TokenBatch { ids, lengths, truncated } = self.prepare(prompts, max_len, &own)?;
        let features = self.forward(ids, &lengths);
        let features = if own == *device { features } else { features.to_device(device) };
        Ok(TextFeatures { features, lengths, truncated })
    }
}

#[cfg(test)]
#[path = "small_tests.rs"]
mod tests;

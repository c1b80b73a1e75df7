//! Generator configuration, named presets and the token-sequence layout.
//!
//! A sequence is `[text prefix (left-padded) | BOS | layer 0 tokens | layer 1 tokens | ...]`,
//! video layers coarsest first, each layer in `(t, h, w)` row-major order. The BOS position
//! predicts the first video token; every video position predicts the next one.

use burn::config::Config;

use crate::text::SmallTextEncoderConfig;
use crate::tokenizer::{LayerConfig, TokenizerConfig};

/// How the prompt becomes the prefix.
#[derive(Config, Debug, PartialEq)]
pub struct TextConditionConfig {
    /// `"minilm"`: frozen all-MiniLM-L6-v2 features (384-d), projected; `"small"`: a small
    /// text encoder trained with the generator.
    #[config(default = "\"minilm\".to_string()")]
    pub encoder: String,
    /// Width of the text features entering the projection.
    #[config(default = 384)]
    pub dim: usize,
    /// Maximum prompt tokens (the paper uses 120); longer prompts are truncated and the
    /// truncation reported.
    #[config(default = 120)]
    pub max_len: usize,
    /// Hashed-word vocabulary of the small encoder (ignored for `minilm`).
    #[config(default = 4096)]
    pub small_vocab: usize,
    /// Transformer layers of the small encoder (ignored for `minilm`).
    #[config(default = 2)]
    pub small_layers: usize,
    /// Attention heads of the small encoder (must divide `dim`; ignored for `minilm`).
    #[config(default = 4)]
    pub small_heads: usize,
}

/// Text encoders a generator can be conditioned on.
pub const TEXT_ENCODERS: [&str; 2] = ["minilm", "small"];

impl TextConditionConfig {
    /// The conditioning for `encoder` (`"minilm"`: 384-d frozen features; `"small"`: the
    /// jointly trained encoder at 128-d).
    pub fn for_encoder(encoder: &str) -> Self {
        let dim = if encoder == "small" { 128 } else { 384 };
        Self::new().with_encoder(encoder.to_string()).with_dim(dim)
    }

    /// The embedded small encoder's geometry (meaningful when `encoder == "small"`).
    pub fn small_config(&self) -> SmallTextEncoderConfig {
        SmallTextEncoderConfig::new()
            .with_vocab(self.small_vocab)
            .with_dim(self.dim)
            .with_layers(self.small_layers)
            .with_heads(self.small_heads)
            .with_max_len(self.max_len)
    }

    /// Whether the text encoder is a sub-module of the generator (trained with it).
    pub fn is_small(&self) -> bool {
        self.encoder == "small"
    }

    /// The frozen encoder this condition reads (MiniLM from `model_dir`, default
    /// [`crate::text::default_model_dir`]); `None` for the small encoder, which lives in the
    /// generator.
    pub fn load_encoder(
        &self,
        model_dir: Option<&std::path::Path>,
        device: &burn::tensor::Device,
    ) -> Result<Option<crate::text::MiniLm>, crate::text::TextError> {
        if self.is_small() {
            return Ok(None);
        }
        let dir = model_dir.map_or_else(crate::text::default_model_dir, std::path::Path::to_path_buf);
        crate::text::MiniLm::load(&dir, device).map(Some)
    }
}

/// The coarse-to-fine autoregressive transformer.
#[derive(Config, Debug, PartialEq)]
pub struct GeneratorConfig {
    /// Preset name, for messages and checkpoint checks.
    pub name: String,
    /// Model width.
    pub dim: usize,
    /// Transformer blocks.
    pub depth: usize,
    /// Attention heads (`dim / heads` must be even and split into three RoPE axes).
    pub heads: usize,
    /// Hidden width of the SwiGLU MLP.
    pub mlp_hidden: usize,
    /// Token layers, coarsest first, copied from the tokenizer the generator is trained on.
    pub layers: Vec<LayerConfig>,
    /// The tokenizer preset and config checksum the token ids belong to.
    pub tokenizer: String,
    pub tokenizer_sha256: String,
    /// Text conditioning.
    pub text: TextConditionConfig,
    /// Output heads over more than this many bits are factorized into groups of at most
    /// this many bits (18 bits -> 2 x 9), each with its own softmax.
    #[config(default = 12)]
    pub max_head_bits: usize,
    /// Loss weight of each layer, coarsest first (empty: all 1).
    #[config(default = "Vec::new()")]
    pub loss_weights: Vec<f32>,
    /// Probability of replacing an input video token by a random one during training.
    #[config(default = 0.1)]
    pub token_dropout: f64,
    /// Probability of replacing the prompt by the learned unconditional embedding (for CFG).
    #[config(default = 0.1)]
    pub cond_dropout: f64,
    /// RoPE base.
    #[config(default = 10000.0)]
    pub rope_theta: f64,
    /// 3D RoPE coordinates: `true` places every token at the centre of the region it covers
    /// in units of the finest layer's grid (a fine token and the coarse token above it rotate
    /// alike); `false` (configs saved before it existed) uses each layer's own integer grid.
    #[config(default = false)]
    pub rope_finest_grid: bool,
    /// Global text conditioning: the prompt's mean-pooled features, projected, are added to
    /// every video token's input embedding (a learned null vector for unconditional rows), beside
    /// the attended prefix. A direct path from the prompt to every position, so the generator
    /// learns to follow it from its first steps; `false` in configs saved before it existed.
    #[config(default = false)]
    pub global_text: bool,
    /// RMSNorm epsilon.
    #[config(default = 1e-5)]
    pub norm_eps: f64,
}

/// Named generator presets (sized by the tokenizer they sit on).
pub const PRESETS: [&str; 3] = ["tiny", "medium", "paper"];

/// A named generator preset, parsed once where its name enters (a flag, a setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GeneratorPreset {
    Tiny,
    Medium,
    Paper,
}

impl GeneratorPreset {
    /// Every preset, in [`PRESETS`] order.
    pub const ALL: [GeneratorPreset; 3] = [GeneratorPreset::Tiny, GeneratorPreset::Medium, GeneratorPreset::Paper];

    /// Its name, as configs store it.
    pub fn name(self) -> &'static str {
        match self {
            GeneratorPreset::Tiny => "tiny",
            GeneratorPreset::Medium => "medium",
            GeneratorPreset::Paper => "paper",
        }
    }

    /// Width, blocks and heads.
    fn shape(self) -> (usize, usize, usize) {
        match self {
            GeneratorPreset::Tiny => (128, 4, 4),
            // About 300M parameters: the size timed at the paper's sequence length.
            GeneratorPreset::Medium => (1024, 24, 16),
            GeneratorPreset::Paper => (2048, 24, 16),
        }
    }
}

impl std::fmt::Display for GeneratorPreset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for GeneratorPreset {
    type Err = GeneratorConfigError;
    fn from_str(s: &str) -> Result<Self, GeneratorConfigError> {
        Self::ALL.into_iter().find(|p| p.name() == s).ok_or_else(|| GeneratorConfigError::UnknownPreset(s.to_string()))
    }
}

/// Configuration errors.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeneratorConfigError {
    #[error("unknown generator preset '{0}'; choose one of: {list}", list = PRESETS.join(", "))]
    UnknownPreset(String),
    #[error("generator config '{name}': {reason}")]
    Invalid { name: String, reason: String },
}

impl GeneratorConfig {
    /// A named preset for the token layers of `tok`:
    /// - `tiny`: width 128, 4 blocks, 4 heads (trains on a 2-core CPU; see docs/benchmarks.md);
    /// - `paper`: width 2048, 24 blocks, 16 heads (the Llama-style scale of the paper).
    pub fn preset(name: &str, tok: &TokenizerConfig, text: TextConditionConfig) -> Result<Self, GeneratorConfigError> {
        Self::preset_for(name, &tok.name, &crate::tokenizer::config_sha256(tok), &tok.layers, text)
    }

    /// [`preset`](Self::preset) for token layers known by the tokenizer's name and config
    /// checksum only (as a token cache records them).
    pub fn preset_for(
        name: &str,
        tokenizer: &str,
        tokenizer_sha256: &str,
        layers: &[LayerConfig],
        text: TextConditionConfig,
    ) -> Result<Self, GeneratorConfigError> {
        let (dim, depth, heads) = name.parse::<GeneratorPreset>()?.shape();
        let n = layers.len();
        // Coarse layers carry the semantics: weight them up, the finest layer at 1.
        let loss_weights = (0..n).map(|j| if j + 1 == n { 1.0 } else { 2.0 }).collect();
        let mlp = dim * 8 / 3 / 32 * 32 + 32;
        let cfg = Self::new(name.into(), dim, depth, heads, mlp, layers.to_vec(), tokenizer.into(), tokenizer_sha256.into(), text)
            .with_loss_weights(loss_weights)
            .with_rope_finest_grid(true)
            .with_global_text(true);
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads a config saved beside a checkpoint; fields added since it was written take the
    /// value that reproduces the old behaviour (`rope_finest_grid` and `global_text` false).
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let mut value: serde_json::Value = serde_json::from_slice(bytes)?;
        if let Some(map) = value.as_object_mut() {
            map.entry("rope_finest_grid").or_insert(serde_json::Value::Bool(false));
            map.entry("global_text").or_insert(serde_json::Value::Bool(false));
        }
        serde_json::from_value(value)
    }

    /// Checks head geometry, layers and weights.
    pub fn validate(&self) -> Result<(), GeneratorConfigError> {
        let bad = |reason: String| Err(GeneratorConfigError::Invalid { name: self.name.clone(), reason });
        // Upper bounds first (a config file from elsewhere), each naming its field.
        let limits: [(&str, usize, usize); 9] = [
            ("dim", self.dim, 16_384),
            ("depth", self.depth, 256),
            ("heads", self.heads, 256),
            ("mlp_hidden", self.mlp_hidden, 65_536),
            ("max_head_bits", self.max_head_bits, 20),
            ("layers", self.layers.len(), 16),
            ("text.dim", self.text.dim, 16_384),
            ("text.max_len", self.text.max_len, 4096),
            ("text.small_vocab", self.text.small_vocab, 1 << 20),
        ];
        if let Some((field, v, max)) = limits.iter().find(|(_, v, max)| v > max) {
            return bad(format!("field `{field}` is {v}; at most {max} is allowed"));
        }
        if self.dim == 0 || self.depth == 0 || self.mlp_hidden == 0 || self.max_head_bits == 0 {
            return bad("fields `dim`, `depth`, `mlp_hidden` and `max_head_bits` must be at least 1".into());
        }
        if let Some(l) = self.layers.iter().find(|l| l.t > 1024 || l.h > 8192 || l.w > 8192) {
            return bad(format!("token layer {}x{}x{} is absurdly large", l.t, l.h, l.w));
        }
        if self.layers.iter().map(|l| l.tokens()).sum::<usize>() > 1 << 16 {
            return bad("more than 65536 video tokens in a sequence".into());
        }
        for (field, v) in [("rope_theta", self.rope_theta), ("norm_eps", self.norm_eps)] {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!("field `{field}` is {v}; it must be a positive number"));
            }
        }
        if self.heads == 0 || !self.dim.is_multiple_of(self.heads) {
            return bad(format!("width {} is not a multiple of {} heads", self.dim, self.heads));
        }
        if !self.head_dim().is_multiple_of(2) || self.head_dim() < 6 {
            return bad(format!("head width {} must be even and at least 6 (three RoPE axes)", self.head_dim()));
        }
        if self.layers.is_empty() {
            return bad("no token layers".into());
        }
        if let Some(l) = self.layers.iter().find(|l| l.bits == 0 || l.bits > 24 || l.tokens() == 0) {
            return bad(format!("token layer {}x{}x{} with {} bits is not usable", l.t, l.h, l.w, l.bits));
        }
        if !self.loss_weights.is_empty() && self.loss_weights.len() != self.layers.len() {
            return bad(format!("{} loss weights for {} layers", self.loss_weights.len(), self.layers.len()));
        }
        if !(0.0..1.0).contains(&self.token_dropout) || !(0.0..1.0).contains(&self.cond_dropout) {
            return bad("dropout probabilities must be in [0, 1)".into());
        }
        if let Some(w) = self.loss_weights.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
            return bad(format!("loss weight {w} must be finite and >= 0"));
        }
        if !TEXT_ENCODERS.contains(&self.text.encoder.as_str()) {
            return bad(format!("text encoder '{}' is not one of {}", self.text.encoder, TEXT_ENCODERS.join(", ")));
        }
        if self.text.dim == 0 || self.text.max_len < 2 {
            return bad(format!("text features of width {} and {} tokens are not usable", self.text.dim, self.text.max_len));
        }
        if self.text.is_small() {
            self.text.small_config().validate().map_err(|e| GeneratorConfigError::Invalid { name: self.name.clone(), reason: e.to_string() })?;
        }
        Ok(())
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.dim / self.heads.max(1)
    }

    /// Video tokens in one sequence.
    pub fn video_tokens(&self) -> usize {
        self.layers.iter().map(LayerConfig::tokens).sum()
    }

    /// Loss weight of layer `j`.
    pub fn loss_weight(&self, j: usize) -> f32 {
        self.loss_weights.get(j).copied().unwrap_or(1.0)
    }

    /// Bit groups of layer `j`'s head: one group when `bits <= max_head_bits`, otherwise
    /// near-equal groups of at most `max_head_bits` bits.
    pub fn head_groups(&self, j: usize) -> Vec<usize> {
        head_groups(self.layers[j].bits, self.max_head_bits)
    }

    /// Parameter count (embeddings, blocks and heads; the frozen text encoder excluded).
    pub fn num_params(&self) -> usize {
        let d = self.dim;
        let block = 4 * d * d + 3 * d * self.mlp_hidden + 2 * d;
        let emb: usize = (0..self.layers.len()).map(|j| self.head_groups(j).iter().map(|g| (1usize << g) * d * 2 + (1 << g)).sum::<usize>()).sum();
        let global = if self.global_text { self.text.dim * d + 2 * d } else { 0 };
        self.depth * block + emb + self.text.dim * d + (self.layers.len() + 3) * d + global
    }

    /// Estimated peak training memory at `batch` sequences, bytes (fp32): weights, gradients
    /// and two AdamW moments (16 bytes a parameter), plus what backpropagation keeps per
    /// sequence of `max_len` text and all video tokens: about `8 dim + 4 mlp_hidden` values a
    /// token in each block, two `heads x L x L` attention maps per block, and each layer's
    /// logits and their softmax. An estimate to plan a run, not a measurement
    /// (docs/benchmarks.md compares it with a measured peak).
    pub fn training_memory(&self, batch: usize) -> u64 {
        let l = (self.text.max_len + self.video_tokens()) as u64;
        let (d, m, h) = (self.dim as u64, self.mlp_hidden as u64, self.heads as u64);
        let per_block = l * (8 * d + 4 * m) + 2 * h * l * l;
        let logits: u64 = (0..self.layers.len()).map(|j| self.layers[j].tokens() as u64 * self.head_groups(j).iter().map(|g| 2u64 << g).sum::<u64>()).sum();
        let per_seq = 4 * (self.depth as u64 * per_block + logits + 4 * l * d);
        16 * self.num_params() as u64 + per_seq * batch.max(1) as u64
    }
}

/// Splits `bits` into near-equal groups of at most `max` bits.
pub fn head_groups(bits: usize, max: usize) -> Vec<usize> {
    let n = bits.div_ceil(max.max(1)).max(1);
    (0..n).map(|i| bits / n + usize::from(i < bits % n)).collect()
}

/// Where each video token sits: its layer and `(t, h, w)` within that layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenPos {
    pub layer: usize,
    pub t: usize,
    pub h: usize,
    pub w: usize,
}

/// The positions of all video tokens of a sequence, coarsest layer first.
pub fn token_positions(layers: &[LayerConfig]) -> Vec<TokenPos> {
    let mut out = Vec::new();
    for (layer, l) in layers.iter().enumerate() {
        for t in 0..l.t {
            for h in 0..l.h {
                for w in 0..l.w {
                    out.push(TokenPos { layer, t, h, w });
                }
            }
        }
    }
    out
}

/// Offset of each layer's first token in the video part of the sequence, plus the total.
pub fn layer_offsets(layers: &[LayerConfig]) -> Vec<usize> {
    let mut acc = 0;
    let mut out = vec![0];
    for l in layers {
        acc += l.tokens();
        out.push(acc);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factorized_heads_and_layout() {
        assert_eq!(head_groups(18, 12), vec![9, 9]);
        assert_eq!(head_groups(10, 12), vec![10]);
        assert_eq!(head_groups(13, 6), vec![5, 4, 4]);
        let tok = TokenizerConfig::preset("tiny").expect("preset");
        let cfg = GeneratorConfig::preset("tiny", &tok, TextConditionConfig::new()).expect("preset");
        assert_eq!(cfg.video_tokens(), 308);
        assert_eq!(layer_offsets(&cfg.layers), vec![0, 4, 20, 52, 308]);
        let pos = token_positions(&cfg.layers);
        assert_eq!(pos[3], TokenPos { layer: 0, t: 0, h: 1, w: 1 });
        assert_eq!(pos[4], TokenPos { layer: 1, t: 0, h: 0, w: 0 });
        assert_eq!(pos[20 + 16], TokenPos { layer: 2, t: 1, h: 0, w: 0 });
        assert_eq!(pos[307], TokenPos { layer: 3, t: 3, h: 7, w: 7 });
        let paper = GeneratorConfig::preset("paper", &TokenizerConfig::preset("paper").expect("p"), TextConditionConfig::new()).expect("p");
        assert_eq!(paper.head_groups(3), vec![9, 9]);
        assert!(GeneratorConfig::preset("huge", &tok, TextConditionConfig::new()).is_err());
        let small = GeneratorConfig::preset("tiny", &tok, TextConditionConfig::for_encoder("small")).expect("small text");
        assert_eq!(small.text.small_config().dim, 128);
        let bad = GeneratorConfig::preset("tiny", &tok, TextConditionConfig::for_encoder("small").with_small_heads(3));
        assert!(bad.is_err(), "128-d small encoder with 3 heads must be refused");
        let bad = GeneratorConfig::preset("tiny", &tok, TextConditionConfig::new().with_encoder("bert".into()));
        assert!(bad.expect_err("unknown encoder").to_string().contains("minilm, small"));
    }

    #[test]
    fn training_memory_estimate_grows_with_batch_and_model() {
        let tok = TokenizerConfig::preset("tiny").expect("preset");
        let cfg = GeneratorConfig::preset("tiny", &tok, TextConditionConfig::new()).expect("preset");
        let (one, sixteen) = (cfg.training_memory(1), cfg.training_memory(16));
        assert!(one > 16 * cfg.num_params() as u64);
        // The per-sequence part is linear in the batch.
        assert_eq!(sixteen - one, 15 * (one - 16 * cfg.num_params() as u64));
        let paper = GeneratorConfig::preset("paper", &TokenizerConfig::preset("paper").expect("p"), TextConditionConfig::new()).expect("p");
        assert!(paper.training_memory(1) > 10 * one, "{} vs {one}", paper.training_memory(1));
    }
}

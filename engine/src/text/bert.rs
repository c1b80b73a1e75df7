//! A BERT encoder (the architecture of all-MiniLM-L6-v2 and its family) as Burn modules:
//! word + position + token-type embeddings with LayerNorm, then post-LN transformer layers
//! (self-attention → residual → LayerNorm, erf-GELU MLP → residual → LayerNorm).
//!
//! Parameter names are Burn's own; `loader.rs` maps the Hugging Face checkpoint keys onto them.

use burn::config::Config;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::gelu;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

/// BERT geometry, read from a Hugging Face `config.json` by
/// [`load_bert_config`](super::load_bert_config).
#[derive(Config, Debug, PartialEq)]
pub struct BertConfig {
    /// Word-piece vocabulary size (`vocab_size`).
    pub vocab_size: usize,
    /// Width of every token feature (`hidden_size`), e.g. 384 for MiniLM-L6.
    pub hidden_size: usize,
    /// Transformer layers (`num_hidden_layers`).
    pub num_layers: usize,
    /// Attention heads per layer (`num_attention_heads`); divides `hidden_size`.
    pub num_heads: usize,
    /// Width of the MLP's hidden layer (`intermediate_size`).
    pub intermediate_size: usize,
    /// Longest sequence the position table covers (`max_position_embeddings`).
    pub max_position_embeddings: usize,
    /// Number of token types / segments (`type_vocab_size`).
    pub type_vocab_size: usize,
    /// LayerNorm epsilon (`layer_norm_eps`).
    #[config(default = 1e-12)]
    pub layer_norm_eps: f64,
}

impl BertConfig {
    /// A model with freshly initialized weights (overwritten by
    /// [`load_bert_weights`](super::load_bert_weights)).
    pub fn init(&self, device: &Device) -> BertModel {
        let d = self.hidden_size;
        let norm = || LayerNormConfig::new(d).with_epsilon(self.layer_norm_eps).init(device);
        let embeddings = BertEmbeddings {
            word: EmbeddingConfig::new(self.vocab_size, d).init(device),
            position: EmbeddingConfig::new(self.max_position_embeddings, d).init(device),
            token_type: EmbeddingConfig::new(self.type_vocab_size, d).init(device),
            norm: norm(),
        };
        let layers = (0..self.num_layers)
            .map(|_| BertLayer {
                query: LinearConfig::new(d, d).init(device),
                key: LinearConfig::new(d, d).init(device),
                value: LinearConfig::new(d, d).init(device),
                attn_out: LinearConfig::new(d, d).init(device),
                attn_norm: norm(),
                inter: LinearConfig::new(d, self.intermediate_size).init(device),
                out: LinearConfig::new(self.intermediate_size, d).init(device),
                out_norm: norm(),
                heads: self.num_heads,
            })
            .collect();
        BertModel { embeddings, layers }
    }
}

/// Embeddings: `LayerNorm(word[id] + position[t] + token_type[0])`.
#[derive(Module, Debug)]
pub struct BertEmbeddings {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: LayerNorm,
}

impl BertEmbeddings {
    /// `ids` `[B, L]` (single-segment input: token type 0 everywhere) → `[B, L, D]`.
    pub fn forward(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let [b, l] = ids.dims();
        let device = ids.device();
        let positions = Tensor::<1, Int>::arange(0..l as i64, &device).reshape([1, l]);
        let types = Tensor::<2, Int>::zeros([b, l], &device);
        let x = self.word.forward(ids) + self.position.forward(positions) + self.token_type.forward(types);
        self.norm.forward(x)
    }
}

/// One post-LN transformer layer.
#[derive(Module, Debug)]
pub struct BertLayer {
    query: Linear,
    key: Linear,
    value: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    inter: Linear,
    out: Linear,
    out_norm: LayerNorm,
    heads: usize,
}

impl BertLayer {
    /// `x` `[B, L, D]`, `mask` `[B, 1, 1, L]` (TRUE = padding key, not attended) → `[B, L, D]`.
    pub fn forward(&self, x: Tensor<3>, mask: Tensor<4, Bool>) -> Tensor<3> {
        let [b, l, d] = x.dims();
        let (h, dh) = (self.heads, d / self.heads);
        let split = |t: Tensor<3>| t.reshape([b, l, h, dh]).swap_dims(1, 2);
        let q = split(self.query.forward(x.clone()));
        let k = split(self.key.forward(x.clone()));
        let v = split(self.value.forward(x.clone()));
        let opts = AttentionModuleOptions { scale: None, softcap: None, is_causal: false };
        let ctx = attention(q, k, v, Some(mask.expand([b, h, l, l])), None, opts).swap_dims(1, 2).reshape([b, l, d]);
        let x = self.attn_norm.forward(x + self.attn_out.forward(ctx));
        let mlp = self.out.forward(gelu(self.inter.forward(x.clone())));
        self.out_norm.forward(x + mlp)
    }
}

/// The BERT encoder (no pooler: sentence embeddings mean-pool the last hidden state).
#[derive(Module, Debug)]
pub struct BertModel {
    embeddings: BertEmbeddings,
    layers: Vec<BertLayer>,
}

impl BertModel {
    /// `ids` `[B, L]` right-padded word-piece ids, `lengths[b]` valid tokens of row `b` (the
    /// rest is ignored as attention keys) → last hidden state `[B, L, D]`. Rows past a
    /// sequence's length hold values computed from padding; callers mask them.
    pub fn forward(&self, ids: Tensor<2, Int>, lengths: &[usize]) -> Tensor<3> {
        let [b, l] = ids.dims();
        let device = ids.device();
        let pad: Vec<bool> = lengths.iter().flat_map(|&n| (0..l).map(move |t| t >= n)).collect();
        let mask = Tensor::<1, Bool>::from_data(TensorData::new(pad, [b * l]), &device).reshape([b, 1, 1, l]);
        let mut x = self.embeddings.forward(ids);
        for layer in &self.layers {
            x = layer.forward(x, mask.clone());
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> BertConfig {
        BertConfig::new(50, 8, 2, 2, 16, 12, 2)
    }

    #[test]
    fn shapes_and_padding_independence() {
        let device = Device::flex();
        let model = tiny().init(&device);
        let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![3i64, 7, 9, 0, 4, 5, 0, 0], [2, 4]), &device);
        let out = model.forward(ids, &[3, 2]);
        assert_eq!(out.dims(), [2, 4, 8]);
        // A row's valid outputs do not depend on its padding: compare with the unpadded row.
        let alone = model.forward(Tensor::<2, Int>::from_data(TensorData::new(vec![4i64, 5], [1, 2]), &device), &[2]);
        let padded = out.slice([1..2, 0..2]);
        let diff = (alone - padded).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-5, "padding leaked into valid rows: {diff}");
    }
}

//! The coarse-to-fine text-to-video generator (HiTVideo, arXiv 2503.11513, section 3.3): a
//! Llama-style decoder-only transformer over `[text prefix | BOS | video tokens]`, video tokens
//! ordered coarsest layer first, with 3D RoPE over each token's `(t, h, w)` within its layer, a
//! learned layer embedding, a separate input embedding and output head per layer (factorized
//! into bit groups for large vocabularies), and a learned unconditional prefix for CFG.

use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig, RmsNorm, RmsNormConfig};
use burn::prelude::*;

use super::block::Block;
use super::cache::{KvCache, LayerCache};
use super::config::{GeneratorConfig, TokenPos, head_groups, layer_offsets, token_positions};
use super::loss::split_groups;
use super::rope::{RopeTables, grid_position, layer_position};
use crate::text::{SmallTextEncoder, TextEncoder, TextError, TextFeatures};

/// Input embedding and output head of one token layer (one table and one head per bit group).
#[derive(Module, Debug)]
struct LayerIo {
    embed: Vec<Embedding>,
    head: Vec<Linear>,
    bits: usize,
    max_head_bits: usize,
}

impl LayerIo {
    fn groups(&self) -> Vec<usize> {
        head_groups(self.bits, self.max_head_bits)
    }
}

/// The generator network.
#[derive(Module, Debug)]
pub struct Generator {
    text_proj: Linear,
    /// The learned unconditional prefix (one position), `[1, D]`.
    uncond: Param<Tensor<2>>,
    /// Beginning-of-video embedding, `[1, D]`: its output predicts the first video token.
    bos: Param<Tensor<2>>,
    layer_embed: Embedding,
    io: Vec<LayerIo>,
    blocks: Vec<Block>,
    norm: RmsNorm,
    /// The jointly trained text encoder (`text.encoder == "small"`); `None` when the features
    /// come from a frozen encoder outside the model (MiniLM).
    text_encoder: Option<SmallTextEncoder>,
    /// Global conditioning (`global_text`): projection of the mean-pooled prompt features, and
    /// the null vector `[1, D]` of unconditional rows.
    global_proj: Option<Linear>,
    global_null: Option<Param<Tensor<2>>>,
    heads: usize,
}

/// The prompt side of a batch: text features (right-padded, as text encoders give them),
/// their lengths, and which rows are unconditional.
#[derive(Debug, Clone)]
pub struct TextInput {
    /// `[B, L, D_text]`.
    pub features: Tensor<3>,
    /// Real tokens per row (`<= L`).
    pub lengths: Vec<usize>,
    /// Rows that take the learned unconditional prefix instead of their text.
    pub uncond: Vec<bool>,
}

impl TextInput {
    /// Every row conditional on its encoded prompt.
    pub fn from_features(f: TextFeatures) -> Self {
        let n = f.lengths.len();
        Self { features: f.features, lengths: f.lengths, uncond: vec![false; n] }
    }

    /// `rows` rows that all take the learned unconditional prefix (features unused).
    pub fn unconditional(rows: usize, dim: usize, device: &Device) -> Self {
        Self { features: Tensor::zeros([rows, 1, dim], device), lengths: vec![1; rows], uncond: vec![true; rows] }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.lengths.len()
    }
}

/// A prepared prefix: `[B, P, D]` (left-padded text + BOS), the validity of each position, and
/// the global conditioning `[B, 1, D]` added to every video token (configs with `global_text`).
#[derive(Debug, Clone)]
pub struct Prefix {
    pub embeddings: Tensor<3>,
    pub valid: Vec<Vec<bool>>,
    pub global: Option<Tensor<3>>,
}

impl Prefix {
    /// Video token embeddings `[B, S, D]` with the global conditioning added.
    pub fn condition(&self, video: Tensor<3>) -> Tensor<3> {
        match &self.global {
            Some(g) => video + g.clone(),
            None => video,
        }
    }
}

impl GeneratorConfig {
    /// Builds the network on `device`.
    pub fn init(&self, device: &Device) -> Generator {
        let d = self.dim;
        let io = self
            .layers
            .iter()
            .map(|l| {
                let groups = head_groups(l.bits, self.max_head_bits);
                LayerIo {
                    embed: groups.iter().map(|&g| EmbeddingConfig::new(1 << g, d).init(device)).collect(),
                    head: groups.iter().map(|&g| LinearConfig::new(d, 1 << g).init(device)).collect(),
                    bits: l.bits,
                    max_head_bits: self.max_head_bits,
                }
            })
            .collect();
        let small = |shape: [usize; 2]| Param::from_tensor(Tensor::<2>::random(shape, burn::tensor::Distribution::Normal(0.0, 0.02), device));
        Generator {
            text_proj: LinearConfig::new(self.text.dim, d).init(device),
            uncond: small([1, d]),
            bos: small([1, d]),
            layer_embed: EmbeddingConfig::new(self.layers.len(), d).init(device),
            io,
            blocks: (0..self.depth).map(|_| Block::new(d, self.heads, self.mlp_hidden, self.norm_eps, device)).collect(),
            norm: RmsNormConfig::new(d).with_epsilon(self.norm_eps).init(device),
            text_encoder: self.text.is_small().then(|| self.text.small_config().init(device)),
            global_proj: self.global_text.then(|| LinearConfig::new(self.text.dim, d).init(device)),
            global_null: self.global_text.then(|| small([1, d])),
            heads: self.heads,
        }
    }
}

/// Attention mask `[B, 1, q_len, k_len]` (TRUE = not attended) for queries at positions
/// `q_start..q_start + q_len`: causal, and invalid keys hidden except from themselves (so a
/// padding query never has an empty row).
pub fn attention_mask(valid: &[Vec<bool>], q_start: usize, q_len: usize, k_len: usize, device: &Device) -> Tensor<4, Bool> {
    let b = valid.len();
    let mut m = Vec::with_capacity(b * q_len * k_len);
    for row in valid {
        for qi in 0..q_len {
            let q = q_start + qi;
            m.extend((0..k_len).map(|k| k > q || (!row.get(k).copied().unwrap_or(false) && k != q)));
        }
    }
    Tensor::from_data(TensorData::new(m, [b, 1, q_len, k_len]), device)
}

impl Generator {
    fn device(&self) -> Device {
        self.bos.val().device()
    }

    /// Width of the model.
    pub fn dim(&self) -> usize {
        self.bos.val().dims()[1]
    }

    /// The embedded small text encoder, if the model has one.
    pub fn text_encoder(&self) -> Option<&SmallTextEncoder> {
        self.text_encoder.as_ref()
    }

    /// Encodes `prompts` with the embedded small text encoder (differentiable, so training
    /// updates it), keeping at most `max_len` tokens each. An error when the model has no
    /// embedded encoder (its features come from MiniLM: use [`TextInput::from_features`]).
    pub fn encode_prompts(&self, prompts: &[&str], max_len: usize) -> Result<TextInput, TextError> {
        let enc = self.text_encoder.as_ref().ok_or_else(|| TextError::SmallConfig {
            reason: "this generator has no embedded text encoder (it is conditioned on MiniLM features); encode the prompts with MiniLM".into(),
        })?;
        let device = self.device();
        Ok(TextInput::from_features(enc.encode(prompts, max_len.min(enc.max_len()), &device)?))
    }

    /// The prefix for `text`: projected features, left-padded to the batch's longest prompt,
    /// with the unconditional rows replaced by the learned embedding, then BOS.
    /// Returns `[B, P, D]` with `P = max(lengths, 1) + 1`.
    pub fn prefix(&self, text: &TextInput) -> Prefix {
        let device = self.device();
        let [b, l, _] = text.features.dims();
        let lens: Vec<usize> = text.lengths.iter().zip(&text.uncond).map(|(&n, &u)| if u { 1 } else { n.clamp(1, l.max(1)) }).collect();
        let p = lens.iter().copied().max().unwrap_or(1).max(1);
        let d = self.dim();
        let proj = self.text_proj.forward(text.features.clone());
        // Left-align: position i of row r takes text token i - (p - len_r) (clamped; padding
        // positions are masked anyway).
        let mut idx = Vec::with_capacity(b * p);
        for &n in &lens {
            idx.extend((0..p).map(|i| (i + n).saturating_sub(p).min(l.saturating_sub(1)) as i64));
        }
        let idx = Tensor::<3, Int>::from_data(TensorData::new(idx, [b, p, 1]), &device).repeat_dim(2, d);
        let mut emb = proj.gather(1, idx);
        let uncond_rows = uncond_rows(text, &device);
        if let Some(u) = &uncond_rows {
            let mut last = vec![0f32; p];
            last[p - 1] = 1.0;
            let slot = Tensor::<3>::from_data(TensorData::new(last, [1, p, 1]), &device);
            let uncond = self.uncond.val().reshape([1, 1, d]) * slot;
            emb = emb * u.clone().neg().add_scalar(1.0) + uncond * u.clone();
        }
        let bos = self.bos.val().reshape([1, 1, d]).repeat_dim(0, b);
        let global = self.global(text, &lens, uncond_rows);
        let bos = match &global {
            Some(g) => bos + g.clone(),
            None => bos,
        };
        let embeddings = Tensor::cat(vec![emb, bos], 1);
        let valid = lens.iter().map(|&n| (0..=p).map(|i| i >= p - n).collect()).collect();
        Prefix { embeddings, valid, global }
    }

    /// The global conditioning `[B, 1, D]`: the projected mean of each row's first `lens[r]`
    /// (at least 1, as `prefix` makes them) text features, or the learned null vector for the
    /// rows flagged in `uncond` (`[B, 1, 1]`, from [`uncond_rows`]). `None` without `global_text`.
    fn global(&self, text: &TextInput, lens: &[usize], uncond: Option<Tensor<3>>) -> Option<Tensor<3>> {
        let (proj, null) = (self.global_proj.as_ref()?, self.global_null.as_ref()?);
        let [b, l, _] = text.features.dims();
        // [B, L, 1] weights: 1/len on each row's real tokens.
        let mut w = vec![0f32; b * l];
        for (r, &n) in lens.iter().enumerate() {
            w[r * l..r * l + n.min(l)].fill(1.0 / n as f32);
        }
        let w = Tensor::<3>::from_data(TensorData::new(w, [b, l, 1]), &self.device());
        let g = proj.forward((text.features.clone() * w).sum_dim(1));
        Some(match uncond {
            Some(u) => g * u.clone().neg().add_scalar(1.0) + null.val().reshape([1, 1, self.dim()]) * u,
            None => g,
        })
    }

    /// Embeds video tokens: `ids[j]` `[B, n_j]` for consecutive layers starting at `first_layer`,
    /// concatenated along the sequence, `[B, sum n_j, D]` (token embedding + layer embedding).
    pub fn embed_tokens(&self, first_layer: usize, ids: &[Tensor<2, Int>]) -> Tensor<3> {
        let device = self.device();
        let parts: Vec<Tensor<3>> = ids
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let j = first_layer + i;
                let io = &self.io[j];
                let [b, n] = x.dims();
                let mut e = Tensor::<3>::zeros([b, n, self.dim()], &device);
                for (sub, emb) in split_groups(x.clone(), &io.groups()).into_iter().zip(&io.embed) {
                    e = e + emb.forward(sub);
                }
                let layer = Tensor::<2, Int>::from_data(TensorData::new(vec![j as i64], [1, 1]), &device);
                e + self.layer_embed.forward(layer)
            })
            .collect();
        Tensor::cat(parts, 1)
    }

    /// Runs the blocks over `x` `[B, S, D]` at positions `start..start+S` (`rope` for those
    /// rows), through `cache` when given; returns the final-normed hidden states `[B, S, D]`.
    pub fn run(&self, x: Tensor<3>, start: usize, rope: &RopeTables, valid: &[Vec<bool>], cache: Option<&mut KvCache>) -> Tensor<3> {
        let s = x.dims()[1];
        let device = self.device();
        let mut h = x;
        match cache {
            Some(c) => {
                let mask = attention_mask(valid, start, s, start + s, &device);
                for (blk, lc) in self.blocks.iter().zip(c.blocks.iter_mut()) {
                    h = blk.forward(h, rope, mask.clone(), Some(lc));
                }
            }
            None => {
                let mask = attention_mask(valid, 0, s, s, &device);
                for blk in &self.blocks {
                    h = blk.forward(h, rope, mask.clone(), None);
                }
            }
        }
        self.norm.forward(h)
    }

    /// Logits of layer `j`'s head for hidden states `h` `[B, S, D]`: one `[B, S, 2^g]` per bit group.
    pub fn logits(&self, j: usize, h: Tensor<3>) -> Vec<Tensor<3>> {
        self.io[j].head.iter().map(|head| head.forward(h.clone())).collect()
    }

    /// Bit groups of layer `j`'s head (low bits first).
    pub fn groups(&self, j: usize) -> Vec<usize> {
        self.io[j].groups()
    }

    /// An empty KV-cache for `batch` rows and sequences of up to `max_len` positions.
    pub fn new_cache(&self, batch: usize, max_len: usize) -> KvCache {
        let device = self.device();
        let dh = self.dim() / self.heads;
        KvCache { blocks: self.blocks.iter().map(|_| LayerCache::new(batch, self.heads, max_len, dh, &device)).collect() }
    }

    /// Teacher-forced forward for training: hidden states at the positions that predict every
    /// video token, `[B, N, D]` (position `i` predicts video token `i`). `ids[j]` is `[B, n_j]`
    /// for every layer (inputs, possibly with token dropout already applied).
    pub fn forward_train(&self, cfg: &GeneratorConfig, text: &TextInput, ids: &[Tensor<2, Int>]) -> Tensor<3> {
        let device = self.device();
        let prefix = self.prefix(text);
        let p = prefix.embeddings.dims()[1];
        let video = prefix.condition(self.embed_tokens(0, ids));
        let n = video.dims()[1];
        let x = Tensor::cat(vec![prefix.embeddings, video.slice(s![.., 0..n - 1, ..])], 1);
        let rope = sequence_rope(cfg, p, n - 1, &device);
        let valid: Vec<Vec<bool>> = prefix.valid.iter().map(|r| r.iter().copied().chain(std::iter::repeat_n(true, n - 1)).collect()).collect();
        let h = self.run(x, 0, &rope, &valid, None);
        h.slice(s![.., p - 1..p - 1 + n, ..])
    }
}

/// `[B, 1, 1]`: 1 for the rows of `text` flagged unconditional, 0 for the others; `None` when
/// no row is (the usual training and guidance-off case, which then skips the mixing).
fn uncond_rows(text: &TextInput, device: &Device) -> Option<Tensor<3>> {
    text.uncond.iter().any(|&u| u).then(|| {
        let u: Vec<f32> = text.uncond.iter().map(|&u| f32::from(u8::from(u))).collect();
        let b = u.len();
        Tensor::<3>::from_data(TensorData::new(u, [b, 1, 1]), device)
    })
}

/// RoPE tables for a sequence of `prefix` unrotated positions followed by the first
/// `video` video tokens.
/// Coordinates follow `cfg.rope_finest_grid` (see [`super::rope`]).
pub fn sequence_rope(cfg: &GeneratorConfig, prefix: usize, video: usize, device: &Device) -> RopeTables {
    let grid = |j: usize| [cfg.layers[j].t, cfg.layers[j].h, cfg.layers[j].w];
    let finest = grid(cfg.layers.len() - 1);
    let coords = |p: TokenPos| if cfg.rope_finest_grid { grid_position(p, grid(p.layer), finest) } else { layer_position(p) };
    let pos: Vec<Option<[f64; 3]>> =
        std::iter::repeat_n(None, prefix).chain(token_positions(&cfg.layers).into_iter().take(video).map(|p| Some(coords(p)))).collect();
    RopeTables::new(&pos, cfg.head_dim(), cfg.rope_theta, device)
}

/// The layer of every video position and each layer's offset (see [`layer_offsets`]).
pub fn layer_of_positions(cfg: &GeneratorConfig) -> Vec<usize> {
    let off = layer_offsets(&cfg.layers);
    (0..cfg.video_tokens()).map(|i| off.iter().rposition(|&o| o <= i).unwrap_or(0).min(cfg.layers.len() - 1)).collect()
}

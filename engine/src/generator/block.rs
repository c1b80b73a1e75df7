//! One Llama-style transformer block: RMSNorm, causal multi-head attention (Burn's attention op,
//! with a hand-written backward when training on the CPU: `crate::ops::attention`) with 3D RoPE
//! and an optional KV-cache, RMSNorm, SwiGLU MLP; pre-norm residuals.

use burn::nn::{Linear, LinearConfig, RmsNorm, RmsNormConfig};
use burn::prelude::*;
use burn::tensor::activation::silu;

use super::cache::LayerCache;
use super::rope::RopeTables;
use crate::ops::attention::attention;

/// Attention + MLP block.
#[derive(Module, Debug)]
pub struct Block {
    attn_norm: RmsNorm,
    wq: Linear,
    wk: Linear,
    wv: Linear,
    wo: Linear,
    mlp_norm: RmsNorm,
    w_gate: Linear,
    w_up: Linear,
    w_down: Linear,
    heads: usize,
}

impl Block {
    /// A block of width `dim` with `heads` heads and a SwiGLU of width `hidden`.
    pub fn new(dim: usize, heads: usize, hidden: usize, eps: f64, device: &Device) -> Self {
        let lin = |i, o| LinearConfig::new(i, o).with_bias(false).init(device);
        Self {
            attn_norm: RmsNormConfig::new(dim).with_epsilon(eps).init(device),
            wq: lin(dim, dim),
            wk: lin(dim, dim),
            wv: lin(dim, dim),
            wo: lin(dim, dim),
            mlp_norm: RmsNormConfig::new(dim).with_epsilon(eps).init(device),
            w_gate: lin(dim, hidden),
            w_up: lin(dim, hidden),
            w_down: lin(hidden, dim),
            heads,
        }
    }

    /// `x` `[B, S, D]` at sequence positions `start..start + S`, `rope` tables for those rows,
    /// `mask` `[B, 1, S, S_keys]` (TRUE = not attended) where `S_keys = start + S` with a cache
    /// (which is extended in place) or `S` without one. Returns `[B, S, D]`.
    pub fn forward(&self, x: Tensor<3>, rope: &RopeTables, mask: Tensor<4, Bool>, cache: Option<&mut LayerCache>) -> Tensor<3> {
        let [b, s, d] = x.dims();
        let (h, dh) = (self.heads, d / self.heads);
        let heads = |t: Tensor<3>| t.reshape([b, s, h, dh]).swap_dims(1, 2);
        let n = self.attn_norm.forward(x.clone());
        let q = rope.apply(heads(self.wq.forward(n.clone())));
        let k = rope.apply(heads(self.wk.forward(n.clone())));
        let v = heads(self.wv.forward(n));
        let (k, v) = match cache {
            Some(c) => c.append(k, v),
            None => (k, v),
        };
        let sk = k.dims()[2];
        let mask = mask.expand([b, h, s, sk]);
        let ctx = attention(q, k, v, mask).swap_dims(1, 2).reshape([b, s, d]);
        let x = x + self.wo.forward(ctx);
        let n = self.mlp_norm.forward(x.clone());
        let mlp = self.w_down.forward(silu(self.w_gate.forward(n.clone())) * self.w_up.forward(n));
        x + mlp
    }
}

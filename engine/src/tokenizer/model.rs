//! The hierarchical LFQ video tokenizer (HiTVideo, arXiv 2503.11513): a causal 3D-conv
//! encoder whose latent is the finest layer; lightweight causal compressors make successively
//! coarser latents; every layer has its own LFQ. The decoder starts from the coarsest layer,
//! expands it and adds each finer layer's residual in turn, so decoding from the `k` coarsest
//! layers alone gives a valid, blurrier video.

use burn::module::{ModuleVisitor, Param};
use burn::nn::conv::{Conv3d, Conv3dConfig};
use burn::nn::{GroupNorm, PaddingConfig3d};
use burn::prelude::*;
use burn::store::{ModuleRecord, RecordError};
use burn::tensor::Bytes;

use super::blocks::{CausalConv3d, ResBlock, conv3d, depth_to_space, group_norm, norm_act, space_to_depth, upsample};
use super::config::TokenizerConfig;
use super::dynamic::{FillStrategy, fill_codes};
use super::lfq::{self, LfqOutput};

/// One encoder stage: a strided causal conv that halves the grid (and time, in the first
/// stages) and changes the width, group norm and SiLU, then ResNet blocks at the new resolution.
#[derive(Module, Debug)]
struct DownStage {
    down: CausalConv3d,
    norm: GroupNorm,
    blocks: Vec<ResBlock>,
}

impl DownStage {
    /// `[B, C_in, T, H, W]` -> `[B, C_i, T / s_t, H / 2, W / 2]`.
    fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let mut h = norm_act(&self.norm, self.down.forward(x));
        for b in &self.blocks {
            h = b.forward(h);
        }
        h
    }
}

/// One decoder stage: upsample and a causal conv to the finer stage's width; every stage but the
/// last (which outputs pixels) then applies group norm, SiLU and ResNet blocks. With `subpixel`
/// the conv runs at the coarser grid with `f_t f_h f_w` times the output channels, and
/// depth-to-space makes the finer grid.
#[derive(Module, Debug)]
struct UpStage {
    conv: CausalConv3d,
    norm: Option<GroupNorm>,
    blocks: Vec<ResBlock>,
    factor: [usize; 3],
    subpixel: bool,
}

impl UpStage {
    /// `[B, C_i, T, H, W]` -> `[B, C_{i-1} (or pixels), T f_t, H f_h, W f_w]`.
    fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let mut h =
            if self.subpixel { depth_to_space(self.conv.forward(x), self.factor[0], self.factor[1]) } else { self.conv.forward(upsample(x, self.factor)) };
        if let Some(n) = &self.norm {
            h = norm_act(n, h);
        }
        for b in &self.blocks {
            h = b.forward(h);
        }
        h
    }
}

/// Latent-to-latent change of grid: a compressor (strided conv) or an expander (upsample+conv).
#[derive(Module, Debug)]
struct Resampler {
    conv: CausalConv3d,
    block: ResBlock,
    /// Upsampling factor (expanders) or `[1, 1, 1]` (compressors, whose conv strides).
    up: [usize; 3],
}

impl Resampler {
    fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        self.block.forward(self.conv.forward(upsample(x, self.up)))
    }
}

/// Projections into and out of one layer's LFQ code space.
#[derive(Module, Debug)]
struct QuantLayer {
    pre: Conv3d,
    /// Per-bit normalization of `pre`'s output (configs with `bit_norm`).
    norm: Option<lfq::BitNorm>,
    post: Conv3d,
    bits: usize,
}

/// The tokenizer network.
#[derive(Module, Debug)]
pub struct Tokenizer {
    down: Vec<DownStage>,
    /// 1x1x1 projection of the last stage's features to the latent width.
    enc_out: Conv3d,
    /// Grows the encoder grid by one on each side (single-layer 17x17 presets).
    enc_adapter: Option<Conv3d>,
    dec_adapter: Option<Conv3d>,
    /// `compress[j]` maps layer `j + 1`'s latent to layer `j`'s (coarser).
    compress: Vec<Resampler>,
    /// `expand[j]` maps layer `j`'s decoder state to layer `j + 1`'s grid.
    expand: Vec<Resampler>,
    quant: Vec<QuantLayer>,
    /// 1x1x1 projection of the latent to the last stage's width (then norm and SiLU).
    dec_in: Conv3d,
    dec_in_norm: GroupNorm,
    up: Vec<UpStage>,
    /// Space-to-depth patch `[time, space]` at the input (inverted at the output).
    patch: [usize; 2],
    /// Learned per-layer mask embeddings (`[bits_j]` each, zeros at initialisation): what the
    /// `learned` fill of dynamic decoding puts in place of a masked token's code.
    mask_embed: Vec<Param<Tensor<1>>>,
}

/// Gain between the stored mask-embedding parameter and the embedding the decoder sees: a
/// learning-rate multiplier by parametrization (as the equalized learning rate of progressive
/// GANs). Adam moves a parameter by at most about the learning rate per step, so at a
/// fine-tune's 3e-4 an unscaled embedding could move only 0.03 in 100 masked steps, against
/// codes of ±1; with the gain it can reach them. (It settles near zero all the same, the best
/// constant for balanced bits: docs/results.md, issue 4.)
pub const MASK_EMBED_GAIN: f32 = 32.0;

/// Continuous latents and their quantization, one entry per layer, coarsest first.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub layers: Vec<LfqOutput>,
}

impl TokenizerConfig {
    /// Builds the network on `device`.
    pub fn init(&self, device: &Device) -> Tokenizer {
        let ch = &self.channels;
        let s = self.stages();
        let ts = self.temporal_stages();
        let lat = self.latent_channels;
        let nb = self.blocks_per_stage;
        let px = 3 * self.patch[0] * self.patch[1] * self.patch[1];
        let width = |i: usize| if i == 0 { px } else { ch[i - 1] };
        let down = (0..s)
            .map(|i| DownStage {
                down: CausalConv3d::new(width(i), ch[i], 3, [if i < ts { 2 } else { 1 }, 2, 2], device),
                norm: group_norm(ch[i], device),
                blocks: (0..nb).map(|_| ResBlock::new(ch[i], ch[i], device)).collect(),
            })
            .collect();
        let sub = self.subpixel_decoder;
        let up = (0..s)
            .rev()
            .map(|i| UpStage {
                conv: CausalConv3d::new(ch[i], width(i) * if sub { 4 << usize::from(i < ts) } else { 1 }, 3, [1, 1, 1], device),
                norm: (i > 0).then(|| group_norm(width(i), device)),
                blocks: if i > 0 { (0..nb).map(|_| ResBlock::new(width(i), width(i), device)).collect() } else { Vec::new() },
                factor: [if i < ts { 2 } else { 1 }, 2, 2],
                subpixel: sub,
            })
            .collect();
        let (_, gh, _) = self.encoder_grid();
        let adapt = self.finest().h != gh;
        let adapter = |pad: usize| Conv3dConfig::new([lat, lat], [1, 2, 2]).with_padding(PaddingConfig3d::Explicit(0, pad, pad)).init(device);
        let n = self.layers.len();
        let mut compress = Vec::new();
        let mut expand = Vec::new();
        for j in 0..n.saturating_sub(1) {
            let (c, f) = (&self.layers[j], &self.layers[j + 1]);
            let factor = [f.t / c.t, f.h / c.h, f.w / c.w];
            compress.push(Resampler { conv: CausalConv3d::new(lat, lat, 3, factor, device), block: ResBlock::new(lat, lat, device), up: [1, 1, 1] });
            expand.push(Resampler { conv: CausalConv3d::new(lat, lat, 3, [1, 1, 1], device), block: ResBlock::new(lat, lat, device), up: factor });
        }
        let quant = self
            .layers
            .iter()
            .map(|l| QuantLayer {
                pre: Conv3dConfig::new([lat, l.bits], [1, 1, 1]).init(device),
                norm: self.bit_norm.then(|| lfq::BitNorm::new(l.bits, device)),
                post: Conv3dConfig::new([l.bits, lat], [1, 1, 1]).init(device),
                bits: l.bits,
            })
            .collect();
        let point = |a: usize, b: usize| Conv3dConfig::new([a, b], [1, 1, 1]).init(device);
        Tokenizer {
            down,
            enc_out: point(ch[s - 1], lat),
            enc_adapter: adapt.then(|| adapter(1)),
            dec_adapter: adapt.then(|| adapter(0)),
            compress,
            expand,
            quant,
            dec_in: point(lat, ch[s - 1]),
            dec_in_norm: group_norm(ch[s - 1], device),
            up,
            patch: self.patch,
            mask_embed: self.layers.iter().map(|l| Param::from_tensor(Tensor::zeros([l.bits], device))).collect(),
        }
    }
}

impl Tokenizer {
    /// A copy of the weights on `device` (`self` stays where it is).
    pub fn copy_to(&self, device: &Device) -> Self {
        self.clone().to_device(device)
    }

    /// Number of quantized layers.
    pub fn num_layers(&self) -> usize {
        self.quant.len()
    }

    /// Continuous latents of every layer, coarsest first, each `[B, C_lat, t_j, h_j, w_j]`,
    /// from video `x` `[B, 3, T, H, W]` in `[-1, 1]`.
    pub fn latents(&self, x: Tensor<5>) -> Vec<Tensor<5>> {
        let mut h = space_to_depth(x, self.patch[0], self.patch[1]);
        for stage in &self.down {
            h = stage.forward(h);
        }
        let mut z = conv3d(&self.enc_out, h);
        if let Some(a) = &self.enc_adapter {
            z = a.forward(z);
        }
        let mut out = vec![z];
        for c in self.compress.iter().rev() {
            let finer = out[0].clone();
            out.insert(0, c.forward(finer));
        }
        out
    }

    /// Encodes and quantizes: per layer (coarsest first) codes `[B, bits_j, t_j, h_j, w_j]` and
    /// token ids `[B, t_j, h_j, w_j]`, with the LFQ losses.
    pub fn encode(&self, x: Tensor<5>, tau: f32) -> Encoded {
        Encoded { layers: self.code_logits(x).into_iter().map(|z| lfq::quantize(z, tau)).collect() }
    }

    /// The continuous pre-quantization codes of every layer, coarsest first,
    /// `[B, bits_j, t_j, h_j, w_j]` each (their signs are the bits), from video `x`
    /// `[B, 3, T, H, W]` in `[-1, 1]`.
    pub fn code_logits(&self, x: Tensor<5>) -> Vec<Tensor<5>> {
        self.logits_of_latents(self.latents(x), false)
    }

    /// The pre-quantization codes (`[B, bits_j, t_j, h_j, w_j]` each) of given latents
    /// (`[B, C_lat, t_j, h_j, w_j]` each, coarsest first, as [`Self::latents`] returns them).
    /// `train`: bit normalization by the batch's statistics (a training step), not the running
    /// ones.
    pub fn logits_of_latents(&self, latents: Vec<Tensor<5>>, train: bool) -> Vec<Tensor<5>> {
        self.projections(latents)
            .into_iter()
            .zip(&self.quant)
            .map(|(z, q)| match &q.norm {
                Some(n) => n.forward(z, train),
                None => z,
            })
            .collect()
    }

    /// The latents (`[B, C_lat, t_j, h_j, w_j]` each, coarsest first) projected to each
    /// layer's bits, before bit normalization: `[B, bits_j, t_j, h_j, w_j]` each.
    pub fn projections(&self, latents: Vec<Tensor<5>>) -> Vec<Tensor<5>> {
        latents.into_iter().zip(&self.quant).map(|(z, q)| conv3d(&q.pre, z)).collect()
    }

    /// Layer `layer`'s bit normalization (configs with `bit_norm`), coarsest = 0.
    pub fn bit_norm(&self, layer: usize) -> Option<&lfq::BitNorm> {
        self.quant.get(layer).and_then(|q| q.norm.as_ref())
    }

    /// Decodes from the codes of the `k = codes.len()` coarsest layers (finer layers absent),
    /// each `[B, bits_j, t_j, h_j, w_j]`; returns video `[B, 3, T, H, W]` (unbounded, ~[-1, 1]).
    pub fn decode(&self, codes: &[Tensor<5>]) -> Tensor<5> {
        let k = codes.len().clamp(1, self.quant.len());
        let mut d = conv3d(&self.quant[0].post, codes[0].clone());
        for j in 0..self.expand.len() {
            d = self.expand[j].forward(d);
            if j + 1 < k {
                d = d + conv3d(&self.quant[j + 1].post, codes[j + 1].clone());
            }
        }
        if let Some(a) = &self.dec_adapter {
            d = a.forward(d);
        }
        let mut h = norm_act(&self.dec_in_norm, conv3d(&self.dec_in, d));
        for stage in &self.up {
            h = stage.forward(h);
        }
        depth_to_space(h, self.patch[0], self.patch[1])
    }

    /// The learned mask embedding of layer `layer` (coarsest = 0), `[bits]`: the stored
    /// parameter times [`MASK_EMBED_GAIN`].
    pub fn mask_embedding(&self, layer: usize) -> Tensor<1> {
        self.mask_embed[layer].val().mul_scalar(MASK_EMBED_GAIN)
    }

    /// Decodes from the codes of the `k = codes.len()` coarsest layers (`[B, bits_j, t_j, h_j,
    /// w_j]` each) whose masked positions (`masks[j]` `[B, t_j, h_j, w_j]`, true = masked; a
    /// missing entry masks nothing) are first filled with `fill`; returns `[B, 3, T, H, W]`.
    pub fn decode_masked(&self, codes: &[Tensor<5>], masks: &[Tensor<4, Bool>], fill: FillStrategy) -> Tensor<5> {
        let filled: Vec<Tensor<5>> = codes
            .iter()
            .enumerate()
            .map(|(j, c)| match masks.get(j) {
                Some(m) => fill_codes(c.clone(), m.clone(), fill, self.mask_embedding(j)),
                None => c.clone(),
            })
            .collect();
        self.decode(&filled)
    }

    /// Loads weights from burnpack bytes. A checkpoint written before the mask embeddings
    /// existed lacks exactly those tensors; it loads with them at their initial value (zeros).
    /// Any other missing, extra or misshapen tensor is an error.
    pub fn load_weights(self, bytes: Vec<u8>) -> Result<Self, RecordError> {
        let rec = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))?;
        let strict = match self.clone().try_load_record(rec.clone()) {
            Ok(m) => return Ok(m),
            Err(e) => e,
        };
        let before: Vec<_> = self.mask_embed.iter().map(|p| p.id).collect();
        let mut count = CountParams(0);
        self.visit(&mut count);
        if rec.len() + before.len() != count.0 {
            return Err(strict);
        }
        // Partial load (unused and misshapen tensors still fail); the embeddings must be the
        // ones left untouched (a loaded parameter takes the record's id).
        match self.try_load_record(rec.allow_partial(true)) {
            Ok(m) if m.mask_embed.iter().map(|p| p.id).eq(before) => Ok(m),
            _ => Err(strict),
        }
    }

    /// Decodes from token ids of the `k` coarsest layers (`[B, t_j, h_j, w_j]` each), for
    /// inference: split over the CPU's core shares ([`Tokenizer::decode_batch`]).
    pub fn decode_indices(&self, indices: &[Tensor<4, Int>]) -> Tensor<5> {
        let codes: Vec<Tensor<5>> = indices.iter().zip(&self.quant).map(|(i, q)| lfq::codes_from_indices(i.clone(), q.bits)).collect();
        self.decode_batch(&codes)
    }
}

/// Counts a module's parameter tensors.
struct CountParams(usize);

impl ModuleVisitor for CountParams {
    fn visit_float<const D: usize>(&mut self, _: &Param<Tensor<D>>) {
        self.0 += 1;
    }
    fn visit_int<const D: usize>(&mut self, _: &Param<Tensor<D, Int>>) {
        self.0 += 1;
    }
    fn visit_bool<const D: usize>(&mut self, _: &Param<Tensor<D, Bool>>) {
        self.0 += 1;
    }
}

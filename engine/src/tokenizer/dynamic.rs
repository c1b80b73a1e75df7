//! Dynamic encoding (HiTVideo §3.3): tokens that barely change between consecutive latent
//! frames are masked (dropped from the stream) and filled back at decode time.
//!
//! **The rule.** For a layer with `t > 1` latent frames, `diff[f, y, x]` is the Hamming distance
//! between the bit codes of the tokens at `(y, x)` in frames `f` and `f - 1` (for ±1 LFQ codes
//! the squared L2 distance is exactly 4x that, so the two orderings agree); frame 0 has
//! `diff = 0` and is never masked. With `mean` the mean of `diff` over frames `1..t`, a token is
//! *redundant* when
//!
//! ```text
//! diff <= mean  AND  diff <= tolerance * bits
//! ```
//!
//! The paper's rule alone ("below the clip's mean") cannot satisfy the issue's two end cases:
//! a static clip has every `diff = 0`, so nothing is strictly below the mean, and random noise
//! has ~40% of its (binomial) distances below the mean. Hence ties count as redundant (`<=`, so
//! a static clip is fully redundant) and an absolute floor, `tolerance` (a fraction of the
//! layer's bits), keeps every token that changed by more than that many bits.
//!
//! The default tolerance is 0: a token is redundant only when its code did not change at all,
//! so `repeat` decodes a masked stream exactly as the dense one. Measured on the shipped demo
//! tokenizer (`cargo run -p hitvideo-engine --example probe_masks -- assets/models/tokenizer 32
//! ../shared/data/bikes.mp4`), finest layer: held-out synthetic clips 74.5% masked at 0 (75.9%
//! at 0.2, since their mean distance is under one bit), uniform pixel noise 1.4% (6.9% at 0.1,
//! 20.9% at 0.2), bikes.mp4 18.3% (34.1% at 0.1, 49.9% at 0.2). Raising the tolerance trades
//! exactness for rate on real footage; the mean criterion binds only then.
//!
//! **The cap.** `cap` is the largest fraction of the *maskable* tokens (frames `1..t`, i.e.
//! `(t - 1) h w`) that may be masked: at most `floor(cap * (t - 1) h w)`. When more are
//! redundant, a seeded random subset of them is unmasked until the cap holds (so at least
//! `1 - cap` of the maskable tokens are kept). [`LayerMask::ratio`] is that fraction over the
//! maskable tokens, [`LayerMask::ratio_all`] over all `t h w` tokens of the layer.
//!
//! **Fills** ([`FillStrategy`]): `repeat` copies the (already filled) token of the previous
//! frame, `zero` puts the all-zero code (LFQ codes are ±1, so 0 carries no information),
//! `learned` puts the tokenizer's learned per-layer `[bits]` mask embedding.

use std::fmt;
use std::str::FromStr;

use burn::config::Config;
use burn::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::lfq::codes_from_indices;
use super::model::Tokenizer;
use crate::dataset::synth::item_seed;
use crate::tensor::ReadError;

/// How masked tokens are filled before decoding (saved by its name: `repeat`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FillStrategy {
    /// The filled token of the previous latent frame.
    Repeat,
    /// The all-zero code vector.
    Zero,
    /// The tokenizer's learned per-layer mask embedding.
    Learned,
}

impl FillStrategy {
    /// All strategies, in a fixed order.
    pub const ALL: [FillStrategy; 3] = [FillStrategy::Repeat, FillStrategy::Zero, FillStrategy::Learned];

    /// The name used on the command line and in logs.
    pub fn name(self) -> &'static str {
        match self {
            FillStrategy::Repeat => "repeat",
            FillStrategy::Zero => "zero",
            FillStrategy::Learned => "learned",
        }
    }
}

/// A non-empty set of fill strategies (masked training draws one per masked step;
/// `tokenizer eval` reports each). Written and saved as `all` or a comma-separated list
/// (`repeat,learned`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Fills(Vec<FillStrategy>);

impl Fills {
    /// Every strategy, in [`FillStrategy::ALL`]'s order.
    pub fn all() -> Self {
        Fills(FillStrategy::ALL.to_vec())
    }

    /// The strategies, in the order written (never empty).
    pub fn as_slice(&self) -> &[FillStrategy] {
        &self.0
    }
}

impl fmt::Display for Fills {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == FillStrategy::ALL {
            return f.write_str("all");
        }
        let names: Vec<&str> = self.0.iter().map(|s| s.name()).collect();
        f.write_str(&names.join(","))
    }
}

impl FromStr for Fills {
    type Err = MaskError;
    /// Parses `all` or a comma-separated list (`repeat,learned`).
    fn from_str(text: &str) -> Result<Self, MaskError> {
        if text.trim() == "all" {
            return Ok(Self::all());
        }
        let list = text.split(',').map(|s| s.trim().parse()).collect::<Result<Vec<FillStrategy>, MaskError>>()?;
        if list.is_empty() { Err(MaskError::UnknownFill(text.into())) } else { Ok(Fills(list)) }
    }
}

impl TryFrom<String> for Fills {
    type Error = MaskError;
    fn try_from(text: String) -> Result<Self, MaskError> {
        text.parse()
    }
}

impl From<Fills> for String {
    fn from(f: Fills) -> String {
        f.to_string()
    }
}

impl fmt::Display for FillStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FillStrategy {
    type Err = MaskError;
    fn from_str(s: &str) -> Result<Self, MaskError> {
        Self::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| MaskError::UnknownFill(s.into()))
    }
}

/// Why masks could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    #[error("unknown fill strategy '{0}'; choose repeat, zero, learned, a comma-separated list of them, or all")]
    UnknownFill(String),
    #[error("layer {layer}: {found} ids for a {t}x{h}x{w} grid; pass the layer's ids in (t, h, w) order", t = .shape[0], h = .shape[1], w = .shape[2])]
    Length { layer: usize, shape: [usize; 3], found: usize },
    #[error("no clips (or no layers) to decode; pass at least one clip's ids")]
    Empty,
    #[error("clips have {found} layers where the first has {want}; decode clips of one tokenizer together")]
    Layers { want: usize, found: usize },
    #[error("layer {layer}: token id {id} does not fit in {bits} bits; the ids belong to another tokenizer")]
    Id { layer: usize, id: u32, bits: usize },
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// The masking rule's settings (see the module docs).
#[derive(Config, Debug, PartialEq)]
pub struct MaskConfig {
    /// Largest fraction of a layer's maskable tokens (frames `1..t`) that may be masked.
    #[config(default = 0.85)]
    pub cap: f64,
    /// Absolute floor: a token changed by more than `tolerance * bits` bits is never masked
    /// (0: only unchanged tokens are).
    #[config(default = 0.0)]
    pub tolerance: f64,
    /// Seed of the random unmasking that enforces the cap.
    #[config(default = 0)]
    pub seed: u64,
}

/// One layer's token ids of one clip, `(t, h, w)` row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerIds {
    /// `[t, h, w]`.
    pub shape: [usize; 3],
    /// Code width: ids are in `0 .. 2^bits`.
    pub bits: usize,
    /// `t * h * w` ids.
    pub ids: Vec<u32>,
}

impl From<&super::tokens::TokenLayer> for LayerIds {
    fn from(l: &super::tokens::TokenLayer) -> Self {
        Self { shape: l.shape, bits: l.bits, ids: l.ids.clone() }
    }
}

/// One layer's redundancy analysis of one clip (what the studio's token view draws).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerMask {
    /// `[t, h, w]`.
    pub shape: [usize; 3],
    /// `t * h * w` Hamming distances to the previous frame (frame 0: 0).
    pub diff: Vec<f32>,
    /// `t * h * w`, `true` = masked (dropped); frame 0 is never masked.
    pub mask: Vec<bool>,
    /// Masked fraction of the maskable tokens (frames `1..t`); 0 when not maskable.
    pub ratio: f64,
    /// Masked fraction of all `t * h * w` tokens.
    pub ratio_all: f64,
    /// Whether the layer has more than one latent frame.
    pub maskable: bool,
    /// Mean of `diff` over frames `1..t`.
    pub mean_diff: f64,
    /// Redundant tokens before the cap.
    pub redundant: usize,
    /// Masked tokens after the cap.
    pub masked: usize,
}

impl LayerMask {
    /// Tokens that may be masked: `(t - 1) h w`.
    pub fn maskable_tokens(&self) -> usize {
        self.shape[0].saturating_sub(1) * self.shape[1] * self.shape[2]
    }
}

/// The largest number of masked tokens the cap allows among `maskable` tokens.
pub fn cap_limit(cap: f64, maskable: usize) -> usize {
    ((cap.clamp(0.0, 1.0) * maskable as f64) + 1e-9).floor() as usize
}

/// Redundancy masks of one layer; `layer` only salts the seed and names errors.
pub fn layer_mask(layer: usize, ids: &LayerIds, cfg: &MaskConfig) -> Result<LayerMask, MaskError> {
    let [t, h, w] = ids.shape;
    let n = t * h * w;
    if ids.ids.len() != n {
        return Err(MaskError::Length { layer, shape: ids.shape, found: ids.ids.len() });
    }
    if let Some(&id) = ids.ids.iter().find(|&&id| ids.bits < 32 && (id >> ids.bits) != 0) {
        return Err(MaskError::Id { layer, id, bits: ids.bits });
    }
    let plane = h * w;
    let mut diff = vec![0f32; n];
    for (i, d) in diff.iter_mut().enumerate().skip(plane) {
        *d = (ids.ids[i] ^ ids.ids[i - plane]).count_ones() as f32;
    }
    let maskable = n - plane.min(n);
    let mut mask = vec![false; n];
    if maskable == 0 {
        return Ok(LayerMask { shape: ids.shape, diff, mask, ratio: 0.0, ratio_all: 0.0, maskable: false, mean_diff: 0.0, redundant: 0, masked: 0 });
    }
    let mean = diff[plane..].iter().map(|&d| f64::from(d)).sum::<f64>() / maskable as f64;
    let floor = cfg.tolerance * ids.bits as f64;
    let mut redundant: Vec<usize> = (plane..n).filter(|&i| f64::from(diff[i]) <= mean + 1e-9 && f64::from(diff[i]) <= floor + 1e-9).collect();
    let count = redundant.len();
    let limit = cap_limit(cfg.cap, maskable);
    if count > limit {
        let mut rng = ChaCha8Rng::seed_from_u64(item_seed(cfg.seed, layer));
        redundant.shuffle(&mut rng);
        redundant.truncate(limit);
    }
    for &i in &redundant {
        mask[i] = true;
    }
    let masked = redundant.len();
    Ok(LayerMask {
        shape: ids.shape,
        diff,
        mask,
        ratio: masked as f64 / maskable as f64,
        ratio_all: masked as f64 / n as f64,
        maskable: true,
        mean_diff: mean,
        redundant: count,
        masked,
    })
}

/// Masks of every layer of one clip (coarsest first, as the ids are).
pub fn layer_masks(layers: &[LayerIds], cfg: &MaskConfig) -> Result<Vec<LayerMask>, MaskError> {
    layers.iter().enumerate().map(|(j, l)| layer_mask(j, l, cfg)).collect()
}

/// Host-side ids per clip, per layer, from batched ids (`[B, t_j, h_j, w_j]` per layer).
pub fn clip_ids(indices: &[Tensor<4, Int>], bits: &[usize]) -> Result<Vec<Vec<LayerIds>>, ReadError> {
    let b = indices.first().map(|i| i.dims()[0]).unwrap_or(0);
    let mut clips: Vec<Vec<LayerIds>> = (0..b).map(|_| Vec::with_capacity(indices.len())).collect();
    for (idx, &bits) in indices.iter().zip(bits) {
        let [_, t, h, w] = idx.dims();
        let all = crate::tensor::ids(idx.clone(), "token ids")?;
        for (c, chunk) in clips.iter_mut().zip(all.chunks(t * h * w)) {
            c.push(LayerIds { shape: [t, h, w], bits, ids: chunk.to_vec() });
        }
    }
    Ok(clips)
}

/// Masks of a batch: clip `i` uses seed `item_seed(cfg.seed, i)`, so each clip's masks are the
/// same as computing it alone with that seed.
pub fn batch_masks(indices: &[Tensor<4, Int>], bits: &[usize], cfg: &MaskConfig) -> Result<Vec<Vec<LayerMask>>, MaskError> {
    clip_ids(indices, bits)?.iter().enumerate().map(|(i, clip)| layer_masks(clip, &cfg.clone().with_seed(item_seed(cfg.seed, i)))).collect()
}

/// Per layer, the masks of all clips as `[B, t_j, h_j, w_j]` (true = masked). `masks[clip][layer]`.
pub fn mask_tensors(masks: &[Vec<Vec<bool>>], shapes: &[[usize; 3]], device: &Device) -> Vec<Tensor<4, Bool>> {
    shapes
        .iter()
        .enumerate()
        .map(|(j, &[t, h, w])| {
            let flat: Vec<bool> = masks.iter().flat_map(|c| c.get(j).cloned().unwrap_or_else(|| vec![false; t * h * w])).collect();
            Tensor::<4, Bool>::from_data(TensorData::new(flat, [masks.len(), t, h, w]), device)
        })
        .collect()
}

/// Per layer, the ids of all clips as `[B, t_j, h_j, w_j]`. `clips[clip][layer]`.
pub fn id_tensors(clips: &[Vec<LayerIds>], device: &Device) -> Vec<Tensor<4, Int>> {
    let layers = clips.first().map(Vec::len).unwrap_or(0);
    (0..layers)
        .map(|j| {
            let [t, h, w] = clips[0][j].shape;
            let flat: Vec<i64> = clips.iter().flat_map(|c| c[j].ids.iter().map(|&v| i64::from(v))).collect();
            Tensor::<4, Int>::from_data(TensorData::new(flat, [clips.len(), t, h, w]), device)
        })
        .collect()
}

/// Fills the masked positions of one layer's codes. `codes` `[B, D, t, h, w]`, `mask`
/// `[B, t, h, w]` (true = masked), `embed` `[D]` (used by `Learned` only); returns
/// `[B, D, t, h, w]`. With `Repeat`, a masked frame-0 token (which [`layer_mask`] never
/// produces) has no previous frame and becomes zeros.
pub fn fill_codes(codes: Tensor<5>, mask: Tensor<4, Bool>, fill: FillStrategy, embed: Tensor<1>) -> Tensor<5> {
    let [b, d, t, h, w] = codes.dims();
    let m = mask.float().reshape([b, 1, t, h, w]);
    let keep = m.clone().neg().add_scalar(1.0);
    match fill {
        FillStrategy::Zero => codes * keep,
        FillStrategy::Learned => codes * keep + m * embed.reshape([1, d, 1, 1, 1]),
        FillStrategy::Repeat => {
            let mut prev = codes.clone().narrow(2, 0, 1) * keep.clone().narrow(2, 0, 1);
            let mut frames = vec![prev.clone()];
            for f in 1..t {
                let cur = codes.clone().narrow(2, f, 1) * keep.clone().narrow(2, f, 1);
                prev = cur + prev * m.clone().narrow(2, f, 1);
                frames.push(prev.clone());
            }
            Tensor::cat(frames, 2)
        }
    }
}

/// Masked over maskable tokens across clips and layers (0 when nothing is maskable).
pub fn masked_fraction(masks: &[Vec<LayerMask>]) -> f64 {
    let (m, n) = masks.iter().flatten().fold((0, 0), |(m, n), l| (m + l.masked, n + l.maskable_tokens()));
    if n == 0 { 0.0 } else { m as f64 / n as f64 }
}

/// Masks a batch by the redundancy rule and decodes it with `fill`. `codes` (`[B, bits_j, t_j,
/// h_j, w_j]`) and `indices` (`[B, t_j, h_j, w_j]`) are the `k` coarsest layers' (as
/// [`Tokenizer::encode`] gives them); returns the video `[B, 3, T, H, W]` and the masks
/// (`[clip][layer]`, clip `i` seeded as in [`batch_masks`]).
pub fn decode_masked_batch(
    model: &Tokenizer,
    codes: &[Tensor<5>],
    indices: &[Tensor<4, Int>],
    cfg: &MaskConfig,
    fill: FillStrategy,
) -> Result<(Tensor<5>, Vec<Vec<LayerMask>>), MaskError> {
    let bits: Vec<usize> = codes.iter().map(|c| c.dims()[1]).collect();
    let masks = batch_masks(indices, &bits, cfg)?;
    let bools: Vec<Vec<Vec<bool>>> = masks.iter().map(|c| c.iter().map(|l| l.mask.clone()).collect()).collect();
    let shapes: Vec<[usize; 3]> = indices
        .iter()
        .map(|i| {
            let [_, t, h, w] = i.dims();
            [t, h, w]
        })
        .collect();
    let device = codes.first().map(|c| c.device()).unwrap_or_else(Device::flex);
    let video = model.decode_masked(codes, &mask_tensors(&bools, &shapes, &device), fill);
    Ok((video, masks))
}

/// Decodes clips from host-side ids and masks (`ids[clip][layer]`, `masks[clip][layer]`, e.g.
/// from [`MaskedStream::to_ids_and_masks`](super::stream::MaskedStream::to_ids_and_masks));
/// the ids at masked positions are ignored. Returns `[B, 3, T, H, W]`.
pub fn decode_masked_ids(
    model: &Tokenizer,
    ids: &[Vec<LayerIds>],
    masks: &[Vec<Vec<bool>>],
    fill: FillStrategy,
    device: &Device,
) -> Result<Tensor<5>, MaskError> {
    let first = ids.first().filter(|c| !c.is_empty()).ok_or(MaskError::Empty)?;
    let shapes: Vec<[usize; 3]> = first.iter().map(|l| l.shape).collect();
    for clip in ids {
        if clip.len() != shapes.len() {
            return Err(MaskError::Layers { want: shapes.len(), found: clip.len() });
        }
        for (j, (l, &want)) in clip.iter().zip(&shapes).enumerate() {
            if l.shape != want || l.ids.len() != want.iter().product::<usize>() {
                return Err(MaskError::Length { layer: j, shape: want, found: l.ids.len() });
            }
        }
    }
    let codes: Vec<Tensor<5>> = id_tensors(ids, device).into_iter().zip(first).map(|(i, l)| codes_from_indices(i, l.bits)).collect();
    Ok(model.decode_masked(&codes, &mask_tensors(masks, &shapes, device), fill))
}

#[cfg(test)]
mod tests;

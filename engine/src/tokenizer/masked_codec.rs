//! Dynamic encoding on token windows: the redundancy masks of [`super::dynamic`] computed for
//! every window of a token file (stored in its layers' `mask`), the compact masked stream's bit
//! accounting, and decoding with a fill strategy. What `tokenizer encode|decode|eval --mask`
//! runs.

use serde::Serialize;

use super::codec::CodecError;
use super::dynamic::{FillStrategy, LayerIds, MaskConfig, decode_masked_ids, layer_masks};
use super::model::Tokenizer;
use super::stream::{MaskedStream, StreamStats};
use super::tokens::TokenWindow;
use crate::dataset::synth::item_seed;
use crate::tensor::to_videos;
use crate::video::Video;

/// Masked tokens of one layer, summed over windows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LayerMaskTotals {
    pub tokens: usize,
    pub maskable: usize,
    pub masked: usize,
}

/// What masking a set of windows gave: realized ratio, tokens saved and bits.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MaskSummary {
    /// The cap in force (largest masked fraction of each layer's maskable tokens).
    pub cap: f64,
    pub windows: usize,
    /// Tokens of every window and layer.
    pub tokens: usize,
    /// Tokens of frames `1..t` of layers with more than one latent frame.
    pub maskable: usize,
    pub masked: usize,
    /// Payload bits of the masked streams (mask bits + kept ids).
    pub stream_bits: usize,
    /// Bits of every id (the unmasked stream).
    pub dense_bits: usize,
    /// Pixel positions (`T H W` per window) the bits are spread over.
    pub pixels: usize,
    /// Per layer, coarsest first.
    pub layers: Vec<LayerMaskTotals>,
}

impl MaskSummary {
    /// Masked over maskable tokens (what the cap bounds).
    pub fn ratio(&self) -> f64 {
        if self.maskable == 0 { 0.0 } else { self.masked as f64 / self.maskable as f64 }
    }
    /// Masked over all tokens: the share of the token budget saved.
    pub fn saved(&self) -> f64 {
        if self.tokens == 0 { 0.0 } else { self.masked as f64 / self.tokens as f64 }
    }
    /// Bits per pixel of the masked streams.
    pub fn bpp(&self) -> f64 {
        self.stream_bits as f64 / self.pixels.max(1) as f64
    }
    /// Bits per pixel of the unmasked ids.
    pub fn dense_bpp(&self) -> f64 {
        self.dense_bits as f64 / self.pixels.max(1) as f64
    }

    /// One window's figures from its masked stream's bit accounting.
    fn of_window(cap: f64, s: &StreamStats, pixels: usize) -> Self {
        Self {
            cap,
            windows: 1,
            tokens: s.tokens,
            maskable: s.maskable,
            masked: s.masked,
            stream_bits: s.total_bits,
            dense_bits: s.dense_bits,
            pixels,
            layers: s.layers.iter().map(|l| LayerMaskTotals { tokens: l.tokens, maskable: l.maskable, masked: l.masked }).collect(),
        }
    }

    /// Adds another set of windows masked under the same rule.
    pub fn merge(&mut self, o: &MaskSummary) {
        self.windows += o.windows;
        self.tokens += o.tokens;
        self.maskable += o.maskable;
        self.masked += o.masked;
        self.stream_bits += o.stream_bits;
        self.dense_bits += o.dense_bits;
        self.pixels += o.pixels;
        self.layers.resize(self.layers.len().max(o.layers.len()), LayerMaskTotals::default());
        for (a, b) in self.layers.iter_mut().zip(&o.layers) {
            a.tokens += b.tokens;
            a.maskable += b.maskable;
            a.masked += b.masked;
        }
    }
}

/// Computes the masks of every window (window `i` seeded with `item_seed(cfg.seed, i)`) and
/// stores them in its layers; `pixels_per_window` is `T H W` of one window.
pub fn mask_windows(windows: &mut [TokenWindow], cfg: &MaskConfig, pixels_per_window: usize) -> Result<MaskSummary, CodecError> {
    let mut sum = MaskSummary { cap: cfg.cap, ..MaskSummary::default() };
    for (i, w) in windows.iter_mut().enumerate() {
        let ids: Vec<LayerIds> = w.layers.iter().map(LayerIds::from).collect();
        let masks = layer_masks(&ids, &cfg.clone().with_seed(item_seed(cfg.seed, i))).map_err(|e| CodecError::Invalid(e.to_string()))?;
        let stats = MaskedStream::new(&ids, &masks).map_err(|e| CodecError::Invalid(e.to_string()))?.stats(pixels_per_window);
        sum.merge(&MaskSummary::of_window(cfg.cap, &stats, pixels_per_window));
        for (layer, m) in w.layers.iter_mut().zip(masks) {
            layer.mask = Some(m.mask);
        }
    }
    Ok(sum)
}

/// Decodes windows from their `layers` coarsest layers, `batch` per forward pass, with each
/// layer's masked positions (its stored mask; none when absent) filled by `fill`.
pub fn decode_windows_masked(
    model: &Tokenizer,
    windows: &[TokenWindow],
    layers: usize,
    fill: FillStrategy,
    batch: usize,
    fps: f64,
) -> Result<Vec<Video>, CodecError> {
    let device = burn::module::Module::devices(model).first().cloned().unwrap_or_else(burn::prelude::Device::flex);
    let mut out = Vec::with_capacity(windows.len());
    for chunk in windows.chunks(batch.max(1)) {
        let ids: Vec<Vec<LayerIds>> = chunk.iter().map(|w| w.layers.iter().take(layers).map(LayerIds::from).collect()).collect();
        let masks: Vec<Vec<Vec<bool>>> =
            chunk.iter().map(|w| w.layers.iter().take(layers).map(|l| l.mask.clone().unwrap_or_else(|| vec![false; l.len()])).collect()).collect();
        let video = decode_masked_ids(model, &ids, &masks, fill, &device).map_err(|e| CodecError::Invalid(e.to_string()))?;
        out.extend(to_videos(video, fps)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::TokenizerConfig;
    use crate::tokenizer::tokens::TokenLayer;

    fn window(static_ids: bool) -> TokenWindow {
        let layer = |t: usize, bits: usize, salt: u32| {
            let n = t * 4;
            let ids =
                (0..n as u32).map(|i| if static_ids { (i % 4) * 3 % (1 << bits) } else { (i * 2_654_435_761u32.wrapping_add(salt)) >> (32 - bits) }).collect();
            TokenLayer { shape: [t, 2, 2], bits, ids, mask: None }
        };
        TokenWindow { layers: vec![layer(1, 4, 1), layer(4, 8, 2)] }
    }

    #[test]
    fn a_static_window_is_masked_up_to_the_cap_and_the_bits_add_up() {
        let mut windows = vec![window(true), window(true)];
        let sum = mask_windows(&mut windows, &MaskConfig::new().with_cap(0.5), 16 * 8 * 8).expect("mask");
        // Layer 1 has 3 maskable frames of 4 tokens per window; the cap allows 6 of 12.
        assert_eq!(sum.maskable, 24);
        assert_eq!(sum.masked, 12);
        assert!((sum.ratio() - 0.5).abs() < 1e-12);
        assert_eq!(sum.tokens, 2 * (4 + 16));
        // Stream: every id of layer 0, the kept ids of layer 1, plus one mask bit per maskable token.
        assert_eq!(sum.stream_bits, 2 * (4 * 4 + 10 * 8 + 12));
        assert_eq!(sum.dense_bits, 2 * (4 * 4 + 16 * 8));
        for w in &windows {
            let m = w.layers[1].mask.as_ref().expect("mask stored");
            assert!(m[..4].iter().all(|&b| !b), "the first latent frame is never masked");
            assert_eq!(m.iter().filter(|&&b| b).count(), 6);
            assert_eq!(w.layers[0].mask.as_ref().map(|m| m.iter().any(|&b| b)), Some(false));
        }
    }

    #[test]
    fn masked_decoding_matches_unmasked_when_nothing_is_masked() {
        let dev = burn::prelude::Device::flex();
        let cfg = TokenizerConfig::preset("tiny").expect("preset");
        let model = cfg.init(&dev);
        let ids = |t: usize, h: usize, w: usize, bits: usize| (0..t * h * w).map(|i| (i as u32 * 7 + 3) % (1 << bits)).collect::<Vec<u32>>();
        let win = TokenWindow {
            layers: cfg.layers.iter().map(|l| TokenLayer { shape: [l.t, l.h, l.w], bits: l.bits, ids: ids(l.t, l.h, l.w, l.bits), mask: None }).collect(),
        };
        let plain = crate::tokenizer::codec::decode_windows(&model, std::slice::from_ref(&win), 4, 1, 8.0).expect("decode");
        let masked = decode_windows_masked(&model, std::slice::from_ref(&win), 4, FillStrategy::Zero, 1, 8.0).expect("decode masked");
        assert_eq!(plain[0].as_bytes(), masked[0].as_bytes());
    }
}

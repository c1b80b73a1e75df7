//! Compact masked token streams: per layer, the mask bits of frames `1..t` and the ids of the
//! kept tokens only, with the bit accounting (realized mask ratio, kept tokens, bpp).
//!
//! Byte format (version 1), little-endian:
//!
//! ```text
//! "HTMS"  version:u8  layers:u8
//! per layer:  t:u16  h:u16  w:u16  bits:u8
//! payload, a bit stream packed LSB-first and zero-padded to a whole byte:
//!   per layer (coarsest first): if t > 1, (t-1)*h*w mask bits (frames 1..t, row-major,
//!   1 = masked); then each kept token's id in `bits` bits (LSB first), in (t, h, w) order.
//! ```
//!
//! Frame 0 has no mask bits (it is never masked). [`StreamStats::total_bits`] counts the payload
//! (mask bits + kept id bits); [`StreamStats::packed_bytes`] adds the header and the padding.

use serde::Serialize;

use super::dynamic::{LayerIds, LayerMask};

const MAGIC: &[u8; 4] = b"HTMS";
const VERSION: u8 = 1;

/// Why a stream could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("masked token stream: {0}; re-create it from the clip's token ids")]
    Corrupt(String),
    #[error("masked token stream: layer {layer}: {reason}; compute masks with `dynamic::layer_masks` from these ids")]
    Mismatch { layer: usize, reason: String },
}

/// One layer of a masked stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamLayer {
    /// `[t, h, w]`.
    pub shape: [usize; 3],
    pub bits: usize,
    /// `t * h * w`, true = masked; frame 0 is all false.
    pub mask: Vec<bool>,
    /// Ids of the unmasked tokens, in `(t, h, w)` order.
    pub kept: Vec<u32>,
}

/// One clip's masked token stream, coarsest layer first.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskedStream {
    pub layers: Vec<StreamLayer>,
}

/// Bit accounting of one layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerStats {
    pub tokens: usize,
    pub maskable: usize,
    pub masked: usize,
    pub kept: usize,
    /// Masked over maskable tokens (0 when the layer has one frame).
    pub ratio: f64,
    pub mask_bits: usize,
    pub id_bits: usize,
}

/// Bit accounting of a stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamStats {
    pub layers: Vec<LayerStats>,
    pub tokens: usize,
    pub maskable: usize,
    pub masked: usize,
    pub kept: usize,
    /// Masked over maskable tokens of all layers.
    pub ratio: f64,
    /// Masked over all tokens.
    pub ratio_all: f64,
    pub mask_bits: usize,
    pub id_bits: usize,
    /// Payload bits: mask bits + kept id bits.
    pub total_bits: usize,
    /// Bits of the unmasked stream (every token's id).
    pub dense_bits: usize,
    /// Size of [`MaskedStream::pack`]'s output.
    pub packed_bytes: usize,
    /// `total_bits` per pixel (frame positions `T H W`).
    pub bpp: f64,
    /// `dense_bits` per pixel.
    pub dense_bpp: f64,
}

impl MaskedStream {
    /// Keeps the unmasked ids of `layers` under `masks` (same order and shapes).
    pub fn new(layers: &[LayerIds], masks: &[LayerMask]) -> Result<Self, StreamError> {
        if layers.len() != masks.len() {
            return Err(StreamError::Mismatch {
                layer: masks.len().min(layers.len()),
                reason: format!("{} id layers but {} masks", layers.len(), masks.len()),
            });
        }
        let mut out = Vec::with_capacity(layers.len());
        for (j, (l, m)) in layers.iter().zip(masks).enumerate() {
            let [t, h, w] = l.shape;
            let bad = |reason: String| Err(StreamError::Mismatch { layer: j, reason });
            if m.shape != l.shape || m.mask.len() != t * h * w || l.ids.len() != t * h * w {
                return bad(format!("mask {:?} ({} entries) does not fit ids {:?} ({} ids)", m.shape, m.mask.len(), l.shape, l.ids.len()));
            }
            if m.mask[..h * w].iter().any(|&b| b) {
                return bad("the first latent frame is masked".into());
            }
            if l.bits == 0 || l.bits > 32 || l.ids.iter().any(|&id| l.bits < 32 && id >> l.bits != 0) {
                return bad(format!("an id does not fit in {} bits", l.bits));
            }
            let kept = l.ids.iter().zip(&m.mask).filter(|(_, masked)| !**masked).map(|(&id, _)| id).collect();
            out.push(StreamLayer { shape: l.shape, bits: l.bits, mask: m.mask.clone(), kept });
        }
        Ok(Self { layers: out })
    }

    /// Per layer: the ids (masked positions hold 0, a placeholder the fill replaces) and the mask.
    pub fn to_ids_and_masks(&self) -> (Vec<LayerIds>, Vec<Vec<bool>>) {
        let mut ids = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            let mut kept = l.kept.iter();
            let dense = l.mask.iter().map(|&m| if m { 0 } else { kept.next().copied().unwrap_or(0) }).collect();
            ids.push(LayerIds { shape: l.shape, bits: l.bits, ids: dense });
        }
        (ids, self.layers.iter().map(|l| l.mask.clone()).collect())
    }

    fn header_bytes(&self) -> usize {
        6 + 7 * self.layers.len()
    }

    /// Bit accounting; `pixels` is the clip's `T * H * W`.
    pub fn stats(&self, pixels: usize) -> StreamStats {
        let layers: Vec<LayerStats> = self
            .layers
            .iter()
            .map(|l| {
                let [t, h, w] = l.shape;
                let maskable = t.saturating_sub(1) * h * w;
                let masked = l.mask.iter().filter(|&&m| m).count();
                let ratio = if maskable > 0 { masked as f64 / maskable as f64 } else { 0.0 };
                LayerStats { tokens: t * h * w, maskable, masked, kept: l.kept.len(), ratio, mask_bits: maskable, id_bits: l.kept.len() * l.bits }
            })
            .collect();
        let sum = |f: fn(&LayerStats) -> usize| layers.iter().map(f).sum::<usize>();
        let (tokens, maskable, masked, kept) = (sum(|l| l.tokens), sum(|l| l.maskable), sum(|l| l.masked), sum(|l| l.kept));
        let (mask_bits, id_bits) = (sum(|l| l.mask_bits), sum(|l| l.id_bits));
        let dense_bits: usize = self.layers.iter().map(|l| l.mask.len() * l.bits).sum();
        let total_bits = mask_bits + id_bits;
        let px = pixels.max(1) as f64;
        StreamStats {
            tokens,
            maskable,
            masked,
            kept,
            ratio: if maskable > 0 { masked as f64 / maskable as f64 } else { 0.0 },
            ratio_all: if tokens > 0 { masked as f64 / tokens as f64 } else { 0.0 },
            mask_bits,
            id_bits,
            total_bits,
            dense_bits,
            packed_bytes: self.header_bytes() + total_bits.div_ceil(8),
            bpp: total_bits as f64 / px,
            dense_bpp: dense_bits as f64 / px,
            layers,
        }
    }

    /// The byte form (see the module docs).
    pub fn pack(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.header_bytes());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(self.layers.len() as u8);
        for l in &self.layers {
            for d in l.shape {
                out.extend_from_slice(&(d as u16).to_le_bytes());
            }
            out.push(l.bits as u8);
        }
        let mut bits = BitWriter { bytes: out, used: 0 };
        for l in &self.layers {
            let plane = l.shape[1] * l.shape[2];
            for &m in &l.mask[plane.min(l.mask.len())..] {
                bits.push(u64::from(m), 1);
            }
            for &id in &l.kept {
                bits.push(u64::from(id), l.bits);
            }
        }
        bits.bytes
    }

    /// Reads [`pack`](Self::pack)'s output back, checking every size.
    pub fn unpack(bytes: &[u8]) -> Result<Self, StreamError> {
        let corrupt = |s: String| Err(StreamError::Corrupt(s));
        if bytes.len() < 6 || &bytes[..4] != MAGIC {
            return corrupt("not a masked token stream (no HTMS header)".into());
        }
        if bytes[4] != VERSION {
            return corrupt(format!("format version {} is not supported (this build reads {VERSION})", bytes[4]));
        }
        let n = bytes[5] as usize;
        let header = 6 + 7 * n;
        if bytes.len() < header {
            return corrupt(format!("truncated header ({} bytes, {header} needed)", bytes.len()));
        }
        let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]) as usize;
        let mut reader = BitReader { bytes: &bytes[header..], pos: 0 };
        let mut layers = Vec::with_capacity(n);
        for j in 0..n {
            let o = 6 + 7 * j;
            let (shape, bits) = ([u16_at(o), u16_at(o + 2), u16_at(o + 4)], bytes[o + 6] as usize);
            if bits == 0 || bits > 32 || shape.contains(&0) {
                return corrupt(format!("layer {j} has shape {shape:?} and {bits} bits"));
            }
            let plane = shape[1] * shape[2];
            let tokens = shape[0] * plane;
            // Sized from the header only after checking the payload can hold its mask bits.
            let mask_bits = tokens - plane;
            if tokens > MAX_LAYER_TOKENS || mask_bits > 8 * reader.bytes.len().saturating_sub(reader.pos / 8) {
                return corrupt(format!("layer {j} claims {tokens} tokens ({shape:?}), more than the stream can hold"));
            }
            let mut mask = vec![false; tokens];
            for m in &mut mask[plane..] {
                *m = reader.take(1).ok_or_else(|| StreamError::Corrupt(format!("truncated in layer {j}'s mask bits")))? == 1;
            }
            let count = mask.iter().filter(|&&m| !m).count();
            let kept = (0..count)
                .map(|_| reader.take(bits).map(|v| v as u32).ok_or_else(|| StreamError::Corrupt(format!("truncated in layer {j}'s token ids"))))
                .collect::<Result<Vec<u32>, StreamError>>()?;
            layers.push(StreamLayer { shape, bits, mask, kept });
        }
        if reader.bytes.len() != reader.pos.div_ceil(8) {
            return corrupt(format!("{} bytes of payload, {} expected", reader.bytes.len(), reader.pos.div_ceil(8)));
        }
        Ok(Self { layers })
    }
}

/// The most tokens one layer of a stream may have.
pub const MAX_LAYER_TOKENS: usize = 1 << 22;

/// LSB-first bit packing into a byte vector.
struct BitWriter {
    bytes: Vec<u8>,
    /// Bits used in the last byte (0 = start a new byte).
    used: usize,
}

impl BitWriter {
    fn push(&mut self, value: u64, bits: usize) {
        for i in 0..bits {
            if self.used == 0 {
                self.bytes.push(0);
            }
            if (value >> i) & 1 == 1
                && let Some(last) = self.bytes.last_mut()
            {
                *last |= 1 << self.used;
            }
            self.used = (self.used + 1) % 8;
        }
    }
}

/// LSB-first bit reading.
struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn take(&mut self, bits: usize) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..bits {
            let byte = *self.bytes.get(self.pos / 8)?;
            v |= u64::from((byte >> (self.pos % 8)) & 1) << i;
            self.pos += 1;
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests;

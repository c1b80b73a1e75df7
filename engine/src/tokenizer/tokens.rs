//! Token files: the output of `hitvideo tokenizer encode`, the input of `decode`.
//!
//! Layout (all integers little-endian):
//! ```text
//! 0       8 bytes  magic "HVTOKENS"
//! 8       u32      format version (2; version 1 is still read)
//! 12      u32      header length n
//! 16      n bytes  header JSON: preset, config_sha256, weights_sha256 (optional), fps,
//!                  window_frames, height, width,
//!                  frames (true frame count), source, windows (count), and per window per
//!                  layer {shape [t, h, w], bits, mask (whether mask bits follow)}
//! 16 + n  payload  per window, per layer (coarsest first): a layer without a mask holds its
//!                  t*h*w ids bit-packed with `bits` bits each, least significant bit first,
//!                  padded to a whole byte; a layer with a mask holds its t*h*w mask bits
//!                  (padded to a byte), then the ids of the unmasked positions only, packed
//!                  the same way (version 1 stored every id, then the mask bits)
//! end-32  32 bytes SHA-256 of every byte before it
//! ```
//! A masked layer is dynamic encoding's compact stream: mask bits plus the kept tokens. The ids
//! of masked positions are not stored; reading gives each the id at the same position of the
//! previous latent frame (0 in the first frame), which is what the `repeat` fill decodes, and
//! the `zero` and `learned` fills replace them anyway.

use std::path::{Path, PathBuf};

mod bitpack;

use super::config::TokenizerConfig;
use super::dynamic::FillStrategy;
use crate::checkpoint::sha256_hex;
use bitpack::{pack, packed_len, unpack};

/// The first 8 bytes of every token file.
pub const MAGIC: &[u8; 8] = b"HVTOKENS";
/// The format version this build writes (it also reads version 1).
pub const VERSION: u32 = 2;
const PREFIX: usize = 16;
const CHECKSUM: usize = 32;
/// The most tokens one layer of one window may have (the paper's whole clip is 2,448 tokens).
pub const MAX_LAYER_TOKENS: usize = 1 << 22;
/// The most tokens a whole file may have (a 10-minute clip of the largest preset is far below).
pub const MAX_FILE_TOKENS: usize = 1 << 26;
/// The largest token file read, in bytes.
pub const MAX_FILE_BYTES: u64 = 1 << 28;

/// One layer of one window: its grid, code width, ids and optional mask.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLayer {
    /// Latent grid `[t, h, w]`.
    pub shape: [usize; 3],
    /// Bits per id (the codebook has `2^bits` entries).
    pub bits: usize,
    /// `t * h * w` ids, row-major `[t, h, w]`, each below `2^bits`.
    pub ids: Vec<u32>,
    /// Optional per-token flags (`t * h * w`, row-major), e.g. a dynamic-encoding redundancy
    /// mask (true = masked, see [`super::dynamic`]). Stored as given; ids are stored for every
    /// position either way.
    pub mask: Option<Vec<bool>>,
}

impl TokenLayer {
    /// Tokens in the layer (`t * h * w`).
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ids as a token file stores them: each masked position takes the id at the same
    /// position of the previous latent frame (0 in the first frame), frame by frame.
    pub fn masked_ids_repeated(&self) -> Vec<u32> {
        let mut ids = self.ids.clone();
        let Some(mask) = &self.mask else { return ids };
        let plane = self.shape[1] * self.shape[2];
        for i in 0..ids.len().min(mask.len()) {
            if mask[i] {
                ids[i] = if i >= plane { ids[i - plane] } else { 0 };
            }
        }
        ids
    }

    /// Bits this layer takes in a token file: every id, or with a mask, the mask bits and the
    /// unmasked ids.
    pub fn stored_bits(&self) -> usize {
        match &self.mask {
            None => self.len() * self.bits,
            Some(m) => m.len() + m.iter().filter(|&&b| !b).count() * self.bits,
        }
    }
}

/// One window of `window_frames` frames: its layers, coarsest first.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenWindow {
    pub layers: Vec<TokenLayer>,
}

/// A whole encoded clip.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenFile {
    /// Tokenizer preset name (for messages).
    pub preset: String,
    /// [`crate::tokenizer::config_sha256`] of the tokenizer that made the tokens.
    pub config_sha256: String,
    /// SHA-256 of the weights (`model.bpk`) that made the tokens, when known: two runs of one
    /// config share `config_sha256`, and tokens decoded by the other run's weights are noise.
    pub weights_sha256: Option<String>,
    /// Frame rate of the encoded frames.
    pub fps: f64,
    /// Frames per window (the tokenizer's clip length).
    pub window_frames: usize,
    /// Frame size in pixels.
    pub height: usize,
    pub width: usize,
    /// True frame count: the last window was padded by repeating its last frame.
    pub frames: usize,
    /// Where the frames came from, when known.
    pub source: Option<String>,
    /// Dynamic encoding: the fill strategy (`repeat`, `zero`, `learned`) that decoding uses by
    /// default for the masked positions of layers that carry a mask.
    pub fill: Option<FillStrategy>,
    pub windows: Vec<TokenWindow>,
}

/// Errors reading, writing or matching a token file; each names the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: not a HiTVideo token file (bad magic bytes); pass a file written by `hitvideo tokenizer encode`", .path.display())]
    BadMagic { path: PathBuf },
    #[error("{}: token file format version {found} is not supported (this build reads version {VERSION}); re-encode the video with this build", .path.display())]
    Version { path: PathBuf, found: u32 },
    #[error("{}: truncated token file ({found} bytes where {expected} are needed); re-encode the video", .path.display())]
    Truncated { path: PathBuf, expected: u64, found: u64 },
    #[error("{}: damaged token file ({reason}); re-encode the video", .path.display())]
    Damaged { path: PathBuf, reason: String },
    #[error(
        "{}: these tokens were made by tokenizer '{file_preset}' (config sha256 {file_sha}) but the checkpoint is \
         '{ckpt_preset}' (config sha256 {ckpt_sha}); decode with the checkpoint that encoded them",
        .path.display()
    )]
    ConfigMismatch { path: PathBuf, file_preset: String, file_sha: String, ckpt_preset: String, ckpt_sha: String },
    #[error(
        "{}: these tokens were made by other weights of tokenizer '{preset}' (weights sha256 {file_sha}) than the checkpoint's \
         ({ckpt_sha}); decoded by these weights they would be noise. Decode with the checkpoint or step folder that encoded them",
        .path.display()
    )]
    WeightsMismatch { path: PathBuf, preset: String, file_sha: String, ckpt_sha: String },
    #[error("{}: cannot write these tokens: {reason}", .path.display())]
    Invalid { path: PathBuf, reason: String },
}

#[derive(serde::Serialize, serde::Deserialize)]
struct LayerHeader {
    shape: [usize; 3],
    bits: usize,
    /// Written only when true, to keep the per-window header short.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    mask: bool,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    preset: String,
    config_sha256: String,
    /// Absent in files written before it existed, and where the weights were not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weights_sha256: Option<String>,
    fps: f64,
    window_frames: usize,
    height: usize,
    width: usize,
    frames: usize,
    source: Option<String>,
    /// Absent in files without masks (and in files written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fill: Option<FillStrategy>,
    windows: usize,
    layers: Vec<Vec<LayerHeader>>,
}

impl TokenFile {
    /// Checks shapes, bit widths, id ranges, mask lengths and the frame count.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.fps.is_finite() && self.fps > 0.0) {
            return Err(format!("fps {} must be positive", self.fps));
        }
        if self.windows.is_empty() || self.window_frames == 0 || self.height == 0 || self.width == 0 {
            return Err("needs at least one window and a positive frame size and window length".into());
        }
        let room = self.windows.len() * self.window_frames;
        if self.frames == 0 || self.frames > room || self.frames + self.window_frames <= room {
            return Err(format!("{} frames do not fill {} windows of {} frames", self.frames, self.windows.len(), self.window_frames));
        }
        for (wi, w) in self.windows.iter().enumerate() {
            if w.layers.is_empty() {
                return Err(format!("window {wi} has no layers"));
            }
            for (li, l) in w.layers.iter().enumerate() {
                let at = format!("window {wi} layer {li}");
                if l.bits == 0 || l.bits > 24 {
                    return Err(format!("{at}: {} bits (1..=24 allowed)", l.bits));
                }
                if l.ids.len() != l.len() {
                    return Err(format!("{at}: {} ids for a {:?} grid", l.ids.len(), l.shape));
                }
                if let Some(bad) = l.ids.iter().find(|&&id| id >> l.bits != 0) {
                    return Err(format!("{at}: id {bad} does not fit in {} bits", l.bits));
                }
                if l.mask.as_ref().is_some_and(|m| m.len() != l.len()) {
                    return Err(format!("{at}: mask length differs from the {} tokens", l.len()));
                }
            }
        }
        Ok(())
    }

    /// Id bits over all windows and layers (masks and the header not counted).
    pub fn id_bits(&self) -> usize {
        self.windows.iter().flat_map(|w| &w.layers).map(|l| l.len() * l.bits).sum()
    }

    /// Payload bits of the file: [`TokenLayer::stored_bits`] over all windows and layers (the
    /// header not counted); less than [`Self::id_bits`] when masks drop tokens.
    pub fn stored_bits(&self) -> usize {
        self.windows.iter().flat_map(|w| &w.layers).map(TokenLayer::stored_bits).sum()
    }

    /// Id bits per true pixel position (`id_bits / (frames * height * width)`).
    pub fn bpp(&self) -> f64 {
        self.id_bits() as f64 / (self.frames * self.height * self.width) as f64
    }

    /// Errors unless `cfg` (the checkpoint's config) is the one that made these tokens.
    pub fn check_config(&self, cfg: &TokenizerConfig, path: &Path) -> Result<(), TokenFileError> {
        let sha = super::config_sha256(cfg);
        if sha == self.config_sha256 {
            return Ok(());
        }
        Err(TokenFileError::ConfigMismatch {
            path: path.to_path_buf(),
            file_preset: self.preset.clone(),
            file_sha: self.config_sha256.clone(),
            ckpt_preset: cfg.name.clone(),
            ckpt_sha: sha,
        })
    }

    /// Errors when the file records the weights that made it and `weights_sha256` (the
    /// checkpoint's `model.bpk`) is not them. A file that records none passes.
    pub fn check_weights(&self, weights_sha256: &str, path: &Path) -> Result<(), TokenFileError> {
        match &self.weights_sha256 {
            Some(file) if file != weights_sha256 => Err(TokenFileError::WeightsMismatch {
                path: path.to_path_buf(),
                preset: self.preset.clone(),
                file_sha: file.clone(),
                ckpt_sha: weights_sha256.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// The file's bytes (see the module docs); `path` only names the file in errors.
    pub fn to_bytes(&self, path: &Path) -> Result<Vec<u8>, TokenFileError> {
        self.validate().map_err(|reason| TokenFileError::Invalid { path: path.to_path_buf(), reason })?;
        let layers =
            self.windows.iter().map(|w| w.layers.iter().map(|l| LayerHeader { shape: l.shape, bits: l.bits, mask: l.mask.is_some() }).collect()).collect();
        let header = Header {
            preset: self.preset.clone(),
            config_sha256: self.config_sha256.clone(),
            weights_sha256: self.weights_sha256.clone(),
            fps: self.fps,
            window_frames: self.window_frames,
            height: self.height,
            width: self.width,
            frames: self.frames,
            source: self.source.clone(),
            fill: self.fill,
            windows: self.windows.len(),
            layers,
        };
        let json = serde_json::to_vec(&header).map_err(|e| TokenFileError::Invalid { path: path.to_path_buf(), reason: e.to_string() })?;
        let mut out = Vec::with_capacity(PREFIX + json.len() + self.id_bits() / 8 + CHECKSUM + 64);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&json);
        for l in self.windows.iter().flat_map(|w| &w.layers) {
            match &l.mask {
                None => pack(l.ids.iter().copied(), l.bits, &mut out),
                Some(m) => {
                    pack(m.iter().map(|&b| u32::from(b)), 1, &mut out);
                    pack(l.ids.iter().zip(m).filter(|(_, masked)| !**masked).map(|(&id, _)| id), l.bits, &mut out);
                }
            }
        }
        let sum = sha256_hex(&out);
        let digest = hex::decode(sum).map_err(|e| TokenFileError::Invalid { path: path.to_path_buf(), reason: e.to_string() })?;
        out.extend_from_slice(&digest);
        Ok(out)
    }

    /// Parses bytes written by [`to_bytes`](Self::to_bytes); `path` names the file in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, TokenFileError> {
        let p = || path.to_path_buf();
        let truncated = |expected: usize| TokenFileError::Truncated { path: p(), expected: expected as u64, found: bytes.len() as u64 };
        let damaged = |reason: String| TokenFileError::Damaged { path: p(), reason };
        let head = &bytes[..bytes.len().min(MAGIC.len())];
        if head != &MAGIC[..head.len()] {
            return Err(TokenFileError::BadMagic { path: p() });
        }
        if bytes.len() < PREFIX {
            return Err(truncated(PREFIX + CHECKSUM));
        }
        let word = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let version = word(8);
        if version != VERSION && version != 1 {
            return Err(TokenFileError::Version { path: p(), found: version });
        }
        let header_end = PREFIX + word(12) as usize;
        if bytes.len() < header_end + CHECKSUM {
            return Err(truncated(header_end + CHECKSUM));
        }
        let header: Header = serde_json::from_slice(&bytes[PREFIX..header_end]).map_err(|e| damaged(format!("header: {e}")))?;
        if header.layers.len() != header.windows {
            return Err(damaged(format!("header lists {} windows but layers for {}", header.windows, header.layers.len())));
        }
        // Every size the payload is read with is checked before a buffer is sized from it.
        let mut total = 0usize;
        for (wi, ls) in header.layers.iter().enumerate() {
            for (li, l) in ls.iter().enumerate() {
                let at = format!("window {wi} layer {li}");
                if !(1..=24).contains(&l.bits) {
                    return Err(damaged(format!("{at}: field `bits` is {} (1..=24 allowed)", l.bits)));
                }
                let n = l
                    .shape
                    .iter()
                    .try_fold(1usize, |a, &b| a.checked_mul(b))
                    .filter(|&n| n > 0 && n <= MAX_LAYER_TOKENS)
                    .ok_or_else(|| damaged(format!("{at}: field `shape` {:?} must have 1..={MAX_LAYER_TOKENS} tokens", l.shape)))?;
                total = total.checked_add(n).filter(|&t| t <= MAX_FILE_TOKENS).ok_or_else(|| damaged(format!("more than {MAX_FILE_TOKENS} tokens in all")))?;
            }
        }
        // One pass reads the payload (a masked layer's size depends on its mask), checking each
        // part fits before the checksum; then the sizes and the checksum are checked.
        let body = bytes.len().saturating_sub(CHECKSUM).max(header_end);
        let mut at = header_end;
        let mut take = |n: Option<usize>| -> Result<&[u8], TokenFileError> {
            let end = n.and_then(|n| at.checked_add(n)).ok_or_else(|| damaged("impossible layer shape".into()))?;
            if end > body {
                return Err(truncated(end.saturating_add(CHECKSUM)));
            }
            let s = &bytes[at..end];
            at = end;
            Ok(s)
        };
        let mut windows = Vec::with_capacity(header.windows);
        for ls in &header.layers {
            let mut layers = Vec::with_capacity(ls.len());
            for l in ls {
                let n = l
                    .shape
                    .iter()
                    .try_fold(1usize, |a, &b| a.checked_mul(b))
                    .filter(|_| l.bits <= 24)
                    .ok_or_else(|| damaged("impossible layer shape".into()))?;
                let layer = match (l.mask, version) {
                    (false, _) => TokenLayer { shape: l.shape, bits: l.bits, ids: unpack(take(packed_len(n, l.bits))?, n, l.bits), mask: None },
                    (true, 1) => {
                        let ids = unpack(take(packed_len(n, l.bits))?, n, l.bits);
                        let mask = unpack(take(packed_len(n, 1))?, n, 1).into_iter().map(|b| b == 1).collect();
                        TokenLayer { shape: l.shape, bits: l.bits, ids, mask: Some(mask) }
                    }
                    (true, _) => {
                        let mask: Vec<bool> = unpack(take(packed_len(n, 1))?, n, 1).into_iter().map(|b| b == 1).collect();
                        let kept = mask.iter().filter(|&&b| !b).count();
                        let mut kept_ids = unpack(take(packed_len(kept, l.bits))?, kept, l.bits).into_iter();
                        let ids = mask.iter().map(|&m| if m { 0 } else { kept_ids.next().unwrap_or(0) }).collect();
                        let mut layer = TokenLayer { shape: l.shape, bits: l.bits, ids, mask: Some(mask) };
                        layer.ids = layer.masked_ids_repeated();
                        layer
                    }
                };
                layers.push(layer);
            }
            windows.push(TokenWindow { layers });
        }
        let need = at;
        if bytes.len() > need + CHECKSUM {
            return Err(damaged(format!("{} unexpected bytes at the end", bytes.len() - need - CHECKSUM)));
        }
        if bytes.len() < need + CHECKSUM {
            return Err(truncated(need + CHECKSUM));
        }
        if hex::encode(&bytes[need..]) != sha256_hex(&bytes[..need]) {
            return Err(damaged("checksum mismatch: the contents changed after writing".into()));
        }
        let file = Self {
            preset: header.preset,
            config_sha256: header.config_sha256,
            weights_sha256: header.weights_sha256,
            fps: header.fps,
            window_frames: header.window_frames,
            height: header.height,
            width: header.width,
            frames: header.frames,
            source: header.source,
            fill: header.fill,
            windows,
        };
        file.validate().map_err(damaged)?;
        Ok(file)
    }

    /// Writes the file atomically (temporary sibling, fsync, rename).
    pub fn write(&self, path: &Path) -> Result<(), TokenFileError> {
        let bytes = self.to_bytes(path)?;
        crate::fsutil::write_atomic(path, &bytes).map_err(|source| TokenFileError::Io { path: path.to_path_buf(), source })
    }

    /// Reads and checks a token file.
    pub fn read(path: &Path) -> Result<Self, TokenFileError> {
        let io = |source| TokenFileError::Io { path: path.to_path_buf(), source };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_FILE_BYTES {
            return Err(TokenFileError::Damaged {
                path: path.to_path_buf(),
                reason: format!("{len} bytes, more than the {MAX_FILE_BYTES} a token file may have"),
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        Self::from_bytes(&bytes, path)
    }
}

#[cfg(test)]
mod tests;

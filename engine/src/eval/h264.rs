//! The H.264 baseline of `tokenizer eval --h264`: each clip is encoded with libx264 at the
//! best quality whose coded slices fit the tokenizer's bit budget for that clip, decoded back
//! and measured like the tokenizer.
//!
//! Rate matching searches x264's CRF (integer, 0..=51) by bisection for the smallest CRF
//! whose **coded-slice bits** are at most the clip's token bits. Slice bits exclude the MP4
//! container, SPS/PPS and the SEI text x264 writes into every stream (several hundred bytes,
//! more than a whole tiny clip's token budget); the report also gives the bpp of the whole
//! stream and of the whole file. When even CRF 51 overshoots the budget the clip is reported
//! at CRF 51 with `matched: false`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::analyze::analyze;
use super::tokenizer::Quality;
use crate::dataset::Attributes;
use crate::video::mp4::{Mp4Options, Mp4Stats, write_mp4_with_stats};
use crate::video::{self, DecodeOptions, ExportMetadata, Video, VideoError};

/// The baseline's result on one clip.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct H264Clip {
    /// The CRF chosen by the search.
    pub crf: u8,
    /// The tokenizer's bits per pixel on this clip (the budget).
    pub target_bpp: f64,
    /// Coded-slice bits per pixel (compared with the tokens).
    pub bpp: f64,
    /// All H.264 packet bits per pixel (slices + SEI + parameter sets in-band).
    pub stream_bpp: f64,
    /// MP4 file size in bits per pixel (container and metadata included).
    pub file_bpp: f64,
    /// Whether `bpp <= target_bpp` was reached.
    pub matched: bool,
    /// Reconstruction quality of the decoded H.264 clip.
    pub quality: Quality,
    /// Whether the analyzer reads the same `[color, shape, motion]` from the H.264 decode as
    /// from the original; `None` when it finds no shape in the original.
    pub semantics: Option<[bool; 3]>,
}

/// A scratch folder under the system temp dir, removed on drop.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    /// Creates `hitvideo-<what>-<pid>-<nanos>` in the temp dir.
    pub fn new(what: &str) -> Result<Self, VideoError> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("hitvideo-{what}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|source| VideoError::Io { path: dir.clone(), source })?;
        Ok(Self(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Encodes `clip` with libx264 (`preset`) at the best CRF whose slices fit `target_bits`,
/// decodes it back from `work` (a scratch folder) and measures it against `clip`; `wanted`
/// (the original's attributes, when it has a shape) is compared with what the analyzer reads back.
pub fn h264_at_bits(clip: &Video, wanted: Option<&Attributes>, target_bits: f64, preset: &str, work: &Path) -> Result<H264Clip, VideoError> {
    let meta = ExportMetadata::for_video(clip);
    let mut tried: BTreeMap<u8, (Mp4Stats, PathBuf)> = BTreeMap::new();
    let mut encode = |crf: u8| -> Result<u64, VideoError> {
        if let Some((s, _)) = tried.get(&crf) {
            return Ok(s.slice_bytes * 8);
        }
        let path = work.join(format!("crf-{crf:02}.mp4"));
        let stats = write_mp4_with_stats(clip, &path, &meta, &Mp4Options { crf, preset: preset.to_string() })?;
        tried.insert(crf, (stats, path));
        Ok(stats.slice_bytes * 8)
    };
    // Bits fall as CRF rises: find the smallest CRF within budget.
    let (mut lo, mut hi) = (0u8, 51u8);
    let matched = encode(hi)? as f64 <= target_bits;
    if matched {
        if encode(lo)? as f64 <= target_bits {
            hi = lo;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if encode(mid)? as f64 <= target_bits { hi = mid } else { lo = mid }
        }
    }
    let (stats, path) = tried.get(&hi).cloned().ok_or_else(|| VideoError::Invalid("H.264 search lost its result".into()))?;
    let back = video::decode(&path, &DecodeOptions::default())?;
    if (back.len(), back.width(), back.height()) != (clip.len(), clip.width(), clip.height()) {
        return Err(VideoError::Invalid(format!(
            "{}: decoded {} frames of {}x{} from an H.264 encode of {} frames of {}x{}",
            path.display(),
            back.len(),
            back.width(),
            back.height(),
            clip.len(),
            clip.width(),
            clip.height()
        )));
    }
    let pixels = (clip.len() * clip.width() as usize * clip.height() as usize) as f64;
    let file_bytes = std::fs::metadata(&path).map_err(|source| VideoError::Io { path: path.clone(), source })?.len();
    let quality = Quality::measure(clip, &back).ok_or_else(|| VideoError::Invalid("H.264 clip shape changed".into()))?;
    let semantics = wanted.map(|want| analyze(&back).agrees_with(want));
    Ok(H264Clip {
        crf: hi,
        target_bpp: target_bits / pixels,
        bpp: (stats.slice_bytes * 8) as f64 / pixels,
        stream_bpp: (stats.stream_bytes * 8) as f64 / pixels,
        file_bpp: (file_bytes * 8) as f64 / pixels,
        matched,
        quality,
        semantics,
    })
}

//! Video I/O on FFmpeg (ffmpeg-next): decode anything FFmpeg reads, resample by timestamps,
//! center-crop and resize, cut into windows, and export MP4 / GIF / PNG with reproducibility
//! metadata.
//!
//! - [`clip`]: the in-memory [`Video`] type (RGB8 frames, `[T, H, W, 3]`).
//! - [`decode`]: probing and decoding, with fps resampling and crop/resize on the way.
//! - [`window`]: cutting a clip into T-frame windows with a stride.
//! - [`mp4`], [`gif`], [`png`]: the three export formats.
//! - [`meta`]: the reproducibility metadata written into every export and its sidecar.

pub mod clip;
pub mod decode;
pub mod error;
pub mod gif;
pub mod meta;
pub mod mp4;
pub mod png;
pub mod window;

pub use clip::Video;
pub use decode::{DecodeOptions, VideoInfo, decode, probe};
pub use error::VideoError;
pub use meta::ExportMetadata;
pub use window::{WindowSpec, windows};

use std::path::Path;

/// The export formats the app writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// H.264 in MP4, yuv420p.
    Mp4,
    /// Animated GIF with a palette fitted to the whole clip.
    Gif,
    /// A folder of numbered PNG frames.
    Png,
}

impl ExportFormat {
    /// The format a path's extension names (`.mp4`, `.gif`; anything else, or none, is a PNG folder).
    pub fn from_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("mp4") | Some("m4v") | Some("mov") => Self::Mp4,
            Some("gif") => Self::Gif,
            _ => Self::Png,
        }
    }
}

/// Writes `video` to `path` in the format its extension names, with `meta` in the container
/// and in the sidecar `<path>.json`. Returns the files written.
pub fn export(video: &Video, path: &Path, meta: &ExportMetadata) -> Result<Vec<std::path::PathBuf>, VideoError> {
    let mut written = match ExportFormat::from_path(path) {
        ExportFormat::Mp4 => {
            mp4::write_mp4(video, path, meta, &mp4::Mp4Options::default())?;
            vec![path.to_path_buf()]
        }
        ExportFormat::Gif => {
            gif::write_gif(video, path, meta)?;
            vec![path.to_path_buf()]
        }
        ExportFormat::Png => png::write_png_frames(video, path, meta)?,
    };
    written.push(meta::write_sidecar(path, meta)?);
    Ok(written)
}

/// [`crate::fsutil::write_atomic`] with the video layer's error.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), VideoError> {
    crate::fsutil::write_atomic(path, bytes).map_err(|source| VideoError::Io { path: path.to_path_buf(), source })
}

pub(crate) use crate::fsutil::temp_sibling;

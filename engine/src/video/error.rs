//! Errors of the video layer. Every message names the file and says what to do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("{}: file not found; check the path", .path.display())]
    NotFound { path: PathBuf },

    #[error(
        "{}: FFmpeg cannot read this file ({reason}); it may be corrupt, truncated or not a video. \
         Re-export it as MP4 (H.264) and try again",
        .path.display()
    )]
    Unreadable { path: PathBuf, reason: String },

    #[error(
        "{}: no video stream (an audio-only or data file?); choose a file that contains video",
        .path.display()
    )]
    NoVideoStream { path: PathBuf },

    #[error("{}: no decoder for codec '{codec}' in this FFmpeg build; convert it to H.264 MP4", .path.display())]
    UnsupportedCodec { path: PathBuf, codec: String },

    #[error("{}: the video stream decoded to 0 frames; the file is empty or truncated", .path.display())]
    NoFrames { path: PathBuf },

    #[error(
        "{}: {width}x{height} is too small; at least {min}x{min} pixels are needed",
        .path.display()
    )]
    TooSmall { path: PathBuf, width: u32, height: u32, min: u32 },

    #[error(
        "{}: {width}x{height} is too large (at most {max} pixels a side); downscale it first",
        .path.display()
    )]
    TooLarge { path: PathBuf, width: u32, height: u32, max: u32 },

    #[error(
        "{}: too short: {got} frames at {fps} fps, {need} needed; use a longer clip or fewer frames per window",
        .path.display()
    )]
    TooShort { path: PathBuf, got: usize, need: usize, fps: f64 },

    #[error(
        "{}: decoding would produce {frames} frames of {width}x{height}, past the limit of {max_frames} frames \
         and {max_pixels} pixels for one operation (a long clip, or a timestamp gap in a damaged file); \
         decode a shorter range (--start/--end), a lower fps or a smaller size",
        .path.display()
    )]
    OverBudget { path: PathBuf, frames: usize, width: u32, height: u32, max_frames: usize, max_pixels: u64 },

    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{}: cannot encode: {reason}", .path.display())]
    Encode { path: PathBuf, reason: String },

    #[error("{}: bad export metadata: {reason}", .path.display())]
    Metadata { path: PathBuf, reason: String },

    #[error("invalid video request: {0}")]
    Invalid(String),
}

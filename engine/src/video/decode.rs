//! Probing and decoding with FFmpeg: timestamp-based fps resampling and center-crop + resize
//! on the way, so only the frames that are kept are converted to RGB.

use std::collections::BTreeMap;
#[cfg(not(feature = "ffmpeg"))]
use std::path::Path;
use std::path::PathBuf;

#[cfg(not(feature = "ffmpeg"))]
use super::Video;
use super::VideoError;

/// The smallest frame side the app accepts from a file.
pub const MIN_SIDE: u32 = 16;
/// The largest frame side the app accepts from a file (8K).
pub const MAX_SIDE: u32 = 8192;
/// The containers (FFmpeg demuxer names) the app opens; anything else, playlists (HLS, concat)
/// and network protocols included, is refused before FFmpeg reads past the probe. Audio-only
/// and single-image demuxers are there so such files get their own clear message ("no video
/// stream", "a still image") instead of a generic refusal.
pub const FORMATS: &str = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,gif,mpegts,mpeg,flv,ogg,h264,hevc,m4v,yuv4mpegpipe,\
wav,mp3,flac,aac,png_pipe,jpeg_pipe,webp_pipe,bmp_pipe";

/// How much one decode may produce: frames, and frames x pixels (each pixel 3 bytes of RGB).
/// A request that would go past either gets [`VideoError::OverBudget`] instead of memory
/// growing without limit (a timestamp gap of a million seconds at 8 fps is 8 million frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameBudget {
    pub frames: usize,
    pub pixels: u64,
}

impl FrameBudget {
    /// 10 minutes at 60 fps, and 512 Mi pixels (1.5 GiB of RGB): a 10-minute clip at 8 fps and
    /// 256x256 fits four times over.
    pub const DEFAULT: Self = Self { frames: 36_000, pixels: 512 << 20 };
}

impl Default for FrameBudget {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// How to decode: all of these are optional.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeOptions {
    /// Resample to this frame rate by timestamps; `None` keeps every decoded frame.
    pub fps: Option<f64>,
    /// Crop to this aspect ratio and resize to `(width, height)`.
    pub size: Option<(u32, u32)>,
    /// Where the crop sits in the room the frame leaves, as fractions `[x, y]` in `[0, 1]`
    /// (`[0.5, 0.5]`, the default, centres it; training draws it at random).
    pub crop_at: [f32; 2],
    /// Seconds from the first frame at which to start.
    pub start: f64,
    /// Seconds from the first frame at which to stop (exclusive).
    pub end: Option<f64>,
    /// Stop after this many output frames.
    pub max_frames: Option<usize>,
    /// Decoder threads (0 lets FFmpeg choose).
    pub threads: usize,
    /// The most this decode may produce (an error past it; `max_frames` is a request, this a limit).
    pub budget: FrameBudget,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self { fps: None, size: None, crop_at: [0.5, 0.5], start: 0.0, end: None, max_frames: None, threads: 0, budget: FrameBudget::DEFAULT }
    }
}

impl DecodeOptions {
    /// Resampled to `fps` and resized to `size x size` (the common training setting).
    pub fn at(fps: f64, size: u32) -> Self {
        Self { fps: Some(fps), size: Some((size, size)), ..Self::default() }
    }

    fn validate(&self) -> Result<(), VideoError> {
        if let Some(fps) = self.fps
            && !(fps.is_finite() && fps > 0.0 && fps <= 1000.0)
        {
            return Err(VideoError::Invalid(format!("target fps {fps} must be in (0, 1000]")));
        }
        if let Some((w, h)) = self.size
            && (w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE)
        {
            return Err(VideoError::Invalid(format!("target size {w}x{h} must be 1..={MAX_SIDE} a side")));
        }
        if !(self.start.is_finite() && self.start >= 0.0) {
            return Err(VideoError::Invalid(format!("start {} s must be >= 0", self.start)));
        }
        if let Some(end) = self.end
            && !(end.is_finite() && end > self.start)
        {
            return Err(VideoError::Invalid(format!("end {end} s must be after start {} s", self.start)));
        }
        if !self.crop_at.iter().all(|c| (0.0..=1.0).contains(c)) {
            return Err(VideoError::Invalid(format!("crop position {:?} must be fractions in [0, 1]", self.crop_at)));
        }
        if self.max_frames == Some(0) {
            return Err(VideoError::Invalid("max_frames must be at least 1".into()));
        }
        if self.budget.frames == 0 || self.budget.pixels == 0 {
            return Err(VideoError::Invalid("the decode budget must allow at least one frame".into()));
        }
        Ok(())
    }
}

/// What [`probe`] learns from a file's header without decoding it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VideoInfo {
    pub path: PathBuf,
    pub container: String,
    pub codec: String,
    pub width: u32,
    pub height: u32,
    /// Average frame rate the container reports (0 when unknown).
    pub fps: f64,
    /// Duration in seconds the container reports (0 when unknown).
    pub duration: f64,
    /// Container-level metadata tags (title, comment, ...).
    pub metadata: BTreeMap<String, String>,
}

#[cfg(feature = "ffmpeg")]
mod ffmpeg_io;
#[cfg(feature = "ffmpeg")]
pub(crate) use ffmpeg_io::init_ffmpeg;
#[cfg(feature = "ffmpeg")]
pub use ffmpeg_io::{decode, probe};
#[cfg(feature = "ffmpeg")]
mod kept;
#[cfg(feature = "ffmpeg")]
pub use kept::{KeptClip, keep};

/// Why a build without the `ffmpeg` feature (the GPU check's binaries) reads no video file.
#[cfg(not(feature = "ffmpeg"))]
fn no_ffmpeg(path: &Path) -> VideoError {
    VideoError::Unreadable { path: path.to_path_buf(), reason: "this build has no FFmpeg (built without the `ffmpeg` feature); use a default build".into() }
}

/// Reads a file's header (this build has no FFmpeg: always an error naming the file).
#[cfg(not(feature = "ffmpeg"))]
pub fn probe(path: &Path) -> Result<VideoInfo, VideoError> {
    Err(no_ffmpeg(path))
}

/// Decodes a file (this build has no FFmpeg: always an error naming the file).
#[cfg(not(feature = "ffmpeg"))]
pub fn decode(path: &Path, opts: &DecodeOptions) -> Result<Video, VideoError> {
    opts.validate()?;
    Err(no_ffmpeg(path))
}

/// A clip decoded once and kept (this build has no FFmpeg: there are none).
#[cfg(not(feature = "ffmpeg"))]
#[derive(Debug)]
pub struct KeptClip(std::convert::Infallible);

#[cfg(not(feature = "ffmpeg"))]
impl KeptClip {
    pub fn bytes(&self) -> usize {
        match self.0 {}
    }
    pub fn window(&self, _opts: &DecodeOptions) -> Result<Video, VideoError> {
        match self.0 {}
    }
}

/// Decodes a file whole to keep it (this build has no FFmpeg: always an error naming the file).
#[cfg(not(feature = "ffmpeg"))]
pub fn keep(path: &Path, _out: (u32, u32), _max_bytes: usize) -> Result<Option<KeptClip>, VideoError> {
    Err(no_ffmpeg(path))
}

#[cfg(all(test, feature = "ffmpeg"))]
mod tests;

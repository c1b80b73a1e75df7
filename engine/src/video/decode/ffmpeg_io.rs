//! The FFmpeg side of [`super`]: opening local files of the whitelisted containers, probing,
//! decoding with timestamp resampling, and conversion to RGB (only in builds with the `ffmpeg`
//! feature, the default).

use std::path::Path;
use std::sync::Once;

use ffmpeg::{codec, format, frame, media, software::scaling};
use ffmpeg_next as ffmpeg;

use super::super::clip::crop_size;
use super::super::{Video, VideoError};
use super::{DecodeOptions, FORMATS, MAX_SIDE, MIN_SIDE, VideoInfo};

pub(crate) fn init_ffmpeg() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // Initialisation only fails on builds without any codecs; decoding would then fail
        // per file with a clear error.
        let _ = ffmpeg::init();
        ffmpeg::log::set_level(ffmpeg::log::Level::Fatal);
    });
}

/// Opens a local regular file with FFmpeg, allowing only the `file` protocol and the
/// demuxers in [`FORMATS`].
fn open_input(path: &Path) -> Result<format::context::Input, VideoError> {
    init_ffmpeg();
    let Some(text) = path.to_str() else {
        return Err(VideoError::Unreadable {
            path: path.to_path_buf(),
            reason: "the path is not valid UTF-8, which FFmpeg cannot open; rename the file".into(),
        });
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(VideoError::NotFound { path: path.to_path_buf() }),
        Err(source) => return Err(VideoError::Io { path: path.to_path_buf(), source }),
    };
    if meta.is_dir() {
        return Err(VideoError::Unreadable { path: path.to_path_buf(), reason: "it is a folder".into() });
    }
    if !meta.is_file() {
        return Err(VideoError::Unreadable { path: path.to_path_buf(), reason: "it is not a regular file (a device, FIFO or socket)".into() });
    }
    let mut opts = ffmpeg::Dictionary::new();
    opts.set("protocol_whitelist", "file");
    opts.set("format_whitelist", FORMATS);
    // The `file:` prefix keeps a name such as `concat:a|b` or `http:x` a local file name.
    format::input_with_dictionary(&format!("file:{text}"), opts)
        .map_err(|e| VideoError::Unreadable { path: path.to_path_buf(), reason: format!("{e} (the app opens local files of these containers: {FORMATS})") })
}

fn check_dims(path: &Path, width: u32, height: u32) -> Result<(), VideoError> {
    let path = path.to_path_buf();
    if width < MIN_SIDE || height < MIN_SIDE {
        return Err(VideoError::TooSmall { path, width, height, min: MIN_SIDE });
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(VideoError::TooLarge { path, width, height, max: MAX_SIDE });
    }
    Ok(())
}

fn rational(r: ffmpeg::Rational) -> f64 {
    if r.denominator() == 0 { 0.0 } else { f64::from(r.numerator()) / f64::from(r.denominator()) }
}

/// Reads a file's header: container, codec, size, frame rate, duration and metadata tags.
pub fn probe(path: &Path) -> Result<VideoInfo, VideoError> {
    let ictx = open_input(path)?;
    let stream = ictx.streams().best(media::Type::Video).ok_or_else(|| VideoError::NoVideoStream { path: path.to_path_buf() })?;
    let params = stream.parameters();
    let codec_id = params.id();
    let ctx = codec::context::Context::from_parameters(params).map_err(|e| VideoError::Unreadable { path: path.to_path_buf(), reason: e.to_string() })?;
    let dec = ctx.decoder().video().map_err(|_| VideoError::UnsupportedCodec { path: path.to_path_buf(), codec: format!("{codec_id:?}").to_lowercase() })?;
    let duration = if ictx.duration() > 0 { ictx.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE) } else { 0.0 };
    Ok(VideoInfo {
        path: path.to_path_buf(),
        container: ictx.format().name().to_string(),
        codec: format!("{codec_id:?}").to_lowercase(),
        width: dec.width(),
        height: dec.height(),
        fps: rational(stream.avg_frame_rate()),
        duration,
        metadata: ictx.metadata().iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    })
}

/// Converts kept frames to RGB at the output size: FFmpeg scales so the target rectangle is
/// covered, then the crop is cut (centred unless `crop_at` says otherwise).
pub(super) struct Converter {
    scaler: Option<(scaling::Context, format::Pixel, u32, u32)>,
    rgb: frame::Video,
    out: Option<(u32, u32)>,
    crop_at: [f32; 2],
}

impl Converter {
    pub(super) fn new(out: Option<(u32, u32)>, crop_at: [f32; 2]) -> Self {
        Self { scaler: None, rgb: frame::Video::empty(), out, crop_at }
    }

    /// Scales `src` so that the output rectangle's crop is covered; the whole scaled frame is
    /// left in `self.rgb`. Returns its size.
    pub(super) fn scale(&mut self, src: &frame::Video, path: &Path) -> Result<(u32, u32), VideoError> {
        let (w, h, fmt) = (src.width(), src.height(), src.format());
        let (out_w, out_h) = self.out.unwrap_or((w, h));
        let (crop_w, crop_h) = crop_size(w, h, out_w, out_h);
        // Scale the whole frame by the factor that maps the crop onto the output.
        let sw = ((u64::from(w) * u64::from(out_w)).div_ceil(u64::from(crop_w)) as u32).max(out_w);
        let sh = ((u64::from(h) * u64::from(out_h)).div_ceil(u64::from(crop_h)) as u32).max(out_h);
        let stale = !matches!(&self.scaler, Some((_, f, sw0, sh0)) if *f == fmt && (*sw0, *sh0) == (w, h));
        if stale {
            let flags = if sw < w { scaling::Flags::AREA } else { scaling::Flags::BICUBIC };
            let ctx = scaling::Context::get(fmt, w, h, format::Pixel::RGB24, sw, sh, flags)
                .map_err(|e| VideoError::Unreadable { path: path.to_path_buf(), reason: format!("pixel conversion: {e}") })?;
            self.scaler = Some((ctx, fmt, w, h));
            self.rgb = frame::Video::empty();
        }
        let Some((scaler, ..)) = self.scaler.as_mut() else {
            return Err(VideoError::Invalid("scaler missing".into()));
        };
        scaler.run(src, &mut self.rgb).map_err(|e| VideoError::Unreadable { path: path.to_path_buf(), reason: format!("pixel conversion: {e}") })?;
        Ok((sw, sh))
    }

    /// The scaled frame's rows, `stride` bytes apart.
    pub(super) fn scaled(&self) -> (&[u8], usize) {
        (self.rgb.data(0), self.rgb.stride(0))
    }

    fn convert(&mut self, src: &frame::Video, path: &Path) -> Result<(u32, u32, Vec<u8>), VideoError> {
        let (w, h) = (src.width(), src.height());
        let out = self.out.unwrap_or((w, h));
        let (sw, sh) = self.scale(src, path)?;
        let (data, stride) = self.scaled();
        Ok((out.0, out.1, crop(data, stride, (sw, sh), out, self.crop_at)))
    }
}

/// The `out` rectangle of a scaled RGB frame of size `scaled` (rows `stride` bytes apart),
/// placed at `crop_at` (fractions of the room left, `[0.5, 0.5]` centred).
pub(super) fn crop(data: &[u8], stride: usize, scaled: (u32, u32), out: (u32, u32), crop_at: [f32; 2]) -> Vec<u8> {
    let ((sw, sh), (out_w, out_h)) = (scaled, out);
    let x0 = (((sw - out_w) as f32 * crop_at[0]).round() as u32).min(sw - out_w) as usize;
    let y0 = (((sh - out_h) as f32 * crop_at[1]).round() as u32).min(sh - out_h) as usize;
    let row_bytes = out_w as usize * 3;
    let mut rgb = Vec::with_capacity(row_bytes * out_h as usize);
    for y in 0..out_h as usize {
        let start = (y0 + y) * stride + x0 * 3;
        rgb.extend_from_slice(&data[start..start + row_bytes]);
    }
    rgb
}

/// Decodes the best video stream of `path` into RGB frames.
///
/// With `opts.fps`, output frame `k` shows the source frame on screen at time
/// `start + k / fps` (the last frame whose timestamp is at or before it), so a 10 s clip gives
/// exactly `10 * fps` frames whatever its source rate. Only kept frames are converted.
pub fn decode(path: &Path, opts: &DecodeOptions) -> Result<Video, VideoError> {
    opts.validate()?;
    let mut reader = FrameReader::open(path, opts.threads)?;
    let mut state = Resampler::new(opts, reader.stream_fps);
    // A start past the first seconds seeks to the keyframe before it (a window late in a
    // 10-minute clip decodes a few seconds, not the whole prefix); times then count from the
    // stream's own start, as they do without the seek.
    if opts.start > SEEK_AFTER && reader.seek(opts.start - SEEK_AFTER / 2.0) {
        state.origin = Some(reader.origin);
    }
    let mut conv = Converter::new(opts.size, opts.crop_at);
    let video = resample(&mut state, opts, reader.stream_fps, path, || reader.next_frame(), |f| conv.convert(f, path))?;
    video.ok_or_else(|| match reader.read_error.take() {
        Some(reason) => VideoError::Unreadable { path: path.to_path_buf(), reason },
        None => VideoError::NoFrames { path: path.to_path_buf() },
    })
}

/// The decoded frames of a file's best video stream, in order, each with its timestamp and
/// duration in seconds.
pub(super) struct FrameReader {
    path: std::path::PathBuf,
    ictx: format::context::Input,
    decoder: codec::decoder::Video,
    index: usize,
    time_base: f64,
    /// The stream's first timestamp, seconds.
    pub(super) origin: f64,
    /// The stream's frame rate (25 when the file does not say).
    pub(super) stream_fps: f64,
    eof: bool,
    /// Why reading stopped early, if it did (the frames before it are good).
    pub(super) read_error: Option<String>,
}

impl FrameReader {
    pub(super) fn open(path: &Path, threads: usize) -> Result<Self, VideoError> {
        let ictx = open_input(path)?;
        let stream = ictx.streams().best(media::Type::Video).ok_or_else(|| VideoError::NoVideoStream { path: path.to_path_buf() })?;
        let index = stream.index();
        let time_base = rational(stream.time_base());
        let origin = stream_origin(&stream, time_base);
        let stream_fps =
            [rational(stream.avg_frame_rate()), rational(stream.rate())].into_iter().find(|r| r.is_finite() && *r > 0.0 && *r < 1000.0).unwrap_or(25.0);
        let params = stream.parameters();
        let codec_id = params.id();
        let mut ctx =
            codec::context::Context::from_parameters(params).map_err(|e| VideoError::Unreadable { path: path.to_path_buf(), reason: e.to_string() })?;
        ctx.set_threading(codec::threading::Config { kind: codec::threading::Type::Frame, count: threads, ..Default::default() });
        let decoder =
            ctx.decoder().video().map_err(|_| VideoError::UnsupportedCodec { path: path.to_path_buf(), codec: format!("{codec_id:?}").to_lowercase() })?;
        if decoder.width() > 0 {
            check_dims(path, decoder.width(), decoder.height())?;
        }
        Ok(Self { path: path.to_path_buf(), ictx, decoder, index, time_base, origin, stream_fps, eof: false, read_error: None })
    }

    /// Seeks to the keyframe at or before `seconds` from the stream's start; false when the
    /// file cannot seek (reading goes on from where it was).
    fn seek(&mut self, seconds: f64) -> bool {
        let target = ((self.origin + seconds) * 1e6) as i64;
        let ok = self.ictx.seek(target, ..target).is_ok();
        if ok {
            self.decoder.flush();
        }
        ok
    }

    /// The next decoded frame with its timestamp (if any) and duration, seconds; `None` at the
    /// end of the stream or after a read error (kept in `read_error`). Corrupt packets are
    /// skipped, as FFmpeg's own tools do.
    pub(super) fn next_frame(&mut self) -> Result<Option<(frame::Video, Option<f64>, f64)>, VideoError> {
        loop {
            let mut decoded = frame::Video::empty();
            if self.decoder.receive_frame(&mut decoded).is_ok() {
                check_dims(&self.path, decoded.width(), decoded.height())?;
                let pts = decoded.timestamp().map(|ts| ts as f64 * self.time_base);
                let dur = decoded.packet().duration as f64 * self.time_base;
                return Ok(Some((decoded, pts, dur)));
            }
            if self.eof {
                return Ok(None);
            }
            let mut p = ffmpeg::Packet::empty();
            match p.read(&mut self.ictx) {
                Ok(()) if p.stream() == self.index => {
                    // A corrupt packet is skipped.
                    let _ = self.decoder.send_packet(&p);
                }
                Ok(()) => {}
                Err(e) => {
                    if e != ffmpeg::Error::Eof {
                        self.read_error = Some(e.to_string());
                    }
                    let _ = self.decoder.send_eof();
                    self.eof = true;
                }
            }
        }
    }
}

/// Runs frames from `next` through `state` and converts the kept ones with `convert`
/// (`(width, height, rgb)`), within `opts.budget`. `None` when no frame was kept.
pub(super) fn resample<F>(
    state: &mut Resampler<F>,
    opts: &DecodeOptions,
    stream_fps: f64,
    path: &Path,
    mut next: impl FnMut() -> Result<Option<(F, Option<f64>, f64)>, VideoError>,
    mut convert: impl FnMut(&F) -> Result<(u32, u32, Vec<u8>), VideoError>,
) -> Result<Option<Video>, VideoError> {
    let budget = opts.budget;
    let mut video: Option<Video> = None;
    let mut emit = |f: &F, n: usize, video: &mut Option<Video>| -> Result<(), VideoError> {
        let (w, h, rgb) = convert(f)?;
        let have = video.as_ref().map_or(0, Video::len);
        let frames = have.saturating_add(n);
        let pixels = (frames as u64).saturating_mul(u64::from(w) * u64::from(h));
        if frames > budget.frames || pixels > budget.pixels {
            return Err(VideoError::OverBudget { path: path.to_path_buf(), frames, width: w, height: h, max_frames: budget.frames, max_pixels: budget.pixels });
        }
        let v = video.get_or_insert_with(|| Video::new(w, h, opts.fps.unwrap_or(stream_fps)));
        // A mid-stream size change without a target size: keep the first size's frames.
        if (v.width(), v.height()) == (w, h) {
            for _ in 0..n {
                v.push_frame(&rgb);
            }
        }
        Ok(())
    };
    while let Some((f, pts, dur)) = next()? {
        if let Some((out, n)) = state.push(f, pts, dur) {
            emit(&out, n, &mut video)?;
        }
        if state.done() {
            break;
        }
    }
    if let Some((last, n)) = state.finish() {
        emit(&last, n, &mut video)?;
    }
    Ok(match video {
        Some(v) if !v.is_empty() => match (opts.fps, state.native_fps()) {
            (None, Some(fps)) => Some(v.with_fps(fps)),
            _ => Some(v),
        },
        _ => None,
    })
}

/// Starts later than this (seconds) seek instead of decoding from the first frame.
const SEEK_AFTER: f64 = 2.0;

/// The time of a stream's first frame in seconds (its `start_time`; 0 when unknown).
fn stream_origin(stream: &format::stream::Stream, time_base: f64) -> f64 {
    let t = stream.start_time();
    if t == ffmpeg::ffi::AV_NOPTS_VALUE { 0.0 } else { t as f64 * time_base }
}

/// Timestamp-based frame selection. Holds the latest decoded frame until the next one shows
/// how long it stays on screen.
pub(super) struct Resampler<F> {
    fps: Option<f64>,
    start: f64,
    end: f64,
    max_frames: usize,
    stream_fps: f64,
    pub(super) origin: Option<f64>,
    emitted: usize,
    /// The held frame (none when frames are passed on at once), its time and duration.
    prev: Option<(Option<F>, f64, f64)>,
    /// Earliest and latest on-screen times seen among kept frames (for the native rate).
    span: Option<(f64, f64)>,
}

impl<F> Resampler<F> {
    pub(super) fn new(opts: &DecodeOptions, stream_fps: f64) -> Self {
        Self {
            fps: opts.fps,
            start: opts.start,
            end: opts.end.unwrap_or(f64::INFINITY),
            // One past the budget, so a request beyond it is seen (and refused) without the
            // resampler ever counting further.
            max_frames: opts.max_frames.unwrap_or(usize::MAX).min(opts.budget.frames.saturating_add(1)),
            stream_fps,
            origin: None,
            emitted: 0,
            prev: None,
            span: None,
        }
    }

    fn done(&self) -> bool {
        self.emitted >= self.max_frames || self.next_time() >= self.end
    }

    fn next_time(&self) -> f64 {
        match self.fps {
            Some(fps) => self.start + self.emitted as f64 / fps,
            None => f64::NEG_INFINITY,
        }
    }

    /// Takes a decoded frame with its timestamp and duration (seconds); returns a frame to
    /// emit now and how many times (the previous frame, once its time on screen is known).
    fn push(&mut self, f: F, pts: Option<f64>, dur: f64) -> Option<(F, usize)> {
        let guess = self.prev.as_ref().map(|(_, t, d)| t + d);
        let t_abs = match (pts, guess) {
            (Some(p), _) if p.is_finite() => p,
            (_, Some(g)) => g + self.origin.unwrap_or(0.0),
            (_, None) => 0.0,
        };
        let origin = *self.origin.get_or_insert(t_abs);
        let mut t = t_abs - origin;
        if let Some((_, pt, _)) = &self.prev {
            // Out-of-order or repeated timestamps: keep time moving forward.
            if t <= *pt {
                t = pt + self.frame_dur();
            }
        }
        let dur = if dur > 0.0 && dur.is_finite() { dur } else { self.frame_dur() };
        match self.fps {
            None => {
                let keep = t + 1e-9 >= self.start && t < self.end && self.emitted < self.max_frames;
                self.prev = Some((None, t, dur));
                if keep {
                    let (a, _) = self.span.unwrap_or((t, t));
                    self.span = Some((a.min(t), t + dur));
                    self.emitted += 1;
                    return Some((f, 1));
                }
                if t >= self.end {
                    self.emitted = self.max_frames;
                }
                None
            }
            Some(_) => {
                let mut n = 0;
                let held = self.prev.take();
                while held.is_some() && !self.done() && self.next_time() < t - 1e-9 {
                    self.emitted += 1;
                    n += 1;
                }
                self.prev = Some((Some(f), t, dur));
                held.filter(|_| n > 0).and_then(|(pf, _, _)| pf.map(|pf| (pf, n)))
            }
        }
    }

    /// At end of stream: the held frame and how many times to emit it.
    fn finish(&mut self) -> Option<(F, usize)> {
        self.fps?;
        let (f, t, dur) = self.prev.take()?;
        let f = f?;
        let end = (t + dur).min(self.end);
        let mut n = 0;
        while self.emitted < self.max_frames && self.next_time() < end - 1e-9 {
            self.emitted += 1;
            n += 1;
        }
        (n > 0).then_some((f, n))
    }

    /// Frames per second over the kept frames' time span (native-rate decoding).
    fn native_fps(&self) -> Option<f64> {
        let (a, b) = self.span?;
        let fps = self.emitted as f64 / (b - a);
        (fps.is_finite() && fps > 0.0).then_some(fps)
    }

    fn frame_dur(&self) -> f64 {
        1.0 / self.stream_fps
    }
}

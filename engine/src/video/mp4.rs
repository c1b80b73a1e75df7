//! MP4 export: H.264 (libx264), yuv420p, with the metadata JSON in the `comment` tag.

use std::path::Path;

#[cfg(feature = "ffmpeg")]
use ffmpeg::{Dictionary, Packet, Rational, codec, encoder, format, frame, software::scaling};
#[cfg(feature = "ffmpeg")]
use ffmpeg_next as ffmpeg;

use super::{ExportMetadata, Video, VideoError};

/// Encoder settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mp4Options {
    /// x264 constant rate factor: 0 (best) ..= 51; 18 is visually lossless.
    pub crf: u8,
    /// x264 preset (ultrafast ... veryslow).
    pub preset: String,
}

impl Default for Mp4Options {
    fn default() -> Self {
        Self { crf: 18, preset: "medium".to_string() }
    }
}

/// A frame rate as an exact rational (8 -> 8/1, 29.97 -> 2997/100).
#[cfg(feature = "ffmpeg")]
fn fps_rational(fps: f64) -> Rational {
    if (fps - fps.round()).abs() < 1e-9 { Rational::new(fps.round() as i32, 1) } else { Rational::new((fps * 1000.0).round() as i32, 1000) }
}

/// Sizes of what an encode produced (for rate measurements such as a matched-bpp baseline).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mp4Stats {
    /// Packets written (one per frame).
    pub packets: usize,
    /// Bytes of every H.264 packet: the bitstream without the container and its headers.
    pub stream_bytes: u64,
    /// Bytes of the coded slice NAL units only (no start codes, SEI, parameter sets or
    /// delimiters): the stream less x264's settings text and per-stream overhead.
    pub slice_bytes: u64,
}

/// Bytes of the coded slices (NAL types 1..=5) in one H.264 packet, Annex B or
/// 4-byte-length-prefixed.
#[cfg_attr(not(feature = "ffmpeg"), allow(dead_code))]
fn slice_bytes(data: &[u8]) -> u64 {
    let is_slice = |nal: &[u8]| nal.first().is_some_and(|b| (1..=5).contains(&(b & 0x1f)));
    let mut total = 0u64;
    if data.starts_with(&[0, 0, 1]) || data.starts_with(&[0, 0, 0, 1]) {
        let starts: Vec<usize> = (0..data.len().saturating_sub(2)).filter(|&i| data[i..i + 3] == [0, 0, 1]).map(|i| i + 3).collect();
        for (k, &s) in starts.iter().enumerate() {
            let mut end = starts.get(k + 1).map_or(data.len(), |&n| n - 3);
            while end > s && data[end - 1] == 0 && k + 1 < starts.len() {
                end -= 1;
            }
            if is_slice(&data[s..end]) {
                total += (end - s) as u64;
            }
        }
    } else {
        let mut at = 0;
        while at + 4 <= data.len() {
            let n = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
            let nal = &data[at + 4..(at + 4 + n).min(data.len())];
            if is_slice(nal) {
                total += nal.len() as u64;
            }
            at += 4 + n;
        }
    }
    total
}

/// Encodes `video` to `path` (written to a temporary file and renamed when complete).
pub fn write_mp4(video: &Video, path: &Path, meta: &ExportMetadata, opts: &Mp4Options) -> Result<(), VideoError> {
    write_mp4_with_stats(video, path, meta, opts).map(|_| ())
}

/// [`write_mp4`], returning the sizes of the encoded stream.
pub fn write_mp4_with_stats(video: &Video, path: &Path, meta: &ExportMetadata, opts: &Mp4Options) -> Result<Mp4Stats, VideoError> {
    #[cfg(feature = "ffmpeg")]
    super::decode::init_ffmpeg();
    if video.is_empty() {
        return Err(VideoError::Invalid(format!("{}: nothing to encode (0 frames)", path.display())));
    }
    if opts.crf > 51 {
        return Err(VideoError::Invalid(format!("crf {} is out of range 0..=51", opts.crf)));
    }
    write_with_pts(video, path, meta, opts, None)
}

/// [`write_mp4_with_stats`] with explicit presentation times (in frames at the clip's rate),
/// for tests of damaged timing such as a gap of a million seconds.
pub(crate) fn write_with_pts(video: &Video, path: &Path, meta: &ExportMetadata, opts: &Mp4Options, pts: Option<&[i64]>) -> Result<Mp4Stats, VideoError> {
    if path.to_str().is_none() {
        return Err(VideoError::Encode {
            path: path.to_path_buf(),
            reason: "the path is not valid UTF-8, which FFmpeg cannot write; choose another name".into(),
        });
    }
    let tmp = super::temp_sibling(path);
    // FFmpeg creates the temporary file itself: whatever has the name (a planted symlink
    // included) is removed first, not followed.
    let _ = std::fs::remove_file(&tmp);
    #[cfg(feature = "ffmpeg")]
    let result = encode_to(video, &tmp, meta, opts, pts);
    #[cfg(not(feature = "ffmpeg"))]
    let result: Result<Mp4Stats, VideoError> = {
        let _ = (video, meta, opts, pts);
        Err(VideoError::Encode { path: path.to_path_buf(), reason: "this build has no FFmpeg (built without the `ffmpeg` feature)".into() })
    };
    match result {
        Ok(stats) => {
            std::fs::rename(&tmp, path).map_err(|source| VideoError::Io { path: path.to_path_buf(), source })?;
            crate::fsutil::sync_dir(crate::fsutil::parent_dir(path));
            Ok(stats)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(feature = "ffmpeg")]
fn encode_to(video: &Video, path: &Path, meta: &ExportMetadata, opts: &Mp4Options, pts: Option<&[i64]>) -> Result<Mp4Stats, VideoError> {
    let fail = |reason: String| VideoError::Encode { path: path.to_path_buf(), reason };
    let (w, h) = (video.width(), video.height());
    // yuv420p needs even sides.
    let (ew, eh) = (w + (w & 1), h + (h & 1));
    let rate = fps_rational(video.fps());
    let time_base = rate.invert();

    let mut octx = format::output(path).map_err(|e| fail(format!("cannot create the output: {e}")))?;
    let global_header = octx.format().flags().contains(format::Flags::GLOBAL_HEADER);
    let codec = encoder::find_by_name("libx264")
        .or_else(|| encoder::find(codec::Id::H264))
        .ok_or_else(|| fail("this FFmpeg has no H.264 encoder (install libavcodec with libx264)".into()))?;
    let mut ost = octx.add_stream(codec).map_err(|e| fail(e.to_string()))?;
    let ost_index = ost.index();
    let mut enc = codec::context::Context::new_with_codec(codec).encoder().video().map_err(|e| fail(e.to_string()))?;
    enc.set_width(ew);
    enc.set_height(eh);
    enc.set_format(format::Pixel::YUV420P);
    enc.set_time_base(time_base);
    enc.set_frame_rate(Some(rate));
    if global_header {
        enc.set_flags(codec::Flags::GLOBAL_HEADER);
    }
    let mut x264 = Dictionary::new();
    x264.set("preset", &opts.preset);
    x264.set("crf", &opts.crf.to_string());
    let mut enc = enc.open_with(x264).map_err(|e| fail(format!("cannot open the H.264 encoder: {e}")))?;
    ost.set_parameters(&enc);
    ost.set_time_base(time_base);
    ost.set_rate(rate);
    ost.set_avg_frame_rate(rate);

    let mut tags = Dictionary::new();
    // FFmpeg's tags are C strings: a NUL (or another control character) in a prompt must not
    // reach them. The JSON escapes every control character; the title replaces them.
    tags.set("comment", &meta.to_json());
    if let Some(prompt) = &meta.prompt {
        tags.set("title", &super::meta::tag_text(prompt));
    }
    octx.set_metadata(tags);
    octx.write_header().map_err(|e| fail(format!("cannot write the MP4 header: {e}")))?;
    let ost_tb = octx.stream(ost_index).map(|s| s.time_base()).unwrap_or(time_base);

    let mut scaler = scaling::Context::get(
        format::Pixel::RGB24,
        w,
        h,
        format::Pixel::YUV420P,
        ew,
        eh,
        scaling::Flags::BICUBIC | scaling::Flags::ACCURATE_RND | scaling::Flags::FULL_CHR_H_INT,
    )
    .map_err(|e| fail(format!("pixel conversion: {e}")))?;
    let mut rgb = frame::Video::new(format::Pixel::RGB24, w, h);
    let mut yuv = frame::Video::empty();
    let row = w as usize * 3;
    let mut stats = Mp4Stats::default();
    for t in 0..video.len() {
        let src = video.frame(t);
        let stride = rgb.stride(0);
        let data = rgb.data_mut(0);
        for y in 0..h as usize {
            data[y * stride..y * stride + row].copy_from_slice(&src[y * row..(y + 1) * row]);
        }
        scaler.run(&rgb, &mut yuv).map_err(|e| fail(format!("pixel conversion: {e}")))?;
        yuv.set_pts(Some(pts.and_then(|p| p.get(t).copied()).unwrap_or(t as i64)));
        enc.send_frame(&yuv).map_err(|e| fail(e.to_string()))?;
        drain(&mut enc, &mut octx, ost_index, time_base, ost_tb, path, &mut stats)?;
    }
    enc.send_eof().map_err(|e| fail(e.to_string()))?;
    drain(&mut enc, &mut octx, ost_index, time_base, ost_tb, path, &mut stats)?;
    octx.write_trailer().map_err(|e| fail(format!("cannot finish the MP4: {e}")))?;
    Ok(stats)
}

#[cfg(feature = "ffmpeg")]
fn drain(
    enc: &mut encoder::Video,
    octx: &mut format::context::Output,
    index: usize,
    enc_tb: Rational,
    ost_tb: Rational,
    path: &Path,
    stats: &mut Mp4Stats,
) -> Result<(), VideoError> {
    let mut packet = Packet::empty();
    while enc.receive_packet(&mut packet).is_ok() {
        if let Some(data) = packet.data() {
            stats.packets += 1;
            stats.stream_bytes += data.len() as u64;
            stats.slice_bytes += slice_bytes(data);
        }
        packet.set_stream(index);
        // libx264 in FFmpeg 5.1 leaves the duration at 0, and the muxer then drops the
        // last frame's display time: every frame lasts one tick of 1/fps.
        if packet.duration() <= 0 {
            packet.set_duration(1);
        }
        packet.rescale_ts(enc_tb, ost_tb);
        packet.write_interleaved(octx).map_err(|e| VideoError::Encode { path: path.to_path_buf(), reason: e.to_string() })?;
    }
    Ok(())
}

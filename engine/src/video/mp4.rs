//! MP4 export: H.264 (libx264), yuv420p, with the metadata JSON in the `comment` tag.

use std::path::Path;

use ffmpeg_next as ffmpeg;
use ffmpeg::{Dictionary, Packet, Rational, codec, encoder, format, frame, software::scaling};

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
fn fps_rational(fps: f64) -> Rational {
    if (fps - fps.round()).abs() < 1e-9 {
        Rational::new(fps.round() as i32, 1)
    } else {
        Rational::new((fps * 1000.0).round() as i32, 1000)
    }
}

/// Encodes `video` to `path` (written to a temporary file and renamed when complete).
pub fn write_mp4(video: &Video, path: &Path, meta: &ExportMetadata, opts: &Mp4Options) -> Result<(), VideoError> {
    super::decode::init_ffmpeg();
    if video.is_empty() {
        return Err(VideoError::Invalid(format!("{}: nothing to encode (0 frames)", path.display())));
    }
    if opts.crf > 51 {
        return Err(VideoError::Invalid(format!("crf {} is out of range 0..=51", opts.crf)));
    }
    let tmp = super::temp_sibling(path);
    let result = encode_to(video, &tmp, meta, opts);
    match result {
        Ok(()) => std::fs::rename(&tmp, path).map_err(|source| VideoError::Io { path: path.to_path_buf(), source }),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn encode_to(video: &Video, path: &Path, meta: &ExportMetadata, opts: &Mp4Options) -> Result<(), VideoError> {
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
    tags.set("comment", &meta.to_json());
    if let Some(prompt) = &meta.prompt {
        tags.set("title", prompt);
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
    for t in 0..video.len() {
        let src = video.frame(t);
        let stride = rgb.stride(0);
        let data = rgb.data_mut(0);
        for y in 0..h as usize {
            data[y * stride..y * stride + row].copy_from_slice(&src[y * row..(y + 1) * row]);
        }
        scaler.run(&rgb, &mut yuv).map_err(|e| fail(format!("pixel conversion: {e}")))?;
        yuv.set_pts(Some(t as i64));
        enc.send_frame(&yuv).map_err(|e| fail(e.to_string()))?;
        drain(&mut enc, &mut octx, ost_index, time_base, ost_tb, path)?;
    }
    enc.send_eof().map_err(|e| fail(e.to_string()))?;
    drain(&mut enc, &mut octx, ost_index, time_base, ost_tb, path)?;
    octx.write_trailer().map_err(|e| fail(format!("cannot finish the MP4: {e}")))?;
    Ok(())
}

fn drain(
    enc: &mut encoder::Video,
    octx: &mut format::context::Output,
    index: usize,
    enc_tb: Rational,
    ost_tb: Rational,
    path: &Path,
) -> Result<(), VideoError> {
    let mut packet = Packet::empty();
    while enc.receive_packet(&mut packet).is_ok() {
        packet.set_stream(index);
        // libx264 in FFmpeg 5.1 leaves the duration at 0, and the muxer then drops the
        // last frame's display time: every frame lasts one tick of 1/fps.
        if packet.duration() <= 0 {
            packet.set_duration(1);
        }
        packet.rescale_ts(enc_tb, ost_tb);
        packet
            .write_interleaved(octx)
            .map_err(|e| VideoError::Encode { path: path.to_path_buf(), reason: e.to_string() })?;
    }
    Ok(())
}

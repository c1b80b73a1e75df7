//! Animated GIF export with one palette fitted to the whole clip (NeuQuant over pixels
//! sampled from every frame, so colors do not flicker between frames), frame delays that
//! keep the exact mean frame rate, and the metadata JSON in a comment extension.

use std::io::Read;
use std::path::Path;

use super::{ExportMetadata, Video, VideoError};

/// Frame delays in centiseconds whose running sum tracks `k / fps` exactly (8 fps ->
/// 12, 13, 12, 13, ...: a mean of 12.5 cs).
pub fn frame_delays(frames: usize, fps: f64) -> Vec<u16> {
    let at = |k: usize| (k as f64 * 100.0 / fps).round() as i64;
    (0..frames).map(|k| (at(k + 1) - at(k)).clamp(1, i64::from(u16::MAX)) as u16).collect()
}

/// Encodes `video` as a looping GIF at `path` (written atomically).
pub fn write_gif(video: &Video, path: &Path, meta: &ExportMetadata) -> Result<(), VideoError> {
    if video.is_empty() {
        return Err(VideoError::Invalid(format!("{}: nothing to encode (0 frames)", path.display())));
    }
    let (w, h) = (video.width(), video.height());
    if w > u32::from(u16::MAX) || h > u32::from(u16::MAX) {
        return Err(VideoError::Invalid(format!("{}: {w}x{h} is too large for GIF", path.display())));
    }
    // Fit the palette on up to ~1M pixels drawn evenly from all frames.
    let total = video.len() * w as usize * h as usize;
    let step = total.div_ceil(1 << 20).max(1);
    let mut sample = Vec::with_capacity(4 * total / step + 4);
    for px in video.as_bytes().chunks_exact(3).step_by(step) {
        sample.extend_from_slice(&[px[0], px[1], px[2], 255]);
    }
    let quant = color_quant::NeuQuant::new(3, 256, &sample);
    let palette = quant.color_map_rgb();

    let fail = |reason: String| VideoError::Encode { path: path.to_path_buf(), reason };
    let mut bytes = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut bytes, w as u16, h as u16, &palette).map_err(|e| fail(e.to_string()))?;
        enc.set_repeat(gif::Repeat::Infinite).map_err(|e| fail(e.to_string()))?;
        let json = meta.to_json();
        let chunks: Vec<&[u8]> = json.as_bytes().chunks(255).collect();
        enc.write_raw_extension(gif::Extension::Comment.into(), &chunks).map_err(|e| fail(e.to_string()))?;
        let delays = frame_delays(video.len(), video.fps());
        let mut cache = std::collections::HashMap::<[u8; 3], u8>::new();
        for (t, delay) in delays.iter().enumerate() {
            let indices: Vec<u8> = video
                .frame(t)
                .chunks_exact(3)
                .map(|p| {
                    let key = [p[0], p[1], p[2]];
                    *cache.entry(key).or_insert_with(|| quant.index_of(&[p[0], p[1], p[2], 255]) as u8)
                })
                .collect();
            let frame = gif::Frame { width: w as u16, height: h as u16, buffer: std::borrow::Cow::Owned(indices), delay: *delay, ..gif::Frame::default() };
            enc.write_frame(&frame).map_err(|e| fail(e.to_string()))?;
        }
    }
    super::write_atomic(path, &bytes)
}

/// Reads the first comment extension of a GIF (`None` when it has none).
pub fn read_comment(path: &Path) -> Result<Option<String>, VideoError> {
    let mut bytes = Vec::new();
    std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(|source| VideoError::Io { path: path.to_path_buf(), source })?;
    Ok(find_comment(&bytes))
}

/// Walks the GIF block structure (header, screen descriptor, color tables, extensions,
/// images) looking for a comment extension (0x21 0xFE).
fn find_comment(b: &[u8]) -> Option<String> {
    if b.len() < 13 || !b.starts_with(b"GIF") {
        return None;
    }
    let table = |flags: u8| if flags & 0x80 != 0 { 3usize << ((flags & 7) + 1) } else { 0 };
    let mut i = 13 + table(b[10]);
    // Concatenated sub-blocks starting at `i`; returns the data and the index after them.
    let sub_blocks = |mut i: usize| -> Option<(Vec<u8>, usize)> {
        let mut data = Vec::new();
        loop {
            let n = *b.get(i)? as usize;
            i += 1;
            if n == 0 {
                return Some((data, i));
            }
            data.extend_from_slice(b.get(i..i + n)?);
            i += n;
        }
    };
    loop {
        match *b.get(i)? {
            0x21 => {
                let label = *b.get(i + 1)?;
                let (data, next) = sub_blocks(i + 2)?;
                if label == 0xFE {
                    return String::from_utf8(data).ok();
                }
                i = next;
            }
            0x2C => {
                let flags = *b.get(i + 9)?;
                i += 10 + table(flags) + 1; // descriptor, local table, LZW code size
                i = sub_blocks(i)?.1;
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_keep_the_mean_rate() {
        let d = frame_delays(80, 8.0);
        assert_eq!(d.iter().map(|&x| u32::from(x)).sum::<u32>(), 1000);
        assert!(d.iter().all(|&x| x == 12 || x == 13));
        assert_eq!(frame_delays(3, 25.0), vec![4, 4, 4]);
    }

    #[test]
    fn comment_scanner_rejects_garbage() {
        assert_eq!(find_comment(b"not a gif"), None);
        assert_eq!(find_comment(b"GIF89a\x01\x00\x01\x00\x00\x00\x00\x21\xfe\x02hi\x00\x3b"), Some("hi".into()));
    }
}

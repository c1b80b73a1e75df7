//! The in-memory clip: RGB8 frames laid out `[T, H, W, 3]`, plus its frame rate.

use super::VideoError;

/// Largest factor of [`Video::upscaled`].
pub const MAX_UPSCALE: u32 = 16;
/// Largest clip [`Video::upscaled`] makes (1 GiB of RGB).
pub const MAX_UPSCALED_BYTES: u64 = 1 << 30;

/// A clip of RGB8 frames, row-major, `[T, H, W, 3]` in one buffer.
#[derive(Clone, PartialEq)]
pub struct Video {
    width: u32,
    height: u32,
    fps: f64,
    data: Vec<u8>,
}

impl std::fmt::Debug for Video {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Video({} frames, {}x{}, {} fps)", self.len(), self.width, self.height, self.fps)
    }
}

impl Video {
    /// An empty clip of the given frame size and rate.
    pub fn new(width: u32, height: u32, fps: f64) -> Self {
        Self { width, height, fps, data: Vec::new() }
    }

    /// Wraps a `[T, H, W, 3]` buffer; its length must be a multiple of the frame size.
    pub fn from_raw(width: u32, height: u32, fps: f64, data: Vec<u8>) -> Result<Self, VideoError> {
        let frame = (width as usize) * (height as usize) * 3;
        if width == 0 || height == 0 || !data.len().is_multiple_of(frame) {
            return Err(VideoError::Invalid(format!("buffer of {} bytes is not a whole number of {width}x{height} RGB frames", data.len())));
        }
        if !(fps.is_finite() && fps > 0.0) {
            return Err(VideoError::Invalid(format!("frame rate {fps} must be positive")));
        }
        Ok(Self { width, height, fps, data })
    }

    /// The same frames at another frame rate.
    pub fn with_fps(mut self, fps: f64) -> Self {
        if fps.is_finite() && fps > 0.0 {
            self.fps = fps;
        }
        self
    }

    pub fn width(&self) -> u32 {
        self.width
    }
    pub fn height(&self) -> u32 {
        self.height
    }
    pub fn fps(&self) -> f64 {
        self.fps
    }
    /// Bytes in one frame (`H * W * 3`).
    pub fn frame_bytes(&self) -> usize {
        self.width as usize * self.height as usize * 3
    }
    /// Number of frames T.
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.frame_bytes()).unwrap_or(0)
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Duration in seconds (`T / fps`).
    pub fn duration(&self) -> f64 {
        self.len() as f64 / self.fps
    }
    /// Frame `t` as `[H, W, 3]` bytes.
    pub fn frame(&self, t: usize) -> &[u8] {
        let n = self.frame_bytes();
        &self.data[t * n..(t + 1) * n]
    }
    /// Mutable frame `t`.
    pub fn frame_mut(&mut self, t: usize) -> &mut [u8] {
        let n = self.frame_bytes();
        &mut self.data[t * n..(t + 1) * n]
    }
    /// Appends one `[H, W, 3]` frame.
    pub fn push_frame(&mut self, frame: &[u8]) {
        debug_assert_eq!(frame.len(), self.frame_bytes());
        self.data.extend_from_slice(frame);
    }
    /// All frames, `[T, H, W, 3]`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.data
    }
    /// Frames `range` as a new clip.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Video {
        let n = self.frame_bytes();
        Video { width: self.width, height: self.height, fps: self.fps, data: self.data[range.start * n..range.end * n].to_vec() }
    }
    /// The clip enlarged `factor` times in each direction by nearest neighbour (every pixel a
    /// `factor x factor` block, no blur): how a 64x64 clip is exported at 4x or 8x. `factor`
    /// is 1 to [`MAX_UPSCALE`]; the result stays within [`MAX_UPSCALED_BYTES`].
    pub fn upscaled(&self, factor: u32) -> Result<Video, VideoError> {
        if factor == 0 || factor > MAX_UPSCALE {
            return Err(VideoError::Invalid(format!("scale {factor}: use 1 to {MAX_UPSCALE}")));
        }
        if factor == 1 {
            return Ok(self.clone());
        }
        let (w, h, f) = (self.width as usize, self.height as usize, factor as usize);
        let bytes = self.data.len() as u64 * (f * f) as u64;
        if bytes > MAX_UPSCALED_BYTES {
            return Err(VideoError::Invalid(format!(
                "a {w}x{h} clip of {} frames at {factor}x would take {} MiB; the limit is {} MiB, use a smaller scale",
                self.len(),
                bytes >> 20,
                MAX_UPSCALED_BYTES >> 20
            )));
        }
        let mut data = Vec::with_capacity(bytes as usize);
        for frame in self.data.chunks_exact(w * h * 3) {
            for row in frame.chunks_exact(w * 3) {
                let mut wide = Vec::with_capacity(w * f * 3);
                for px in row.chunks_exact(3) {
                    for _ in 0..f {
                        wide.extend_from_slice(px);
                    }
                }
                for _ in 0..f {
                    data.extend_from_slice(&wide);
                }
            }
        }
        Video::from_raw(self.width * factor, self.height * factor, self.fps, data)
    }

    /// The clip as floats in `[0, 1]`, `[T, H, W, 3]`.
    pub fn to_f32(&self) -> Vec<f32> {
        self.data.iter().map(|&v| f32::from(v) / 255.0).collect()
    }
    /// Builds a clip from floats in `[0, 1]` (clamped), `[T, H, W, 3]`.
    pub fn from_f32(width: u32, height: u32, fps: f64, data: &[f32]) -> Result<Self, VideoError> {
        let bytes = data.iter().map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8).collect();
        Self::from_raw(width, height, fps, bytes)
    }
}

/// Center-crops and resizes one RGB frame to `out_w x out_h` (area-averaging bilinear), used
/// for frames that do not come from FFmpeg. `src` is `[H, W, 3]`.
pub fn center_crop_resize(src: &[u8], w: u32, h: u32, out_w: u32, out_h: u32) -> Vec<u8> {
    let (crop_w, crop_h) = crop_size(w, h, out_w, out_h);
    let x0 = (w - crop_w) / 2;
    let y0 = (h - crop_h) / 2;
    let mut cropped = image::RgbImage::new(crop_w, crop_h);
    for y in 0..crop_h {
        let row = ((y0 + y) * w + x0) as usize * 3;
        let dst = (y * crop_w) as usize * 3;
        cropped.as_mut()[dst..dst + crop_w as usize * 3].copy_from_slice(&src[row..row + crop_w as usize * 3]);
    }
    if (crop_w, crop_h) == (out_w, out_h) {
        return cropped.into_raw();
    }
    image::imageops::resize(&cropped, out_w, out_h, image::imageops::FilterType::Triangle).into_raw()
}

/// The largest `out_w:out_h` rectangle inside `w x h`.
pub fn crop_size(w: u32, h: u32, out_w: u32, out_h: u32) -> (u32, u32) {
    let (w64, h64, ow, oh) = (u64::from(w), u64::from(h), u64::from(out_w), u64::from(out_h));
    if w64 * oh > h64 * ow { (((h64 * ow) / oh).max(1) as u32, h) } else { (w, ((w64 * oh) / ow).max(1) as u32) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upscaling_repeats_each_pixel_as_a_block() {
        // Two frames of 2x1: red, green / blue, white.
        let v = Video::from_raw(2, 1, 8.0, vec![255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]).unwrap();
        let u = v.upscaled(3).unwrap();
        assert_eq!((u.width(), u.height(), u.len(), u.fps()), (6, 3, 2, 8.0));
        let f0 = u.frame(0);
        for y in 0..3 {
            for x in 0..6 {
                let px = &f0[(y * 6 + x) * 3..(y * 6 + x) * 3 + 3];
                assert_eq!(px, if x < 3 { [255, 0, 0] } else { [0, 255, 0] }, "({x}, {y})");
            }
        }
        assert_eq!(&u.frame(1)[..3], [0, 0, 255]);
        assert_eq!(v.upscaled(1).unwrap(), v);
        assert!(v.upscaled(0).is_err() && v.upscaled(MAX_UPSCALE + 1).is_err());
        let big = Video::from_raw(512, 512, 8.0, vec![0; 512 * 512 * 3 * 8]).unwrap(); // 6 MiB, 1.5 GiB at 16x
        assert!(big.upscaled(16).unwrap_err().to_string().contains("smaller scale"));
    }

    #[test]
    fn from_raw_checks_frame_multiple_and_fps() {
        assert!(Video::from_raw(2, 2, 8.0, vec![0; 12 * 3]).is_ok());
        assert!(Video::from_raw(2, 2, 8.0, vec![0; 13]).is_err());
        assert!(Video::from_raw(2, 2, 0.0, vec![0; 12]).is_err());
        let v = Video::from_raw(2, 2, 8.0, vec![7; 12 * 3]).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v.slice(1..3).len(), 2);
    }

    #[test]
    fn crop_keeps_aspect_of_target() {
        assert_eq!(crop_size(640, 272, 64, 64), (272, 272));
        assert_eq!(crop_size(272, 640, 64, 64), (272, 272));
        assert_eq!(crop_size(640, 480, 64, 32), (640, 320));
    }

    #[test]
    fn center_crop_takes_the_middle() {
        // 4x2 frame: left half black, right half white; a 2x2 center crop straddles both.
        let mut src = vec![0u8; 4 * 2 * 3];
        for y in 0..2 {
            for x in 2..4 {
                for c in 0..3 {
                    src[(y * 4 + x) * 3 + c] = 255;
                }
            }
        }
        let out = center_crop_resize(&src, 4, 2, 2, 2);
        assert_eq!(&out[0..3], &[0, 0, 0]);
        assert_eq!(&out[3..6], &[255, 255, 255]);
    }
}

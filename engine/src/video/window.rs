//! Cutting a clip into fixed-length windows.

use super::{Video, VideoError};

/// T-frame windows taken every `stride` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WindowSpec {
    /// Frames per window (T).
    pub frames: usize,
    /// Frames between the starts of consecutive windows (`frames` for no overlap).
    pub stride: usize,
}

/// The frame ranges of every whole window of `spec` in a clip of `len` frames.
pub fn window_ranges(len: usize, spec: WindowSpec) -> Result<Vec<std::ops::Range<usize>>, VideoError> {
    if spec.frames == 0 || spec.stride == 0 {
        return Err(VideoError::Invalid(format!("window of {} frames with stride {}: both must be at least 1", spec.frames, spec.stride)));
    }
    if len < spec.frames {
        return Ok(Vec::new());
    }
    Ok((0..=len - spec.frames).step_by(spec.stride).map(|s| s..s + spec.frames).collect())
}

/// Every whole window of `spec` in `video`, as clips made one at a time when the iterator
/// reaches them (overlapping windows would otherwise copy the clip `frames / stride` times).
pub fn windows(video: &Video, spec: WindowSpec) -> Result<impl ExactSizeIterator<Item = Video> + '_, VideoError> {
    Ok(window_ranges(video.len(), spec)?.into_iter().map(|r| video.slice(r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_whole_windows_only() {
        let spec = WindowSpec { frames: 16, stride: 8 };
        let r = window_ranges(80, spec).unwrap();
        assert_eq!(r.len(), 9);
        assert_eq!(r[0], 0..16);
        assert_eq!(r[8], 64..80);
        assert!(window_ranges(10, spec).unwrap().is_empty());
        assert!(window_ranges(10, WindowSpec { frames: 0, stride: 1 }).is_err());
        assert_eq!(window_ranges(32, WindowSpec { frames: 16, stride: 16 }).unwrap().len(), 2);
    }
}

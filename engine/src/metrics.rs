//! Reconstruction metrics on RGB8 clips.

use crate::video::Video;

/// Mean squared error over all pixels and channels, in `[0, 1]` units squared.
pub fn mse(a: &Video, b: &Video) -> Option<f64> {
    if (a.width(), a.height(), a.len()) != (b.width(), b.height(), b.len()) || a.is_empty() {
        return None;
    }
    let sum: f64 = a
        .as_bytes()
        .iter()
        .zip(b.as_bytes())
        .map(|(&x, &y)| {
            let d = (f64::from(x) - f64::from(y)) / 255.0;
            d * d
        })
        .sum();
    Some(sum / a.as_bytes().len() as f64)
}

/// Peak signal-to-noise ratio in dB over the whole clip (`None` when shapes differ;
/// infinite for identical clips).
pub fn psnr(a: &Video, b: &Video) -> Option<f64> {
    mse(a, b).map(|m| if m == 0.0 { f64::INFINITY } else { -10.0 * m.log10() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psnr_of_known_error() {
        let a = Video::from_raw(2, 2, 8.0, vec![100; 12]).unwrap();
        let b = Video::from_raw(2, 2, 8.0, vec![110; 12]).unwrap();
        let want = -10.0 * ((10.0f64 / 255.0).powi(2)).log10();
        assert!((psnr(&a, &b).unwrap() - want).abs() < 1e-9);
        assert_eq!(psnr(&a, &a), Some(f64::INFINITY));
        let c = Video::from_raw(2, 1, 8.0, vec![0; 6]).unwrap();
        assert_eq!(psnr(&a, &c), None);
    }
}

//! Reconstruction metrics on RGB8 clips: PSNR, SSIM and MS-SSIM.
//!
//! SSIM follows Wang et al. (2004): an 11x11 Gaussian window of σ = 1.5, `K1 = 0.01`,
//! `K2 = 0.03`, dynamic range 1 (pixels in `[0, 1]`), statistics over *valid* window positions
//! only (no padding), the mean of the SSIM map. It is computed **per RGB channel** and averaged
//! over channels and frames (no conversion to luma). MS-SSIM (Wang, Simoncelli, Bovik 2003) uses
//! the standard 5 scales and weights, 2x2 average pooling between scales, contrast-structure at
//! the 4 finer scales and full SSIM at the coarsest; negative terms are clamped to 0. It needs
//! the coarsest scale to hold one whole window, i.e. both sides at least [`MS_SSIM_MIN_SIDE`]
//! pixels, and is `None` for smaller frames.

use crate::video::Video;

/// Side of the SSIM Gaussian window.
pub const SSIM_WINDOW: usize = 11;
/// Standard deviation of the SSIM Gaussian window, in pixels.
pub const SSIM_SIGMA: f64 = 1.5;
/// MS-SSIM weights, finest scale first.
pub const MS_SSIM_WEIGHTS: [f64; 5] = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];
/// The smallest frame side MS-SSIM accepts: `SSIM_WINDOW * 2^4` (the 5th scale is 1/16 size).
pub const MS_SSIM_MIN_SIDE: usize = SSIM_WINDOW << 4;

const C1: f64 = 0.01 * 0.01;
const C2: f64 = 0.03 * 0.03;

/// Mean squared error over all pixels and channels, in `[0, 1]` units squared.
pub fn mse(a: &Video, b: &Video) -> Option<f64> {
    same_shape(a, b).then(|| squared_error(a.as_bytes(), b.as_bytes()) / a.as_bytes().len() as f64)
}

/// The sum of squared differences of two byte runs, in `[0, 1]` units squared.
fn squared_error(a: &[u8], b: &[u8]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = (f64::from(x) - f64::from(y)) / 255.0;
            d * d
        })
        .sum()
}

/// PSNR in dB of each frame (`None` when shapes differ; infinite for identical frames): where
/// in a clip the error is (scene cuts, fast motion).
pub fn psnr_by_frame(a: &Video, b: &Video) -> Option<Vec<f64>> {
    same_shape(a, b).then(|| {
        (0..a.len())
            .map(|t| {
                let m = squared_error(a.frame(t), b.frame(t)) / a.frame(t).len() as f64;
                if m == 0.0 { f64::INFINITY } else { -10.0 * m.log10() }
            })
            .collect()
    })
}

/// Peak signal-to-noise ratio in dB over the whole clip (`None` when shapes differ;
/// infinite for identical clips).
pub fn psnr(a: &Video, b: &Video) -> Option<f64> {
    mse(a, b).map(|m| if m == 0.0 { f64::INFINITY } else { -10.0 * m.log10() })
}

fn same_shape(a: &Video, b: &Video) -> bool {
    (a.width(), a.height(), a.len()) == (b.width(), b.height(), b.len()) && !a.is_empty()
}

/// The normalised 1-D Gaussian of the SSIM window (the 2-D window is its outer product).
fn gaussian() -> [f64; SSIM_WINDOW] {
    let mut k = [0f64; SSIM_WINDOW];
    let c = (SSIM_WINDOW / 2) as f64;
    for (i, v) in k.iter_mut().enumerate() {
        let d = i as f64 - c;
        *v = (-d * d / (2.0 * SSIM_SIGMA * SSIM_SIGMA)).exp();
    }
    let s: f64 = k.iter().sum();
    k.map(|v| v / s)
}

/// Separable Gaussian filtering over valid positions: `[h, w]` -> `[h - 10, w - 10]`.
fn blur_valid(img: &[f64], w: usize, h: usize, k: &[f64; SSIM_WINDOW]) -> Vec<f64> {
    let (ow, oh) = (w + 1 - SSIM_WINDOW, h + 1 - SSIM_WINDOW);
    let mut rows = vec![0f64; h * ow];
    for y in 0..h {
        let src = &img[y * w..(y + 1) * w];
        for x in 0..ow {
            rows[y * ow + x] = k.iter().zip(&src[x..x + SSIM_WINDOW]).map(|(a, b)| a * b).sum();
        }
    }
    let mut out = vec![0f64; oh * ow];
    for y in 0..oh {
        for (i, kv) in k.iter().enumerate() {
            let src = &rows[(y + i) * ow..(y + i + 1) * ow];
            for (o, s) in out[y * ow..(y + 1) * ow].iter_mut().zip(src) {
                *o += kv * s;
            }
        }
    }
    out
}

/// Mean SSIM and mean contrast-structure term of two `[h, w]` planes in `[0, 1]`; `None` when
/// the sizes differ or a side is smaller than the window.
fn ssim_cs(a: &[f64], b: &[f64], w: usize, h: usize) -> Option<(f64, f64)> {
    if a.len() != w * h || b.len() != w * h || w < SSIM_WINDOW || h < SSIM_WINDOW {
        return None;
    }
    let k = gaussian();
    let prod = |f: &dyn Fn(f64, f64) -> f64| -> Vec<f64> { a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect() };
    let mu_a = blur_valid(a, w, h, &k);
    let mu_b = blur_valid(b, w, h, &k);
    let aa = blur_valid(&prod(&|x, _| x * x), w, h, &k);
    let bb = blur_valid(&prod(&|_, y| y * y), w, h, &k);
    let ab = blur_valid(&prod(&|x, y| x * y), w, h, &k);
    let (mut s_sum, mut cs_sum) = (0f64, 0f64);
    for i in 0..mu_a.len() {
        let (ma, mb) = (mu_a[i], mu_b[i]);
        let va = aa[i] - ma * ma;
        let vb = bb[i] - mb * mb;
        let cov = ab[i] - ma * mb;
        let cs = (2.0 * cov + C2) / (va + vb + C2);
        s_sum += cs * (2.0 * ma * mb + C1) / (ma * ma + mb * mb + C1);
        cs_sum += cs;
    }
    let n = mu_a.len() as f64;
    Some((s_sum / n, cs_sum / n))
}

/// SSIM of two `[height, width]` planes with values in `[0, 1]` (see the module docs);
/// `None` when sizes differ or a side is under [`SSIM_WINDOW`].
pub fn ssim_plane(a: &[f32], b: &[f32], width: usize, height: usize) -> Option<f64> {
    let (a, b) = (widen(a), widen(b));
    ssim_cs(&a, &b, width, height).map(|(s, _)| s)
}

/// MS-SSIM of two `[height, width]` planes in `[0, 1]`; `None` when sizes differ or a side is
/// under [`MS_SSIM_MIN_SIDE`].
pub fn ms_ssim_plane(a: &[f32], b: &[f32], width: usize, height: usize) -> Option<f64> {
    if width < MS_SSIM_MIN_SIDE || height < MS_SSIM_MIN_SIDE {
        return None;
    }
    let (mut a, mut b, mut w, mut h) = (widen(a), widen(b), width, height);
    let mut value = 1.0;
    for (j, weight) in MS_SSIM_WEIGHTS.iter().enumerate() {
        let (s, cs) = ssim_cs(&a, &b, w, h)?;
        let term = if j + 1 == MS_SSIM_WEIGHTS.len() { s } else { cs };
        value *= term.max(0.0).powf(*weight);
        if j + 1 < MS_SSIM_WEIGHTS.len() {
            (a, _, _) = pool2(&a, w, h);
            (b, w, h) = pool2(&b, w, h);
        }
    }
    Some(value)
}

fn widen(p: &[f32]) -> Vec<f64> {
    p.iter().map(|&v| f64::from(v)).collect()
}

/// 2x2 average pooling (odd last row/column dropped): `[h, w]` -> `[h / 2, w / 2]`.
fn pool2(img: &[f64], w: usize, h: usize) -> (Vec<f64>, usize, usize) {
    let (ow, oh) = (w / 2, h / 2);
    let mut out = Vec::with_capacity(ow * oh);
    for y in 0..oh {
        for x in 0..ow {
            let at = |dy: usize, dx: usize| img[(2 * y + dy) * w + 2 * x + dx];
            out.push(0.25 * (at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1)));
        }
    }
    (out, ow, oh)
}

/// Channel `c` of frame `t` as a `[H, W]` plane in `[0, 1]`.
fn plane(v: &Video, t: usize, c: usize) -> Vec<f32> {
    v.frame(t).iter().skip(c).step_by(3).map(|&x| f32::from(x) / 255.0).collect()
}

/// Mean of a per-plane metric over every frame and RGB channel.
fn per_plane(a: &Video, b: &Video, f: fn(&[f32], &[f32], usize, usize) -> Option<f64>) -> Option<f64> {
    if !same_shape(a, b) {
        return None;
    }
    let (w, h) = (a.width() as usize, a.height() as usize);
    let mut sum = 0.0;
    for t in 0..a.len() {
        for c in 0..3 {
            sum += f(&plane(a, t, c), &plane(b, t, c), w, h)?;
        }
    }
    Some(sum / (3 * a.len()) as f64)
}

/// SSIM of two clips: the mean over frames and RGB channels (`None` when shapes differ or the
/// frames are smaller than the 11x11 window).
pub fn ssim(a: &Video, b: &Video) -> Option<f64> {
    per_plane(a, b, ssim_plane)
}

/// MS-SSIM of two clips: the mean over frames and RGB channels (`None` when shapes differ or a
/// frame side is under [`MS_SSIM_MIN_SIDE`]).
pub fn ms_ssim(a: &Video, b: &Video) -> Option<f64> {
    per_plane(a, b, ms_ssim_plane)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn psnr_of_known_error() {
        let a = Video::from_raw(2, 2, 8.0, vec![100; 12]).expect("valid test input");
        let b = Video::from_raw(2, 2, 8.0, vec![110; 12]).expect("valid test input");
        let want = -10.0 * ((10.0f64 / 255.0).powi(2)).log10();
        assert!((psnr(&a, &b).expect("same shape") - want).abs() < 1e-9);
        assert_eq!(psnr(&a, &a), Some(f64::INFINITY));
        let c = Video::from_raw(2, 1, 8.0, vec![0; 6]).expect("valid test input");
        assert_eq!(psnr(&a, &c), None);
    }

    #[test]
    fn psnr_by_frame_places_the_error_in_its_frame() {
        // Three frames of 2x2; only frame 1 differs, by 10 levels.
        let a = Video::from_raw(2, 2, 8.0, vec![100; 36]).expect("valid test input");
        let mut data = vec![100; 36];
        data[12..24].fill(110);
        let b = Video::from_raw(2, 2, 8.0, data).expect("valid test input");
        let p = psnr_by_frame(&a, &b).expect("same shape");
        assert_eq!(p.len(), 3);
        assert_eq!((p[0], p[2]), (f64::INFINITY, f64::INFINITY));
        assert!((p[1] - -10.0 * ((10.0f64 / 255.0).powi(2)).log10()).abs() < 1e-9, "{p:?}");
        // The clip's PSNR is that of the mean squared error over the frames.
        assert!((psnr(&a, &b).expect("same shape") - (p[1] + 10.0 * 3f64.log10())).abs() < 1e-9);
        assert_eq!(psnr_by_frame(&a, &Video::from_raw(2, 1, 8.0, vec![0; 18]).expect("valid test input")), None);
    }

    /// A textured `size x size` clip of `frames` frames (gradients and stripes).
    fn textured(size: u32, frames: usize) -> Video {
        let mut data = Vec::new();
        for t in 0..frames {
            for y in 0..size {
                for x in 0..size {
                    let stripe = if (x / 3 + y / 5 + t as u32).is_multiple_of(2) { 60 } else { 0 };
                    data.extend([(x * 180 / size + stripe) as u8, (y * 200 / size) as u8, ((x + y) * 90 / size + stripe) as u8]);
                }
            }
        }
        Video::from_raw(size, size, 8.0, data).expect("whole frames")
    }

    /// `v` with uniform noise of amplitude `amp` (fixed seed).
    fn noisy(v: &Video, amp: i32) -> Video {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let data = v.as_bytes().iter().map(|&x| (i32::from(x) + rng.random_range(-amp..=amp)).clamp(0, 255) as u8).collect();
        Video::from_raw(v.width(), v.height(), v.fps(), data).expect("whole frames")
    }

    #[test]
    fn ssim_is_one_for_identical_ordered_and_symmetric() {
        let a = textured(32, 2);
        assert!((ssim(&a, &a).expect("same shape, large enough") - 1.0).abs() < 1e-12);
        let scores: Vec<f64> = [4, 16, 48, 120].iter().map(|&amp| ssim(&a, &noisy(&a, amp)).expect("valid test input")).collect();
        assert!(scores.windows(2).all(|p| p[0] > p[1]), "more noise must score lower: {scores:?}");
        assert!(scores[0] < 1.0 && scores[3] > -1.0, "{scores:?}");
        let b = noisy(&a, 30);
        assert!((ssim(&a, &b).expect("same shape, large enough") - ssim(&b, &a).expect("same shape, large enough")).abs() < 1e-12);
        // A constant offset keeps structure: it scores higher than noise of the same MSE.
        let shifted = Video::from_raw(32, 32, 8.0, a.as_bytes().iter().map(|&x| x.saturating_add(20)).collect()).expect("whole frames");
        assert!(ssim(&a, &shifted).expect("same shape, large enough") > ssim(&a, &noisy(&a, 35)).expect("valid test input"));
        // Frames smaller than the window and mismatched shapes have no SSIM.
        assert_eq!(ssim(&textured(8, 1), &textured(8, 1)), None);
        assert_eq!(ssim(&a, &textured(32, 1)), None);
    }

    #[test]
    fn ssim_matches_a_direct_2d_window_reference() {
        // Value from a direct (non-separable) 11x11 Gaussian-window SSIM over valid positions,
        // computed independently in plain Python for these two 16x16 planes.
        let a: Vec<f32> = (0..256).map(|i| ((i % 16 * 7 + i / 16 * 13) % 17) as f32 / 16.0).collect();
        let b: Vec<f32> = (0..256).map(|i| ((i % 16 * 5 + i / 16 * 3) % 11) as f32 / 10.0).collect();
        let got = ssim_plane(&a, &b, 16, 16).expect("16x16 holds a window");
        assert!((got - 0.189_408_983_648_637_8).abs() < 1e-6, "{got}");
    }

    #[test]
    fn ms_ssim_needs_176_pixels_and_orders_degradations() {
        assert_eq!(MS_SSIM_MIN_SIDE, 176);
        let a = textured(176, 1);
        assert!((ms_ssim(&a, &a).expect("same shape, large enough") - 1.0).abs() < 1e-9);
        let light = ms_ssim(&a, &noisy(&a, 10)).expect("valid test input");
        let heavy = ms_ssim(&a, &noisy(&a, 80)).expect("valid test input");
        assert!(1.0 > light && light > heavy && heavy >= 0.0, "{light} {heavy}");
        let b = noisy(&a, 40);
        assert!((ms_ssim(&a, &b).expect("same shape, large enough") - ms_ssim(&b, &a).expect("same shape, large enough")).abs() < 1e-12);
        assert_eq!(ms_ssim(&textured(175, 1), &textured(175, 1)), None);
        // Plane-level: a uniform shift of a flat-ish plane.
        let p: Vec<f32> = (0..176 * 176).map(|i| (i % 176) as f32 / 176.0).collect();
        assert!((ms_ssim_plane(&p, &p, 176, 176).expect("same shape, large enough") - 1.0).abs() < 1e-9);
        assert_eq!(ms_ssim_plane(&p, &p[1..], 176, 176), None);
    }
}

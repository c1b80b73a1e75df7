//! Procedural rendering of shapes clips: one anti-aliased (4x4 supersampled) shape moving
//! in a straight line over a gray background, entirely inside the frame in every frame.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::attributes::{Attributes, Motion, Shape};
use crate::video::Video;

/// Clip geometry shared by a whole dataset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RenderConfig {
    /// Frames per clip (T).
    pub frames: usize,
    /// Frame side in pixels (square frames).
    pub size: u32,
    /// Frame rate stamped on the clips.
    pub fps: f64,
}

impl Default for RenderConfig {
    fn default() -> Self {
        Self { frames: 16, size: 64, fps: 8.0 }
    }
}

/// Low-chroma backgrounds, so that the shape is the only saturated thing in the frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Background {
    Solid { gray: f32 },
    Vertical { top: f32, bottom: f32 },
    Horizontal { left: f32, right: f32 },
    Checker { a: f32, b: f32, cell: u32 },
}

impl Background {
    /// Gray level at pixel `(x, y)` of a `size` frame.
    fn at(&self, x: u32, y: u32, size: u32) -> f32 {
        let f = |v: u32| v as f32 / (size.max(2) - 1) as f32;
        match *self {
            Background::Solid { gray } => gray,
            Background::Vertical { top, bottom } => top + (bottom - top) * f(y),
            Background::Horizontal { left, right } => left + (right - left) * f(x),
            Background::Checker { a, b, cell } => {
                if ((x / cell.max(1)) + (y / cell.max(1))).is_multiple_of(2) {
                    a
                } else {
                    b
                }
            }
        }
    }

    fn sample<R: Rng>(rng: &mut R, size: u32) -> Self {
        let j = |rng: &mut R| rng.random_range(-0.05f32..0.05);
        match rng.random_range(0..6) {
            0 => Background::Solid { gray: 0.12 + j(rng) },
            1 => Background::Solid { gray: 0.45 + j(rng) },
            2 => Background::Solid { gray: 0.85 + j(rng) },
            3 => Background::Vertical { top: 0.10 + j(rng), bottom: 0.55 + j(rng) },
            4 => Background::Horizontal { left: 0.60 + j(rng), right: 0.92 + j(rng) / 2.0 },
            _ => Background::Checker { a: 0.30 + j(rng), b: 0.40 + j(rng), cell: (size / 8).max(2) },
        }
    }
}

/// Everything that determines one clip's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClipParams {
    pub attrs: Attributes,
    pub background: Background,
    /// Half the shape's side (its bounding box is `2 * half` pixels wide).
    pub half: f32,
    /// Center in frame 0, pixels.
    pub start: (f32, f32),
    /// Pixels moved per frame along the motion direction.
    pub speed: f32,
}

impl ClipParams {
    /// Draws a background, size, speed and start for `attrs` so that the shape stays fully
    /// inside the frame for the whole clip.
    pub fn sample<R: Rng>(attrs: Attributes, cfg: &RenderConfig, rng: &mut R) -> Self {
        let size = cfg.size as f32;
        let background = Background::sample(rng, cfg.size);
        let half = size * [0.12f32, 0.16, 0.20][rng.random_range(0..3)] * rng.random_range(0.92f32..1.08);
        let lo = half + 1.0;
        let hi = size - half - 1.0;
        let avail = (hi - lo).max(0.0);
        let steps = (cfg.frames.max(2) - 1) as f32;
        let travel = avail * [0.4f32, 0.65, 0.9][rng.random_range(0..3)];
        let speed = if attrs.motion == Motion::Still { 0.0 } else { travel / steps };
        let free = |rng: &mut R| rng.random_range(lo..=hi.max(lo));
        // Along the motion axis, start where the whole path fits.
        let along = |rng: &mut R| rng.random_range(lo..=(hi - travel).max(lo));
        let start = match attrs.motion {
            Motion::Still => (free(rng), free(rng)),
            Motion::Right => (along(rng), free(rng)),
            Motion::Left => (size - along(rng), free(rng)),
            Motion::Down => (free(rng), along(rng)),
            Motion::Up => (free(rng), size - along(rng)),
        };
        Self { attrs, background, half, start, speed }
    }

    /// Shape center at frame `t`.
    pub fn center(&self, t: usize) -> (f32, f32) {
        let (dx, dy) = self.attrs.motion.direction();
        (self.start.0 + dx * self.speed * t as f32, self.start.1 + dy * self.speed * t as f32)
    }
}

/// Supersampling: `SS x SS` samples a pixel.
const SS: usize = 4;

/// The sample offsets of pixel `x` relative to the shape center `c`, relative to the center.
fn offsets(x: usize, c: f32) -> [f32; SS] {
    std::array::from_fn(|s| x as f32 + (s as f32 + 0.5) / SS as f32 - c)
}

/// How many of a pixel's `SS x SS` samples (offsets `px` by `py`) lie inside the shape:
/// exactly the count a per-sample test gives (`tests::inside`), in fewer operations. A square's count is the
/// product of its axes' counts; a circle's pixel is decided from its extreme samples when
/// they agree (rounding is monotone, so they bound every sample's sum exactly).
fn coverage(shape: Shape, half: f32, px: &[f32; SS], py: &[f32; SS]) -> usize {
    match shape {
        Shape::Square => {
            let count = |v: &[f32; SS]| v.iter().filter(|d| d.abs() <= half).count();
            count(px) * count(py)
        }
        Shape::Circle => {
            let (x2, y2) = (px.map(|d| d * d), py.map(|d| d * d));
            let h2 = half * half;
            let bounds = |v: &[f32; SS]| v.iter().fold((f32::INFINITY, 0.0f32), |(lo, hi), &d| (lo.min(d), hi.max(d)));
            let ((xlo, xhi), (ylo, yhi)) = (bounds(&x2), bounds(&y2));
            if xhi + yhi <= h2 {
                SS * SS
            } else if xlo + ylo > h2 {
                0
            } else {
                y2.iter().map(|&b| x2.iter().filter(|&&a| a + b <= h2).count()).sum()
            }
        }
        Shape::Triangle => py
            .iter()
            .filter(|&&y| y <= half && y >= -half)
            .map(|&y| {
                let limit = (y + half) / 2.0;
                px.iter().filter(|x| x.abs() <= limit).count()
            })
            .sum(),
    }
}

/// Renders a clip, `[T, H, W, 3]`.
pub fn render(p: &ClipParams, cfg: &RenderConfig) -> Video {
    let n = cfg.size as usize;
    let mut bg = vec![0u8; n * n * 3];
    for y in 0..cfg.size {
        for x in 0..cfg.size {
            let g = (p.background.at(x, y, cfg.size).clamp(0.0, 1.0) * 255.0).round() as u8;
            let i = (y as usize * n + x as usize) * 3;
            bg[i..i + 3].fill(g);
        }
    }
    let color = p.attrs.color.rgb();
    let mut data = Vec::with_capacity(bg.len() * cfg.frames);
    for t in 0..cfg.frames {
        let start = data.len();
        data.extend_from_slice(&bg);
        let frame = &mut data[start..];
        let (cx, cy) = p.center(t);
        let x0 = (cx - p.half - 1.0).floor().max(0.0) as usize;
        let x1 = ((cx + p.half + 1.0).ceil() as usize).min(n);
        let y0 = (cy - p.half - 1.0).floor().max(0.0) as usize;
        let y1 = ((cy + p.half + 1.0).ceil() as usize).min(n);
        let columns: Vec<[f32; SS]> = (x0..x1).map(|x| offsets(x, cx)).collect();
        for y in y0..y1 {
            let py = offsets(y, cy);
            for (x, px) in (x0..x1).zip(&columns) {
                let hits = coverage(p.attrs.shape, p.half, px, &py);
                if hits == 0 {
                    continue;
                }
                let a = hits as f32 / (SS * SS) as f32;
                let i = (y * n + x) * 3;
                for c in 0..3 {
                    let b = f32::from(frame[i + c]) / 255.0;
                    frame[i + c] = ((b + (color[c] - b) * a) * 255.0).round() as u8;
                }
            }
        }
    }
    // Sizes and counts above are consistent by construction.
    Video::from_raw(cfg.size, cfg.size, cfg.fps, data).unwrap_or_else(|_| Video::new(cfg.size, cfg.size, cfg.fps))
}

/// Adds Gaussian pixel noise of standard deviation `sigma` (in `[0, 1]` units), clamped.
pub fn add_noise<R: Rng>(video: &Video, sigma: f32, rng: &mut R) -> Video {
    let mut out = video.clone();
    let Ok(normal) = rand_distr::Normal::new(0.0f32, sigma.abs() * 255.0) else {
        return out;
    };
    for i in 0..out.len() {
        for v in out.frame_mut(i).iter_mut() {
            *v = (f32::from(*v) + rng.sample(normal)).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::attributes::{Color, Motion};
    use rand::SeedableRng;

    /// Whether point `(px, py)`, relative to the shape center, lies inside the shape: the
    /// definition [`coverage`] counts faster.
    fn inside(shape: Shape, half: f32, px: f32, py: f32) -> bool {
        match shape {
            Shape::Circle => px * px + py * py <= half * half,
            Shape::Square => px.abs() <= half && py.abs() <= half,
            // Isosceles, apex up: (0, -h), (-h, h), (h, h).
            Shape::Triangle => py <= half && py >= -half && px.abs() <= (py + half) / 2.0,
        }
    }

    #[test]
    fn coverage_counts_exactly_the_samples_inside() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut partial = 0;
        for _ in 0..20_000 {
            let shape = [Shape::Circle, Shape::Square, Shape::Triangle][rng.random_range(0..3)];
            let half = rng.random_range(2.0f32..14.0);
            let (cx, cy) = (rng.random_range(10.0f32..50.0), rng.random_range(10.0f32..50.0));
            let (x, y) = ((cx + rng.random_range(-16.0f32..16.0)).max(0.0) as usize, (cy + rng.random_range(-16.0f32..16.0)).max(0.0) as usize);
            let (px, py) = (offsets(x, cx), offsets(y, cy));
            let want = py.iter().map(|&b| px.iter().filter(|&&a| inside(shape, half, a, b)).count()).sum::<usize>();
            assert_eq!(coverage(shape, half, &px, &py), want, "{shape:?} half {half} at ({x}, {y}) around ({cx}, {cy})");
            partial += usize::from(want > 0 && want < SS * SS);
        }
        assert!(partial > 500, "only {partial} pixels on an edge were checked");
    }

    #[test]
    fn rendered_clips_have_the_per_sample_coverage() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for size in [32u32, 64] {
            let cfg = RenderConfig { frames: 3, size, fps: 8.0 };
            for shape in [Shape::Circle, Shape::Square, Shape::Triangle] {
                let attrs = Attributes { color: Color::Red, shape, motion: Motion::Right };
                let p = ClipParams::sample(attrs, &cfg, &mut rng);
                let clip = render(&p, &cfg);
                let frame = clip.frame(2);
                let (cx, cy) = p.center(2);
                let rgb = attrs.color.rgb();
                for y in 0..size as usize {
                    for x in 0..size as usize {
                        let (px, py) = (offsets(x, cx), offsets(y, cy));
                        let hits = py.iter().map(|&b| px.iter().filter(|&&a| inside(shape, p.half, a, b)).count()).sum::<usize>();
                        let i = (y * size as usize + x) * 3;
                        let g = (p.background.at(x as u32, y as u32, size).clamp(0.0, 1.0) * 255.0).round() as u8;
                        let a = hits as f32 / (SS * SS) as f32;
                        let b = f32::from(g) / 255.0;
                        let want: Vec<u8> = if hits == 0 { vec![g; 3] } else { rgb.iter().map(|c| ((b + (c - b) * a) * 255.0).round() as u8).collect() };
                        assert_eq!(&frame[i..i + 3], &want[..], "{shape:?} at ({x}, {y}), {hits} samples inside");
                    }
                }
            }
        }
    }
}

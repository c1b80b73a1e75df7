//! Attribute analyzer for shapes clips: recovers color, shape and motion direction by plain
//! image analysis (no learned weights), and scores a clip against the attributes a prompt
//! names. Later stages use it as the text-to-video alignment metric.
//!
//! Method: each frame is box-blurred (3x3) to suppress pixel noise; the shape is the set of
//! pixels whose chroma (max - min of RGB) exceeds half the frame's peak chroma (backgrounds
//! are gray). Color is the nearest reference hue of the mean core color; triangles are told
//! by their taper (narrow top third, wide bottom third), squares from circles by how much of
//! the bounding box the mask fills (1 against pi/4); motion is the least-squares slope of the
//! centroid track.

use serde::{Deserialize, Serialize};

use crate::dataset::attributes::{Attributes, Color, Motion, Shape, hue_of};
use crate::video::Video;

/// What the analyzer measured in a clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub color: Option<Color>,
    pub shape: Option<Shape>,
    pub motion: Option<Motion>,
    /// Mean hue of the shape's core pixels, degrees.
    pub hue: Option<f32>,
    /// Median fraction of its bounding box the shape fills.
    pub fill: Option<f32>,
    /// Median ratio of the shape's mean width in the top third of its box to the bottom
    /// third (about 1 for squares and circles, about 1/3 for apex-up triangles).
    pub taper: Option<f32>,
    /// Fitted displacement over the clip, pixels `(dx, dy)`.
    pub displacement: Option<(f32, f32)>,
    /// Frames in which a shape was found.
    pub frames_found: usize,
}

impl Analysis {
    /// The full attribute triple, when all three were recovered.
    pub fn attributes(&self) -> Option<Attributes> {
        Some(Attributes { shape: self.shape?, color: self.color?, motion: self.motion? })
    }

    /// Whether this analysis reads each of `[color, shape, motion]` as `want` (the original's).
    pub fn agrees_with(&self, want: &Attributes) -> [bool; 3] {
        [self.color == Some(want.color), self.shape == Some(want.shape), self.motion == Some(want.motion)]
    }
}

/// Per-frame measurements.
struct FrameStats {
    centroid: (f32, f32),
    fill: f32,
    taper: f32,
    rgb_sum: [f32; 3],
    core: f32,
}

fn blur3(frame: &[u8], w: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0f32; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0f32; 3];
            let mut n = 0f32;
            for yy in y.saturating_sub(1)..(y + 2).min(h) {
                for xx in x.saturating_sub(1)..(x + 2).min(w) {
                    let i = (yy * w + xx) * 3;
                    for c in 0..3 {
                        acc[c] += f32::from(frame[i + c]);
                    }
                    n += 1.0;
                }
            }
            let o = (y * w + x) * 3;
            for c in 0..3 {
                out[o + c] = acc[c] / (n * 255.0);
            }
        }
    }
    out
}

fn frame_stats(frame: &[u8], w: usize, h: usize) -> Option<FrameStats> {
    let px = blur3(frame, w, h);
    let chroma: Vec<f32> = px.chunks_exact(3).map(|p| p[0].max(p[1]).max(p[2]) - p[0].min(p[1]).min(p[2])).collect();
    let peak = chroma.iter().copied().fold(0.0f32, f32::max);
    if peak < 0.2 {
        return None;
    }
    let (thr, core_thr) = (0.5 * peak, 0.8 * peak);
    let (mut area, mut sx, mut sy) = (0f32, 0f32, 0f32);
    let (mut x0, mut x1, mut y0, mut y1) = (usize::MAX, 0, usize::MAX, 0);
    let mut rgb_sum = [0f32; 3];
    let mut core = 0f32;
    for y in 0..h {
        for x in 0..w {
            let c = chroma[y * w + x];
            if c < thr {
                continue;
            }
            area += 1.0;
            sx += x as f32;
            sy += y as f32;
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
            if c >= core_thr {
                let i = (y * w + x) * 3;
                for k in 0..3 {
                    rgb_sum[k] += px[i + k];
                }
                core += 1.0;
            }
        }
    }
    if area < 4.0 {
        return None;
    }
    let bbox = ((x1 - x0 + 1) * (y1 - y0 + 1)) as f32;
    // Mean mask width over the top and bottom thirds of the box.
    let rows = y1 - y0 + 1;
    let third = (rows / 3).max(1);
    let width = |y: usize| (x0..=x1).filter(|&x| chroma[y * w + x] >= thr).count() as f32;
    let top: f32 = (y0..y0 + third).map(width).sum();
    let bottom: f32 = (y1 + 1 - third..=y1).map(width).sum();
    let taper = if bottom > 0.0 { top / bottom } else { 1.0 };
    Some(FrameStats { centroid: (sx / area, sy / area), fill: area / bbox, taper, rgb_sum, core })
}

/// Nearest reference color by circular hue distance.
pub fn classify_hue(hue: f32) -> Color {
    let dist = |c: Color| {
        let d = (c.hue() - hue).rem_euclid(360.0);
        d.min(360.0 - d)
    };
    Color::ALL.into_iter().min_by(|a, b| dist(*a).total_cmp(&dist(*b))).unwrap_or(Color::Red)
}

/// Shape class from the vertical taper and the fraction of the bounding box filled.
pub fn classify_shape(taper: f32, fill: f32) -> Shape {
    if taper < 0.7 {
        Shape::Triangle
    } else if fill >= 0.89 {
        Shape::Square
    } else if fill >= 0.64 {
        Shape::Circle
    } else {
        Shape::Triangle
    }
}

/// Analyzes a clip of the shapes domain.
pub fn analyze(video: &Video) -> Analysis {
    let (w, h) = (video.width() as usize, video.height() as usize);
    let stats: Vec<(usize, FrameStats)> = (0..video.len()).filter_map(|t| frame_stats(video.frame(t), w, h).map(|s| (t, s))).collect();
    let mut a = Analysis { color: None, shape: None, motion: None, hue: None, fill: None, taper: None, displacement: None, frames_found: stats.len() };
    if stats.is_empty() {
        return a;
    }
    let mut rgb = [0f32; 3];
    let mut core = 0f32;
    for (_, s) in &stats {
        for (sum, v) in rgb.iter_mut().zip(&s.rgb_sum) {
            *sum += v;
        }
        core += s.core;
    }
    if core > 0.0 {
        let hue = hue_of(rgb[0] / core, rgb[1] / core, rgb[2] / core);
        a.hue = Some(hue);
        a.color = Some(classify_hue(hue));
    }
    let median = |f: &dyn Fn(&FrameStats) -> f32| {
        let mut v: Vec<f32> = stats.iter().map(|(_, s)| f(s)).collect();
        v.sort_by(f32::total_cmp);
        v[v.len() / 2]
    };
    let (fill, taper) = (median(&|s| s.fill), median(&|s| s.taper));
    a.fill = Some(fill);
    a.taper = Some(taper);
    a.shape = Some(classify_shape(taper, fill));

    // Least-squares slope of the centroid over time, times the clip span.
    let n = stats.len() as f32;
    let span = (video.len().max(2) - 1) as f32;
    let mt = stats.iter().map(|(t, _)| *t as f32).sum::<f32>() / n;
    let mx = stats.iter().map(|(_, s)| s.centroid.0).sum::<f32>() / n;
    let my = stats.iter().map(|(_, s)| s.centroid.1).sum::<f32>() / n;
    let var = stats.iter().map(|(t, _)| (*t as f32 - mt).powi(2)).sum::<f32>();
    let (dx, dy) = if var > 0.0 {
        let cov = |f: &dyn Fn(&FrameStats) -> f32, m: f32| stats.iter().map(|(t, s)| (*t as f32 - mt) * (f(s) - m)).sum::<f32>() / var;
        (cov(&|s| s.centroid.0, mx) * span, cov(&|s| s.centroid.1, my) * span)
    } else {
        (0.0, 0.0)
    };
    a.displacement = Some((dx, dy));
    let still_below = (0.05 * w.min(h) as f32).max(1.5);
    a.motion = Some(if dx.hypot(dy) < still_below {
        Motion::Still
    } else if dx.abs() >= dy.abs() {
        if dx < 0.0 { Motion::Left } else { Motion::Right }
    } else if dy < 0.0 {
        Motion::Up
    } else {
        Motion::Down
    });
    a
}

/// The attributes a prompt names (any may be missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PromptAttributes {
    pub shape: Option<Shape>,
    pub color: Option<Color>,
    pub motion: Option<Motion>,
}

impl PromptAttributes {
    /// Finds the first shape, color and motion word (or synonym) in `prompt`.
    pub fn parse(prompt: &str) -> Self {
        let lower = prompt.to_lowercase();
        let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
        let find = |vocab: &dyn Fn(&str) -> bool| words.iter().position(|w| vocab(w));
        let shape = Shape::ALL.into_iter().filter_map(|s| find(&|w| s.words().contains(&w)).map(|i| (i, s))).min();
        let color = Color::ALL.into_iter().filter_map(|c| find(&|w| c.words().contains(&w)).map(|i| (i, c))).min();
        let motion = Motion::ALL.into_iter().filter_map(|m| find(&|w| m.words().contains(&w)).map(|i| (i, m))).min();
        Self { shape: shape.map(|x| x.1), color: color.map(|x| x.1), motion: motion.map(|x| x.1) }
    }

    pub fn is_empty(&self) -> bool {
        self.shape.is_none() && self.color.is_none() && self.motion.is_none()
    }
}

/// How well a clip matches a prompt: per attribute, `None` when the prompt does not name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AttributeScore {
    pub shape: Option<bool>,
    pub color: Option<bool>,
    pub motion: Option<bool>,
}

impl AttributeScore {
    /// Fraction of named attributes the clip matches (`None` if the prompt names none).
    pub fn fraction(&self) -> Option<f32> {
        let named: Vec<bool> = [self.shape, self.color, self.motion].into_iter().flatten().collect();
        (!named.is_empty()).then(|| named.iter().filter(|&&b| b).count() as f32 / named.len() as f32)
    }
}

/// Scores an analysis against what a prompt asks for.
pub fn score(analysis: &Analysis, wanted: &PromptAttributes) -> AttributeScore {
    AttributeScore {
        shape: wanted.shape.map(|s| analysis.shape == Some(s)),
        color: wanted.color.map(|c| analysis.color == Some(c)),
        motion: wanted.motion.map(|m| analysis.motion == Some(m)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prompts_with_synonyms() {
        let p = PromptAttributes::parse("A crimson ball drifts to the LEFT!");
        assert_eq!(p, PromptAttributes { shape: Some(Shape::Circle), color: Some(Color::Red), motion: Some(Motion::Left) });
        let p = PromptAttributes::parse("watch the wedge: it is lime and rising");
        assert_eq!(p.shape, Some(Shape::Triangle));
        assert_eq!(p.color, Some(Color::Green));
        assert_eq!(p.motion, Some(Motion::Up));
        assert!(PromptAttributes::parse("a sunset over the sea").is_empty());
    }

    #[test]
    fn blank_frames_find_nothing() {
        let v = Video::from_raw(16, 16, 8.0, vec![128; 16 * 16 * 3 * 4]).unwrap();
        let a = analyze(&v);
        assert_eq!(a.frames_found, 0);
        assert!(a.attributes().is_none());
        let s = score(&a, &PromptAttributes::parse("a red circle"));
        assert_eq!(s.fraction(), Some(0.0));
    }

    #[test]
    fn hue_classifier_wraps_around() {
        assert_eq!(classify_hue(355.0), Color::Red);
        assert_eq!(classify_hue(5.0), Color::Red);
        assert_eq!(classify_hue(225.0), Color::Blue);
    }
}

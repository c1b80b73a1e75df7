//! The attributes of a shapes clip and the words that name them.

use serde::{Deserialize, Serialize};

/// Shape classes; the analyzer separates them by how much of their bounding box they fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    Circle,
    Square,
    Triangle,
}

/// Saturated colors, far apart in hue so that they survive noise and anti-aliasing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    Red,
    Orange,
    Yellow,
    Green,
    Blue,
    Purple,
}

/// Motion directions in image space (up = towards row 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Motion {
    Left,
    Right,
    Up,
    Down,
    Still,
}

impl Shape {
    pub const ALL: [Shape; 3] = [Shape::Circle, Shape::Square, Shape::Triangle];
    /// Canonical name first, then synonyms used by captions and understood in prompts.
    pub fn words(self) -> &'static [&'static str] {
        match self {
            Shape::Circle => &["circle", "ball", "disc", "dot"],
            Shape::Square => &["square", "box", "block", "tile"],
            Shape::Triangle => &["triangle", "wedge", "pyramid", "arrowhead"],
        }
    }
}

impl Color {
    pub const ALL: [Color; 6] = [Color::Red, Color::Orange, Color::Yellow, Color::Green, Color::Blue, Color::Purple];
    pub fn words(self) -> &'static [&'static str] {
        match self {
            Color::Red => &["red", "crimson", "scarlet"],
            Color::Orange => &["orange", "tangerine", "amber"],
            Color::Yellow => &["yellow", "golden", "lemon"],
            Color::Green => &["green", "emerald", "lime"],
            Color::Blue => &["blue", "azure", "cobalt"],
            Color::Purple => &["purple", "violet", "magenta"],
        }
    }
    /// Linear RGB in `[0, 1]` used by the renderer.
    pub fn rgb(self) -> [f32; 3] {
        match self {
            Color::Red => [0.90, 0.10, 0.10],
            Color::Orange => [1.00, 0.55, 0.05],
            Color::Yellow => [0.95, 0.90, 0.10],
            Color::Green => [0.10, 0.80, 0.20],
            Color::Blue => [0.15, 0.30, 0.95],
            Color::Purple => [0.60, 0.15, 0.85],
        }
    }
    /// Hue in degrees of [`rgb`](Self::rgb).
    pub fn hue(self) -> f32 {
        let [r, g, b] = self.rgb();
        hue_of(r, g, b)
    }
}

impl Motion {
    pub const ALL: [Motion; 5] = [Motion::Left, Motion::Right, Motion::Up, Motion::Down, Motion::Still];
    pub fn words(self) -> &'static [&'static str] {
        match self {
            Motion::Left => &["left", "leftward", "leftwards", "westward"],
            Motion::Right => &["right", "rightward", "rightwards", "eastward"],
            Motion::Up => &["up", "upward", "upwards", "rising", "rises", "climbs", "ascends"],
            Motion::Down => &["down", "downward", "downwards", "falling", "falls", "sinks", "descends"],
            Motion::Still => &["still", "motionless", "stationary", "static", "resting", "unmoving"],
        }
    }
    /// Unit direction `(dx, dy)` in image space.
    pub fn direction(self) -> (f32, f32) {
        match self {
            Motion::Left => (-1.0, 0.0),
            Motion::Right => (1.0, 0.0),
            Motion::Up => (0.0, -1.0),
            Motion::Down => (0.0, 1.0),
            Motion::Still => (0.0, 0.0),
        }
    }
}

macro_rules! display_first_word {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.words()[0])
            }
        }
    )*};
}
display_first_word!(Shape, Color, Motion);

/// Hue in degrees `[0, 360)` of an RGB triple (0 for grays).
pub fn hue_of(r: f32, g: f32, b: f32) -> f32 {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let c = max - min;
    if c <= 0.0 {
        return 0.0;
    }
    let h = if max == r {
        ((g - b) / c).rem_euclid(6.0)
    } else if max == g {
        (b - r) / c + 2.0
    } else {
        (r - g) / c + 4.0
    };
    h * 60.0
}

/// The ground truth of one shapes clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Attributes {
    pub shape: Shape,
    pub color: Color,
    pub motion: Motion,
}

impl Attributes {
    /// All 3 x 6 x 5 = 90 combinations, in a fixed order.
    pub fn all() -> Vec<Attributes> {
        let mut v = Vec::with_capacity(90);
        for shape in Shape::ALL {
            for color in Color::ALL {
                for motion in Motion::ALL {
                    v.push(Attributes { shape, color, motion });
                }
            }
        }
        v
    }
}

impl std::fmt::Display for Attributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.color, self.shape, self.motion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hues_are_well_separated() {
        let mut hues: Vec<f32> = Color::ALL.iter().map(|c| c.hue()).collect();
        hues.sort_by(f32::total_cmp);
        for w in hues.windows(2) {
            assert!(w[1] - w[0] >= 20.0, "{hues:?}");
        }
        assert_eq!(Attributes::all().len(), 90);
    }

    #[test]
    fn words_are_unique_across_attributes() {
        let mut all: Vec<&str> = Vec::new();
        Shape::ALL.iter().for_each(|s| all.extend(s.words()));
        Color::ALL.iter().for_each(|s| all.extend(s.words()));
        Motion::ALL.iter().for_each(|s| all.extend(s.words()));
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
    }
}

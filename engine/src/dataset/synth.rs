//! The synthetic captioned "shapes" dataset: deterministic by seed, with a split of
//! attribute combinations never seen in training and a split of held-out caption templates.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::attributes::{Attributes, Color, Motion, Shape};
use super::captions::{self, TEMPLATES, TRAIN_TEMPLATES};
use super::shapes::{ClipParams, RenderConfig, render};
use crate::video::Video;

/// Which part of the dataset an item belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    /// Seen combinations, training templates.
    Train,
    /// Seen combinations, training templates, not trained on (in-distribution validation).
    Val,
    /// Attribute combinations never seen in training (training templates).
    HeldoutCombo,
    /// Seen combinations described with held-out caption templates.
    HeldoutTemplate,
}

impl Split {
    pub const ALL: [Split; 4] = [Split::Train, Split::Val, Split::HeldoutCombo, Split::HeldoutTemplate];
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::HeldoutCombo => "heldout-combo",
            Split::HeldoutTemplate => "heldout-template",
        })
    }
}

/// Whether an attribute combination is held out of training: 10 of the 90, chosen so that
/// every shape, color and motion still appears in training.
pub fn is_heldout_combo(a: Attributes) -> bool {
    let s = Shape::ALL.iter().position(|&x| x == a.shape).unwrap_or(0);
    let c = Color::ALL.iter().position(|&x| x == a.color).unwrap_or(0);
    let m = Motion::ALL.iter().position(|&x| x == a.motion).unwrap_or(0);
    (7 * s + 3 * c + m) % 9 == 0
}

/// How to generate a synthetic dataset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SynthConfig {
    /// Number of clips.
    pub count: usize,
    /// Master seed: the same seed gives the same dataset.
    pub seed: u64,
    pub render: RenderConfig,
    /// Fractions of items in the val, held-out-combination and held-out-template splits (the
    /// rest is train).
    pub val_fraction: f64,
    pub heldout_combo_fraction: f64,
    pub heldout_template_fraction: f64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self { count: 1000, seed: 0, render: RenderConfig::default(), val_fraction: 0.1, heldout_combo_fraction: 0.05, heldout_template_fraction: 0.05 }
    }
}

/// One generated item: its ground truth, caption and rendering parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthItem {
    pub index: usize,
    pub split: Split,
    pub attributes: Attributes,
    pub caption: String,
    pub template: usize,
    pub params: ClipParams,
}

impl SynthItem {
    /// Renders the clip.
    pub fn render(&self, cfg: &RenderConfig) -> Video {
        render(&self.params, cfg)
    }
}

/// A well-mixed 64-bit seed for item `index` of a dataset with master `seed`.
pub fn item_seed(seed: u64, index: usize) -> u64 {
    // SplitMix64 finaliser.
    let mut z = seed ^ (index as u64).wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Item `index` of the dataset `cfg` (independent of every other item, so any item can be
/// regenerated alone).
pub fn item(cfg: &SynthConfig, index: usize) -> SynthItem {
    let mut rng = ChaCha8Rng::seed_from_u64(item_seed(cfg.seed, index));
    let u: f64 = rng.random();
    let split = if u < cfg.heldout_combo_fraction {
        Split::HeldoutCombo
    } else if u < cfg.heldout_combo_fraction + cfg.heldout_template_fraction {
        Split::HeldoutTemplate
    } else if u < cfg.heldout_combo_fraction + cfg.heldout_template_fraction + cfg.val_fraction {
        Split::Val
    } else {
        Split::Train
    };
    let all = Attributes::all();
    let pool: Vec<Attributes> = all.into_iter().filter(|a| is_heldout_combo(*a) == (split == Split::HeldoutCombo)).collect();
    let attributes = pool[rng.random_range(0..pool.len())];
    let template = match split {
        Split::HeldoutTemplate => rng.random_range(TRAIN_TEMPLATES..TEMPLATES.len()),
        _ => rng.random_range(0..TRAIN_TEMPLATES),
    };
    let caption = captions::caption(attributes, template, &mut rng);
    let params = ClipParams::sample(attributes, &cfg.render, &mut rng);
    SynthItem { index, split, attributes, caption, template, params }
}

/// All items of the dataset `cfg`.
pub fn items(cfg: &SynthConfig) -> Vec<SynthItem> {
    (0..cfg.count).map(|i| item(cfg, i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heldout_combos_leave_every_value_in_training() {
        let all = Attributes::all();
        let held: Vec<_> = all.iter().filter(|a| is_heldout_combo(**a)).collect();
        assert_eq!(held.len(), 10);
        let train: Vec<_> = all.iter().filter(|a| !is_heldout_combo(**a)).collect();
        for s in Shape::ALL {
            assert!(train.iter().any(|a| a.shape == s));
        }
        for c in Color::ALL {
            assert!(train.iter().any(|a| a.color == c));
        }
        for m in Motion::ALL {
            assert!(train.iter().any(|a| a.motion == m));
        }
    }

    #[test]
    fn deterministic_by_seed_and_splits_respect_holdouts() {
        let cfg = SynthConfig { count: 400, ..SynthConfig::default() };
        let a = items(&cfg);
        assert_eq!(a, items(&cfg));
        let other = items(&SynthConfig { seed: 1, ..cfg });
        assert_ne!(a, other);
        for it in &a {
            assert_eq!(is_heldout_combo(it.attributes), it.split == Split::HeldoutCombo);
            assert_eq!(it.template >= TRAIN_TEMPLATES, it.split == Split::HeldoutTemplate);
        }
        for s in Split::ALL {
            assert!(a.iter().any(|it| it.split == s), "no {s} items");
        }
        assert_eq!(a[17].render(&cfg.render), item(&cfg, 17).render(&cfg.render));
    }

    #[test]
    fn shapes_stay_inside_the_frame() {
        let cfg = SynthConfig { count: 300, ..SynthConfig::default() };
        let size = cfg.render.size as f32;
        for it in items(&cfg) {
            for t in 0..cfg.render.frames {
                let (x, y) = it.params.center(t);
                let h = it.params.half;
                assert!(x - h >= 0.0 && x + h <= size && y - h >= 0.0 && y + h <= size, "{it:?} t={t}");
            }
        }
    }
}

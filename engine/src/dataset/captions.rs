//! Caption templates and synonyms for the shapes domain. Templates `0..TRAIN_TEMPLATES` are
//! used in training; the rest are held out to test generalization to unseen phrasings.

use rand::Rng;

use super::attributes::{Attributes, Motion};

/// A template: `{c}` color, `{s}` shape, `{ing}` motion as a participle, `{v}` as a verb.
pub const TEMPLATES: [&str; 9] = [
    "a {c} {s} {ing}",
    "a {c} {s} {v}",
    "the {c} {s} is {ing}",
    "{c} {s}, {ing}",
    "video of a {c} {s} {ing}",
    "one {c} {s} {v}",
    // Held out from training:
    "there is a {c} {s} and it {v}",
    "watch the {s}: it is {c} and {ing}",
    "a {s} colored {c} that {v}",
];

/// Templates below this index are training templates.
pub const TRAIN_TEMPLATES: usize = 6;

/// Motion phrases as (participle, verb) pairs.
fn motion_phrases(m: Motion) -> &'static [(&'static str, &'static str)] {
    match m {
        Motion::Left => &[
            ("moving left", "moves left"),
            ("drifting to the left", "drifts to the left"),
            ("sliding leftward", "slides leftward"),
            ("heading left", "heads left"),
        ],
        Motion::Right => &[
            ("moving right", "moves right"),
            ("drifting to the right", "drifts to the right"),
            ("sliding rightward", "slides rightward"),
            ("heading right", "heads right"),
        ],
        Motion::Up => &[("moving up", "moves up"), ("rising", "rises"), ("drifting upward", "drifts upward"), ("gliding upwards", "glides upwards")],
        Motion::Down => {
            &[("moving down", "moves down"), ("falling", "falls"), ("drifting downward", "drifts downward"), ("sinking downwards", "sinks downwards")]
        }
        Motion::Still => &[
            ("standing still", "stands still"),
            ("staying still", "stays still"),
            ("resting motionless", "rests motionless"),
            ("remaining stationary", "remains stationary"),
        ],
    }
}

/// Picks a word: the canonical one half the time, a synonym otherwise.
fn pick<'a, R: Rng>(words: &[&'a str], rng: &mut R) -> &'a str {
    if words.len() == 1 || rng.random_bool(0.5) { words[0] } else { words[rng.random_range(1..words.len())] }
}

/// Fills template `template` for `attrs`, drawing synonyms from `rng`.
pub fn caption<R: Rng>(attrs: Attributes, template: usize, rng: &mut R) -> String {
    let phrases = motion_phrases(attrs.motion);
    let (ing, v) = phrases[rng.random_range(0..phrases.len())];
    TEMPLATES[template % TEMPLATES.len()]
        .replace("{c}", pick(attrs.color.words(), rng))
        .replace("{s}", pick(attrs.shape.words(), rng))
        .replace("{ing}", ing)
        .replace("{v}", v)
}

/// The plain caption used in docs and examples: "a red circle moving left".
pub fn canonical(attrs: Attributes) -> String {
    format!("a {} {} {}", attrs.color, attrs.shape, motion_phrases(attrs.motion)[0].0)
}

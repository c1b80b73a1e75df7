//! Datasets: the synthetic captioned "shapes" domain, imported folders and manifests of
//! user videos, and the on-disk dataset index both share.
//!
//! - [`attributes`]: shapes, colors, motions and their words (shared with the analyzer).
//! - [`shapes`]: procedural rendering of a clip from its attributes.
//! - [`captions`]: caption templates and synonyms, with a held-out template set.
//! - [`synth`]: deterministic dataset generation and the held-out attribute combinations.
//! - [`import`]: folders with sidecar captions, JSONL/CSV manifests, per-item validation.
//! - [`index`]: the dataset folder format (`dataset.json` + `index.jsonl` + `errors.jsonl`).

pub mod attributes;
pub mod captions;
pub mod import;
pub mod index;
pub mod shapes;
pub mod synth;

pub use attributes::{Attributes, Color, Motion, Shape};
pub use index::{DatasetIndex, DatasetKind, IndexItem};

//! Datasets: the synthetic captioned "shapes" domain, the photo world, imported folders and
//! manifests of user videos (streamed for training), and the on-disk dataset index both share.
//!
//! - [`attributes`]: shapes, colors, motions and their words (shared with the analyzer).
//! - [`shapes`]: procedural rendering of a clip from its attributes.
//! - [`captions`]: caption templates and synonyms, with a held-out template set.
//! - [`synth`]: deterministic dataset generation and the held-out attribute combinations.
//! - [`import`]: folders with sidecar captions, JSONL/CSV manifests, per-item validation.
//! - [`index`]: the dataset folder format (`dataset.json` + `index.jsonl` + `errors.jsonl`).
//! - [`stream`]: windows of an imported dataset's videos, decoded on demand for training.
//! - [`photos`]: the natural-image world, clips made from photographs by seed.

pub mod attributes;
pub mod captions;
pub mod import;
pub mod index;
pub mod photos;
pub mod shapes;
pub mod stream;
pub mod synth;

pub use attributes::{Attributes, Color, Motion, Shape};
pub use index::{DatasetIndex, DatasetKind, IndexItem};

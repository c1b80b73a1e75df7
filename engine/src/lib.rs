//! HiTVideo engine: everything that touches tensors, files and models, with no GUI dependency.
//!
//! The studio and the CLI (crate `hitvideo-app`) are thin layers over the plain functions here.
//! See `engine/README.md` for a map of the modules.

pub mod alloc;
pub mod bundle;
pub mod checkpoint;
pub mod cores;
pub mod dataset;
pub mod device;
pub mod eval;
pub mod fsutil;
pub mod generator;
pub mod guidance;
pub mod metrics;
pub mod ops;
pub mod service;
pub mod tensor;
pub mod text;
pub mod tokenizer;
pub mod train;
pub mod video;

/// The engine's version, written into every export and checkpoint.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

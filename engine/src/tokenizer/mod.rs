//! The hierarchical LFQ video tokenizer: configuration and presets, causal 3D-conv blocks,
//! lookup-free quantization, and the encoder / compressors / decoder network.

pub mod blocks;
pub mod config;
pub mod disc;
pub mod info;
pub mod lfq;
pub mod model;

pub use config::{LayerConfig, TokenizerConfig, config_sha256};
pub use model::{Encoded, Tokenizer};

//! The hierarchical LFQ video tokenizer: configuration and presets, causal 3D-conv blocks,
//! lookup-free quantization, the encoder / compressors / decoder network, and dynamic encoding
//! (redundancy masks, masked decoding, compact masked streams).

pub mod blocks;
pub mod codec;
pub mod config;
pub mod disc;
pub mod dynamic;
#[cfg(test)]
mod gradcheck;
pub mod info;
pub mod lfq;
pub mod load;
pub mod masked_codec;
pub mod model;
pub mod split;
pub mod stream;
pub mod tokens;

pub use config::{LayerConfig, TokenizerConfig, config_sha256};
pub use dynamic::{FillStrategy, Fills, LayerIds, LayerMask, MaskConfig, layer_masks};
pub use load::load_tokenizer;
pub use model::{Encoded, Tokenizer};
pub use split::Tokens;
pub use stream::MaskedStream;
pub use tokens::{TokenFile, TokenFileError, TokenLayer, TokenWindow};

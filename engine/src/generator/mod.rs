//! The text-conditioned coarse-to-fine generator: configuration and presets, 3D RoPE,
//! transformer blocks with a KV-cache, the network and its loss, sampling and generation, the
//! text-to-clip pipeline, and CFG x seed sweeps with a labelled grid.

pub mod block;
pub mod cache;
pub mod config;
pub mod generate;
pub mod lists;
pub mod load;
pub mod loss;
pub mod model;
pub mod pipeline;
pub mod rope;
pub mod sample;
pub mod token_cache;

pub use config::{GeneratorConfig, TextConditionConfig};
pub use generate::{GenEvent, GenerateError, GenerateSpec, generate, split_layers};
pub use load::{LoadedGenerator, load_generator};
pub use loss::{LayerLosses, layer_losses};
pub use model::{Generator, TextInput};
pub use pipeline::{ClipRequest, Pipeline, PipelineError};
pub use sample::{CfgSchedule, SamplingConfig, SamplingError, ScheduleError};

#[cfg(test)]
mod tests;

//! Evaluation and visualisation, the top layer of the engine: it may use everything below
//! (models, inference, training data) and nothing below uses it.
//!
//! - `analyze`: the attribute analyzer (color, shape, motion) and prompt scoring.
//! - `tokenizer`, `table`, `h264`: `tokenizer eval` (PSNR/SSIM by k coarsest layers, the
//!   analyzer's agreement, dynamic encoding) and its libx264 baseline at the same bits.
//! - `accuracy`: `lm eval`, attribute accuracy of generated clips by CFG on held-out prompts.
//! - `sweep`, `grid`, `label`: sweeps scored by the analyzer, the labelled grid.
//! - `bench`: the throughput figures behind `hitvideo bench`.

pub mod accuracy;
pub mod analyze;
pub mod bench;
pub mod grid;
pub mod h264;
pub mod label;
pub mod sweep;
mod table;
pub mod tokenizer;

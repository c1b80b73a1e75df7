//! Training: the tokenizer and generator trainers on one loop (`run_loop.rs`) with typed
//! records (`metrics.rs`), the generator's token cache, checkpoints and
//! metric logs.

pub mod data;
pub mod generator;
pub mod generator_data;
pub mod log;
pub mod metrics;
pub mod parallel;
pub mod precision;
pub mod run_loop;
pub mod schedule;
pub mod sync;
pub mod token_cache;
pub mod tokenizer;
mod tokenizer_step;
mod tokenizer_sync;

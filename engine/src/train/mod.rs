//! Training: the tokenizer and generator loops, the generator's token cache, checkpoints and
//! metric logs.

pub mod data;
pub mod generator;
pub mod generator_data;
pub mod log;
pub mod parallel;
pub mod precision;
pub mod schedule;
pub mod token_cache;
pub mod tokenizer;
mod tokenizer_step;

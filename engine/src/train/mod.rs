//! Training: the tokenizer loop (and, later, the generator's), checkpoints and metric logs.

pub mod checkpoint;
pub mod data;
pub mod log;
pub mod schedule;
pub mod tokenizer;

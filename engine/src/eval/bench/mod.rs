//! Throughput measurements behind `hitvideo bench` (one JSON document per run).

pub mod generator;
pub mod tokenizer;

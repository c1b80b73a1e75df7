//! Generator benchmarks on the CPU (Flex), printed as one JSON document (the figures of
//! `hitvideo_engine::eval::bench::generator`, also in `hitvideo bench`).
//! `cargo run -p hitvideo-engine --example bench_generator -- [--repeat 3] [--batch 16]` (the dev
//! profile builds dependencies at opt-level 3 and the engine at 2, as the app does).

use burn::prelude::*;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut report = hitvideo_engine::eval::bench::generator::bench_generator(&Device::flex(), arg("--repeat", 3), arg("--batch", 16))?;
    report["device"] = "cpu (flex)".into();
    report["threads"] = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).into();
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

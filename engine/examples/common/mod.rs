//! What the profiling examples share.

use std::time::Instant;

/// Runs `f` once to warm up, then prints the mean of 4 timed runs in milliseconds.
#[allow(dead_code)] // not every example prints its own lines
pub fn time(name: &str, f: impl FnMut()) {
    println!("{name:<60} {:>8.1} ms", time_ms(f));
}

/// The mean of four runs of `f` after a warm-up run, in milliseconds.
pub fn time_ms(mut f: impl FnMut()) -> f64 {
    f();
    let n = 4;
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() * 1000.0 / n as f64
}

/// The preset (first argument, `tiny` by default) and the batch (second, 8 by default).
#[allow(dead_code)] // not every example takes a preset
pub fn preset_and_batch() -> (String, usize) {
    let args: Vec<String> = std::env::args().collect();
    let preset = args.get(1).cloned().unwrap_or_else(|| "tiny".into());
    let batch = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(8);
    (preset, batch)
}

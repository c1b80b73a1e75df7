//! `hitvideo bench`: throughput figures as one JSON document: the data layer (decoding,
//! synthetic rendering) and the tokenizer (encode and decode clips/s, real-time factor,
//! training steps/s) and the generator (tokens/s with and without the KV-cache, one clip with
//! CFG, a training step) on the chosen device, and the peak memory of the run.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use hitvideo_engine::dataset::shapes::RenderConfig;
use hitvideo_engine::dataset::synth::{self, SynthConfig};
use hitvideo_engine::device::Device;
use hitvideo_engine::eval::bench;
use hitvideo_engine::train::parallel;
use hitvideo_engine::video::{self, DecodeOptions};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Video to decode for the decode benchmark (`none` skips it).
    #[arg(long, default_value = "../shared/data/bikes.mp4")]
    pub video: PathBuf,
    /// Repetitions of each measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Write the JSON here as well as to stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Tokenizer preset to time (`none` skips the tokenizer section).
    #[arg(long, default_value = "tiny")]
    pub tokenizer: String,
    /// Clips per batch for the batched tokenizer figures and the training steps.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Tokenizer training steps timed.
    #[arg(long, default_value_t = 5)]
    pub train_steps: usize,
    /// Skip the generator section.
    #[arg(long)]
    pub no_generator: bool,
    /// Generator preset to time (`tiny`, `medium` ~300M parameters, `paper`).
    #[arg(long, default_value = "tiny")]
    pub lm_preset: String,
    /// Tokenizer preset whose token layout the generator predicts (`paper`: 2,448 tokens).
    #[arg(long, default_value = "tiny")]
    pub lm_tokenizer: String,
    /// Training batch of the generator step (default: --batch).
    #[arg(long)]
    pub lm_batch: Option<usize>,
    /// Devices the training steps run on, data parallel, as the trainers' `--devices` (on the
    /// CPU, replicas that each compute on their share of the cores). Default: the trainers'
    /// default (two replicas on the CPU when the batch is even; one device elsewhere).
    #[arg(long)]
    pub devices: Option<usize>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the benchmarks on `device_handle` (described as `device`); the training steps also on
/// `others` (data parallel) where --devices was given, else on the trainers' default.
pub fn run(a: BenchArgs, device: &str, device_handle: &Device, others: &[Device]) -> Result<()> {
    let others_at = |batch: usize, stats: bool| if a.devices.is_some() { others.to_vec() } else { parallel::default_others(device_handle, batch, stats) };
    let repeat = a.repeat.max(1);
    // Decode: the file to 64x64 at 8 fps (`--video none` skips it: the GPU check's binaries
    // are built without FFmpeg).
    let opts = DecodeOptions::at(8.0, 64);
    let mut frames = 0;
    let mut decode_fps = Vec::new();
    let decode_file = (a.video.as_os_str() != "none").then_some(&a.video);
    for _ in 0..if decode_file.is_some() { repeat } else { 0 } {
        let t = Instant::now();
        let clip = video::decode(&a.video, &opts).with_context(|| format!("decode benchmark on {} (--video none skips it)", a.video.display()))?;
        decode_fps.push(clip.len() as f64 / t.elapsed().as_secs_f64());
        frames = clip.len();
    }
    // Synthetic: generate and render 16-frame 64x64 clips for about a second per repetition.
    let cfg = SynthConfig { count: usize::MAX, render: RenderConfig { frames: 16, size: 64, fps: 8.0 }, ..SynthConfig::default() };
    let mut synth_rate = Vec::new();
    let mut next = 0;
    for _ in 0..repeat {
        let t = Instant::now();
        let mut n = 0;
        while t.elapsed().as_secs_f64() < 1.0 {
            let clip = synth::item(&cfg, next).render(&cfg.render);
            std::hint::black_box(clip);
            next += 1;
            n += 1;
        }
        synth_rate.push(n as f64 / t.elapsed().as_secs_f64());
    }
    let tokenizer = if a.tokenizer == "none" {
        serde_json::Value::Null
    } else {
        eprintln!("timing tokenizer '{}' (batch {}, {} training steps)...", a.tokenizer, a.batch, a.train_steps);
        bench::tokenizer::bench_tokenizer(&a.tokenizer, device_handle, &others_at(a.batch.max(1), false), a.batch, repeat, a.train_steps)?
    };
    let generator = if a.no_generator {
        serde_json::Value::Null
    } else {
        let batch = a.lm_batch.unwrap_or(a.batch).max(1);
        let b =
            bench::generator::GeneratorBench { preset: a.lm_preset.clone(), tokenizer: a.lm_tokenizer.clone(), batch, repeat, others: others_at(batch, false) };
        eprintln!("timing generator '{}' on '{}' tokens (training batch {})...", b.preset, b.tokenizer, b.batch);
        bench::generator::bench_generator_with(device_handle, &b).map_err(|e| anyhow::anyhow!("generator benchmark: {e}"))?
    };
    let report = serde_json::json!({
        "app_version": hitvideo_engine::VERSION,
        "device": device,
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "data": {
            "decode": decode_file.map(|f| serde_json::json!({ "file": f.display().to_string(), "fps": 8.0, "size": 64, "output_frames": frames,
                        "output_frames_per_s": median(decode_fps) })),
            "synth": { "frames": 16, "size": 64, "clips_per_s": median(synth_rate) },
        },
        "tokenizer": tokenizer,
        "generator": generator,
        "peak_rss_mib": bench::tokenizer::peak_rss_mib(),
    });
    let text = serde_json::to_string_pretty(&report)?;
    println!("{text}");
    if let Some(out) = a.out {
        std::fs::write(&out, &text).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

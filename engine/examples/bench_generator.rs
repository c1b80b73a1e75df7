//! Generator benchmarks on the CPU (Flex), printed as one JSON document:
//! - decoding speed of one full `tiny` sequence (308 video tokens, CFG off, batch 1) with and
//!   without the KV-cache, in tokens/s, and the speed-up;
//! - the time of one `tiny` clip with CFG (generation with conditional and unconditional rows
//!   as one batch of 2, then decoding the tokens with the `tiny` tokenizer), best of `--repeat`;
//! - the time of one training step at batch `--batch` (forward, backward, AdamW).
//!
//! Weights are random (speed does not depend on them).
//! `cargo run -p hitvideo-engine --example bench_generator -- [--repeat 3] [--batch 16]` (the dev
//! profile builds dependencies at opt-level 3 and the engine at 2, as the app does).

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use burn::prelude::*;
use hitvideo_engine::generator::{self, CfgSchedule, GenerateSpec, GeneratorConfig, SamplingConfig, TextConditionConfig, TextInput};
use hitvideo_engine::tokenizer::TokenizerConfig;
use hitvideo_engine::train::data::to_videos;
use hitvideo_engine::train::generator::{GeneratorTrainConfig, GeneratorTrainer};
use hitvideo_engine::train::token_cache::{CacheHeader, CacheItem, TokenCache};
use serde_json::json;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn best<T>(repeat: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut out = None;
    let mut best = f64::INFINITY;
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(v);
    }
    (best, out.expect("at least one repetition"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let repeat = arg("--repeat", 3);
    let batch = arg("--batch", 16);
    let device = Device::flex();
    device.seed(0);
    let tok_cfg = TokenizerConfig::preset("tiny")?;
    let tokenizer = tok_cfg.init(&device);
    let cfg = GeneratorConfig::preset("tiny", &tok_cfg, TextConditionConfig::for_encoder("small"))?;
    let model = cfg.init(&device);
    let prompt = ["a red circle moves to the left"];
    let cond = model.encode_prompts(&prompt, cfg.text.max_len)?;
    let spec = |cfg_scale: &str, use_cache: bool| GenerateSpec {
        sampling: SamplingConfig::default(),
        cfg: CfgSchedule::parse(cfg_scale).unwrap_or(CfgSchedule::Constant { scale: 1.0 }),
        seeds: vec![0],
        keep: Vec::new(),
        use_cache,
    };
    let cancel = AtomicBool::new(false);
    let gen_once = |s: &GenerateSpec, text: &TextInput| generator::generate(&model, &cfg, text, None, s, &cancel, |_| {});
    let n = cfg.video_tokens();

    let (cached_s, cached) = best(repeat, || gen_once(&spec("1", true), &cond));
    let (full_s, full) = best(1, || gen_once(&spec("1", false), &cond));
    let same = cached? == full?;

    let (clip_s, frames) = best(repeat, || -> Result<usize, Box<dyn std::error::Error>> {
        let c = model.encode_prompts(&prompt, cfg.text.max_len)?;
        let tokens = gen_once(&spec("7.5", true), &c)?;
        let ids: Vec<Tensor<4, Int>> = generator::split_layers(&cfg, &tokens[0])
            .iter()
            .zip(&cfg.layers)
            .map(|(l, g)| Tensor::from_data(TensorData::new(l.iter().map(|&v| i64::from(v)).collect::<Vec<_>>(), [1, g.t, g.h, g.w]), &device))
            .collect();
        Ok(to_videos(tokenizer.decode_indices(&ids), tok_cfg.fps).first().map(|v| v.len()).unwrap_or(0))
    });
    let frames = frames?;

    // Training step: a synthetic token cache of random ids (speed only).
    let items: Vec<CacheItem> = (0..64)
        .map(|i| CacheItem { caption: format!("a red circle moves left {i}"), split: if i % 8 == 0 { "val".into() } else { "train".into() }, index: Some(i), source: None, start_frame: None })
        .collect();
    let bits: Vec<u32> = cfg.layers.iter().flat_map(|l| std::iter::repeat_n(l.bits as u32, l.tokens())).collect();
    let ids: Vec<u32> = (0..items.len() * n).map(|i| (i as u32).wrapping_mul(2_654_435_761) % (1 << bits[i % n])).collect();
    let header = CacheHeader {
        format_version: hitvideo_engine::train::token_cache::FORMAT_VERSION,
        tokenizer: tok_cfg.name.clone(),
        tokenizer_sha256: hitvideo_engine::tokenizer::config_sha256(&tok_cfg),
        layers: tok_cfg.layers.clone(),
        synthetic: None,
        tokenizer_checkpoint: None,
        dataset: None,
        items,
    };
    let cache = TokenCache { header, ids };
    let train_items = cache.split("train");
    let mut trainer = GeneratorTrainer::new(cfg.clone(), GeneratorTrainConfig::new().with_batch(batch), None, &device)?;
    trainer.train_step(&cache, &train_items)?; // warm-up
    let (step_s, _) = best(repeat, || trainer.train_step(&cache, &train_items));

    let report = json!({
        "device": "cpu (flex)",
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "model": {"preset": cfg.name, "dim": cfg.dim, "depth": cfg.depth, "heads": cfg.heads, "text_encoder": cfg.text.encoder, "video_tokens": n,
                  "parameters": burn::module::Module::num_params(&model)},
        "decode_tokens_per_s": {"kv_cache": n as f64 / cached_s, "no_cache": n as f64 / full_s, "speedup": full_s / cached_s, "same_tokens": same},
        "clip_with_cfg_s": {"seconds": clip_s, "cfg": 7.5, "frames": frames, "includes": "text encoding, generation (2 rows), tokenizer decode"},
        "train_step_s": {"batch": batch, "seconds": step_s},
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

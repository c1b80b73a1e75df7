//! Generator throughput on a device, as JSON ([`GeneratorBench`] picks the generator preset and
//! the tokenizer preset whose token layout it predicts: `tiny` on `tiny` by default, 308 video
//! tokens; `medium` on `paper` is the paper's sequence length, 2,448 tokens, at ~300M
//! parameters):
//! - decoding speed of one full sequence (CFG off, batch 1) with the KV-cache and, up to
//!   [`NO_CACHE_MAX_TOKENS`] tokens, without it, in tokens/s, the speed-up, and whether both
//!   gave the same tokens (greedy decoding for that check; the timed run with the cache samples);
//! - the time of one clip with CFG 7.5 (text encoding, generation with conditional and
//!   unconditional rows as one batch of 2, then decoding the tokens with the tokenizer);
//! - the time of one training step (forward, backward, AdamW) on random token ids.
//!
//! Weights are random: speed does not depend on them.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use burn::prelude::*;
use serde_json::{Value, json};

use crate::generator::token_cache::{CacheHeader, CacheItem, TokenCache};
use crate::generator::{self, CfgSchedule, GenerateSpec, GeneratorConfig, SamplingConfig, TextConditionConfig, TextInput};
use crate::tensor::to_videos;
use crate::tokenizer::TokenizerConfig;
use crate::train::generator::{GeneratorTrainConfig, GeneratorTrainer};

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

/// Sequences longer than this are timed with the KV-cache only: recomputing every prefix
/// costs minutes at the paper's length and says nothing new.
pub const NO_CACHE_MAX_TOKENS: usize = 512;

/// What [`bench_generator`] times.
#[derive(Debug, Clone)]
pub struct GeneratorBench {
    /// Generator preset (`tiny`, `medium`, `paper`).
    pub preset: String,
    /// Tokenizer preset whose token layout the generator predicts (and which decodes the clip).
    pub tokenizer: String,
    /// Training batch.
    pub batch: usize,
    /// Repetitions of each timing (the best is kept).
    pub repeat: usize,
    /// Further devices the training step runs on, data parallel (none: the main one alone).
    pub others: Vec<Device>,
}

impl GeneratorBench {
    /// The `tiny` generator on `tiny` tokens.
    pub fn tiny(batch: usize, repeat: usize) -> Self {
        Self { preset: "tiny".into(), tokenizer: "tiny".into(), batch, repeat, others: Vec::new() }
    }
}

/// Times the `tiny` generator on `device` (see the module docs); `batch` is the training
/// batch, `repeat` the repetitions of each timing (the best is kept).
pub fn bench_generator(device: &Device, repeat: usize, batch: usize) -> Result<Value, Box<dyn std::error::Error>> {
    bench_generator_with(device, &GeneratorBench::tiny(batch, repeat))
}

/// Times the generator `b` describes on `device` (see the module docs).
pub fn bench_generator_with(device: &Device, b: &GeneratorBench) -> Result<Value, Box<dyn std::error::Error>> {
    let (repeat, batch) = (b.repeat, b.batch);
    let device = device.clone();
    device.seed(0);
    let tok_cfg = TokenizerConfig::preset(&b.tokenizer)?;
    let tokenizer = tok_cfg.init(&device);
    let cfg = GeneratorConfig::preset(&b.preset, &tok_cfg, TextConditionConfig::for_encoder("small"))?;
    let model = cfg.init(&device);
    let prompt = ["a red circle moves to the left"];
    let cond = model.encode_prompts(&prompt, cfg.text.max_len)?;
    let spec = |scale: f32, use_cache: bool| GenerateSpec {
        sampling: SamplingConfig::default(),
        cfg: CfgSchedule::Constant { scale },
        seeds: vec![0],
        keep: Vec::new(),
        use_cache,
    };
    let cancel = AtomicBool::new(false);
    let gen_once = |s: &GenerateSpec, text: &TextInput| generator::generate(&model, &cfg, text, None, s, &cancel, |_| {});
    let n = cfg.video_tokens();

    let (cached_s, cached) = best(repeat, || gen_once(&spec(1.0, true), &cond));
    cached?;
    // The cache check is greedy: sampled tokens may part at a near-tie of two probabilities,
    // since the cached and the full forward sum in different orders (the last bits of a float).
    let greedy = |use_cache: bool| GenerateSpec { sampling: SamplingConfig { greedy: true, ..SamplingConfig::default() }, ..spec(1.0, use_cache) };
    let no_cache = if n <= NO_CACHE_MAX_TOKENS {
        let (full_s, full) = best(1, || gen_once(&greedy(false), &cond));
        let same = gen_once(&greedy(true), &cond)? == full?;
        Some((full_s, same))
    } else {
        None
    };

    let (clip_s, frames) = best(repeat, || -> Result<usize, Box<dyn std::error::Error>> {
        let c = model.encode_prompts(&prompt, cfg.text.max_len)?;
        let tokens = gen_once(&spec(7.5, true), &c)?;
        let ids: Vec<Tensor<4, Int>> = generator::split_layers(&cfg, &tokens[0])
            .iter()
            .zip(&cfg.layers)
            .map(|(l, g)| Tensor::from_data(TensorData::new(l.iter().map(|&v| i64::from(v)).collect::<Vec<_>>(), [1, g.t, g.h, g.w]), &device))
            .collect();
        Ok(to_videos(tokenizer.decode_indices(&ids), tok_cfg.fps)?.first().map(|v| v.len()).unwrap_or(0))
    });
    let frames = frames?;

    // Training step: a synthetic token cache of random ids (speed only).
    let items: Vec<CacheItem> = (0..64)
        .map(|i| CacheItem {
            caption: format!("a red circle moves left {i}"),
            split: if i % 8 == 0 { "val".into() } else { "train".into() },
            index: Some(i),
            source: None,
            start_frame: None,
        })
        .collect();
    let bits: Vec<u32> = cfg.layers.iter().flat_map(|l| std::iter::repeat_n(l.bits as u32, l.tokens())).collect();
    let ids: Vec<u32> = (0..items.len() * n).map(|i| (i as u32).wrapping_mul(2_654_435_761) % (1 << bits[i % n])).collect();
    let header = CacheHeader {
        format_version: crate::generator::token_cache::FORMAT_VERSION,
        tokenizer: tok_cfg.name.clone(),
        tokenizer_sha256: crate::tokenizer::config_sha256(&tok_cfg),
        layers: tok_cfg.layers.clone(),
        synthetic: None,
        tokenizer_checkpoint: None,
        dataset: None,
        items,
    };
    let cache = TokenCache { header, ids };
    let train_items = cache.split("train");
    let mut trainer = GeneratorTrainer::new(cfg.clone(), GeneratorTrainConfig::new().with_batch(batch), None, &device)?;
    trainer.set_devices(&b.others)?;
    trainer.train_step(&cache, &train_items)?; // warm-up
    let (step_s, _) = best(repeat, || trainer.train_step(&cache, &train_items));

    let report = json!({
        "model": {"preset": cfg.name, "tokenizer": tok_cfg.name, "dim": cfg.dim, "depth": cfg.depth, "heads": cfg.heads, "text_encoder": cfg.text.encoder, "video_tokens": n,
                  "parameters": burn::module::Module::num_params(&model)},
        "decode_tokens_per_s": {"kv_cache": n as f64 / cached_s, "no_cache": no_cache.map(|(s, _)| n as f64 / s),
                                "speedup": no_cache.map(|(s, _)| s / cached_s), "same_tokens": no_cache.map(|(_, same)| same)},
        "clip_with_cfg_s": {"seconds": clip_s, "cfg": 7.5, "frames": frames, "includes": "text encoding, generation (2 rows), tokenizer decode"},
        "train_step_s": {"batch": batch, "devices": 1 + b.others.len(), "seconds": step_s},
    });
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_bench_reports_rates_and_identical_tokens() {
        let v = bench_generator(&Device::flex(), 1, 2).expect("bench");
        let d = &v["decode_tokens_per_s"];
        assert!(d["kv_cache"].as_f64().is_some_and(|x| x > 0.0) && d["no_cache"].as_f64().is_some_and(|x| x > 0.0), "{v}");
        assert_eq!(d["same_tokens"], true);
        assert!(v["train_step_s"]["seconds"].as_f64().is_some_and(|x| x > 0.0));
        assert_eq!(v["clip_with_cfg_s"]["frames"], 16);
    }
}

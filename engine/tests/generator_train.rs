//! Generator training end to end on a token cache made by an untrained `tiny` tokenizer over a
//! handful of synthetic clips: cache round trip and damage checks, steps, validation,
//! checkpoints, an exact resume, the NaN guard, and wrong-kind checkpoints.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use burn::prelude::*;
use hitvideo_engine::checkpoint;
use hitvideo_engine::generator::load_generator;
use hitvideo_engine::generator::token_cache::{CacheError, TokenCache};
use hitvideo_engine::generator::{GeneratorConfig, TextConditionConfig};
use hitvideo_engine::tokenizer::TokenizerConfig;
use hitvideo_engine::tokenizer::load_tokenizer;
use hitvideo_engine::train::generator::{self as train, GeneratorTrainConfig, GeneratorTrainer, TrainError};
use hitvideo_engine::train::log;
use hitvideo_engine::train::token_cache;
use hitvideo_engine::train::tokenizer::{TokenizerTrainConfig, TokenizerTrainer};

fn no_cancel() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

/// An untrained `tiny` tokenizer saved as a checkpoint, and a cache of 24 synthetic clips.
fn tokenizer_and_cache(dir: &std::path::Path) -> (TokenizerConfig, TokenCache) {
    let device = Device::flex();
    let cfg = TokenizerConfig::preset("tiny").expect("tiny preset");
    let tok_run = dir.join("tokenizer");
    TokenizerTrainer::new(cfg.clone(), TokenizerTrainConfig::new(), &device).save(&tok_run, serde_json::Value::Null).expect("tokenizer checkpoint");
    let (model, loaded, _) = load_tokenizer(&tok_run, None, &device).expect("load tokenizer");
    let synth = token_cache::synthetic_config(24, 0, &loaded);
    let mut calls = 0;
    let cache = token_cache::build_synthetic(&model, &loaded, &synth, &device, &AtomicBool::new(false), |_, _| calls += 1).expect("cache");
    assert_eq!(calls, 3, "24 clips in batches of 8");
    (cfg, cache)
}

fn run_config(steps: usize) -> GeneratorTrainConfig {
    GeneratorTrainConfig::new().with_steps(steps).with_batch(2).with_warmup(1).with_val_every(2).with_val_items(4).with_checkpoint_every(2)
}

#[test]
fn cache_train_checkpoint_resume_and_bad_checkpoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tok_cfg, cache) = tokenizer_and_cache(dir.path());

    // The cache: 308 ids per clip within each layer's bits, a round trip, damage detection.
    assert_eq!(cache.len(), 24);
    assert_eq!(cache.tokens_per_item(), 308);
    assert_eq!(cache.ids.len(), 24 * 308);
    let cache_dir = dir.path().join("cache");
    cache.write(&cache_dir).expect("write cache");
    let back = TokenCache::read(&cache_dir).expect("read cache");
    assert_eq!(back.ids, cache.ids);
    assert_eq!(back.header, cache.header);
    back.check_tokenizer(&cache_dir, &tok_cfg).expect("same tokenizer");
    let other = TokenizerConfig::preset("tiny-single").expect("preset");
    assert!(matches!(back.check_tokenizer(&cache_dir, &other), Err(CacheError::WrongTokenizer { .. })));
    assert!(!cache.split("train").is_empty() && !cache.validation_items().is_empty());
    let cut = dir.path().join("cut");
    cache.write(&cut).expect("write cache");
    let bytes = std::fs::read(cut.join("ids.bin")).expect("ids");
    std::fs::write(cut.join("ids.bin"), &bytes[..bytes.len() - 4]).expect("truncate");
    let err = TokenCache::read(&cut).expect_err("truncated ids").to_string();
    assert!(err.contains("rebuild it with `hitvideo lm cache`"), "{err}");

    // A few steps of the tiny generator with the embedded small text encoder.
    let device = Device::flex();
    let cfg = GeneratorConfig::preset("tiny", &tok_cfg, TextConditionConfig::for_encoder("small")).expect("preset");
    let run = dir.path().join("run");
    let mut t = GeneratorTrainer::new(cfg.clone(), run_config(2), None, &device).expect("trainer");
    // The initial weights, for an uninterrupted comparison run below (initialisation draws from
    // the device's global generator, which tests running in parallel also draw from).
    let straight_dir = dir.path().join("straight");
    t.save(&straight_dir, serde_json::Value::Null).expect("step-0 checkpoint");
    let mut steps = Vec::new();
    let val = train::run(&mut t, &cache, &run, no_cancel(), &mut |e| {
        if let train::GeneratorTrainEvent::Step { record, .. } = e {
            assert_eq!(record.ce_by_layer.len(), 4);
            steps.push(record.step);
        }
    })
    .expect("train");
    assert_eq!(steps, vec![1, 2]);
    let val = val.expect("a validation at the last step");
    assert_eq!(val.ce_by_layer.len(), 4);
    // Untrained: about ln(2^bits) nats per token.
    for (&c, bits) in val.ce_by_layer.iter().zip([5.0f64, 6.0, 8.0, 10.0]) {
        assert!((c - bits * std::f64::consts::LN_2).abs() < 1.5, "{c} nats for {bits} bits");
    }
    assert_eq!(val.accuracy_by_layer.len(), 4);

    // Resume to step 4 and compare with an uninterrupted 4-step run: the same losses.
    let mut r = GeneratorTrainer::resume(&run, Some(4), None, &device).expect("resume");
    assert_eq!(r.step, 2);
    train::run(&mut r, &cache, &run, no_cancel(), &mut |_| {}).expect("resumed run");
    assert_eq!(r.step, 4);
    let resumed = log::read(&run.join("metrics.jsonl")).expect("metrics");
    assert_eq!(resumed.len(), 4);
    // Runs written before `change_weight` existed resume with the plain mean.
    let old_train = checkpoint::resolve(&straight_dir).expect("step 0").join("train.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&old_train).expect("read")).expect("json");
    v.as_object_mut().expect("object").remove("change_weight").expect("the field is saved");
    std::fs::write(&old_train, serde_json::to_vec(&v).expect("json")).expect("write");
    let mut s = GeneratorTrainer::resume(&straight_dir, Some(4), None, &device).expect("from step 0");
    assert_eq!((s.step, s.train.change_weight), (0, 1.0));
    train::run(&mut s, &cache, &straight_dir, no_cancel(), &mut |_| {}).expect("straight run");
    let straight = log::read(&straight_dir.join("metrics.jsonl")).expect("metrics");
    for (a, b) in resumed.iter().zip(&straight) {
        let (a, b) = (a["loss"].as_f64().expect("loss"), b["loss"].as_f64().expect("loss"));
        assert!((a - b).abs() < 1e-4 * b.abs().max(1.0), "resumed {a} vs straight {b}");
    }

    // Inference loading; a tokenizer checkpoint is refused by kind; a damaged one by content.
    let loaded = load_generator(&run, Some("tiny"), &device).expect("load");
    assert_eq!((loaded.cfg, loaded.state.step), (cfg.clone(), 4));
    assert_eq!(loaded.weights_sha256.len(), 64);
    let err = load_generator(&dir.path().join("tokenizer"), None, &device).err().expect("wrong kind").to_string();
    assert!(err.contains("this is a tokenizer checkpoint, not a generator one"), "{err}");
    let err = GeneratorTrainer::resume(&dir.path().join("tokenizer"), None, None, &device).err().expect("wrong kind").to_string();
    assert!(err.contains("not a generator one"), "{err}");
    let latest = checkpoint::resolve(&run).expect("latest");
    let model = latest.join("model.bpk");
    let bytes = std::fs::read(&model).expect("weights");
    std::fs::write(&model, &bytes[..bytes.len() / 2]).expect("truncate");
    // The newest step is damaged: the run opens at the newest intact one instead.
    let fallback = load_generator(&run, None, &device).expect("an earlier intact step");
    assert!(fallback.state.step < 4, "step {}", fallback.state.step);
    let note = checkpoint::resolve_noted(&run).expect("resolved").note.expect("a note");
    assert!(note.contains("damaged") && note.contains("newest intact"), "{note}");
    // A damaged step chosen directly is an error naming the file.
    let err = load_generator(&latest, None, &device).err().expect("truncated weights").to_string();
    assert!(err.contains("damaged or truncated"), "{err}");

    // A MiniLM-conditioned generator cannot train without the encoder.
    let minilm = GeneratorConfig::preset("tiny", &tok_cfg, TextConditionConfig::for_encoder("minilm")).expect("preset");
    let err = GeneratorTrainer::new(minilm, run_config(1), None, &device).err().expect("no MiniLM").to_string();
    assert!(err.contains("scripts/setup"), "{err}");

    // The NaN guard: an absurd learning rate blows the weights up and training stops with a
    // message naming the last good checkpoint.
    let mut bad = GeneratorTrainer::new(cfg, run_config(6).with_lr(1e30).with_warmup(0), None, &device).expect("trainer");
    let err = train::run(&mut bad, &cache, &dir.path().join("nan"), no_cancel(), &mut |_| {}).expect_err("non-finite loss");
    assert!(matches!(err, TrainError::NonFinite { .. }), "{err}");
    assert!(err.to_string().contains("Lower --lr"), "{err}");
}

/// MiniLM conditioning: frozen features cached per caption, a step, validation, a checkpoint
/// and generation through the pipeline. Skipped (with a message) when MiniLM is not installed,
/// except under `CI=true`, where that fails — the convention of `tests/minilm.rs`.
#[test]
fn minilm_conditioned_training_and_generation() {
    use hitvideo_engine::generator::{CfgSchedule, ClipRequest, Pipeline, SamplingConfig};
    use hitvideo_engine::text::{MiniLm, default_model_dir, is_model_dir};
    let model_dir = default_model_dir();
    if !is_model_dir(&model_dir) {
        let msg = format!("MiniLM is not installed in {}; run scripts/setup", model_dir.display());
        assert!(!std::env::var("CI").is_ok_and(|v| v == "true"), "{msg}");
        eprintln!("skipped: {msg}");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (tok_cfg, mut cache) = tokenizer_and_cache(dir.path());
    cache.header.tokenizer_checkpoint = Some(dir.path().join("tokenizer").display().to_string());
    let cache_dir = dir.path().join("cache");
    cache.write(&cache_dir).expect("write cache");
    let device = Device::flex();
    let cfg = GeneratorConfig::preset("tiny", &tok_cfg, TextConditionConfig::for_encoder("minilm")).expect("preset");
    let minilm = MiniLm::load(&model_dir, &device).expect("MiniLM");
    let run = dir.path().join("run");
    let mut t = GeneratorTrainer::new(cfg, run_config(2).with_cache(cache_dir.display().to_string()), Some(minilm), &device).expect("trainer");
    // The captions' frozen features are computed before the first step, with progress.
    let (mut features, mut first_step_after) = (Vec::new(), None);
    let val = train::run(&mut t, &cache, &run, no_cancel(), &mut |e| match e {
        train::GeneratorTrainEvent::Preparing { done, total } => features.push((done, total)),
        train::GeneratorTrainEvent::Step { record, .. } if first_step_after.is_none() => first_step_after = Some((record.step, features.len())),
        _ => {}
    })
    .expect("train");
    assert_eq!(features.last().copied(), Some((cache.len(), cache.len())), "{features:?}");
    assert_eq!(first_step_after, Some((1, features.len())), "features come before the first step");
    assert_eq!(val.map(|v| v.ce_by_layer.len()), Some(4));
    let p = Pipeline::load(&run, None, Some(&model_dir), &device).expect("pipeline");
    assert_eq!(p.checksums.get("text_encoder").map(String::as_str), Some("all-MiniLM-L6-v2"));
    let req = ClipRequest {
        prompts: vec!["a crimson ball drifts to the left".into()],
        negative: Some("a blue square".into()),
        seeds: vec![1, 2],
        sampling: SamplingConfig::default(),
        cfg: CfgSchedule::parse("linear:1:4").expect("schedule"),
        keep: Vec::new(),
        use_cache: true,
    };
    let tokens = p.generate(&req, &AtomicBool::new(false), |_| {}).expect("generate");
    assert_eq!(tokens.len(), 2);
    assert_eq!(p.decode(&tokens, 4).expect("decode").len(), 2);
}

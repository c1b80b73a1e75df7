//! Tokenizer training end to end at batch 1: steps, validation, checkpoints, resume, and clear
//! errors for truncated, wrong-preset and wrong-kind checkpoints.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use burn::prelude::*;
use hitvideo_engine::checkpoint;
use hitvideo_engine::tokenizer::TokenizerConfig;
use hitvideo_engine::tokenizer::load_tokenizer;
use hitvideo_engine::train::data::ClipSource;
use hitvideo_engine::train::tokenizer::{self as train, TokenizerTrainConfig, TokenizerTrainer, active_layers};

/// A short run with the terms these tests check pinned, whatever the defaults become: a
/// discriminator from step 1, the paper's progressive schedule, L1 without squared error.
fn small_run() -> TokenizerTrainConfig {
    TokenizerTrainConfig::new()
        .with_entropy_weight(0.02)
        .with_adversarial_weight(0.05)
        .with_l2_weight(0.0)
        .with_partial_decode_prob(0.5)
        .with_steps(3)
        .with_batch(1)
        .with_warmup(1)
        .with_val_every(2)
        .with_val_clips(2)
        .with_checkpoint_every(2)
        .with_disc_start(1)
        .with_stage_fraction(0.25)
}

#[test]
fn progressive_schedule_switches_layers_on_coarsest_first() {
    assert_eq!(active_layers(0, 100, 4, 0.1), 1);
    assert_eq!(active_layers(10, 100, 4, 0.1), 2);
    assert_eq!(active_layers(35, 100, 4, 0.1), 4);
    assert_eq!(active_layers(0, 100, 4, 0.0), 4);
}

#[test]
fn partial_loss_adds_a_coarse_decode_to_every_step() {
    let cfg = TokenizerConfig::preset("tiny").unwrap();
    let data = ClipSource::synthetic(20, 0, cfg.frames, cfg.height, cfg.fps);
    let device = Device::flex();
    let flat = small_run().with_stage_fraction(0.0).with_partial_decode_prob(0.0).with_disc_start(100);
    let mut t = TokenizerTrainer::new(cfg.clone(), flat.clone().with_partial_loss_weight(0.5), &device);
    for step in 0..3 {
        let log = t.train_step(data.train_batch(step, 1, 0, &device).unwrap());
        let j = log.partial_layers.expect("a partial decode every step");
        assert!((1..4).contains(&j), "{log:?}");
        assert_eq!(log.decoded_layers, 4, "the full decode is kept");
        // The record as the metrics log stores it (its keys are the log's).
        let line = serde_json::to_value(&log).expect("json");
        let f = |k: &str| line[k].as_f64().unwrap();
        let expected = f("l1") + 0.5 * f("l1_partial") + 0.25 * f("commitment") + 0.02 * f("entropy");
        assert!(f("l1_partial") > 0.0 && (f("loss") - expected).abs() < 1e-4, "the loss holds the weighted partial term: {log:?}");
    }
    let mut off = TokenizerTrainer::new(cfg, flat, &device);
    let log = off.train_step(data.train_batch(0, 1, 0, &device).unwrap());
    assert!(log.partial_layers.is_none() && log.l1_partial.is_none(), "{log:?}");
}

#[test]
fn train_checkpoint_resume_and_bad_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let cfg = TokenizerConfig::preset("tiny").unwrap();
    let data = ClipSource::synthetic(60, 0, cfg.frames, cfg.height, cfg.fps);
    let device = Device::flex();
    let mut t = TokenizerTrainer::new(cfg.clone(), small_run(), &device);
    let mut events = 0;
    let val = train::run(&mut t, &data, &run, Arc::new(AtomicBool::new(false)), &mut |_| events += 1).unwrap();
    assert_eq!(t.step, 3);
    assert!(events >= 5, "{events} events");
    let psnr = val.expect("a validation at the last step").psnr_by_layers;
    assert_eq!(psnr.len(), 4);
    assert!(psnr.iter().all(|p| p.is_finite()));
    // Checkpoints at steps 2 and 3; `latest` names step 3.
    let names: Vec<String> = checkpoint::list(&run).iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, vec!["step-0000002", "step-0000003"]);
    let log = hitvideo_engine::train::log::read(&run.join("metrics.jsonl")).unwrap();
    assert_eq!(log.len(), 3);
    assert!(log[0]["d_loss"].is_null() && log[1]["d_loss"].is_number(), "discriminator starts after its warm-up");

    // Resume continues the same run (optimizer state and step restored).
    let mut r = TokenizerTrainer::resume(&run, Some(5), &device).unwrap();
    assert_eq!(r.step, 3);
    train::run(&mut r, &data, &run, Arc::new(AtomicBool::new(false)), &mut |_| {}).unwrap();
    assert_eq!(r.step, 5);
    assert_eq!(hitvideo_engine::train::log::read(&run.join("metrics.jsonl")).unwrap().len(), 5);

    // Inference loading, and the three kinds of bad checkpoint. The loaded model encodes
    // exactly as the trained one: the bit norms' running statistics (moved away from the
    // identity by the 5 steps) are saved with the weights.
    let (loaded, loaded_cfg, state) = load_tokenizer(&run, Some("tiny"), &device).unwrap();
    assert_eq!((loaded_cfg, state.step), (cfg.clone(), 5));
    assert!(cfg.bit_norm, "the presets normalize their bits");
    let x = data.val_batch(0..2, &device).unwrap();
    let to_vec = |v: Vec<Tensor<5>>| v.into_iter().flat_map(|t| t.into_data().try_to_vec::<f32>().unwrap()).collect::<Vec<f32>>();
    let trained = to_vec(r.model.valid().code_logits(x.clone()));
    assert_eq!(to_vec(loaded.code_logits(x)), trained);
    let err = load_tokenizer(&run, Some("tiny-single"), &device).err().unwrap().to_string();
    assert!(err.contains("preset 'tiny', not 'tiny-single'"), "{err}");

    let latest = checkpoint::resolve(&run).unwrap();
    let other_kind = dir.path().join("generator-like");
    copy_dir(&latest, &other_kind);
    let state_path = other_kind.join("state.json");
    let text = std::fs::read_to_string(&state_path).unwrap().replace("\"tokenizer\"", "\"generator\"");
    std::fs::write(&state_path, text).unwrap();
    let err = load_tokenizer(&other_kind, None, &device).err().unwrap().to_string();
    assert!(err.contains("this is a generator checkpoint, not a tokenizer one"), "{err}");

    let truncated = dir.path().join("truncated");
    copy_dir(&latest, &truncated);
    let model = truncated.join("model.bpk");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_tokenizer(&truncated, None, &device).err().unwrap().to_string();
    assert!(err.contains("model.bpk") && err.contains("damaged or truncated"), "{err}");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("create the copy's folder");
    for e in std::fs::read_dir(from).expect("read the checkpoint").flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy a file");
    }
}

//! Gradient accumulation (`accumulate`): N micro-batches of B make the same update as one batch
//! of N x B, for the generator and for the tokenizer's batch-independent terms.

use std::sync::atomic::AtomicBool;

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use hitvideo_engine::generator::{GeneratorConfig, TextConditionConfig};
use hitvideo_engine::tokenizer::TokenizerConfig;
use hitvideo_engine::train::data::ClipSource;
use hitvideo_engine::train::generator::{GeneratorTrainConfig, GeneratorTrainer};
use hitvideo_engine::train::token_cache;
use hitvideo_engine::train::tokenizer::{TokenizerTrainConfig, TokenizerTrainer, load_tokenizer};

/// Every float parameter of a module, flattened in visiting order.
#[derive(Default)]
struct Flatten(Vec<f32>);

impl ModuleVisitor for Flatten {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let values = param.val().into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 parameter");
        self.0.extend(values);
    }
}

fn params<M: Module>(m: &M) -> Vec<f32> {
    let mut v = Flatten::default();
    m.visit(&mut v);
    v.0
}

/// Largest absolute difference between two parameter lists of the same module.
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn generator_two_micro_batches_of_two_step_like_one_batch_of_four() {
    let dir = tempfile::tempdir().expect("tempdir");
    let device = Device::flex();
    let tok_cfg = TokenizerConfig::preset("tiny").expect("preset");
    let tok_run = dir.path().join("tokenizer");
    TokenizerTrainer::new(tok_cfg.clone(), TokenizerTrainConfig::new(), &device).save(&tok_run, serde_json::Value::Null).expect("save");
    let (model, loaded, _) = load_tokenizer(&tok_run, None, &device).expect("load");
    let synth = token_cache::synthetic_config(24, 0, &loaded);
    let cache = token_cache::build_synthetic(&model, &loaded, &synth, &device, &AtomicBool::new(false), |_, _| {}).expect("cache");
    let items = cache.split("train");

    let cfg = GeneratorConfig::preset("tiny", &tok_cfg, TextConditionConfig::for_encoder("small")).expect("preset");
    // An AdamW epsilon above rounding level, as in the tokenizer test below.
    let base = GeneratorTrainConfig::new().with_epsilon(1e-6).with_steps(10).with_warmup(1).with_seed(3);
    let mut whole = GeneratorTrainer::new(cfg.clone(), base.clone().with_batch(4), None, &device).expect("trainer");
    let mut parts = GeneratorTrainer::new(cfg, base.with_batch(2).with_accumulate(2), None, &device).expect("trainer");
    parts.model = whole.model.clone();
    let start = params(&whole.model);
    for _ in 0..3 {
        let a = whole.train_step(&cache, &items).expect("step");
        let b = parts.train_step(&cache, &items).expect("step");
        let (la, lb) = (a["loss"].as_f64().unwrap(), b["loss"].as_f64().unwrap());
        assert!((la - lb).abs() < 1e-4, "the logged loss is the whole batch's: {la} against {lb}");
    }
    let (pa, pb) = (params(&whole.model), params(&parts.model));
    assert!(max_diff(&start, &pa) > 1e-3, "the steps moved the weights");
    let d = max_diff(&pa, &pb);
    eprintln!("generator: parameters after 3 steps differ by at most {d}");
    assert!(d < 1e-5, "parameters after 3 steps differ by {d}");

    // A zero count is refused with the field's name.
    let err = GeneratorTrainConfig::new().with_accumulate(0).validate().unwrap_err().to_string();
    assert!(err.contains("`accumulate`"), "{err}");
}

#[test]
fn tokenizer_two_micro_batches_of_two_step_like_one_batch_of_four() {
    let device = Device::flex();
    // Bit norms use batch statistics and the codebook entropy is a batch term, as batch norm
    // is: both are left out here so that the comparison is exact.
    let mut cfg = TokenizerConfig::preset("tiny").expect("preset");
    cfg.bit_norm = false;
    let data = ClipSource::synthetic(20, 0, cfg.frames, cfg.height, cfg.fps);
    // AdamW divides each gradient by its running RMS plus epsilon: a weight whose gradient is
    // at rounding level (~1e-9, below the default epsilon of 1e-8) moves by a large fraction of
    // the learning rate whatever its rounding, so this comparison of summation orders uses an
    // epsilon above rounding level.
    let base = TokenizerTrainConfig::new()
        .with_epsilon(1e-6)
        .with_steps(10)
        .with_warmup(1)
        .with_entropy_weight(0.0)
        .with_adversarial_weight(0.0)
        .with_partial_loss_weight(0.5)
        .with_stage_fraction(0.0);
    let mut whole = TokenizerTrainer::new(cfg.clone(), base.clone().with_batch(4), &device);
    let mut parts = TokenizerTrainer::new(cfg.clone(), base.with_batch(2).with_accumulate(2), &device);
    parts.model = whole.model.clone();
    let start = params(&whole.model);
    for step in 0..3 {
        let x = data.train_batch(step, 4, 0, &device);
        let a = whole.train_step(x.clone());
        let b = parts.train_step(x);
        for key in ["loss", "l1", "commitment"] {
            let (va, vb) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
            assert!((va - vb).abs() < 1e-5, "{key}: {va} against {vb}");
        }
    }
    let (pa, pb) = (params(&whole.model), params(&parts.model));
    assert!(max_diff(&start, &pa) > 1e-3, "the steps moved the weights");
    let d = max_diff(&pa, &pb);
    eprintln!("tokenizer: parameters after 3 steps differ by at most {d}");
    assert!(d < 1e-5, "parameters after 3 steps differ by {d}");

    // With the discriminator on, it steps once per optimizer step from both micro-batches.
    let adv = TokenizerTrainConfig::new().with_steps(4).with_batch(1).with_accumulate(2).with_adversarial_weight(0.05).with_disc_start(0);
    let mut t = TokenizerTrainer::new(cfg, adv, &device);
    let disc_before = params(&t.disc);
    let log = t.train_step(data.train_batch(0, 2, 0, &device));
    assert!(log["d_loss"].as_f64().is_some_and(f64::is_finite) && log["loss"].as_f64().is_some_and(f64::is_finite), "{log}");
    assert!(max_diff(&disc_before, &params(&t.disc)) > 0.0, "the discriminator stepped");
}

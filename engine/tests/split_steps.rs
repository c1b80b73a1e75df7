//! Steps split into micro-batches: gradient accumulation (`accumulate`: N micro-batches of B make
//! the same update as one batch of N x B) and data parallelism (`set_devices`: the batch split
//! over device replicas, here two replicas on the CPU's single Flex device, which run the same
//! fork / gather / sum path as distinct GPUs), for the generator and the tokenizer; the
//! tokenizer's replicas share its batch statistics (bit norms, codebook entropy), while
//! accumulation takes them per micro-batch.

use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard};

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use hitvideo_engine::generator::token_cache::TokenCache;
use hitvideo_engine::generator::{GeneratorConfig, TextConditionConfig};
use hitvideo_engine::tokenizer::TokenizerConfig;
use hitvideo_engine::tokenizer::load_tokenizer;
use hitvideo_engine::train::data::ClipSource;
use hitvideo_engine::train::generator::{GeneratorTrainConfig, GeneratorTrainer};
use hitvideo_engine::train::token_cache;
use hitvideo_engine::train::tokenizer::{TokenizerTrainConfig, TokenizerTrainer};

/// Every float parameter of a module, flattened in visiting order.
#[derive(Default)]
struct Flatten(Vec<f32>);

impl ModuleVisitor for Flatten {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let values = param.val().into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 parameter");
        self.0.extend(values);
    }
}

/// The tests here compare runs that start from the same seed, and the CPU device's random
/// stream is one per process: a test drawing from it while another seeds and initializes its
/// trainers changes their weights. Each test holds this for its whole length.
static SEEDED: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SEEDED.lock().unwrap_or_else(|e| e.into_inner())
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

/// A token cache of 24 synthetic clips made by an untrained `tiny` tokenizer, and its config.
fn tiny_cache() -> (TokenizerConfig, TokenCache) {
    let dir = tempfile::tempdir().expect("tempdir");
    let device = Device::flex();
    let tok_cfg = TokenizerConfig::preset("tiny").expect("preset");
    let tok_run = dir.path().join("tokenizer");
    TokenizerTrainer::new(tok_cfg.clone(), TokenizerTrainConfig::new(), &device).save(&tok_run, serde_json::Value::Null).expect("save");
    let (model, loaded, _) = load_tokenizer(&tok_run, None, &device).expect("load");
    let synth = token_cache::synthetic_config(24, 0, &loaded);
    let cache = token_cache::build_synthetic(&model, &loaded, &synth, &device, &AtomicBool::new(false), |_, _| {}).expect("cache");
    (tok_cfg, cache)
}

#[test]
fn generator_two_micro_batches_of_two_step_like_one_batch_of_four() {
    let _serial = serial();
    let device = Device::flex();
    let (tok_cfg, cache) = tiny_cache();
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
        let (la, lb) = (f64::from(a.loss), f64::from(b.loss));
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
    let _serial = serial();
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
        let x = data.train_batch(step, 4, 0, &device).unwrap();
        let a = whole.train_step(x.clone());
        let b = parts.train_step(x);
        for (key, va, vb) in [("loss", a.loss, b.loss), ("l1", a.l1, b.l1), ("commitment", a.commitment, b.commitment)] {
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
    let log = t.train_step(data.train_batch(0, 2, 0, &device).unwrap());
    assert!(log.d_loss.is_some_and(f32::is_finite) && log.loss.is_finite(), "{log:?}");
    assert!(max_diff(&disc_before, &params(&t.disc)) > 0.0, "the discriminator stepped");
}

#[test]
fn generator_on_two_replicas_follows_one_device_at_the_same_global_batch() {
    let _serial = serial();
    let device = Device::flex();
    let (tok_cfg, cache) = tiny_cache();
    let items = cache.split("train");
    let cfg = GeneratorConfig::preset("tiny", &tok_cfg, TextConditionConfig::for_encoder("small")).expect("preset");
    let base = GeneratorTrainConfig::new().with_epsilon(1e-6).with_steps(10).with_warmup(1).with_seed(5);
    let mut one = GeneratorTrainer::new(cfg.clone(), base.clone().with_batch(8), None, &device).expect("trainer");
    // Two replicas, each with two micro-batches of two: 2 x 2 x 2 = 8 sequences a step.
    let mut two = GeneratorTrainer::new(cfg, base.with_batch(4).with_accumulate(2), None, &device).expect("trainer");
    two.set_devices(&[Device::flex()]).expect("batch 4 splits over two devices");
    assert_eq!(two.devices().len(), 2);
    two.model = one.model.clone();
    for step in 0..3 {
        let (a, b) = (one.train_step(&cache, &items).expect("step"), two.train_step(&cache, &items).expect("step"));
        let (la, lb) = (f64::from(a.loss), f64::from(b.loss));
        assert!((la - lb).abs() < 1e-4, "step {step}: loss {la} on one device, {lb} on two");
    }
    let d = max_diff(&params(&one.model), &params(&two.model));
    eprintln!("generator, two replicas: parameters after 3 steps differ by at most {d}");
    assert!(d < 1e-5, "parameters after 3 steps differ by {d}");
    let mut odd = GeneratorTrainer::new(
        GeneratorConfig::preset("tiny", &tok_cfg, TextConditionConfig::for_encoder("small")).expect("preset"),
        GeneratorTrainConfig::new().with_batch(3),
        None,
        &device,
    )
    .expect("trainer");
    let err = odd.set_devices(&[Device::flex()]).unwrap_err().to_string();
    assert!(err.contains("multiple of 2"), "{err}");
}

#[test]
fn tokenizer_on_two_replicas_follows_one_device_at_the_same_global_batch() {
    let _serial = serial();
    let device = Device::flex();
    let mut cfg = TokenizerConfig::preset("tiny").expect("preset");
    cfg.bit_norm = false;
    let data = ClipSource::synthetic(20, 0, cfg.frames, cfg.height, cfg.fps);
    let base = TokenizerTrainConfig::new()
        .with_epsilon(1e-6)
        .with_steps(10)
        .with_warmup(1)
        .with_entropy_weight(0.0)
        .with_adversarial_weight(0.0)
        .with_stage_fraction(0.0);
    let mut one = TokenizerTrainer::new(cfg.clone(), base.clone().with_batch(4), &device);
    let mut two = TokenizerTrainer::new(cfg.clone(), base.with_batch(4), &device);
    two.set_devices(&[Device::flex()]).expect("batch 4 splits over two devices");
    two.model = one.model.clone();
    for step in 0..3 {
        let x = data.train_batch(step, 4, 0, &device).unwrap();
        let (a, b) = (one.train_step(x.clone()), two.train_step(x));
        let (la, lb) = (f64::from(a.loss), f64::from(b.loss));
        assert!((la - lb).abs() < 1e-5, "step {step}: loss {la} on one device, {lb} on two");
    }
    let d = max_diff(&params(&one.model), &params(&two.model));
    eprintln!("tokenizer, two replicas: parameters after 3 steps differ by at most {d}");
    assert!(d < 1e-5, "parameters after 3 steps differ by {d}");

    // The discriminator steps once from both replicas' gradients.
    let adv = TokenizerTrainConfig::new().with_steps(4).with_batch(2).with_adversarial_weight(0.05).with_disc_start(0);
    let mut t = TokenizerTrainer::new(cfg, adv, &device);
    t.set_devices(&[Device::flex()]).expect("two devices");
    let disc_before = params(&t.disc);
    let log = t.train_step(data.train_batch(0, 2, 0, &device).unwrap());
    assert!(log.d_loss.is_some_and(f32::is_finite), "{log:?}");
    assert!(max_diff(&disc_before, &params(&t.disc)) > 0.0, "the discriminator stepped");
}

#[test]
fn tokenizer_replicas_share_the_batch_statistics() {
    let _serial = serial();
    // Bit norms and the codebook entropy on: the replicas take both over the whole batch, so
    // two replicas make the one device's update, at one micro-batch per device and at two.
    let device = Device::flex();
    let cfg = TokenizerConfig::preset("tiny").expect("preset");
    assert!(cfg.bit_norm, "the preset normalizes its bits");
    let data = ClipSource::synthetic(20, 0, cfg.frames, cfg.height, cfg.fps);
    // Under bit norms the biases of the projections before them have no gradient but rounding
    // (the norm removes any shift), which AdamW would turn into steps of either sign at a small
    // epsilon; at 1e-4 such gradients do not move the weights.
    let base = TokenizerTrainConfig::new()
        .with_epsilon(1e-4)
        .with_steps(10)
        .with_warmup(1)
        .with_entropy_weight(0.1)
        .with_adversarial_weight(0.0)
        .with_stage_fraction(0.0);
    for accumulate in [1, 2] {
        let mut one = TokenizerTrainer::new(cfg.clone(), base.clone().with_batch(4).with_accumulate(accumulate), &device);
        let mut two = TokenizerTrainer::new(cfg.clone(), base.clone().with_batch(4).with_accumulate(accumulate), &device);
        two.set_devices(&[Device::flex()]).expect("batch 4 splits over two devices");
        // The same seed, the same initial weights, whatever the devices (the trainers
        // initialize every parameter when they are made, not lazily at first use).
        let start = params(&one.model.valid());
        assert_eq!(start, params(&two.model.valid()), "the same initial weights");
        for step in 0..3 {
            let x = data.train_batch(step, 4 * accumulate, 0, &device).unwrap();
            let (a, b) = (one.train_step(x.clone()), two.train_step(x));
            for (key, va, vb) in [("loss", a.loss, b.loss), ("entropy", a.entropy, b.entropy), ("commitment", a.commitment, b.commitment)] {
                assert!((va - vb).abs() < 1e-5, "accumulate {accumulate}, step {step}: {key} {va} on one device, {vb} on two");
            }
        }
        // Weights, and the running statistics inference normalizes with.
        let (pa, pb) = (params(&one.model.valid()), params(&two.model.valid()));
        assert!(max_diff(&start, &pa) > 1e-3, "the steps moved the weights");
        let d = max_diff(&pa, &pb);
        eprintln!("tokenizer with bit norms, two replicas, accumulate {accumulate}: parameters after 3 steps differ by at most {d}");
        assert!(d < 1e-5, "accumulate {accumulate}: parameters after 3 steps differ by {d}");
        let x = data.val_batch(0..4, &device).unwrap();
        let ids = |t: &TokenizerTrainer| {
            t.model
                .valid()
                .encode(x.clone(), 1.0)
                .layers
                .iter()
                .map(|o| o.indices.clone().into_data().convert::<i64>().try_to_vec::<i64>().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&one), ids(&two), "accumulate {accumulate}: the same tokens at inference");
    }
    // The second bit-norm pass of `entropy_detach` is not shared: one device only.
    let mut detached = TokenizerTrainer::new(cfg, base.with_batch(4).with_entropy_detach(true), &device);
    let err = detached.set_devices(&[Device::flex()]).unwrap_err().to_string();
    assert!(err.contains("--devices 1"), "{err}");
}

//! Mixed precision (`precision = f16`): half compute over fp32 master weights. Its own test
//! binary, because it sets the Flex device's default float type for the whole process. The CLI
//! refuses half precision on the CPU (Flex computes f16 through f32, only slower); Flex is
//! enough here to check the mechanics: casts, loss scaling, fp32 gradients and weights.

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::DType;
use hitvideo_engine::tokenizer::TokenizerConfig;
use hitvideo_engine::train::data::ClipSource;
use hitvideo_engine::train::precision::{self, Precision};
use hitvideo_engine::train::tokenizer::{TokenizerTrainConfig, TokenizerTrainer};

#[derive(Default)]
struct Params {
    values: Vec<f32>,
    dtypes: Vec<DType>,
}

impl ModuleVisitor for Params {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let v = param.val();
        self.dtypes.push(v.dtype());
        self.values.extend(v.into_data().convert::<f32>().try_to_vec::<f32>().expect("values"));
    }
}

fn params<M: Module>(m: &M) -> Params {
    let mut p = Params::default();
    m.visit(&mut p);
    p
}

/// Sets the process's Flex device to f16 by default, once for both tests.
fn f16_device() -> Device {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let device = Device::flex();
    ONCE.call_once(|| precision::configure(&device, Precision::F16).expect("before any tensor of this process"));
    device
}

#[test]
fn f16_tokenizer_steps_update_fp32_master_weights() {
    let device = f16_device();
    let cfg = TokenizerConfig::preset("tiny").expect("preset");
    let data = ClipSource::synthetic(20, 0, cfg.frames, cfg.height, cfg.fps);
    let train = TokenizerTrainConfig::new().with_steps(10).with_warmup(1).with_batch(2).with_adversarial_weight(0.05).with_disc_start(0);
    let mut t = TokenizerTrainer::new(cfg, train, &device);
    t.set_precision(Precision::F16).expect("the device computes in f16");
    let before = params(&t.model);
    assert!(before.dtypes.iter().all(|d| *d == DType::F32), "master weights are fp32: {:?}", before.dtypes);
    for step in 0..2 {
        let log = t.train_step(data.train_batch(step, 2, 0, &device).unwrap());
        let loss = log.loss;
        eprintln!("f16 step {step}: {log:?}");
        assert!(loss.is_finite() && loss > 0.0 && loss < 10.0, "{log:?}");
    }
    let after = params(&t.model);
    assert!(after.dtypes.iter().all(|d| *d == DType::F32), "master weights stay fp32: {:?}", after.dtypes);
    let moved = before.values.iter().zip(&after.values).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(moved > 1e-4, "the f16 steps updated the weights ({moved})");
    assert!(params(&t.disc).dtypes.iter().all(|d| *d == DType::F32), "the discriminator's weights stay fp32");
}

#[test]
fn f16_generator_steps_update_fp32_master_weights() {
    use hitvideo_engine::generator::{GeneratorConfig, TextConditionConfig};
    use hitvideo_engine::train::generator::{GeneratorTrainConfig, GeneratorTrainer};
    use hitvideo_engine::train::token_cache;
    let device = f16_device();
    let tok_cfg = TokenizerConfig::preset("tiny").expect("preset");
    let tokenizer = tok_cfg.init(&device);
    let synth = token_cache::synthetic_config(16, 0, &tok_cfg);
    let cache = token_cache::build_synthetic(&tokenizer, &tok_cfg, &synth, &device, &std::sync::atomic::AtomicBool::new(false), |_, _| {}).expect("cache");
    let cfg = GeneratorConfig::preset("tiny", &tok_cfg, TextConditionConfig::for_encoder("small")).expect("preset");
    let train = GeneratorTrainConfig::new().with_steps(10).with_warmup(1).with_batch(2);
    let mut t = GeneratorTrainer::new(cfg, train, None, &device).expect("trainer");
    assert!(t.set_precision(Precision::Bf16).unwrap_err().to_string().contains("call precision::configure"));
    t.set_precision(Precision::F16).expect("the device computes in f16");
    let before = params(&t.model);
    assert!(before.dtypes.iter().all(|d| *d == DType::F32), "master weights are fp32");
    let items = cache.split("train");
    for _ in 0..2 {
        let log = t.train_step(&cache, &items).expect("step");
        eprintln!("f16 generator step: {log:?}");
        let loss = log.loss;
        assert!(loss.is_finite() && loss > 0.0 && loss < 50.0, "{log:?}");
    }
    let after = params(&t.model);
    assert!(after.dtypes.iter().all(|d| *d == DType::F32), "master weights stay fp32");
    let moved = before.values.iter().zip(&after.values).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(moved > 1e-4, "the f16 steps updated the weights ({moved})");
}

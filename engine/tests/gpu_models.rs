//! The real models on a GPU against Flex: the `tiny` tokenizer and generator, forward and
//! backward, with the same weights and inputs on both devices. Ignored by default (CI has no
//! GPU, and Mesa's software Vulkan needs many minutes to compile these shaders);
//! `scripts/gpu-check` runs them with `--ignored`. `HITVIDEO_TEST_DEVICE` picks the device
//! (`gpu`, the default, or `auto`); without a hardware GPU the tests fail rather than pass
//! untested.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use hitvideo_engine::device::{self, DeviceChoice};
use hitvideo_engine::generator::{GeneratorConfig, TextConditionConfig, layer_losses};
use hitvideo_engine::tokenizer::TokenizerConfig;
use hitvideo_engine::train::data::ClipSource;

fn gpu() -> Device {
    let choice: DeviceChoice = std::env::var("HITVIDEO_TEST_DEVICE").unwrap_or_else(|_| "gpu".into()).parse().expect("HITVIDEO_TEST_DEVICE: auto, cpu or gpu");
    let chosen = device::select(choice).expect("these tests need a GPU: run them through scripts/gpu-check on a GPU machine");
    assert!(chosen.is_gpu, "these tests need a GPU; --device {choice} gave {}", chosen.description);
    eprintln!("GPU: {}", chosen.description);
    chosen.device
}

/// Largest difference relative to the largest magnitude of `a`.
fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max) / scale
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32")
}

/// Every parameter's gradient, in visiting order (empty for parameters without one).
struct Grads<'a>(&'a GradientsParams, Vec<Vec<f32>>);

impl ModuleVisitor for Grads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.1.push(self.0.get::<D>(param.id).map(values).unwrap_or_default());
    }
}

fn grads<M: Module>(m: &M, g: &GradientsParams) -> Vec<Vec<f32>> {
    let mut v = Grads(g, Vec::new());
    m.visit(&mut v);
    v.1
}

/// Compares two gradient lists parameter by parameter; returns the worst difference relative
/// to the larger of the parameter's own largest gradient and 1e-3 of the largest gradient of
/// all (a parameter whose gradient is at rounding level is not held to a relative bound), and
/// prints the worst few parameters.
fn compare_grads(cpu: &[Vec<f32>], gpu: &[Vec<f32>]) -> f32 {
    assert_eq!(cpu.len(), gpu.len());
    let global = cpu.iter().flatten().fold(0f32, |m, v| m.max(v.abs()));
    let mut rows = Vec::new();
    for (i, (c, g)) in cpu.iter().zip(gpu).enumerate() {
        assert_eq!(c.len(), g.len(), "parameter {i} has a gradient on one device only");
        if c.is_empty() {
            continue;
        }
        let own = c.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = c.iter().zip(g).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        rows.push((diff / own.max(1e-3 * global).max(1e-12), i, c.len(), own, diff));
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (rel, i, n, own, diff) in rows.iter().take(3) {
        eprintln!("  parameter {i} ({n} values): largest gradient {own:.3e}, largest difference {diff:.3e}, relative {rel:.2e}");
    }
    rows.first().map_or(0.0, |r| r.0)
}

#[test]
#[ignore = "needs a GPU: scripts/gpu-check runs it"]
fn tokenizer_forward_and_backward_match_flex() {
    let gpu = gpu().autodiff();
    let cpu = Device::flex().autodiff();
    let cfg = TokenizerConfig::preset("tiny").expect("preset");
    cpu.seed(1);
    let model = cfg.init(&cpu);
    let on_gpu = model.clone().fork(&gpu);
    let data = ClipSource::synthetic(8, 0, cfg.frames, cfg.height, cfg.fps);
    let run = |m: &hitvideo_engine::tokenizer::Tokenizer, device: &Device| {
        let x = data.val_batch(0..2, device).unwrap();
        let enc = m.encode(x.clone(), 1.0);
        let codes: Vec<Tensor<5>> = enc.layers.iter().map(|o| o.codes.clone()).collect();
        let recon = m.decode(&codes);
        let loss = (recon.clone() - x).abs().mean();
        let g = GradientsParams::from_grads(loss.clone().backward(), m);
        (values(recon), values(loss), grads(m, &g))
    };
    let (rc, lc, gc) = run(&model, &cpu);
    let (rg, lg, gg) = run(&on_gpu, &gpu);
    let (dr, dl, dg) = (rel_diff(&rc, &rg), rel_diff(&lc, &lg), compare_grads(&gc, &gg));
    eprintln!("tokenizer: reconstruction {dr:.2e}, loss {dl:.2e}, gradients {dg:.2e} (relative)");
    assert!(dr < 1e-3 && dl < 1e-3, "forward differs: reconstruction {dr}, loss {dl}");
    assert!(dg < 1e-2, "gradients differ by {dg}");
}

#[test]
#[ignore = "needs a GPU: scripts/gpu-check runs it"]
fn generator_forward_and_backward_match_flex() {
    let gpu = gpu().autodiff();
    let cpu = Device::flex().autodiff();
    let tok = TokenizerConfig::preset("tiny").expect("preset");
    let cfg = GeneratorConfig::preset("tiny", &tok, TextConditionConfig::for_encoder("small")).expect("preset");
    cpu.seed(2);
    let model = cfg.init(&cpu);
    let on_gpu = model.clone().fork(&gpu);
    let ids: Vec<Vec<i64>> = cfg.layers.iter().map(|l| (0..2 * l.tokens()).map(|i| (i as i64 * 7919) % (1 << l.bits)).collect()).collect();
    let run = |m: &hitvideo_engine::generator::Generator, device: &Device| {
        let text = m.encode_prompts(&["a red circle moves left", "a blue square"], cfg.text.max_len).expect("prompts");
        let ids: Vec<Tensor<2, Int>> =
            ids.iter().zip(&cfg.layers).map(|(v, l)| Tensor::from_data(TensorData::new(v.clone(), [2, l.tokens()]), device)).collect();
        let h = m.forward_train(&cfg, &text, &ids);
        let losses = layer_losses(m, &cfg, h, &ids, 1.0);
        let g = GradientsParams::from_grads(losses.total.clone().backward(), m);
        (values(losses.total), grads(m, &g))
    };
    let (lc, gc) = run(&model, &cpu);
    let (lg, gg) = run(&on_gpu, &gpu);
    let (dl, dg) = (rel_diff(&lc, &lg), compare_grads(&gc, &gg));
    eprintln!("generator: loss {dl:.2e}, gradients {dg:.2e} (relative)");
    assert!(dl < 1e-3, "loss differs by {dl}");
    assert!(dg < 1e-2, "gradients differ by {dg}");
}

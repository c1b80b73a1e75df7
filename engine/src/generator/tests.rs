//! Unit tests of the generator as a whole: attention mask, KV-cache against full recompute,
//! teacher forcing against generation, CFG batching, re-roll, events and cancellation.

use std::sync::atomic::{AtomicBool, Ordering};

use burn::prelude::*;

use super::config::{GeneratorConfig, TextConditionConfig};
use super::generate::{GenEvent, GenerateError, GenerateSpec, generate};
use super::model::{Generator, TextInput, attention_mask};
use super::sample::{CfgSchedule, SamplingConfig};
use crate::tokenizer::LayerConfig;

/// A small random model: layers of 2, 4 and 8 tokens; the finest (10 bits) has a head
/// factorized into 2 x 5 bits. Global text conditioning and finest-grid RoPE on, as the presets.
fn model() -> (Generator, GeneratorConfig) {
    model_with(true)
}

/// The same, with (`current`) or without the global text conditioning and finest-grid RoPE of
/// the presets (`false`: a generator configured before they existed).
fn model_with(current: bool) -> (Generator, GeneratorConfig) {
    let layers = vec![LayerConfig::new(1, 1, 2, 3), LayerConfig::new(1, 2, 2, 4), LayerConfig::new(2, 2, 2, 10)];
    let text = TextConditionConfig::for_encoder("small").with_dim(16).with_small_heads(2).with_small_layers(1).with_small_vocab(64).with_max_len(16);
    let cfg = GeneratorConfig::new("test".into(), 32, 2, 2, 64, layers, "none".into(), "0".into(), text)
        .with_max_head_bits(6)
        .with_global_text(current)
        .with_rope_finest_grid(current);
    cfg.validate().expect("valid test config");
    let device = Device::flex();
    device.seed(3);
    (cfg.init(&device), cfg)
}

fn prompts(g: &Generator, cfg: &GeneratorConfig, p: &[&str]) -> TextInput {
    g.encode_prompts(p, cfg.text.max_len).expect("encodable prompts")
}

fn spec(cfg: &str, seeds: Vec<u64>, greedy: bool, use_cache: bool) -> GenerateSpec {
    GenerateSpec {
        sampling: SamplingConfig { greedy, ..SamplingConfig::default() },
        cfg: CfgSchedule::parse(cfg).expect("schedule"),
        seeds,
        keep: Vec::new(),
        use_cache,
    }
}

fn run(g: &Generator, cfg: &GeneratorConfig, text: &TextInput, neg: Option<&TextInput>, s: &GenerateSpec) -> Vec<Vec<u32>> {
    generate(g, cfg, text, neg, s, &AtomicBool::new(false), |_| {}).expect("generation")
}

#[test]
fn attention_mask_is_causal_and_hides_padding() {
    let device = Device::flex();
    // Row 0: one padding position then 3 valid; row 1: all valid.
    let valid = vec![vec![false, true, true, true], vec![true; 4]];
    let m: Vec<bool> = attention_mask(&valid, 0, 4, 4, &device).into_data().try_to_vec().expect("bool");
    let at = |b: usize, q: usize, k: usize| m[b * 16 + q * 4 + k];
    for b in 0..2 {
        for q in 0..4 {
            for k in 0..4 {
                let hidden = k > q || (b == 0 && k == 0 && q != 0);
                assert_eq!(at(b, q, k), hidden, "row {b} query {q} key {k}");
            }
        }
    }
    // One query at position 2 over 3 keys (the cached case).
    let m: Vec<bool> = attention_mask(&valid, 2, 1, 3, &device).into_data().try_to_vec().expect("bool");
    assert_eq!(m, vec![true, false, false, false, false, false]);
}

#[test]
fn kv_cache_greedy_equals_full_recompute_with_and_without_cfg() {
    for current in [true, false] {
        let (g, cfg) = model_with(current);
        let text = prompts(&g, &cfg, &["a red circle moves left", "blue square"]);
        for schedule in ["1", "4", "linear:1:6"] {
            let cached = run(&g, &cfg, &text, None, &spec(schedule, vec![0, 1], true, true));
            let full = run(&g, &cfg, &text, None, &spec(schedule, vec![0, 1], true, false));
            assert_eq!(cached, full, "cfg {schedule}, current config {current}");
            assert_eq!(cached[0].len(), cfg.video_tokens());
        }
        // Sampled (not greedy) decoding agrees too: same logits, same seeded draws.
        let cached = run(&g, &cfg, &text, None, &spec("3", vec![5, 6], false, true));
        let full = run(&g, &cfg, &text, None, &spec("3", vec![5, 6], false, false));
        assert_eq!(cached, full);
    }
}

#[test]
fn global_text_conditions_every_token_and_old_configs_load_without_it() {
    use burn::module::Module;
    let (g, cfg) = model();
    let (old, old_cfg) = model_with(false);
    // The global path adds the projection and the null vector, nothing else.
    assert_eq!(g.num_params() - old.num_params(), cfg.text.dim * 32 + 32 + 32);
    assert_eq!(cfg.num_params() - old_cfg.num_params(), g.num_params() - old.num_params());
    // A config saved before the fields existed reads back with both off.
    let mut json: serde_json::Value = serde_json::from_str(&old_cfg.to_string()).expect("json");
    let map = json.as_object_mut().expect("object");
    map.remove("global_text");
    map.remove("rope_finest_grid");
    let back = GeneratorConfig::from_json(json.to_string().as_bytes()).expect("legacy config");
    assert_eq!(back, old_cfg);
    // The prefix carries one conditioning vector per row; unconditional rows get the null one.
    let mut text = prompts(&g, &cfg, &["a red circle moves left", "blue square"]);
    let p = g.prefix(&text);
    let glob = p.global.clone().expect("global conditioning");
    assert_eq!(glob.dims(), [2, 1, 32]);
    let rows: Vec<f32> = glob.into_data().try_to_vec().expect("f32");
    assert!(rows[..32].iter().zip(&rows[32..]).any(|(a, b)| (a - b).abs() > 1e-6), "prompts differ, so must their vectors");
    text.uncond = vec![true, true];
    let u: Vec<f32> = g.prefix(&text).global.expect("global").into_data().try_to_vec().expect("f32");
    assert_eq!(u[..32], u[32..], "unconditional rows share the null vector");
    assert!(old.prefix(&text).global.is_none());
}

#[test]
fn greedy_generation_matches_teacher_forced_argmax() {
    let (g, cfg) = model();
    let text = prompts(&g, &cfg, &["a green triangle rises"]);
    let tokens = run(&g, &cfg, &text, None, &spec("1", vec![0], true, true));
    let device = Device::flex();
    let ids: Vec<Tensor<2, Int>> = super::split_layers(&cfg, &tokens[0])
        .into_iter()
        .map(|l| Tensor::from_data(TensorData::new(l.iter().map(|&v| i64::from(v)).collect::<Vec<_>>(), [1, l.len()]), &device))
        .collect();
    let h = g.forward_train(&cfg, &text, &ids);
    let off = super::config::layer_offsets(&cfg.layers);
    let mut argmax = Vec::new();
    for j in 0..cfg.layers.len() {
        let hj = h.clone().slice(s![.., off[j]..off[j + 1], ..]);
        let groups = g.groups(j);
        let parts: Vec<Vec<i64>> = g.logits(j, hj).into_iter().map(|l| l.argmax(2).into_data().convert::<i64>().try_to_vec().expect("ids")).collect();
        for i in 0..off[j + 1] - off[j] {
            let mut id = 0u32;
            let mut shift = 0;
            for (gbits, p) in groups.iter().zip(&parts) {
                id |= (p[i] as u32) << shift;
                shift += gbits;
            }
            argmax.push(id);
        }
    }
    assert_eq!(tokens[0], argmax);
}

#[test]
fn batches_seeds_and_negative_prompts() {
    let (g, cfg) = model();
    let both = prompts(&g, &cfg, &["a red circle moves left", "a yellow square falls down slowly"]);
    let batch = run(&g, &cfg, &both, None, &spec("2", vec![7, 8], false, true));
    // Each row alone gives the same tokens as in the batch (left-padded prefixes are invisible).
    for (r, p) in ["a red circle moves left", "a yellow square falls down slowly"].iter().enumerate() {
        let one = run(&g, &cfg, &prompts(&g, &cfg, &[p]), None, &spec("2", vec![7 + r as u64], false, true));
        assert_eq!(one[0], batch[r], "row {r}");
    }
    let again = run(&g, &cfg, &both, None, &spec("2", vec![7, 8], false, true));
    assert_eq!(batch, again, "same seeds, same tokens");
    let other = run(&g, &cfg, &both, None, &spec("2", vec![9, 10], false, true));
    assert_ne!(batch, other, "other seeds, other tokens");
    // A negative prompt replaces the unconditional rows.
    let neg = prompts(&g, &cfg, &["a blue square", "a blue square"]);
    let with_neg = run(&g, &cfg, &both, Some(&neg), &spec("6", vec![7, 8], true, true));
    let without = run(&g, &cfg, &both, None, &spec("6", vec![7, 8], true, true));
    assert_ne!(with_neg, without);
    let with_neg_full = run(&g, &cfg, &both, Some(&neg), &spec("6", vec![7, 8], true, false));
    assert_eq!(with_neg, with_neg_full);
}

#[test]
fn reroll_keeps_coarse_layers_and_events_follow_layers() {
    let (g, cfg) = model();
    let text = prompts(&g, &cfg, &["a red circle moves left"]);
    let first = run(&g, &cfg, &text, None, &spec("3", vec![1], false, true));
    let coarse = 2 + 4; // layers 0 and 1
    let mut s = spec("3", vec![99], false, true);
    s.keep = vec![first[0][..coarse].to_vec()];
    let mut layers_seen = Vec::new();
    let mut progress = 0;
    let rerolled = generate(&g, &cfg, &text, None, &s, &AtomicBool::new(false), |e| match e {
        GenEvent::LayerDone { layer, tokens } => {
            assert_eq!(tokens[0].len(), super::config::layer_offsets(&cfg.layers)[layer + 1]);
            layers_seen.push(layer);
        }
        GenEvent::Progress { done, .. } => progress = done,
    })
    .expect("re-roll");
    assert_eq!(layers_seen, vec![0, 1, 2]);
    assert_eq!(progress, cfg.video_tokens());
    assert_eq!(rerolled[0][..coarse], first[0][..coarse], "kept tokens are kept exactly");
    assert_ne!(rerolled[0][coarse..], first[0][coarse..], "finer tokens are sampled again");
    // Greedy re-roll of a greedy result reproduces it (the kept prefix is fed exactly).
    let greedy = run(&g, &cfg, &text, None, &spec("3", vec![0], true, true));
    let mut s = spec("3", vec![0], true, true);
    s.keep = vec![greedy[0][..coarse].to_vec()];
    assert_eq!(run(&g, &cfg, &text, None, &s), greedy);
    s.use_cache = false;
    assert_eq!(run(&g, &cfg, &text, None, &s), greedy);
}

#[test]
fn cancellation_and_bad_requests_are_errors() {
    let (g, cfg) = model();
    let text = prompts(&g, &cfg, &["a red circle"]);
    let cancel = AtomicBool::new(false);
    let out = generate(&g, &cfg, &text, None, &spec("2", vec![0], false, true), &cancel, |e| {
        if let GenEvent::LayerDone { layer: 0, .. } = e {
            cancel.store(true, Ordering::Relaxed);
        }
    });
    assert!(matches!(out, Err(GenerateError::Cancelled { done: 2, total: 14 })), "{out:?}");
    let run_err = |s: GenerateSpec| generate(&g, &cfg, &text, None, &s, &AtomicBool::new(false), |_| {}).expect_err("refused").to_string();
    let mut s = spec("2", vec![0], false, true);
    s.sampling.temperature = 0.0;
    assert!(run_err(s).contains("temperature"));
    let mut s = spec("2", vec![0], false, true);
    s.sampling.top_p = 1.5;
    assert!(run_err(s).contains("top-p"));
    let mut s = spec("2", vec![0], false, true);
    s.sampling.top_k = Some(0);
    assert!(run_err(s).contains("top-k"));
    let mut s = spec("2", vec![0], false, true);
    s.cfg = CfgSchedule::Constant { scale: -1.0 };
    assert!(run_err(s).contains("CFG"));
    assert!(run_err(spec("2", vec![0, 1], false, true)).contains("2 seeds for 1 prompts"));
    let mut s = spec("2", vec![0], false, true);
    s.keep = vec![vec![8]];
    assert!(run_err(s).contains("beyond its layer's 3 bits"));
    let mut s = spec("2", vec![0], false, true);
    s.cfg = CfgSchedule::PerLayer { scales: vec![1.0, 2.0] };
    assert!(run_err(s).contains("2 values but the model has 3 layers"));
}

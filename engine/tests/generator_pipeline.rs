//! Text to clip end to end from checkpoints (untrained `tiny` / `tiny-single` tokenizers and
//! generators, CPU): loading and cross-checks, batches of prompts and seeds, events per layer,
//! decoding previews and clips, export metadata, re-roll from an exported file, the
//! single-layer baseline, and a small sweep grid.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::prelude::*;
use hitvideo_engine::eval::sweep;
use hitvideo_engine::generator::pipeline::tokens_from_metadata;
use hitvideo_engine::generator::token_cache::TokenCache;
use hitvideo_engine::generator::{CfgSchedule, ClipRequest, GenEvent, GeneratorConfig, Pipeline, PipelineError, SamplingConfig, TextConditionConfig};
use hitvideo_engine::tokenizer::TokenizerConfig;
use hitvideo_engine::train::generator::{GeneratorTrainConfig, GeneratorTrainer};
use hitvideo_engine::train::token_cache;
use hitvideo_engine::train::tokenizer::{TokenizerTrainConfig, TokenizerTrainer};
use hitvideo_engine::video;

/// Saves an untrained tokenizer of `preset`, a token cache of 16 clips recording it, and a
/// generator run (one step) on that cache; returns the generator run folder.
fn models(dir: &Path, preset: &str) -> std::path::PathBuf {
    let device = Device::flex();
    let tok_cfg = TokenizerConfig::preset(preset).expect("preset");
    let tok = TokenizerTrainer::new(tok_cfg.clone(), TokenizerTrainConfig::new(), &device);
    let tok_run = dir.join(format!("{preset}-tokenizer"));
    tok.save(&tok_run, serde_json::Value::Null).expect("tokenizer checkpoint");
    let model = tok.model.valid();
    let mut cache =
        token_cache::build_synthetic(&model, &tok_cfg, &token_cache::synthetic_config(16, 1, &tok_cfg), &device, &AtomicBool::new(false), |_, _| {})
            .expect("cache");
    cache.header.tokenizer_checkpoint = Some(tok_run.display().to_string());
    let cache_dir = dir.join(format!("{preset}-cache"));
    cache.write(&cache_dir).expect("write cache");
    let cfg = GeneratorConfig::preset("tiny", &tok_cfg, TextConditionConfig::for_encoder("small")).expect("generator preset");
    let train = GeneratorTrainConfig::new().with_steps(1).with_batch(2).with_val_items(2).with_cache(cache_dir.display().to_string());
    let mut t = GeneratorTrainer::new(cfg, train, None, &device).expect("trainer");
    let cache = TokenCache::read(&cache_dir).expect("cache");
    t.train_step(&cache, &cache.split("train")).expect("one step");
    let run = dir.join(format!("{preset}-generator"));
    t.save(&run, serde_json::Value::Null).expect("generator checkpoint");
    run
}

fn request(prompts: &[&str], seeds: Vec<u64>, cfg: &str) -> ClipRequest {
    ClipRequest {
        prompts: prompts.iter().map(|p| p.to_string()).collect(),
        negative: None,
        seeds,
        sampling: SamplingConfig { top_k: Some(8), temperature: 0.9, top_p: 0.95, greedy: false },
        cfg: CfgSchedule::parse(cfg).expect("schedule"),
        keep: Vec::new(),
        use_cache: true,
    }
}

#[test]
fn generate_decode_export_and_reroll() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = models(dir.path(), "tiny");
    let device = Device::flex();
    // The tokenizer is found through the generator's token cache.
    let p = Pipeline::load(&run, None, None, &device).expect("pipeline");
    assert_eq!(p.checksums.len(), 3);
    assert_eq!(p.cfg.video_tokens(), 308);
    // Prompts beyond the text encoder's limit are reported, one note each.
    let long = "a red circle moves left ".repeat(400);
    let notes = p.truncation_notes(&["a red circle moves left", long.as_str()]).expect("notes");
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("only its beginning is used"), "{notes:?}");

    // Two prompts x two seeds as one batch; an event after each layer with a decodable preview.
    let req = request(&["a red circle moves left", "a blue square moves up"], vec![3, 4], "linear:1:5");
    let mut previews = Vec::new();
    let tokens = p
        .generate(&req, &AtomicBool::new(false), |e| {
            if let GenEvent::LayerDone { layer, tokens } = e {
                let clips = p.decode(&tokens, layer + 1).expect("decode");
                assert_eq!(clips.len(), 4);
                previews.push((layer, clips[0].len()));
            }
        })
        .expect("generate");
    assert_eq!(previews, vec![(0, 16), (1, 16), (2, 16), (3, 16)]);
    assert_eq!(tokens.len(), 4);
    assert!(tokens.iter().all(|t| t.len() == 308));
    let again = p.generate(&req, &AtomicBool::new(false), |_| {}).expect("generate");
    assert_eq!(tokens, again, "same seeds and settings, same tokens");

    // Export with metadata; re-roll from the file keeps its two coarsest layers exactly.
    let clips = p.decode(&tokens, 4).expect("decode");
    assert_eq!((clips[0].width(), clips[0].height(), clips[0].len()), (32, 32, 16));
    let out = dir.path().join("clip.mp4");
    let rows = req.rows();
    video::export(&clips[1], &out, &p.metadata(&req, rows[1].0, rows[1].1, &tokens[1], &clips[1])).expect("export");
    let (meta, _) = video::meta::read_metadata(&out).expect("metadata");
    assert_eq!(meta.prompt.as_deref(), Some("a red circle moves left"));
    assert_eq!(meta.seed, Some(4));
    assert_eq!(meta.cfg_schedule.as_ref().map(ToString::to_string).as_deref(), Some("linear:1:5"));
    assert_eq!(meta.sampler.top_k, Some(8));
    assert_eq!(meta.model_checksums, p.checksums);
    let kept = tokens_from_metadata(&meta).expect("tokens in the metadata");
    assert_eq!(kept, tokens[1]);
    let mut reroll = request(&["a red circle moves left"], vec![11, 12], "linear:1:5");
    reroll.keep = vec![kept[..20].to_vec()];
    let rerolled = p.generate(&reroll, &AtomicBool::new(false), |_| {}).expect("re-roll");
    for row in &rerolled {
        assert_eq!(row[..20], kept[..20]);
    }
    assert_ne!(rerolled[0][20..], rerolled[1][20..], "the finer layers are sampled per seed");

    // Negative prompt; cancellation; invalid settings are errors.
    let mut neg = request(&["a red circle moves left"], vec![3], "5");
    neg.negative = Some("a green triangle".into());
    let with_neg = p.generate(&neg, &AtomicBool::new(false), |_| {}).expect("negative prompt");
    neg.negative = None;
    assert_ne!(with_neg, p.generate(&neg, &AtomicBool::new(false), |_| {}).expect("generate"));
    let cancel = AtomicBool::new(false);
    let err = p.generate(&neg, &cancel, |e| {
        if let GenEvent::Progress { done: 10, .. } = e {
            cancel.store(true, Ordering::Relaxed);
        }
    });
    assert!(matches!(err, Err(PipelineError::Generate(hitvideo_engine::generator::GenerateError::Cancelled { done: 10, total: 308 }))));
    let mut bad = request(&["x"], vec![0], "5");
    bad.sampling.top_p = 0.0;
    assert!(p.generate(&bad, &AtomicBool::new(false), |_| {}).is_err());
    assert!(p.generate(&request(&["   "], vec![0], "5"), &AtomicBool::new(false), |_| {}).expect_err("blank prompt").to_string().contains("empty"));

    // A small sweep (CFG x seed, the seeds of a row as one batch): grid with labelled axes and
    // every cell scored; each cell is the clip `generate` makes with its settings.
    let base = sweep::CellSettings { cfg: CfgSchedule::Constant { scale: 2.5 }, seed: 0, sampling: request(&["x"], vec![0], "1").sampling };
    let spec = sweep::SweepSpec {
        prompts: vec!["a red circle moves left".into()],
        rows: sweep::AxisValues::Cfg(vec![1.0, 4.0]),
        columns: sweep::AxisValues::Seed(vec![0, 1]),
        base: base.clone(),
        negative: None,
        use_cache: true,
    };
    let mut seen = Vec::new();
    let cells = sweep::run(&p, &spec, &AtomicBool::new(false), |c, done, total| seen.push((c.row, c.column, done, total))).expect("sweep");
    assert_eq!(seen, vec![(0, 0, 1, 4), (0, 1, 2, 4), (1, 0, 3, 4), (1, 1, 4, 4)]);
    assert_eq!(
        cells.iter().map(|c| (c.row, c.column, c.seed, c.cfg.as_str())).collect::<Vec<_>>(),
        vec![(0, 0, 0, "1"), (0, 1, 1, "1"), (1, 0, 0, "4"), (1, 1, 1, "4")]
    );
    assert!(cells.iter().all(|c| c.fraction.is_some() && c.generate_seconds > 0.0));
    let same = p.generate(&request(&["a red circle moves left"], vec![0, 1], "4"), &AtomicBool::new(false), |_| {}).expect("generate");
    assert_eq!(cells[3].tokens, same[1], "a cell is the clip its settings generate");
    let grid = sweep::grid(&cells, &spec, 2).expect("grid");
    assert!(grid.width() > 2 * 64 && grid.height() > 2 * 64 && grid.len() == 16);
    let csv = String::from_utf8(sweep::to_csv(&cells).expect("csv")).expect("utf-8");
    assert_eq!(csv.lines().count(), 5);
    assert!(csv.starts_with("prompt,seed,cfg,temperature,top_k,top_p,score"));
    // Any two other parameters: temperature rows by top-k columns, one cell at a time.
    let other = sweep::SweepSpec {
        rows: sweep::AxisValues::Temperature(vec![0.7, 1.3]),
        columns: sweep::AxisValues::TopK(vec![None, Some(4)]),
        prompts: vec!["a blue square moves up".into()],
        ..spec
    };
    let cells = sweep::run(&p, &other, &AtomicBool::new(false), |_, _, _| {}).expect("sweep");
    assert_eq!(cells.iter().map(|c| (c.temperature, c.top_k)).collect::<Vec<_>>(), vec![(0.7, None), (0.7, Some(4)), (1.3, None), (1.3, Some(4))]);
    assert!(cells.iter().all(|c| c.seed == 0 && c.cfg == "2.5"));
    let means = sweep::mean_by(&cells, &other, false);
    assert_eq!(means.iter().map(|m| m.0.as_str()).collect::<Vec<_>>(), vec!["top-k all", "top-k 4"]);
}

#[test]
fn single_layer_baseline_and_mismatched_tokenizer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = models(dir.path(), "tiny-single");
    let device = Device::flex();
    let p = Pipeline::load(&run, None, None, &device).expect("pipeline");
    assert_eq!((p.cfg.layers.len(), p.cfg.video_tokens()), (1, 324));
    let mut layers = 0;
    let tokens = p
        .generate(&request(&["a yellow triangle moves right"], vec![0], "3"), &AtomicBool::new(false), |e| {
            if let GenEvent::LayerDone { .. } = e {
                layers += 1;
            }
        })
        .expect("generate");
    assert_eq!(layers, 1);
    assert!(tokens[0].iter().all(|&t| t < 1024));
    assert_eq!(p.decode(&tokens, 1).expect("decode")[0].len(), 16);
    // A tokenizer other than the one the generator's tokens came from is refused.
    let tiny = dir.path().join("other-tokenizer");
    TokenizerTrainer::new(TokenizerConfig::preset("tiny").expect("preset"), TokenizerTrainConfig::new(), &device)
        .save(&tiny, serde_json::Value::Null)
        .expect("save");
    let err = Pipeline::load(&run, Some(&tiny), None, &device).err().expect("mismatch").to_string();
    assert!(err.contains("pass the tokenizer checkpoint its token cache was built with"), "{err}");
}

#[test]
fn accuracy_report_and_a_packed_bundle() {
    use hitvideo_engine::eval::accuracy::{self, AccuracySpec};
    let dir = tempfile::tempdir().expect("tempdir");
    let run = models(dir.path(), "tiny");
    // The bundle holds weights only, and loads like the runs it came from.
    let tok_run = dir.path().join("tiny-tokenizer");
    let bundle = hitvideo_engine::bundle::pack(&tok_run, &run, &serde_json::json!({"made_by": "test"}), &dir.path().join("assets/models")).expect("pack");
    assert!(!bundle.generator.join("optim.bpk").exists() && !bundle.tokenizer.join("optim_g.bpk").exists());
    let device = Device::flex();
    let p = Pipeline::load(&bundle.generator, Some(&bundle.tokenizer), None, &device).expect("pipeline from the bundle");

    let spec = AccuracySpec {
        cfgs: vec![1.0, 5.0],
        seeds: vec![0],
        per_split: 2,
        data_count: 400,
        data_seed: 0,
        sampling: SamplingConfig { top_k: Some(8), temperature: 1.0, top_p: 1.0, greedy: false },
        negative: None,
        use_cache: true,
        batch: 2,
    };
    let mut calls = 0;
    let report = accuracy::evaluate(&p, &spec, &AtomicBool::new(false), |done, total| {
        calls += 1;
        assert!(done <= total && total == 12);
    })
    .expect("evaluate");
    assert_eq!(calls, 6, "one progress call per generated batch");
    // Per split: the tokenizer ceiling, then one row per CFG.
    let splits: Vec<&str> = report.rows.iter().map(|r| r.split.as_str()).collect();
    assert_eq!(splits, ["val", "val", "val", "heldout-combo", "heldout-combo", "heldout-combo", "heldout-template", "heldout-template", "heldout-template"]);
    assert_eq!(report.rows.iter().map(|r| r.cfg).collect::<Vec<_>>(), [None, Some(1.0), Some(5.0), None, Some(1.0), Some(5.0), None, Some(1.0), Some(5.0)]);
    for r in &report.rows {
        assert_eq!(r.clips, 2);
        assert!([r.color, r.shape, r.motion, r.all].iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(r.all <= r.color.min(r.shape).min(r.motion));
    }
    assert!(report.prompts.iter().all(|(_, p)| p.len() == 2));
    assert!(accuracy::to_markdown(&report).lines().count() == 11);
    // Cancelling stops between tokens with an error, not a partial table.
    assert!(accuracy::evaluate(&p, &spec, &AtomicBool::new(true), |_, _| {}).is_err());
}

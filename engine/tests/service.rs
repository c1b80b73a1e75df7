//! The service layer both front ends call: run folders refuse a second run and an empty
//! resume, a run resumes where it stopped, a token cache records the tokenizer it came from and
//! a generator run refuses a cache of another tokenizer, and a clip goes through a tokenizer
//! for the tokens view.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use hitvideo_engine::device::Device;
use hitvideo_engine::generator::GeneratorConfig;
use hitvideo_engine::generator::config::GeneratorPreset;
use hitvideo_engine::service::ServiceError;
use hitvideo_engine::service::cache::{self, CacheSource};
use hitvideo_engine::service::runs::{self, GeneratorStart, NewGenerator, TokenizerStart};
use hitvideo_engine::service::text::EncoderChoice;
use hitvideo_engine::service::tokens::{self, ClipInput, MaskOptions, Masks, TokenizeError};
use hitvideo_engine::tokenizer::{FillStrategy, TokenizerConfig};
use hitvideo_engine::train::data::ClipSource;
use hitvideo_engine::train::generator::{self as gen_train, GeneratorTrainConfig};
use hitvideo_engine::train::tokenizer::{self as train, TokenizerTrainConfig};

fn one_step() -> TokenizerTrainConfig {
    TokenizerTrainConfig::new().with_steps(1).with_batch(1).with_warmup(0).with_val_every(1).with_val_clips(1).with_checkpoint_every(1)
}

/// A one-step `tiny` tokenizer run in `dir`.
fn tokenizer_run(dir: &std::path::Path, device: &Device) -> TokenizerConfig {
    let cfg = TokenizerConfig::preset("tiny").expect("preset");
    let mut t = runs::start_tokenizer(dir, TokenizerStart::New { cfg: cfg.clone(), train: one_step() }, device).expect("a new run");
    let data = ClipSource::synthetic(8, 0, cfg.frames, cfg.height, cfg.fps);
    train::run(&mut t, &data, dir, Arc::new(AtomicBool::new(false)), &mut |_| {}).expect("one step");
    cfg
}

#[test]
fn run_folders_hold_one_run_and_resume_where_they_stopped() {
    let device = Device::flex();
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = tmp.path().join("tok");
    let err = runs::start_tokenizer(&run, TokenizerStart::Resume { steps: 2 }, &device).err().expect("nothing to resume");
    assert!(matches!(err, ServiceError::NothingToResume(ref p) if p == &run), "{err}");
    let cfg = tokenizer_run(&run, &device);
    let again = TokenizerStart::New { cfg, train: one_step() };
    let err = runs::start_tokenizer(&run, again, &device).err().expect("the folder holds a run");
    assert!(matches!(err, ServiceError::RunExists(_)) && err.to_string().contains("already holds a run"), "{err}");
    let resumed = runs::start_tokenizer(&run, TokenizerStart::Resume { steps: 3 }, &device).expect("resume");
    assert_eq!((resumed.step, resumed.train.steps), (1, 3));
    let tuned = runs::start_tokenizer(&tmp.path().join("ft"), TokenizerStart::FineTune { from: run.clone(), train: one_step() }, &device).expect("fine-tune");
    assert_eq!(tuned.step, 0);
    let missing = tmp.path().join("missing");
    let err = runs::start_tokenizer(&tmp.path().join("ft2"), TokenizerStart::FineTune { from: missing.clone(), train: one_step() }, &device)
        .err()
        .expect("no such run");
    assert!(err.to_string().starts_with(&format!("fine-tuning from {}", missing.display())), "{err}");
}

#[test]
fn a_token_cache_records_its_tokenizer_and_a_generator_run_checks_it() {
    let device = Device::flex();
    let tmp = tempfile::tempdir().expect("tempdir");
    let tok_run = tmp.path().join("tok");
    tokenizer_run(&tok_run, &device);
    let tok = cache::open_tokenizer(&tok_run, &device).expect("open");
    let mut calls = 0;
    let built = cache::build(&tok, &CacheSource::Shapes { count: 12, seed: 0 }, &device, &AtomicBool::new(false), |_, _| calls += 1).expect("cache");
    assert!(calls > 0 && built.len() == 12);
    let recorded = built.header.tokenizer_checkpoint.clone().expect("the tokenizer is recorded");
    assert!(std::path::Path::new(&recorded).is_absolute() && recorded.ends_with("step-0000001"), "{recorded}");
    let cache_dir = tmp.path().join("cache");
    built.write(&cache_dir).expect("write");

    let new = |cache: std::path::PathBuf| {
        GeneratorStart::New(Box::new(NewGenerator {
            cache,
            preset: GeneratorPreset::Tiny,
            encoder: EncoderChoice::Small,
            token_dropout: Some(0.0),
            cond_dropout: None,
            rope_finest_grid: None,
            train: GeneratorTrainConfig::new().with_steps(1).with_batch(2).with_warmup(0).with_val_every(1).with_val_items(2).with_checkpoint_every(1),
        }))
    };
    let gen_run = tmp.path().join("gen");
    let run = runs::start_generator(&gen_run, new(cache_dir.clone()), None, &device).expect("a new generator run");
    assert_eq!(run.trainer.cfg.text.encoder, "small");
    assert_eq!(run.trainer.cfg.token_dropout, 0.0);
    assert_eq!(
        run.trainer.cfg.cond_dropout,
        GeneratorConfig::preset_for("tiny", &tok.cfg.name, &run.trainer.cfg.tokenizer_sha256, &tok.cfg.layers, run.trainer.cfg.text.clone())
            .expect("preset")
            .cond_dropout
    );
    assert_eq!(run.cache.len(), 12);

    let mut trainer = run.trainer;
    gen_train::run(&mut trainer, &run.cache, &gen_run, Arc::new(AtomicBool::new(false)), &mut |_| {}).expect("one generator step");

    // The run describes itself: its kind, step and the tokenizer its cache records.
    let info = runs::describe_run(&gen_run).expect("a generator run");
    assert_eq!((info.kind, info.step, info.steps, info.checkpoints.len()), (runs::RunKind::Generator, 1, Some(1), 1));
    assert_eq!(info.tokenizer.as_deref(), Some(std::path::Path::new(&recorded)));
    assert_eq!(runs::describe_run(&info.latest).expect("from its step folder").dir, gen_run);
    assert!(matches!(runs::describe_run(&cache_dir), Err(runs::RunInfoError::NotARun(_))));

    // Resuming takes the run's own cache; a cache of another tokenizer is refused.
    let resumed = runs::start_generator(&gen_run, GeneratorStart::Resume { steps: 2, cache: None }, None, &device).expect("resume");
    assert_eq!((resumed.trainer.step, resumed.cache_dir.canonicalize().ok()), (1, cache_dir.canonicalize().ok()));
    let mut other = built.clone();
    other.header.tokenizer_sha256 = "0".repeat(64);
    let other_dir = tmp.path().join("other-cache");
    other.write(&other_dir).expect("write");
    let err = runs::start_generator(&gen_run, GeneratorStart::Resume { steps: 2, cache: Some(other_dir.clone()) }, None, &device).err().expect("mismatch");
    assert!(matches!(err, ServiceError::CacheMismatch(ref p) if p == &other_dir), "{err}");
    let err =
        runs::start_generator(&tmp.path().join("gen2"), GeneratorStart::Resume { steps: 2, cache: None }, None, &device).err().expect("nothing to resume");
    assert!(matches!(err, ServiceError::NothingToResume(_)), "{err}");
}

#[test]
fn a_clip_goes_through_the_tokenizer_for_the_views() {
    let device = Device::flex();
    let cfg = TokenizerConfig::preset("tiny").expect("preset");
    let model = cfg.init(&device);
    let none = ClipSource::synthetic(4, 0, cfg.frames, cfg.height, cfg.fps).val_clips(0..1).expect_err("4 clips keep none for validation");
    assert!(none.to_string().contains("keeps none for validation"), "{none}");
    let clip = ClipSource::synthetic(20, 0, cfg.frames, cfg.height, cfg.fps).val_clips(0..1).expect("clip").remove(0);
    let mask = MaskOptions { cap: 0.85, tolerance: 0.0, fill: FillStrategy::Repeat };
    let input = ClipInput::Clip { video: Arc::new(clip), label: "a clip".into() };
    let view = tokens::tokenize(&model, &cfg, input.clone(), &mask, &device, &AtomicBool::new(false)).expect("tokenized");
    assert_eq!((view.layers.len(), view.recon.len(), view.psnr.len(), view.padded), (4, 4, 4, 0));
    for (l, c) in view.layers.iter().zip(&cfg.layers) {
        assert_eq!((l.ids.len(), l.bits), (c.tokens(), c.bits));
    }
    assert!(matches!(view.masks, Masks::Ready { ref fill, .. } if fill == "repeat"), "{:?}", view.masks);

    // Generated tokens decode as they are; a sequence of another length is refused.
    let ids: Vec<u32> = view.layers.iter().flat_map(|l| l.ids.clone()).collect();
    let again = tokens::tokenize(&model, &cfg, ClipInput::Generated { tokens: ids.clone(), label: "gen".into() }, &mask, &device, &AtomicBool::new(false))
        .expect("decoded");
    assert_eq!(again.layers.iter().map(|l| l.ids.clone()).collect::<Vec<_>>(), view.layers.iter().map(|l| l.ids.clone()).collect::<Vec<_>>());
    let err = tokens::tokenize(&model, &cfg, ClipInput::Generated { tokens: ids[1..].to_vec(), label: "gen".into() }, &mask, &device, &AtomicBool::new(false))
        .expect_err("wrong length");
    assert!(matches!(err, TokenizeError::Failed(ref m) if m.contains("generated for another tokenizer")), "{err}");

    // A bad cap leaves the tokens and says why there are no masks; a cancel stops the decodes.
    let bad = MaskOptions { cap: 1.5, ..mask.clone() };
    let view = tokens::tokenize(&model, &cfg, input.clone(), &bad, &device, &AtomicBool::new(false)).expect("tokenized");
    assert!(matches!(view.masks, Masks::Unavailable(_)));
    let err = tokens::tokenize(&model, &cfg, input, &mask, &device, &AtomicBool::new(true)).expect_err("cancelled");
    assert_eq!(err, TokenizeError::Cancelled { done: 0, total: 4 });
}

//! Generator training on the engine thread: the token cache is built once inside the run
//! folder (`<run>/cache`) from the chosen tokenizer checkpoint over the synthetic shapes or a
//! dataset folder, then the engine's generator loop runs with step, validation and checkpoint
//! events. Pausing is stopping with a checkpoint; resuming continues from it.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use hitvideo_engine::generator::token_cache::TokenCache;
use hitvideo_engine::generator::{ClipRequest, Pipeline, SamplingConfig};
use hitvideo_engine::service::ServiceError;
use hitvideo_engine::service::cache::{self, CacheSource};
use hitvideo_engine::service::runs::{self, GeneratorRun, GeneratorStart, NewGenerator};
use hitvideo_engine::service::text::EncoderChoice;
use hitvideo_engine::train::generator::{self as engine_train, GeneratorTrainConfig, GeneratorTrainEvent};
use hitvideo_engine::train::parallel;

use super::error::JobError;
use super::payload::{SlotName, TrainStrip};
use super::protocol::{DataChoice, Event, Job, Outcome, RunPreset, TrainRequest, TrainUpdate};
use super::worker::Worker;

/// Builds the run's token cache (reporting progress) unless it exists.
fn cache(w: &Worker, job: &Job, req: &TrainRequest, dir: &Path) -> Result<(), JobError> {
    if dir.join("cache.json").is_file() {
        return Ok(());
    }
    let tok_path = req.tokenizer.as_ref().ok_or("choose the tokenizer checkpoint whose tokens the generator learns (Tokenizer…)")?;
    let source = match &req.data {
        DataChoice::Folder(d) => CacheSource::Dataset(d.clone()),
        DataChoice::Photos { .. } => return Err("the photo world has no captions: train the generator on the shapes or on a captioned dataset folder".into()),
        DataChoice::Shapes { count, seed } => CacheSource::Shapes { count: *count, seed: *seed },
    };
    let tok = cache::open_tokenizer(tok_path, &w.device)?;
    let progress = |done: usize, total: usize| w.emit(Event::Progress { job: job.id, done, total, rate: 0.0 });
    let built = cache::build(&tok, &source, &w.device, &job.cancel, progress).map_err(|e| format!("building the token cache: {e}"))?;
    Ok(built.write(dir)?)
}

fn start(w: &Worker, job: &Job, req: &TrainRequest) -> Result<GeneratorRun, JobError> {
    runs::check_folder(&req.run_dir, req.resume)?;
    let start = if req.resume {
        GeneratorStart::Resume { steps: req.steps, cache: None }
    } else {
        let cache_dir = req.run_dir.join("cache");
        cache(w, job, req, &cache_dir)?;
        let train = GeneratorTrainConfig::new()
            .with_steps(req.steps)
            .with_batch(req.batch.max(1))
            .with_accumulate(req.accumulate.max(1))
            .with_lr(req.lr)
            .with_warmup(req.warmup.min(req.steps))
            .with_val_every(req.val_every.max(1))
            .with_val_items(req.val_clips.max(1))
            .with_checkpoint_every(req.checkpoint_every.max(1))
            .with_seed(req.seed);
        let encoder = req.text_encoder.parse::<EncoderChoice>()?;
        GeneratorStart::New(Box::new(NewGenerator {
            cache: cache_dir,
            preset: match req.preset {
                RunPreset::Generator(p) => p,
                RunPreset::Tokenizer(p) => return Err(JobError::Refused(format!("'{p}' is a tokenizer preset; a generator run needs a generator preset"))),
            },
            encoder,
            token_dropout: None,
            cond_dropout: None,
            rope_finest_grid: None,
            train,
        }))
    };
    let mut run = runs::start_generator(&req.run_dir, start, None, &w.device)?;
    // On the CPU, replicas on shares of the cores, as the CLI's default.
    run.trainer.set_devices(&parallel::default_others(&w.device, run.trainer.train.batch, false)).map_err(ServiceError::from)?;
    Ok(run)
}

/// Validation captions sampled in the strip after each checkpoint.
const STRIP_ITEMS: usize = 3;
/// CFG scale of the strip's samples (seed 0, the default sampling).
const STRIP_CFG: f32 = 5.0;

/// The strip of a generator checkpoint: for the first validation items of the cache, the
/// tokenizer's reconstruction of the clip (what the generator learns to produce) over a clip
/// sampled from its caption with the weights just written (the trainer itself is busy).
fn sample_strip(w: &Worker, job: &Job, cache: &TokenCache, checkpoint: &Path, step: usize) -> Result<TrainStrip, JobError> {
    let items: Vec<usize> = cache.validation_items().into_iter().take(STRIP_ITEMS).collect();
    if items.is_empty() {
        return Err("no validation items".into());
    }
    let tokenizer = cache.header.tokenizer_checkpoint.as_ref().map(PathBuf::from);
    let pipe = Pipeline::load(checkpoint, tokenizer.as_deref(), None, &w.device)?;
    let captions: Vec<String> = items.iter().map(|&i| cache.header.items[i].caption.clone()).collect();
    let refs: Vec<Vec<u32>> = items.iter().map(|&i| cache.item_ids(i).to_vec()).collect();
    let layers = cache.header.layers.len();
    let req = ClipRequest::at_cfg(captions.clone(), vec![0], STRIP_CFG, &SamplingConfig::default(), None, true);
    let rows = pipe.generate(&req, &job.cancel, |_| {})?;
    Ok(TrainStrip {
        job: job.id,
        step,
        title: format!("samples (top: the tokenizer's reconstruction of validation clips, bottom: sampled from their captions, seed 0, CFG {STRIP_CFG})"),
        captions,
        originals: pipe.decode(&refs, layers)?,
        recon: pipe.decode(&rows, layers)?,
    })
}

pub(super) fn train_generator(w: &mut Worker, job: &Job, req: TrainRequest) -> Outcome {
    let w = &*w;
    let GeneratorRun { mut trainer, cache, .. } = match start(w, job, &req) {
        Ok(x) => x,
        Err(e) if job.cancel.load(Ordering::Relaxed) => return Outcome::Cancelled(format!("stopped before training started ({e})")),
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let from = trainer.step;
    let mut last_step = from;
    let result = engine_train::run(&mut trainer, &cache, &req.run_dir, job.cancel.clone(), &mut |e| {
        let update = match e {
            GeneratorTrainEvent::Step { record: r, total, seconds } => {
                last_step = r.step;
                let curves = r.ce_by_layer.iter().enumerate().map(|(j, c)| (format!("CE layer {}", j + 1), *c)).collect();
                TrainUpdate::Step { step: r.step, total, loss: r.loss, curves, seconds }
            }
            GeneratorTrainEvent::Validation(v) => TrainUpdate::Validation {
                step: last_step,
                title: "validation cross-entropy per layer (nats per token)".into(),
                values: v.ce_by_layer.iter().enumerate().map(|(j, &c)| (format!("layer {}", j + 1), c)).collect(),
                usage: Vec::new(),
                perplexity: Vec::new(),
            },
            GeneratorTrainEvent::Preparing { done, total } => {
                w.emit(Event::Progress { job: job.id, done, total, rate: 0.0 });
                return;
            }
            GeneratorTrainEvent::Checkpoint(path) => {
                w.emit(Event::Train { job: job.id, update: TrainUpdate::Checkpoint { step: last_step, path: path.clone() } });
                match sample_strip(w, job, &cache, &path, last_step) {
                    Ok(strip) => {
                        w.slots.train_strip.put(strip);
                        w.emit(Event::Payload { job: job.id, slot: SlotName::TrainStrip });
                    }
                    Err(e) => tracing::warn!("no sample strip for {}: {e}", path.display()),
                }
                return;
            }
        };
        w.emit(Event::Train { job: job.id, update });
    });
    let dir = req.run_dir.display();
    match result {
        Ok(_) if job.cancel.load(Ordering::Relaxed) && trainer.step < trainer.train.steps => {
            Outcome::Cancelled(format!("stopped at step {} of {}; checkpoint saved in {dir}", trainer.step, trainer.train.steps))
        }
        Ok(val) => {
            let loss = val.map(|v| format!("; validation loss {:.3}", v.loss)).unwrap_or_default();
            Outcome::Done(format!("trained steps {from}..{} into {dir}{loss}", trainer.step))
        }
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

//! Tokenizer training on the engine thread: start or resume a run, report every step,
//! validation and checkpoint, and after each checkpoint decode a few validation clips with the
//! weights just saved (the reconstruction strip). Pausing is stopping with a checkpoint;
//! resuming continues the run from it.

use std::sync::atomic::Ordering;

use hitvideo_engine::service::ServiceError;
use hitvideo_engine::service::runs::{self, TokenizerStart};
use hitvideo_engine::train::data::{ClipSource, DataSpec};
use hitvideo_engine::train::metrics::TokenizerValidation;
use hitvideo_engine::train::parallel;
use hitvideo_engine::train::tokenizer::{self as engine_train, TokenizerTrainConfig, TokenizerTrainer, TrainEvent};

use super::error::JobError;
use super::payload::{SlotName, TrainStrip};
use super::protocol::{DataChoice, Event, Job, Outcome, RunPreset, TrainRequest, TrainUpdate};
use super::worker::Worker;

/// Validation clips shown in the reconstruction strip.
const STRIP_CLIPS: usize = 3;

/// A tokenizer validation as an update.
fn validation(step: usize, v: &TokenizerValidation) -> TrainUpdate {
    TrainUpdate::Validation {
        step,
        title: "validation PSNR (dB) from the k coarsest layers".into(),
        values: v.psnr_by_layers.iter().enumerate().map(|(k, &p)| (format!("k={}", k + 1), p)).collect(),
        usage: v.codebook.iter().map(|c| c.usage).collect(),
        perplexity: v.codebook.iter().map(|c| c.perplexity).collect(),
    }
}

fn start(w: &Worker, req: &TrainRequest) -> Result<TokenizerTrainer, JobError> {
    let train = || {
        TokenizerTrainConfig::new()
            .with_steps(req.steps)
            .with_batch(req.batch.max(1))
            .with_accumulate(req.accumulate.max(1))
            .with_lr(req.lr)
            .with_warmup(req.warmup.min(req.steps))
            .with_val_every(req.val_every.max(1))
            .with_val_clips(req.val_clips.max(1))
            .with_checkpoint_every(req.checkpoint_every.max(1))
            .with_seed(req.seed)
    };
    let start = match (&req.finetune_from, req.resume) {
        (_, true) => TokenizerStart::Resume { steps: req.steps },
        (Some(from), false) => TokenizerStart::FineTune { from: from.clone(), train: train() },
        (None, false) => match req.preset {
            RunPreset::Tokenizer(p) => TokenizerStart::New { cfg: p.config(), train: train() },
            RunPreset::Generator(p) => return Err(JobError::Refused(format!("'{p}' is a generator preset; a tokenizer run needs a tokenizer preset"))),
        },
    };
    // The CLI's default devices (`train::parallel::default_replicas`): on the CPU, replicas
    // sharing the cores and the batch statistics.
    let mut trainer = runs::start_tokenizer(&req.run_dir, start, &w.device)?;
    let others = parallel::default_others(&w.device, trainer.train.batch, trainer.train.entropy_detach);
    trainer.set_devices(&others).map_err(ServiceError::from)?;
    Ok(trainer)
}

pub(super) fn train_tokenizer(w: &mut Worker, job: &Job, req: TrainRequest) -> Outcome {
    let mut trainer = match start(w, &req) {
        Ok(t) => t,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let c = &trainer.cfg;
    let data = match ClipSource::from_specs(&[DataSpec { kind: req.data.clone(), weight: 1.0 }], c.frames, c.height, c.fps) {
        Ok(d) => d,
        Err(e) => {
            let what = match &req.data {
                DataChoice::Folder(dir) => format!("dataset {}", dir.display()),
                DataChoice::Photos { .. } => "photo world".into(),
                DataChoice::Shapes { .. } => "synthetic shapes".into(),
            };
            return Outcome::Failed(format!("{what}: {e}"));
        }
    };
    let from = trainer.step;
    let strip_n = STRIP_CLIPS.min(data.val_len());
    let mut last_step = from;
    let w_ref = &*w;
    let result = engine_train::run(&mut trainer, &data, &req.run_dir, job.cancel.clone(), &mut |e| match e {
        TrainEvent::Step { record: r, total, seconds } => {
            last_step = r.step;
            let curves = vec![("L1".to_string(), r.l1)];
            w_ref.emit(Event::Train { job: job.id, update: TrainUpdate::Step { step: r.step, total, loss: r.loss, curves, seconds } });
        }
        TrainEvent::Preparing { .. } => {}
        TrainEvent::Validation(v) => w_ref.emit(Event::Train { job: job.id, update: validation(last_step, &v) }),
        TrainEvent::Checkpoint(path) => {
            w_ref.emit(Event::Train { job: job.id, update: TrainUpdate::Checkpoint { step: last_step, path: path.clone() } });
            // The strip decodes with the weights just written (the trainer itself is busy).
            if strip_n > 0 {
                match runs::reconstruction_strip(&path, &data, strip_n, &w_ref.device) {
                    Ok(strip) => {
                        let title = "reconstructions (top: validation clips, bottom: decoded)".to_string();
                        let (originals, recon) = (strip.originals, strip.recon);
                        w_ref.slots.train_strip.put(TrainStrip { job: job.id, step: strip.step, title, captions: Vec::new(), originals, recon });
                        w_ref.emit(Event::Payload { job: job.id, slot: SlotName::TrainStrip });
                    }
                    Err(e) => tracing::warn!("no reconstruction strip for {}: {e}", path.display()),
                }
            }
        }
    });
    let dir = req.run_dir.display();
    match result {
        Ok(val) if job.cancel.load(Ordering::Relaxed) && trainer.step < trainer.train.steps => {
            let _ = val;
            Outcome::Cancelled(format!("stopped at step {} of {}; checkpoint saved in {dir}", trainer.step, trainer.train.steps))
        }
        Ok(val) => {
            let psnr = val.map(|v| format!("; validation PSNR {:.2} dB", v.psnr)).unwrap_or_default();
            Outcome::Done(format!("trained steps {from}..{} into {dir}{psnr}", trainer.step))
        }
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

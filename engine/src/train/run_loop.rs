//! The one training loop both trainers run: cancel between steps, the non-finite-loss guard,
//! the validation and checkpoint cadence, a checkpoint when stopped early, the JSONL metrics
//! log, and typed events for the CLI and the studio. A trainer says how to take a step,
//! validate and save ([`Trainable`]); where its batches come from is the caller's (the
//! tokenizer's are prefetched on a CPU thread, the generator's come from its token cache).
//!
//! burn-train's `Learner` is not used: the tokenizer's step has two optimizers (the
//! discriminator's update sits between the generator's forward and backward), which its
//! `TrainStep` cannot express (docs/ARCHITECTURE.md).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::Serialize;

use super::log::MetricsLog;
use super::metrics::StepRecord;
use super::tokenizer::TrainError;
use crate::checkpoint::{self, CheckpointError};

/// What the loop needs of a trainer.
pub trait Trainable {
    /// What validation reads (and what a step may read besides its batch).
    type Data: ?Sized;
    /// One step's input.
    type Batch;
    type Step: StepRecord;
    type Validation: Serialize + Clone;

    /// Where the run stands and its cadence.
    fn progress(&self) -> Progress;
    /// One optimizer step.
    fn run_step(&mut self, data: &Self::Data, batch: Self::Batch) -> Result<Self::Step, TrainError>;
    fn run_validation(&mut self, data: &Self::Data) -> Result<Self::Validation, TrainError>;
    /// A checkpoint of the current state, with the last validation as its metrics (JSON null
    /// before the first).
    fn save_checkpoint(&self, run_dir: &Path, metrics: serde_json::Value) -> Result<PathBuf, CheckpointError>;
}

/// Where a run stands: steps done and to do, and how often it validates and saves (each also
/// after the last step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub val_every: usize,
    pub checkpoint_every: usize,
}

/// What a run reports as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent<S, V> {
    /// Before the first step, work that takes a while (a generator's frozen text features):
    /// `done` of `total`.
    Preparing {
        done: usize,
        total: usize,
    },
    /// A step finished (`record.step()` steps done of `total`) in `seconds`.
    Step {
        record: S,
        total: usize,
        seconds: f64,
    },
    Validation(V),
    Checkpoint(PathBuf),
}

/// One line of `metrics.jsonl`: the step's record, its time and, on validation steps, the
/// validation.
#[derive(Serialize)]
struct LogLine<'a, S: Serialize, V: Serialize> {
    #[serde(flatten)]
    record: &'a S,
    seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    val: Option<&'a V>,
}

/// Trains `trainer` to its total steps, `next_batch(step)` giving each step's input, writing
/// checkpoints and `metrics.jsonl` into `run_dir`. Stops early, with a checkpoint, when
/// `cancel` is set. Returns the last validation.
pub fn run_loop<T: Trainable>(
    trainer: &mut T,
    data: &T::Data,
    run_dir: &Path,
    cancel: &AtomicBool,
    mut next_batch: impl FnMut(usize) -> Result<T::Batch, TrainError>,
    on_event: &mut dyn FnMut(RunEvent<T::Step, T::Validation>),
) -> Result<Option<T::Validation>, TrainError> {
    std::fs::create_dir_all(run_dir).map_err(|source| TrainError::Io { path: run_dir.to_path_buf(), source })?;
    let log_path = run_dir.join("metrics.jsonl");
    let mut log = MetricsLog::open(&log_path).map_err(|source| TrainError::Io { path: log_path.clone(), source })?;
    let mut last_ckpt = checkpoint::resolve(run_dir).map(|p| p.display().to_string()).unwrap_or_else(|_| "none yet".into());
    let mut last_val: Option<T::Validation> = None;
    let Progress { total, val_every, checkpoint_every, .. } = trainer.progress();
    while trainer.progress().done < total {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let started = Instant::now();
        let batch = next_batch(trainer.progress().done)?;
        let record = trainer.run_step(data, batch)?;
        let seconds = started.elapsed().as_secs_f64();
        let step = trainer.progress().done;
        let loss = record.loss();
        if !loss.is_finite() {
            write(&mut log, &serde_json::json!({"step": step, "error": "non-finite loss", "loss": loss.to_string()}));
            return Err(TrainError::NonFinite { step, value: loss, last: last_ckpt });
        }
        on_event(RunEvent::Step { record: record.clone(), total, seconds });
        let validated = step.is_multiple_of(val_every.max(1)) || step == total;
        if validated {
            let v = trainer.run_validation(data)?;
            on_event(RunEvent::Validation(v.clone()));
            last_val = Some(v);
        }
        write(&mut log, &LogLine { record: &record, seconds, val: last_val.as_ref().filter(|_| validated) });
        if step.is_multiple_of(checkpoint_every.max(1)) || step == total {
            let p = trainer.save_checkpoint(run_dir, metrics(run_dir, last_val.as_ref())?)?;
            last_ckpt = p.display().to_string();
            on_event(RunEvent::Checkpoint(p));
        }
    }
    if trainer.progress().done < total {
        let p = trainer.save_checkpoint(run_dir, metrics(run_dir, last_val.as_ref())?)?;
        on_event(RunEvent::Checkpoint(p));
    }
    Ok(last_val)
}

/// A validation as a checkpoint's metrics.
fn metrics(run_dir: &Path, validation: Option<&impl Serialize>) -> Result<serde_json::Value, CheckpointError> {
    validation.map(serde_json::to_value).transpose().map(Option::unwrap_or_default).map_err(|e| checkpoint::damaged(run_dir, "state.json", e))
}

/// Appends a line; a failed write is logged (training goes on: the checkpoints hold the state).
fn write(log: &mut MetricsLog, line: &impl Serialize) {
    if let Err(e) = log.write(line) {
        tracing::warn!("{}: a metrics line was not written: {e}", log.path().display());
    }
}

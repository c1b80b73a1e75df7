//! The typed messages between the studio UI and its engine thread: commands in, events out.
//! No egui and no tensors here — payloads are host data (RGB8 videos, token ids, numbers).
//! Large payloads do not travel as events: the engine puts them in a latest-value slot
//! ([`super::Slots`]) and sends a small event saying which job they belong to.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use hitvideo_engine::device::DeviceChoice;
use hitvideo_engine::video::{ExportMetadata, Video};

use super::memory::DeviceMemory;
use hitvideo_engine::eval::sweep::{AxisValues, CellSettings, SweepAxis};

use super::payload::SlotName;
use hitvideo_engine::generator::config::GeneratorPreset;
use hitvideo_engine::generator::{CfgSchedule, SamplingConfig};
use hitvideo_engine::service::text::EncoderChoice;
use hitvideo_engine::tokenizer::FillStrategy;
use hitvideo_engine::tokenizer::config::TokenizerPreset;

/// Identifies one submitted job (unique for the life of an [`super::EngineHandle`]).
pub type JobId = u64;

/// A job as the engine thread sees it: its id and its cancel flag (the UI sets the flag; the
/// engine checks it between steps).
#[derive(Debug, Clone)]
pub struct Job {
    pub id: JobId,
    pub cancel: Arc<AtomicBool>,
}

/// What the UI asks of the engine thread.
#[derive(Debug)]
pub enum Command {
    /// Choose the compute device (models already loaded move to it).
    SetDevice(DeviceChoice),
    /// Queue a job; jobs run one after another in the order sent.
    Run(Job, Box<Task>),
    /// Stop the thread after the current job.
    Shutdown,
}

/// Where training clips come from: the engine's own choice (shapes, the photo world or a
/// dataset folder), as the CLI's `--data` names it.
pub use hitvideo_engine::train::data::DataKind as DataChoice;

/// The preset of a new run, parsed where the Train view's setting enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunPreset {
    Tokenizer(TokenizerPreset),
    Generator(GeneratorPreset),
}

/// A training run to start or continue.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainRequest {
    /// Tokenizer runs: start from this checkpoint's weights and preset (a fine-tune) instead of
    /// a fresh network of `preset`.
    pub finetune_from: Option<PathBuf>,
    /// Run folder (checkpoints and `metrics.jsonl`).
    pub run_dir: PathBuf,
    /// Continue the run in `run_dir` from its latest checkpoint.
    pub resume: bool,
    /// What a new run trains: a tokenizer of a preset, or a generator of a preset over the
    /// tokens of `tokenizer`.
    pub preset: RunPreset,
    pub data: DataChoice,
    pub steps: usize,
    pub batch: usize,
    /// Micro-batches of `batch` per optimizer step (gradient accumulation).
    pub accumulate: usize,
    pub lr: f64,
    pub warmup: usize,
    pub val_every: usize,
    pub val_clips: usize,
    pub checkpoint_every: usize,
    pub seed: u64,
    /// Generator runs: the tokenizer checkpoint whose tokens the generator learns.
    pub tokenizer: Option<PathBuf>,
    /// Generator runs: `auto`, `minilm` or `small`.
    pub text_encoder: String,
}

/// What the tokens view tokenizes (the engine's input type).
pub use hitvideo_engine::service::tokens::ClipInput as TokenSource;

/// A clip to tokenize, and how to make its redundancy masks.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub source: TokenSource,
    /// Largest fraction of a layer's maskable tokens that may be masked.
    pub cap: f64,
    /// Largest changed fraction of a token's bits that still counts as redundant (0: only
    /// unchanged tokens).
    pub tolerance: f64,
    /// Fill strategy of the masked decode.
    pub fill: FillStrategy,
    /// Video files and clips go through the general tokenizer when one is loaded (generated
    /// tokens always through the loaded tokenizer that made them).
    pub general: bool,
}

/// One generation (or re-roll) request (serializable: the studio's queue is saved with its
/// settings).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GenerateRequest {
    pub prompt: String,
    /// Replaces the unconditional branch of CFG when set.
    pub negative: Option<String>,
    /// Saved as `7.5`, `linear:1:7.5` or one value per layer `1,3,5,7.5`.
    pub cfg_schedule: CfgSchedule,
    /// One output clip per seed.
    pub seeds: Vec<u64>,
    pub temperature: f32,
    pub top_k: Option<usize>,
    pub top_p: f32,
    /// Re-roll: per seed, the ids of the coarse layers to keep (whole layers, sequence order).
    pub keep: Vec<Vec<u32>>,
}

/// A grid over two sampling parameters: every (row value, column value) pair is one clip
/// made with `base` and those two values.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRequest {
    /// The settings every cell shares (one seed; the axes override their parameters).
    pub base: GenerateRequest,
    pub rows: AxisValues,
    pub columns: AxisValues,
}

impl SweepRequest {
    /// The generation settings of cell (`ri`, `ci`): the base with the axes' values set (as
    /// the engine's sweep sets them).
    pub fn cell_request(&self, ri: usize, ci: usize) -> GenerateRequest {
        let mut r = GenerateRequest { keep: Vec::new(), ..self.base.clone() };
        for (axis, i) in [(&self.rows, ri), (&self.columns, ci)] {
            let mut s = CellSettings { cfg: CfgSchedule::Constant { scale: 1.0 }, seed: 0, sampling: SamplingConfig::default() };
            axis.apply(i, &mut s);
            match axis.axis() {
                SweepAxis::Cfg => r.cfg_schedule = s.cfg,
                SweepAxis::Seed => r.seeds = vec![s.seed],
                SweepAxis::Temperature => r.temperature = s.sampling.temperature,
                SweepAxis::TopK => r.top_k = s.sampling.top_k,
                SweepAxis::TopP => r.top_p = s.sampling.top_p,
            }
        }
        r
    }
}

/// The tokens of an opened export, to decode through the loaded generator's tokenizer into
/// the clip slot, so the clip plays and "Re-roll details" keeps its coarse layers.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeRequest {
    /// The file the tokens come from (named in messages).
    pub source: PathBuf,
    /// The settings the clip was made with, as read from its metadata.
    pub request: GenerateRequest,
    /// Every layer's ids in sequence order, coarsest first.
    pub tokens: Vec<u32>,
    /// The file's metadata (its model checksums are compared with the loaded models'; it
    /// stays the clip's export metadata).
    pub meta: Box<ExportMetadata>,
}

/// The jobs the engine thread runs.
#[derive(Debug)]
pub enum Task {
    /// Fresh, untrained models (random weights) of the given presets, for trying the pipeline.
    UntrainedModels {
        tokenizer: TokenizerPreset,
        generator: GeneratorPreset,
    },
    /// Load a tokenizer checkpoint (run or step folder).
    LoadTokenizer(PathBuf),
    /// Load the model bundle's general tokenizer (the Tokens view's default for video files).
    LoadGeneral(PathBuf),
    /// Load a generator checkpoint (run or step folder) with `tokenizer`, or with the
    /// tokenizer its token cache records.
    LoadGenerator {
        generator: PathBuf,
        tokenizer: Option<PathBuf>,
    },
    /// Parameters and estimated training memory at a batch size: of tokenizer preset `preset`,
    /// or, with `generator_on` (the tokenizer checkpoint and the text-encoder choice), of
    /// generator preset `preset` over that tokenizer's layers. `key` comes back with the answer.
    Estimate {
        key: String,
        preset: RunPreset,
        batch: usize,
        generator_on: Option<(PathBuf, EncoderChoice)>,
    },
    TrainTokenizer(TrainRequest),
    TrainGenerator(TrainRequest),
    Tokenize(TokenRequest),
    Generate(GenerateRequest),
    Sweep(SweepRequest),
    /// Decode an opened export's tokens into the clip slot.
    Decode(DecodeRequest),
    /// Write a clip as MP4 / GIF / PNG frames (by extension) with its metadata.
    Export {
        video: Arc<Video>,
        path: PathBuf,
        meta: Box<ExportMetadata>,
        /// Nearest-neighbour enlargement (1: as generated); the metadata stays the 1x clip's.
        scale: u32,
    },
}

impl Task {
    /// A short name for queues and the debug panel.
    pub fn name(&self) -> &'static str {
        match self {
            Task::UntrainedModels { .. } => "untrained models",
            Task::LoadTokenizer(_) => "load tokenizer",
            Task::LoadGeneral(_) => "load general tokenizer",
            Task::LoadGenerator { .. } => "load generator",
            Task::Estimate { .. } => "estimate",
            Task::TrainTokenizer(_) => "train tokenizer",
            Task::TrainGenerator(_) => "train generator",
            Task::Tokenize(_) => "tokenize",
            Task::Generate(_) => "generate",
            Task::Sweep(_) => "sweep",
            Task::Decode(_) => "decode clip",
            Task::Export { .. } => "export",
        }
    }
}

/// Which models the engine holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelStatus {
    /// A description of the tokenizer (preset and source), if one is loaded.
    pub tokenizer: Option<String>,
    /// Its layers, coarsest first: `[t, h, w, bits]`.
    pub tokenizer_layers: Vec<[usize; 4]>,
    pub generator: Option<String>,
    /// The general tokenizer for real footage, if the bundle has one, and its folder.
    pub general: Option<String>,
    pub general_path: Option<PathBuf>,
}

/// Progress of a training run.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainUpdate {
    /// A step: the loss and named curves plotted beside it (the tokenizer's L1, the
    /// generator's cross-entropy per layer).
    Step {
        step: usize,
        total: usize,
        loss: f32,
        curves: Vec<(String, f32)>,
        seconds: f64,
    },
    /// A validation: titled named values (PSNR from the k coarsest layers; cross-entropy per
    /// layer) and, for tokenizers, per-layer codebook usage (fraction of codes) and perplexity.
    Validation {
        step: usize,
        title: String,
        values: Vec<(String, f64)>,
        usage: Vec<f64>,
        perplexity: Vec<f64>,
    },
    Checkpoint {
        step: usize,
        path: PathBuf,
    },
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Finished; a one-line summary.
    Done(String),
    /// Stopped by its cancel flag; a one-line summary of what was kept.
    Cancelled(String),
    /// Failed; the message names the file or setting and the fix.
    Failed(String),
    /// The engine part this job needs does not exist yet; the message says which.
    NotAvailable(String),
}

/// What the engine thread reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The device in use, as `device::select` described it.
    Device(String),
    Models(ModelStatus),
    Started {
        job: JobId,
        task: &'static str,
    },
    Train {
        job: JobId,
        update: TrainUpdate,
    },
    /// Parameters and memory of a run (answer to the [`Task::Estimate`] of the same `key`), and
    /// what the device has (`memory`).
    Estimate {
        key: String,
        parameters: usize,
        bytes: u64,
        memory: DeviceMemory,
    },
    /// Work done of a job in its own units (tokens for generation, cells for sweeps).
    Progress {
        job: JobId,
        done: usize,
        total: usize,
        rate: f64,
    },
    /// A new payload for `job` is in `slot`.
    Payload {
        job: JobId,
        slot: SlotName,
    },
    Finished {
        job: JobId,
        outcome: Outcome,
    },
    /// Something the user should know about `job` (`None`: about the engine as a whole) that
    /// does not fail it, e.g. an opened clip was made by another generator; the app shows it as
    /// a notice.
    Warning {
        job: Option<JobId>,
        text: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_cell_request_is_the_base_with_the_axes_values() {
        let base = GenerateRequest {
            prompt: "p".into(),
            negative: None,
            cfg_schedule: CfgSchedule::Linear { from: 1.0, to: 5.0 },
            seeds: vec![1],
            temperature: 1.0,
            top_k: None,
            top_p: 1.0,
            keep: vec![vec![3]],
        };
        let req = SweepRequest { base, rows: AxisValues::Cfg(vec![2.5, 7.5]), columns: AxisValues::TopK(vec![None, Some(4)]) };
        let r = req.cell_request(1, 1);
        assert_eq!((r.cfg_schedule.to_string().as_str(), r.seeds.as_slice(), r.top_k, r.temperature, r.keep.len()), ("7.5", &[1][..], Some(4), 1.0, 0));
        let req = SweepRequest { rows: AxisValues::Seed(vec![4, 9]), columns: AxisValues::Temperature(vec![0.7]), ..req };
        let r = req.cell_request(1, 0);
        assert_eq!((r.cfg_schedule.to_string().as_str(), r.seeds.as_slice(), r.temperature), ("linear:1:5", &[9][..], 0.7));
    }
}

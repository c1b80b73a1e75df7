//! The engine thread: owns the Burn device and the models, runs one job at a time, reports
//! through events and slots. A panic inside a job (or a device switch) is caught and reported,
//! so bad input never takes the studio down.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc;

use hitvideo_engine::checkpoint;
use hitvideo_engine::device::{self, Device, DeviceChoice};
use hitvideo_engine::generator::config::GeneratorPreset;
use hitvideo_engine::generator::{GeneratorConfig, TextConditionConfig};
use hitvideo_engine::service::text::EncoderChoice;
use hitvideo_engine::tokenizer::config::TokenizerPreset;
use hitvideo_engine::tokenizer::load_tokenizer;
use hitvideo_engine::tokenizer::{Tokenizer, TokenizerConfig, info};
use hitvideo_engine::video;

use super::error::JobError;
use super::generate::{self, LoadedGenerator};
use super::memory::device_memory;
use super::protocol::{Command, Event, Job, ModelStatus, Outcome, RunPreset, Task};
use super::{Slots, Waker, tokens, train, train_generator};

/// A tokenizer the engine holds.
pub(super) struct LoadedTokenizer {
    pub model: Tokenizer,
    pub cfg: TokenizerConfig,
    /// Preset and where it came from ("untrained" or the checkpoint folder).
    pub label: String,
    /// The checkpoint folder it was read from (`None`: untrained).
    pub path: Option<PathBuf>,
}

pub(super) struct Worker {
    pub device: Device,
    pub device_text: String,
    /// Whether `device` is a GPU (then its memory is not checked against estimates).
    pub is_gpu: bool,
    pub tokenizer: Option<LoadedTokenizer>,
    pub generator: Option<LoadedGenerator>,
    /// The bundle's general tokenizer (real footage), used by the Tokens view for files.
    pub general: Option<LoadedTokenizer>,
    pub slots: Slots,
    events: mpsc::Sender<Event>,
    waker: Waker,
}

impl Worker {
    pub fn new(events: mpsc::Sender<Event>, waker: Waker, slots: Slots) -> Self {
        Self { device: Device::flex(), device_text: "CPU (Flex)".into(), is_gpu: false, tokenizer: None, generator: None, general: None, slots, events, waker }
    }

    /// Sends an event and wakes the UI.
    pub fn emit(&self, e: Event) {
        let _ = self.events.send(e);
        (self.waker)();
    }

    pub fn run(mut self, rx: &mpsc::Receiver<Command>) {
        while let Ok(cmd) = rx.recv() {
            match cmd {
                Command::SetDevice(choice) => self.switch_device(choice, Self::set_device),
                Command::Run(job, task) => {
                    if job.cancel.load(Ordering::Relaxed) {
                        self.emit(Event::Finished { job: job.id, outcome: Outcome::Cancelled("cancelled before it started".into()) });
                        continue;
                    }
                    self.emit(Event::Started { job: job.id, task: task.name() });
                    let outcome = match catch_unwind(AssertUnwindSafe(|| self.run_task(&job, *task))) {
                        Ok(o) => o,
                        Err(p) => Outcome::Failed(format!(
                            "the engine failed inside this job ({}); the studio keeps running — check the inputs and try again",
                            panic_text(&p)
                        )),
                    };
                    self.emit(Event::Finished { job: job.id, outcome });
                }
                Command::Shutdown => break,
            }
        }
    }

    /// Runs `switch` (normally [`Self::set_device`]) so that a panic inside it is reported as a
    /// device event instead of ending the engine thread.
    fn switch_device(&mut self, choice: DeviceChoice, switch: impl FnOnce(&mut Self, DeviceChoice)) {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| switch(self, choice))) {
            self.emit(Event::Device(format!(
                "{} (switching to '{choice}' failed inside the engine: {}; pick another device or restart the studio)",
                self.device_text,
                panic_text(&p)
            )));
            self.emit(Event::Models(self.model_status()));
        }
    }

    fn set_device(&mut self, choice: DeviceChoice) {
        // The CPU needs no adapter list (enumerating wgpu adapters costs time and log noise).
        let selected = if choice == DeviceChoice::Cpu { device::select_from(choice, &[]) } else { device::select(choice) };
        self.apply_selection(choice, selected);
    }

    /// Moves the models to the selected device. Every copy is made first and the worker changes
    /// only when all succeeded, so a failed selection, a failed move (or a panic, caught by
    /// [`Self::switch_device`]) leaves the device and the models as they were.
    fn apply_selection(&mut self, choice: DeviceChoice, selected: Result<device::SelectedDevice, device::NoAdapter>) {
        let sel = match selected {
            Ok(sel) => sel,
            Err(e) => {
                self.emit(Event::Device(format!("{} (asked for '{choice}': {e}; the models stay where they were)", self.device_text)));
                return;
            }
        };
        let moved =
            |t: &LoadedTokenizer| LoadedTokenizer { model: t.model.copy_to(&sel.device), cfg: t.cfg.clone(), label: t.label.clone(), path: t.path.clone() };
        let tokenizer = self.tokenizer.as_ref().map(moved);
        let general = self.general.as_ref().map(moved);
        let generator = match self.generator.as_ref().map(|g| g.copy_to(&sel.device)).transpose() {
            Ok(g) => g,
            Err(e) => {
                self.emit(Event::Device(format!("{} (the generator could not move to '{choice}': {e}; the models stay where they were)", self.device_text)));
                return;
            }
        };
        self.device = sel.device;
        self.is_gpu = sel.is_gpu;
        self.device_text = sel.description;
        self.tokenizer = tokenizer;
        self.generator = generator;
        self.general = general;
        self.emit(Event::Device(self.device_text.clone()));
        self.emit(Event::Models(self.model_status()));
    }

    pub fn model_status(&self) -> ModelStatus {
        ModelStatus {
            tokenizer: self.tokenizer.as_ref().map(|t| t.label.clone()),
            tokenizer_layers: self.tokenizer.as_ref().map(|t| t.cfg.layers.iter().map(|l| [l.t, l.h, l.w, l.bits]).collect()).unwrap_or_default(),
            generator: self.generator.as_ref().map(|g| g.label.clone()),
            general: self.general.as_ref().map(|t| t.label.clone()),
            general_path: self.general.as_ref().and_then(|t| t.path.clone()),
        }
    }

    fn run_task(&mut self, job: &Job, task: Task) -> Outcome {
        match task {
            Task::UntrainedModels { tokenizer, generator } => self.untrained(tokenizer, generator),
            Task::LoadTokenizer(path) => self.load_tokenizer(job, &path, false),
            Task::LoadGeneral(path) => self.load_tokenizer(job, &path, true),
            Task::LoadGenerator { generator, tokenizer } => {
                let out = generate::load_generator(self, job, &generator, tokenizer.as_deref());
                self.emit(Event::Models(self.model_status()));
                out
            }
            Task::Estimate { key, preset, batch, generator_on } => match estimate(preset, batch, generator_on.as_ref()) {
                Ok((parameters, bytes)) => {
                    self.emit(Event::Estimate { key, parameters, bytes, memory: device_memory(self.is_gpu) });
                    Outcome::Done(String::new())
                }
                Err(e) => Outcome::Failed(e.to_string()),
            },
            Task::TrainTokenizer(req) => train::train_tokenizer(self, job, req),
            Task::TrainGenerator(req) => train_generator::train_generator(self, job, req),
            Task::Tokenize(src) => tokens::tokenize(self, job, src),
            Task::Generate(req) => generate::generate(self, job, req),
            Task::Sweep(req) => generate::sweep(self, job, req),
            Task::Decode(req) => generate::decode(self, job, req),
            Task::Export { video, path, meta, scale } => match video.upscaled(scale).and_then(|v| video::export(&v, &path, &meta)) {
                Ok(files) => Outcome::Done(format!("wrote {}", files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))),
                Err(e) => Outcome::Failed(e.to_string()),
            },
        }
    }

    fn untrained(&mut self, tokenizer: TokenizerPreset, generator: GeneratorPreset) -> Outcome {
        let cfg = tokenizer.config();
        self.device.seed(0);
        self.tokenizer = Some(LoadedTokenizer { model: cfg.init(&self.device), label: format!("{tokenizer} (untrained)"), cfg, path: None });
        let gen_note = match generate::untrained_generator(self, generator) {
            Ok(()) => format!("generator '{generator}'"),
            Err(why) => {
                self.generator = None;
                format!("no generator ({why})")
            }
        };
        self.emit(Event::Models(self.model_status()));
        Outcome::Done(format!("untrained tokenizer '{tokenizer}' and {gen_note}: random weights, the output is noise until trained"))
    }

    /// Loads a tokenizer checkpoint (as the general tokenizer with `general`); cancelled while
    /// it reads, the one already held is kept.
    fn load_tokenizer(&mut self, job: &Job, path: &Path, general: bool) -> Outcome {
        // A run whose `latest` is broken opens at its newest intact step: say so.
        if let Ok(checkpoint::Resolved { note: Some(text), .. }) = checkpoint::resolve_noted(path) {
            self.emit(Event::Warning { job: Some(job.id), text });
        }
        match load_tokenizer(path, None, &self.device) {
            Ok(_) if job.cancel.load(Ordering::Relaxed) => {
                Outcome::Cancelled(format!("loading the tokenizer {} cancelled; the models already loaded are kept", path.display()))
            }
            Ok((model, cfg, state)) => {
                let label = format!("{} step {} ({})", cfg.name, state.step, path.display());
                let loaded = Some(LoadedTokenizer { model, label: label.clone(), cfg, path: Some(path.to_path_buf()) });
                if general {
                    self.general = loaded
                } else {
                    self.tokenizer = loaded
                }
                self.emit(Event::Models(self.model_status()));
                Outcome::Done(format!("loaded {}tokenizer {label}", if general { "general " } else { "" }))
            }
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_else(|| "unknown panic".into())
}

/// Parameters and estimated training memory (bytes) of a tokenizer preset, or of a generator
/// preset over the layers of the tokenizer checkpoint in `generator_on` (with its text encoder).
fn estimate(preset: RunPreset, batch: usize, generator_on: Option<&(PathBuf, EncoderChoice)>) -> Result<(usize, u64), JobError> {
    let (preset, (tokenizer, text_encoder)) = match (preset, generator_on) {
        (RunPreset::Tokenizer(p), _) => {
            let r = info::info(&p.config());
            return Ok((r.parameters, r.train_memory_batch1 + r.train_memory_per_clip * batch.saturating_sub(1) as u64));
        }
        (RunPreset::Generator(p), Some(on)) => (p, on),
        (RunPreset::Generator(_), None) => return Err("choose the tokenizer checkpoint the generator learns (Tokenizer…)".into()),
    };
    let dir = checkpoint::resolve(tokenizer)?;
    let bytes = checkpoint::read_file(&dir, "config.json")?;
    let tok = TokenizerConfig::from_json(&bytes).map_err(|e| format!("{}: unreadable config.json ({e})", dir.display()))?;
    let text = TextConditionConfig::for_encoder(text_encoder.resolve(None).name());
    let cfg = GeneratorConfig::preset(preset.name(), &tok, text)?;
    Ok((cfg.num_params(), cfg.training_memory(batch)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_panic_while_switching_devices_is_reported_and_the_thread_goes_on() {
        let (tx, rx) = mpsc::channel();
        let mut w = Worker::new(tx, Arc::new(|| {}), Slots::default());
        w.switch_device(DeviceChoice::Cpu, |_, _| panic!("no adapter answered"));
        let events: Vec<Event> = rx.try_iter().collect();
        assert!(events.iter().any(|e| matches!(e, Event::Device(d) if d.contains("no adapter answered") && d.contains("restart the studio"))), "{events:?}");
        // The worker still answers: a real switch to the CPU works.
        w.switch_device(DeviceChoice::Cpu, Worker::set_device);
        assert!(rx.try_iter().any(|e| matches!(e, Event::Models(_))));
    }

    #[test]
    fn a_failed_device_switch_leaves_the_models_where_they_were() {
        let (tx, rx) = mpsc::channel();
        let mut w = Worker::new(tx, Arc::new(|| {}), Slots::default());
        let cfg = TokenizerConfig::preset("tiny").expect("tiny");
        w.tokenizer = Some(LoadedTokenizer { model: cfg.init(&w.device), cfg, label: "tiny (untrained)".into(), path: None });
        generate::untrained_generator(&mut w, GeneratorPreset::Tiny).expect("generator");
        let before = (w.device_text.clone(), w.model_status());
        // No adapter at all: the GPU cannot be selected.
        w.apply_selection(DeviceChoice::Gpu, device::select_from(DeviceChoice::Gpu, &[]));
        assert_eq!((w.device_text.clone(), w.model_status()), before);
        let events: Vec<Event> = rx.try_iter().collect();
        assert!(events.iter().any(|e| matches!(e, Event::Device(d) if d.contains("the models stay where they were"))), "{events:?}");
        // A panic in the middle of a switch changes nothing either.
        w.switch_device(DeviceChoice::Cpu, |w, _| {
            let _staged = w.tokenizer.as_ref().map(|t| t.model.clone());
            panic!("adapter lost while copying");
        });
        assert_eq!((w.device_text.clone(), w.model_status()), before);
        assert!(w.tokenizer.is_some() && w.generator.is_some());
    }
}

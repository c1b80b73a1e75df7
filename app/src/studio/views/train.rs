//! Train view: dataset, preset and steps; start, pause, resume and stop for tokenizer and
//! generator training; live loss and validation curves; per-layer codebook usage with a
//! collapse warning; a reconstruction strip; the checkpoint list; the device picker with a
//! memory estimate before a run starts, beside what the device has (a warning when larger).
//! A run from an earlier session opens paused ("Open run…", a dropped run folder, or the last
//! run when the studio starts) and Resume continues it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui;
use egui_plot::{Bar, BarChart, Legend, Line, Plot};
use hitvideo_engine::device::DeviceChoice;

use super::train_run::{self, FolderKind, OpenRunError, folder_kind, inspect_run, neither_run_nor_dataset};
use super::train_settings::settings_ui;
use super::{ERROR, FrameTexture, Shared, WARN, outcome_label};
use crate::studio::dialogs::{DialogPurpose, DialogSpec};
use crate::studio::jobs::{DeviceMemory, Event, JobId, Outcome, Task, TrainStrip, TrainUpdate, memory_note};
use crate::studio::settings::{TrainSettings, TrainTarget};

/// A layer whose validation perplexity is below this is flagged as collapsing.
const COLLAPSE_PERPLEXITY: f64 = 2.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunState {
    #[default]
    Idle,
    Running,
    Pausing,
    Paused,
    Stopping,
    Finished,
}

#[derive(Default)]
pub struct TrainView {
    job: Option<JobId>,
    pub state: RunState,
    target: TrainTarget,
    run_dir: Option<PathBuf>,
    pub step: usize,
    total: usize,
    secs_per_step: f64,
    /// Token-cache building progress of a generator run: (done, total).
    building: Option<(usize, usize)>,
    loss: Vec<[f64; 2]>,
    curves: Vec<(String, Vec<[f64; 2]>)>,
    val_title: String,
    val: Vec<(usize, Vec<(String, f64)>)>,
    usage: Vec<f64>,
    perplexity: Vec<f64>,
    pub checkpoints: Vec<(usize, PathBuf)>,
    /// The newest tokenizer checkpoint of this session (a generator run can start from it).
    pub last_tokenizer: Option<PathBuf>,
    strip: Option<Arc<TrainStrip>>,
    strip_seen: u64,
    strip_tex: Vec<FrameTexture>,
    /// The last answer: its key, parameters, bytes and what the device has.
    estimate: Option<(String, usize, u64, DeviceMemory)>,
    /// Key of the last estimate asked for (what the settings were).
    asked: Option<String>,
    outcome: Option<Outcome>,
    error: Option<String>,
}

impl TrainView {
    /// The last error or outcome shown, for diagnostics.
    pub fn message(&self) -> Option<String> {
        self.error.clone().or_else(|| self.outcome.as_ref().map(|o| format!("{o:?}")))
    }

    pub fn on_event(&mut self, e: &Event) {
        match e {
            Event::Estimate { key, parameters, bytes, memory } => self.estimate = Some((key.clone(), *parameters, *bytes, memory.clone())),
            Event::Progress { job, done, total, .. } if Some(*job) == self.job => self.building = Some((*done, *total)),
            Event::Train { job, update } if Some(*job) == self.job => self.update(update),
            Event::Finished { job, outcome } if Some(*job) == self.job => {
                self.job = None;
                self.building = None;
                self.state = match (self.state, outcome) {
                    (RunState::Running | RunState::Pausing, Outcome::Cancelled(_)) if !self.checkpoints.is_empty() => RunState::Paused,
                    _ => RunState::Finished,
                };
                self.outcome = Some(outcome.clone());
            }
            _ => {}
        }
    }

    fn update(&mut self, u: &TrainUpdate) {
        match u {
            TrainUpdate::Step { step, total, loss, curves, seconds } => {
                self.building = None;
                (self.step, self.total) = (*step, *total);
                self.loss.push([*step as f64, f64::from(*loss)]);
                for (name, v) in curves {
                    match self.curves.iter_mut().find(|(n, _)| n == name) {
                        Some((_, pts)) => pts.push([*step as f64, f64::from(*v)]),
                        None => self.curves.push((name.clone(), vec![[*step as f64, f64::from(*v)]])),
                    }
                }
                self.secs_per_step = if self.secs_per_step == 0.0 { *seconds } else { 0.8 * self.secs_per_step + 0.2 * seconds };
            }
            TrainUpdate::Validation { step, title, values, usage, perplexity } => {
                self.val_title = title.clone();
                self.val.push((*step, values.clone()));
                self.usage = usage.clone();
                self.perplexity = perplexity.clone();
            }
            TrainUpdate::Checkpoint { step, path } => {
                self.checkpoints.push((*step, path.clone()));
                if self.target == TrainTarget::Tokenizer {
                    self.last_tokenizer = Some(path.clone());
                }
            }
        }
    }

    /// Opens the run in `path` (a run folder, or one of its step-* checkpoints) as a paused
    /// run, as "Open run…" does: its kind, preset, steps and batch go into the settings, its
    /// checkpoints are listed, and Resume continues it. The folder is remembered in the
    /// settings. A folder that is no tokenizer or generator run leaves the view as it was,
    /// with an error naming the folder (also returned).
    pub fn open_run(&mut self, s: &mut TrainSettings, path: &Path) -> Result<(), OpenRunError> {
        let opened = self.try_open(s, path);
        if let Err(e) = &opened {
            self.error = Some(e.to_string());
        }
        opened
    }

    fn try_open(&mut self, s: &mut TrainSettings, path: &Path) -> Result<(), OpenRunError> {
        if self.job.is_some() {
            return Err(OpenRunError::Busy(path.to_path_buf()));
        }
        let run = inspect_run(path)?;
        let keep = (self.estimate.take(), self.asked.take(), self.last_tokenizer.take());
        *self = Self { estimate: keep.0, asked: keep.1, last_tokenizer: keep.2, ..Self::default() };
        let run_target = train_run::target(run.kind);
        self.target = run_target;
        s.target = run_target;
        match run_target {
            TrainTarget::Tokenizer => {
                s.preset = run.preset.clone();
                self.last_tokenizer = Some(run.latest.clone());
            }
            TrainTarget::Generator => {
                s.generator_preset = run.preset.clone();
                s.tokenizer = run.tokenizer.clone().or(s.tokenizer.take());
            }
        }
        s.steps = run.steps.unwrap_or(s.steps);
        s.batch = run.batch.unwrap_or(s.batch);
        s.accumulate = run.accumulate.unwrap_or(s.accumulate);
        (self.step, self.total) = (run.step, s.steps.max(run.step));
        self.outcome = Some(Outcome::Done(train_run::summary(&run, s.steps)));
        self.checkpoints = run.checkpoints;
        self.state = RunState::Paused;
        self.run_dir = Some(run.dir.clone());
        s.last_run = Some(run.dir);
        Ok(())
    }

    /// A folder dropped on the view: a run opens paused ([`Self::open_run`]), a dataset
    /// becomes the dataset folder, anything else leaves an error saying what to drop.
    pub fn drop_folder(&mut self, s: &mut TrainSettings, path: PathBuf) {
        match folder_kind(&path) {
            FolderKind::Run => {
                let _ = self.open_run(s, &path);
            }
            FolderKind::Dataset => {
                s.folder = Some(path);
                self.error = None;
            }
            FolderKind::Other => self.error = Some(neither_run_nor_dataset(&path)),
        }
    }

    fn start(&mut self, sh: &mut Shared<'_>, s: &mut TrainSettings, resume: bool) {
        let dir = match (&self.run_dir, resume) {
            (Some(d), true) => d.clone(),
            _ => {
                let root = s.runs_dir.clone().unwrap_or_else(|| sh.work_dir.join("runs"));
                let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
                let (kind, preset) = match s.target {
                    TrainTarget::Tokenizer => ("tokenizer", &s.preset),
                    TrainTarget::Generator => ("generator", &s.generator_preset),
                };
                new_run_dir(&root, kind, preset, ms)
            }
        };
        match s.request(dir.clone(), resume, sh.models.general_path.as_ref()) {
            Ok(req) => {
                if !resume {
                    let keep = (self.estimate.take(), self.asked.take(), self.last_tokenizer.take());
                    *self = Self { estimate: keep.0, asked: keep.1, last_tokenizer: keep.2, ..Self::default() };
                    self.target = s.target;
                }
                self.error = None;
                self.outcome = None;
                self.run_dir = Some(dir.clone());
                s.last_run = Some(dir);
                let task = match self.target {
                    TrainTarget::Tokenizer => Task::TrainTokenizer(req),
                    TrainTarget::Generator => Task::TrainGenerator(req),
                };
                self.job = Some(sh.engine.submit(task));
                self.state = RunState::Running;
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, sh: &mut Shared<'_>, s: &mut TrainSettings, device: &mut DeviceChoice) {
        let idle = self.job.is_none();
        let general = sh.models.general_path.clone();
        ui.add_enabled_ui(idle, |ui| settings_ui(ui, &mut *sh.dialogs, s, device, self.last_tokenizer.as_ref(), general.as_ref()));
        // The estimate follows the settings: asked again whenever what it depends on changes.
        let generator = s.target == TrainTarget::Generator;
        let preset = if generator { &s.generator_preset } else { &s.preset };
        let generator_on = generator.then(|| s.tokenizer.clone().map(|t| (t, s.text_encoder.clone())));
        // The device is part of the key: the estimate is compared with what that device has.
        let key = format!("{preset}|{}|{generator_on:?}|{device}", s.batch);
        if idle && generator_on != Some(None) && self.asked.as_ref() != Some(&key) {
            self.asked = Some(key.clone());
            match s.estimate_args() {
                Ok((preset, generator_on)) => {
                    sh.engine.submit(Task::Estimate { key: key.clone(), preset, batch: s.batch, generator_on });
                }
                Err(e) => self.error = Some(e.to_string()),
            }
        }
        match &self.estimate {
            _ if generator_on == Some(None) => {
                ui.label("choose the tokenizer checkpoint to estimate the generator's memory");
            }
            Some((k, params, bytes, memory)) if *k == key => {
                let what = if generator { "generator" } else { "tokenizer" };
                let (note, warn) = memory_note(*bytes, memory);
                ui.horizontal_wrapped(|ui| {
                    ui.label(format!(
                        "{what} {preset}: {:.2} M parameters; estimated training memory at batch {}: {:.0} MiB",
                        *params as f64 / 1e6,
                        s.batch,
                        *bytes as f64 / 1048576.0
                    ));
                    if warn {
                        ui.colored_label(WARN, note);
                    } else {
                        ui.label(note);
                    }
                });
            }
            _ => {
                ui.label("estimating memory…");
            }
        }
        self.buttons_ui(ui, sh, s, idle);
        if let Some(e) = &self.error {
            ui.colored_label(ERROR, e);
        }
        outcome_label(ui, &self.outcome);
        if let Some(d) = &self.run_dir {
            ui.label(format!("run folder: {}", d.display()));
        }
        if let Some((done, total)) = self.building {
            ui.add(egui::ProgressBar::new(done as f32 / total.max(1) as f32).text(format!("building the token cache: {done} / {total} clips")));
        }
        if self.total > 0 {
            let left = self.total.saturating_sub(self.step) as f64 * self.secs_per_step;
            ui.add(
                egui::ProgressBar::new(self.step as f32 / self.total as f32)
                    .text(format!("step {} / {} · {:.2} s/step · ETA {:.0} s", self.step, self.total, self.secs_per_step, left)),
            );
        }
        egui::ScrollArea::vertical().show(ui, |ui| self.results_ui(ui, sh));
    }

    fn buttons_ui(&mut self, ui: &mut egui::Ui, sh: &mut Shared<'_>, s: &mut TrainSettings, idle: bool) {
        ui.horizontal(|ui| {
            let st = self.state;
            if ui.add_enabled(idle, egui::Button::new("Start")).clicked() {
                self.start(sh, s, false);
            }
            if ui.add_enabled(st == RunState::Running, egui::Button::new("Pause")).clicked()
                && let Some(j) = self.job
            {
                sh.engine.cancel(j);
                self.state = RunState::Pausing;
            }
            if ui.add_enabled(idle && st == RunState::Paused, egui::Button::new("Resume")).clicked() {
                self.start(sh, s, true);
            }
            if ui.add_enabled(matches!(st, RunState::Running | RunState::Pausing), egui::Button::new("Stop")).clicked()
                && let Some(j) = self.job
            {
                sh.engine.cancel(j);
                self.state = RunState::Stopping;
            }
            let open = ui
                .add_enabled(idle && !sh.dialogs.is_open(), egui::Button::new("Open run…"))
                .on_hover_text("continue a run from an earlier session: choose its run folder");
            if open.clicked() {
                // The app opens the folder chosen with `open_run` ([`DialogPurpose::OpenRun`]).
                let root = s.runs_dir.clone().unwrap_or_else(|| sh.work_dir.join("runs"));
                sh.dialogs.open(DialogPurpose::OpenRun, DialogSpec::pick_folder().title("Training run folder (holds step-* checkpoints)").directory(root));
            }
            ui.label(format!("state: {:?}", self.state));
        });
    }

    fn results_ui(&mut self, ui: &mut egui::Ui, sh: &mut Shared<'_>) {
        ui.columns(2, |cols| {
            cols[0].label("training loss");
            Plot::new("train-loss").height(180.0).legend(Legend::default()).show(&mut cols[0], |p| {
                p.line(Line::new("loss", self.loss.clone()));
                for (name, pts) in &self.curves {
                    p.line(Line::new(name.clone(), pts.clone()));
                }
            });
            cols[1].label(if self.val_title.is_empty() { "validation" } else { &self.val_title });
            Plot::new("train-val").height(180.0).legend(Legend::default()).show(&mut cols[1], |p| {
                let names: Vec<String> = self.val.last().map(|(_, v)| v.iter().map(|(n, _)| n.clone()).collect()).unwrap_or_default();
                for (i, name) in names.iter().enumerate() {
                    let pts: Vec<[f64; 2]> = self.val.iter().filter_map(|(s, v)| v.get(i).map(|(_, y)| [*s as f64, *y])).collect();
                    p.line(Line::new(name.clone(), pts));
                }
            });
        });
        if !self.usage.is_empty() {
            ui.label("codebook usage per layer (validation, % of codes)");
            let bars = self.usage.iter().enumerate().map(|(j, u)| Bar::new(j as f64 + 1.0, u * 100.0).name(format!("layer {}", j + 1))).collect();
            Plot::new("train-usage").height(120.0).show(ui, |p| p.bar_chart(BarChart::new("usage %", bars)));
            for w in collapse_warnings(&self.perplexity) {
                ui.colored_label(WARN, w);
            }
        }
        self.strip_ui(ui, sh);
        if !self.checkpoints.is_empty() {
            ui.label("checkpoints");
            for (step, path) in self.checkpoints.clone().iter().rev() {
                ui.horizontal(|ui| {
                    ui.label(format!("step {step}: {}", path.display()));
                    let (label, task) = match self.target {
                        TrainTarget::Tokenizer => ("Load for the tokens view", Task::LoadTokenizer(path.clone())),
                        TrainTarget::Generator => ("Load for generation", Task::LoadGenerator { generator: path.clone(), tokenizer: None }),
                    };
                    if ui.small_button(label).clicked() {
                        sh.submit_app(task);
                    }
                });
            }
        }
    }

    fn strip_ui(&mut self, ui: &mut egui::Ui, sh: &Shared<'_>) {
        let mut seen = self.strip_seen;
        if let Some(s) = sh.engine.slots().train_strip.take_newer(&mut seen) {
            self.strip = Some(s);
        }
        self.strip_seen = seen;
        let Some(strip) = self.strip.clone() else { return };
        ui.label(format!("step {}: {}", strip.step, strip.title));
        let n = strip.originals.len();
        if !strip.captions.is_empty() {
            ui.horizontal(|ui| {
                for c in &strip.captions {
                    ui.add_sized([96.0, 14.0], egui::Label::new(egui::RichText::new(c).small()).truncate()).on_hover_text(c);
                }
            });
        }
        self.strip_tex.resize_with(2 * n, FrameTexture::default);
        for (row, clips) in [&strip.originals, &strip.recon].into_iter().enumerate() {
            ui.horizontal(|ui| {
                for (i, v) in clips.iter().enumerate() {
                    if let Some(t) = self.strip_tex.get_mut(row * n + i) {
                        t.show(ui, "strip", v, self.strip_seen, v.len() / 2, egui::vec2(96.0, 96.0));
                    }
                }
            });
        }
    }
}

/// A warning for each layer whose validation perplexity says it uses almost no codes.
fn collapse_warnings(perplexity: &[f64]) -> Vec<String> {
    perplexity
        .iter()
        .enumerate()
        .filter(|(_, p)| **p < COLLAPSE_PERPLEXITY)
        .map(|(j, p)| format!("warning: layer {} may be collapsing: perplexity {p:.2} (few codes in use)", j + 1))
        .collect()
}

/// The folder of a new run under `root`: `<kind>-<preset>-<ms>`. A custom preset is a path
/// (or a name read from a file, maybe with `../`): only its safe stem names the folder, so the
/// run never lands outside `root`.
fn new_run_dir(root: &Path, kind: &str, preset: &str, ms: u128) -> PathBuf {
    root.join(format!("{kind}-{}-{ms}", hitvideo_engine::fsutil::safe_component(preset)))
}

#[cfg(test)]
mod tests {
    use super::{Path, collapse_warnings, new_run_dir};

    #[test]
    fn a_preset_name_with_dot_dot_stays_inside_the_runs_folder() {
        let root = Path::new("/work/runs");
        for preset in ["../../etc/evil", "../evil.json", "/abs/presets/wide.json", "..", "tiny"] {
            let dir = new_run_dir(root, "tokenizer", preset, 7);
            assert_eq!(dir.parent(), Some(root), "{preset} -> {}", dir.display());
            let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            assert!(name.starts_with("tokenizer-") && name.ends_with("-7") && !name.contains('/'), "{name}");
        }
        assert_eq!(new_run_dir(root, "generator", "/abs/presets/wide.json", 1), root.join("generator-wide-1"));
    }

    #[test]
    fn only_layers_with_a_tiny_perplexity_are_flagged() {
        assert!(collapse_warnings(&[11.3, 26.4, 62.0, 36.2]).is_empty());
        let w = collapse_warnings(&[11.3, 1.0, 62.0, 1.9]);
        assert_eq!(w.len(), 2);
        assert!(w[0].starts_with("warning: layer 2 may be collapsing: perplexity 1.00"), "{}", w[0]);
        assert!(w[1].contains("layer 4"), "{}", w[1]);
    }
}

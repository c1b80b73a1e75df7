//! The desktop studio (eframe/egui). UI only: one engine thread ([`jobs`]) owns the Burn
//! device and the models; the views send it typed commands, read its events once per frame in
//! `App::logic`, and read large results from latest-value slots — no tensor is touched here.
//! Views: Generate, Tokens, Sweep, Train, Data; a debug panel (F12) shows frame times and the
//! engine's state; settings persist between runs. File dialogs run off the UI thread
//! ([`dialogs`]); their answers are handled in `App::logic` too.

mod debug;
pub mod dialogs;
pub mod error;
pub mod gallery;
mod gpu_tokenmap;
pub mod jobs;
mod player;
pub mod settings;
pub mod tokenmap;
pub mod views;
mod window;

use std::path::PathBuf;
use std::sync::Arc;

use eframe::egui;
use hitvideo_engine::device::DeviceChoice;
use hitvideo_engine::video::ExportFormat;

use debug::DebugPanel;
pub use debug::FrameStats;
use dialogs::{DialogPurpose, Dialogs};
use jobs::{EngineHandle, Event, JobId, ModelStatus, Outcome, Waker};
pub use settings::{SETTINGS_KEY, Settings, View};
use views::{ERROR, Shared};
use window::save_png;
pub use window::{default_work_dir, demo_models, run};

/// The longest a screenshot waits for the start-up prompt's clip.
pub const SHOT_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

/// How the studio starts (besides the persisted settings).
#[derive(Debug, Clone)]
pub struct StudioOptions {
    /// Save a PNG of the window after a few frames, then close.
    pub screenshot: Option<PathBuf>,
    /// Where new training runs and other files the studio makes go.
    pub work_dir: PathBuf,
    /// Where to look for the demo bundle (`<dir>/models`, see `hitvideo_engine::bundle`); `None`: the
    /// default places (see [`demo_models`]).
    pub assets: Option<PathBuf>,
    /// A prompt to generate as soon as a generator is loaded.
    pub prompt: Option<String>,
}

/// The studio application state.
pub struct StudioApp {
    settings: Settings,
    engine: EngineHandle,
    device_text: String,
    device_sent: DeviceChoice,
    models: ModelStatus,
    app_jobs: Vec<JobId>,
    /// Messages for the user: (is an error, text).
    notices: Vec<(bool, String)>,
    /// Saved settings that could not be read, kept in storage on the next save.
    unreadable_settings: Option<String>,
    pub data: views::data::DataView,
    pub generate: views::generate::GenerateView,
    pub tokens: views::tokens::TokensView,
    pub sweep: views::sweep::SweepView,
    pub train: views::train::TrainView,
    pub compare: views::compare::CompareView,
    debug: DebugPanel,
    /// File dialogs, answered off the UI thread.
    dialogs: Dialogs,
    /// The shortcut overlay (F1) is open.
    pub show_help: bool,
    work_dir: PathBuf,
    screenshot: Option<PathBuf>,
    /// A screenshot was requested and the window closes once it is saved.
    screenshot_pending: bool,
    /// The start-up prompt, until it is submitted.
    autostart: Option<String>,
    /// With a start-up prompt, the screenshot waits for its clip (at most [`SHOT_WAIT`]).
    shot_waits_for_clip: bool,
    opened: std::time::Instant,
    frames_drawn: u64,
    wgpu: Option<eframe::egui_wgpu::RenderState>,
}

/// Every keyboard shortcut of the studio, as the F1 overlay lists them.
pub const SHORTCUTS: [(&str, &str); 6] = [
    ("F1", "show or hide this list"),
    ("Ctrl+Enter", "generate (queue) with the current settings (Generate view)"),
    ("Space", "play or pause the clip"),
    ("Left / Right", "previous / next frame (pauses)"),
    ("F12", "show or hide the debug panel"),
    ("Esc", "leave a text field (then Space and the arrows reach the player)"),
];

/// The F1 overlay: every shortcut and what it does.
fn shortcuts_ui(ui: &mut egui::Ui) {
    egui::Grid::new("shortcuts").num_columns(2).striped(true).show(ui, |ui| {
        for (keys, what) in SHORTCUTS {
            ui.strong(keys);
            ui.label(what);
            ui.end_row();
        }
    });
}

impl StudioApp {
    /// A studio drawing into `ctx`; `wgpu` is the renderer's state when it runs on wgpu.
    pub fn new(ctx: &egui::Context, wgpu: Option<eframe::egui_wgpu::RenderState>, settings: Settings, opts: StudioOptions) -> Self {
        let repaint = ctx.clone();
        let waker: Waker = Arc::new(move || repaint.request_repaint());
        let engine = EngineHandle::spawn(settings.device, waker);
        let mut app = Self {
            device_sent: settings.device,
            settings,
            engine,
            device_text: "choosing…".into(),
            models: ModelStatus::default(),
            app_jobs: Vec::new(),
            notices: Vec::new(),
            unreadable_settings: None,
            data: Default::default(),
            generate: Default::default(),
            tokens: Default::default(),
            sweep: Default::default(),
            train: Default::default(),
            compare: Default::default(),
            debug: DebugPanel::default(),
            dialogs: Dialogs::new(),
            show_help: false,
            work_dir: opts.work_dir.clone(),
            screenshot_pending: false,
            shot_waits_for_clip: opts.prompt.is_some(),
            autostart: opts.prompt,
            screenshot: opts.screenshot,
            opened: std::time::Instant::now(),
            frames_drawn: 0,
            wgpu,
        };
        app.data.show_synthetic(app.settings.synth_seed);
        // The last run reopens paused, so Resume continues it (a folder since removed is skipped).
        if let Some(run) = app.settings.train.last_run.clone()
            && views::train_run::folder_kind(&run) == views::train_run::FolderKind::Run
        {
            let _ = app.train.open_run(&mut app.settings.train, &run);
        }
        match demo_models(opts.assets.as_deref()) {
            Some(Ok(b)) => {
                let id = app.engine.submit(jobs::Task::LoadGenerator { generator: b.generator, tokenizer: Some(b.tokenizer) });
                app.app_jobs.push(id);
                if let Some(general) = b.general {
                    let id = app.engine.submit(jobs::Task::LoadGeneral(general));
                    app.app_jobs.push(id);
                }
            }
            Some(Err(e)) => app.notices.push((true, format!("demo models not loaded: {e}"))),
            None => {}
        }
        app
    }

    /// For eframe: settings from storage (defaults in screenshot mode).
    pub fn from_creation(cc: &eframe::CreationContext<'_>, device: Option<DeviceChoice>, opts: StudioOptions) -> Self {
        let mut loaded =
            if opts.screenshot.is_some() { settings::Loaded::default() } else { settings::load(cc.storage.and_then(|s| s.get_string(SETTINGS_KEY))) };
        if let Some(d) = device {
            loaded.settings.device = d;
        }
        let mut app = Self::new(&cc.egui_ctx, cc.wgpu_render_state.clone(), loaded.settings, opts);
        app.notices.extend(loaded.notices.into_iter().map(|n| (true, n)));
        app.unreadable_settings = loaded.unreadable;
        app
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn settings_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }

    /// Opens a training run in the Train view as its "Open run…" button does (for tests and
    /// callers without a file dialog); the error is also shown in the view.
    pub fn open_train_run(&mut self, path: &std::path::Path) -> Result<(), views::train_run::OpenRunError> {
        self.train.open_run(&mut self.settings.train, path)
    }

    /// Replaces the file dialogs (tests answer them with [`Dialogs::with_opener`]).
    pub fn set_dialogs(&mut self, dialogs: Dialogs) {
        self.dialogs = dialogs;
    }

    /// Whether a file dialog is open (its answer not yet handled).
    pub fn dialog_open(&self) -> bool {
        self.dialogs.is_open()
    }

    /// Recent frame times.
    pub fn frame_stats(&self) -> FrameStats {
        self.debug.stats()
    }

    /// Messages shown to the user, oldest first: (is an error, text).
    pub fn notices(&self) -> &[(bool, String)] {
        &self.notices
    }

    /// What the engine holds.
    pub fn models(&self) -> &ModelStatus {
        &self.models
    }

    /// Whether the engine has nothing queued or running.
    pub fn engine_idle(&self) -> bool {
        self.engine.pending().is_empty()
    }

    /// Whether the screenshot (if any) should be taken now: after a few frames, and with a
    /// start-up prompt once its clip is complete (or [`SHOT_WAIT`] has passed).
    fn shot_due(&self) -> bool {
        let waited = self.opened.elapsed() >= SHOT_WAIT;
        self.frames_drawn >= 10 && (!self.shot_waits_for_clip || self.generate.has_finished_clip() || waited)
    }

    fn handle(&mut self, e: &Event) {
        self.debug.on_event(e);
        match e {
            Event::Device(d) => self.device_text = d.clone(),
            Event::Warning { text, .. } => self.notices.push((true, text.clone())),
            Event::Models(m) => self.models = m.clone(),
            Event::Finished { job, outcome } if self.app_jobs.contains(job) => {
                self.app_jobs.retain(|j| j != job);
                match outcome {
                    Outcome::Done(s) => self.notices.push((false, s.clone())),
                    Outcome::Cancelled(s) => self.notices.push((false, s.clone())),
                    Outcome::Failed(s) | Outcome::NotAvailable(s) => self.notices.push((true, s.clone())),
                }
            }
            _ => {}
        }
        let slots = self.engine.slots().clone();
        self.generate.on_event(e, &slots);
        self.tokens.on_event(e);
        self.sweep.on_event(e);
        self.train.on_event(e);
    }

    /// Does what a file dialog was opened for ([`DialogPurpose`]) with the path chosen: what
    /// the button that opened it did when dialogs blocked the UI.
    fn on_dialog(&mut self, ctx: &egui::Context, purpose: DialogPurpose, path: PathBuf) {
        let mut sh = Shared {
            engine: &mut self.engine,
            models: &self.models,
            work_dir: &self.work_dir,
            app_jobs: &mut self.app_jobs,
            wgpu: self.wgpu.as_ref(),
            dialogs: &mut self.dialogs,
        };
        match purpose {
            DialogPurpose::MenuOpenVideo => {
                self.settings.view = View::Data;
                self.settings.last_video = Some(path.clone());
                self.data.open_video(path);
            }
            DialogPurpose::DataOpenVideo => {
                self.settings.last_video = Some(path.clone());
                self.data.open_video(path);
            }
            DialogPurpose::MenuOpenExport => {
                self.settings.view = View::Generate;
                self.generate.open_export(ctx, path);
            }
            DialogPurpose::GenerateOpenExport => self.generate.open_export(ctx, path),
            DialogPurpose::TokensOpenVideo => self.tokens.tokenize_file(&mut sh, &self.settings.tokens, path),
            DialogPurpose::LoadTokenizer => {
                // A tokenizer the user opens is the one the Tokens view then shows videos through.
                self.settings.tokens.general = false;
                sh.submit_app(jobs::Task::LoadTokenizer(path));
            }
            DialogPurpose::LoadGenerator => sh.submit_app(jobs::Task::LoadGenerator { generator: path, tokenizer: None }),
            // A name typed without the extension would otherwise be written as PNG frames.
            DialogPurpose::SaveExport { video, meta, format, scale } => views::export_video(&mut sh, video, meta, format, path, scale),
            DialogPurpose::SaveSweep { video, meta } => views::export_video(&mut sh, video, meta, ExportFormat::Mp4, path, 1),
            DialogPurpose::TrainTokenizer => self.settings.train.tokenizer = Some(path),
            DialogPurpose::TrainDataset => self.settings.train.folder = Some(path),
            DialogPurpose::OpenRun => {
                // An error shows in the Train view (a run in progress refuses it too).
                let _ = self.train.open_run(&mut self.settings.train, &path);
            }
            // The gallery lists the new folder at the next frame.
            DialogPurpose::OutputsFolder => self.settings.generate.outputs_dir = Some(path),
        }
    }

    fn dropped_files(&mut self, ctx: &egui::Context) {
        let files: Vec<PathBuf> = ctx.input(|i| i.raw.dropped_files.iter().map(|f| f.path().to_path_buf()).collect());
        for path in files {
            let mut sh = Shared {
                engine: &mut self.engine,
                models: &self.models,
                work_dir: &self.work_dir,
                app_jobs: &mut self.app_jobs,
                wgpu: self.wgpu.as_ref(),
                dialogs: &mut self.dialogs,
            };
            match self.settings.view {
                View::Tokens if path.is_dir() => sh.submit_app(jobs::Task::LoadTokenizer(path)),
                View::Tokens => self.tokens.tokenize_file(&mut sh, &self.settings.tokens, path),
                View::Generate | View::Sweep => self.generate.open_export(ctx, path),
                View::Train if path.is_dir() => self.train.drop_folder(&mut self.settings.train, path),
                View::Compare => {
                    let label = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    self.compare.add_file(label, path);
                }
                _ => {
                    self.settings.view = View::Data;
                    self.settings.last_video = Some(path.clone());
                    self.data.open_video(path);
                }
            }
        }
    }

    fn top_bar(&mut self, ui: &mut egui::Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                // The files chosen are opened in `on_dialog`.
                let free = !self.dialogs.is_open();
                if ui.add_enabled(free, egui::Button::new("Open video…")).clicked() {
                    self.dialogs.open(DialogPurpose::MenuOpenVideo, dialogs::DialogSpec::open_video());
                    ui.close();
                }
                if ui.add_enabled(free, egui::Button::new("Open exported file (restore settings, re-roll it)…")).clicked() {
                    self.dialogs.open(DialogPurpose::MenuOpenExport, dialogs::DialogSpec::pick_file());
                    ui.close();
                }
                if ui.button("Quit").clicked() {
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
            ui.menu_button("View", |ui| {
                ui.checkbox(&mut self.settings.show_debug, "Debug panel (F12)");
            });
            ui.separator();
            for v in View::ALL {
                ui.selectable_value(&mut self.settings.view, v, v.label());
            }
        });
    }

    fn central(&mut self, ui: &mut egui::Ui) {
        let mut dismiss = None;
        for (i, (err, text)) in self.notices.iter().enumerate().rev().take(3) {
            ui.horizontal(|ui| {
                // Dismiss first: a long notice is cut to the window (its whole text on hover).
                if ui.small_button("Dismiss").clicked() {
                    dismiss = Some(i);
                }
                let label = if *err { egui::Label::new(egui::RichText::new(text).color(ERROR)) } else { egui::Label::new(text) };
                ui.add(label.truncate()).on_hover_text(text);
            });
        }
        if let Some(i) = dismiss {
            self.notices.remove(i);
        }
        let mut sh = Shared {
            engine: &mut self.engine,
            models: &self.models,
            work_dir: &self.work_dir,
            app_jobs: &mut self.app_jobs,
            wgpu: self.wgpu.as_ref(),
            dialogs: &mut self.dialogs,
        };
        let s = &mut self.settings;
        match s.view {
            View::Generate => self.generate.ui(ui, &mut sh, &mut s.generate),
            View::Tokens => self.tokens.ui(ui, &mut sh, &mut s.tokens),
            View::Sweep => self.sweep.ui(ui, &mut sh, &s.generate, &mut s.sweep),
            View::Train => self.train.ui(ui, &mut sh, &mut s.train, &mut s.device),
            View::Data => self.data.ui(ui, &mut *sh.dialogs, &mut s.synth_seed),
            View::Compare => self.compare.ui(ui),
        }
        for (label, video) in std::mem::take(&mut self.sweep.to_compare) {
            s.view = View::Compare;
            self.compare.add(label, video);
        }
        if let Some((video, meta, job)) = self.sweep.to_gallery.take() {
            self.generate.save_to_gallery(video, meta, job);
        }
        if let Some((meta, video)) = self.sweep.to_generate.take() {
            s.generate.restore(&meta);
            s.view = View::Generate;
            let what = format!("a sweep cell: seed {}, CFG {}", meta.seed.unwrap_or(0), meta.cfg_schedule.as_ref().map_or("-".into(), ToString::to_string));
            self.generate.show_video(video, format!("{what} (its settings are restored at the left)"));
        }
        for (label, source) in std::mem::take(&mut self.generate.to_compare) {
            s.view = View::Compare;
            match source {
                views::generate::CompareSource::Clip(video) => self.compare.add(label, video),
                views::generate::CompareSource::File(path) => self.compare.add_file(label, path),
            }
        }
        if let Some(src) = self.generate.to_tokens.take() {
            s.view = View::Tokens;
            self.tokens.submit(&mut sh, &s.tokens, src);
        }
    }
}

impl eframe::App for StudioApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        for e in self.engine.poll() {
            self.handle(&e);
        }
        if let Some((purpose, Some(path))) = self.dialogs.poll() {
            self.on_dialog(ctx, purpose, path);
        }
        if self.dialogs.is_open() {
            // Nothing else may wake the UI when the answer comes.
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
        }
        if self.data.poll() {
            ctx.request_repaint();
        }
        if self.settings.device != self.device_sent {
            self.device_sent = self.settings.device;
            self.engine.set_device(self.device_sent);
        }
        if self.models.generator.is_some()
            && let Some(prompt) = self.autostart.take()
        {
            self.settings.view = View::Generate;
            self.settings.generate.prompt = prompt;
            let mut sh = Shared {
                engine: &mut self.engine,
                models: &self.models,
                work_dir: &self.work_dir,
                app_jobs: &mut self.app_jobs,
                wgpu: self.wgpu.as_ref(),
                dialogs: &mut self.dialogs,
            };
            self.generate.generate(&mut sh, &mut self.settings.generate);
        }
        {
            let mut sh = Shared {
                engine: &mut self.engine,
                models: &self.models,
                work_dir: &self.work_dir,
                app_jobs: &mut self.app_jobs,
                wgpu: self.wgpu.as_ref(),
                dialogs: &mut self.dialogs,
            };
            self.generate.poll_open(&mut sh, &mut self.settings.generate);
            self.generate.logic(&mut sh, &mut self.settings.generate);
        }
        if ctx.input(|i| i.key_pressed(egui::Key::F12)) {
            self.settings.show_debug = !self.settings.show_debug;
        }
        if ctx.input(|i| i.key_pressed(egui::Key::F1)) {
            self.show_help = !self.show_help;
        }
        self.dropped_files(ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let started = self.debug.frame_start();
        self.frames_drawn += 1;
        egui::Panel::top("top").show(ui, |ui| self.top_bar(ui));
        egui::Panel::bottom("status").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label(format!("device: {}", self.device_text));
                ui.separator();
                let p = self.engine.pending();
                ui.label(match p.first() {
                    Some(j) => format!("engine: {} ({} queued)", j.task, p.len() - 1),
                    None => "engine: idle".into(),
                });
                if self.dialogs.is_open() {
                    ui.separator();
                    ui.label("a file dialog is open");
                }
                // The app's own jobs (model loads, the demo models at start-up, exports) are
                // cancelled here; the views cancel theirs.
                let mine: Vec<(JobId, &'static str)> = p.iter().filter(|j| self.app_jobs.contains(&j.id)).map(|j| (j.id, j.task)).collect();
                for (id, task) in mine {
                    if ui.small_button(format!("Cancel {task}")).on_hover_text("a queued job is dropped; a running one stops at its next step").clicked() {
                        self.engine.cancel(id);
                    }
                }
            });
        });
        if self.settings.show_debug {
            egui::Panel::right("debug").default_size(320.0).show(ui, |ui| self.debug.ui(ui, &self.device_text, &self.models, &self.engine));
        }
        egui::CentralPanel::default().show(ui, |ui| {
            ui.heading(self.settings.view.label());
            self.central(ui);
        });
        if self.show_help {
            egui::Window::new("Shortcuts").open(&mut self.show_help).collapsible(false).resizable(false).show(ui.ctx(), shortcuts_ui);
        }
        if self.shot_due()
            && let Some(path) = self.screenshot.take()
        {
            let ctx = ui.ctx().clone();
            if self.shot_waits_for_clip && !self.generate.has_finished_clip() {
                eprintln!("screenshot: no clip after {} s; taking it anyway", SHOT_WAIT.as_secs());
            }
            // The player's frame in physical pixels, for checks of the picture.
            let area = self.generate.player.frame_rect.map(|r| r * ui.ctx().pixels_per_point());
            ui.ctx().request_screenshot(move |img| {
                match save_png(&img, &path) {
                    Ok(()) => {
                        if let Some(r) = area {
                            println!("video area: {} {} {} {}", r.min.x.round(), r.min.y.round(), r.width().round(), r.height().round());
                        }
                    }
                    Err(e) => eprintln!("screenshot: {e}"),
                }
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            });
            self.screenshot_pending = true;
        }
        if self.screenshot.is_some() || self.screenshot_pending {
            ui.ctx().request_repaint();
        }
        self.debug.frame_end(started);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if let Some(text) = self.unreadable_settings.take() {
            storage.set_string(settings::UNREADABLE_KEY, text);
        }
        eframe::set_value(storage, SETTINGS_KEY, &self.settings);
    }
}

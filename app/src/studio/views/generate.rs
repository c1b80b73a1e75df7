//! Generate view: prompt and negative prompt, CFG value and schedule, seeds (random, locked or
//! a range), temperature / top-k / top-p, batch size; Generate (Ctrl+Enter) into a queue with
//! a progress bar (tokens/s, ETA); the coarse-to-fine preview in a player; re-roll of the fine
//! layers (fresh seeds, current sampling settings); export with metadata; a history strip of
//! this session; the gallery on disk at the side (every finished generation saved with its
//! settings and tokens, listed after a restart, filtered by prompt, restored by a click, deleted
//! after a confirmation); opening an exported file (its settings restored, its clip decoded
//! from its tokens so it can be re-rolled).

use std::path::PathBuf;
use std::sync::Arc;

use eframe::egui;
use hitvideo_engine::video::meta::SamplerSettings;
use hitvideo_engine::video::{ExportFormat, ExportMetadata, Video};

use super::generate_open::{Opening, decode_request};
use super::generate_settings::{seeds_text, settings_ui};
use super::{ERROR, FrameTexture, Shared, outcome_label};
use crate::studio::dialogs::{DialogPurpose, DialogSpec};
use crate::studio::error::FileError;
use crate::studio::gallery::{self, GalleryItem, Scan};
use crate::studio::jobs::{ClipPayload, Event, GenerateRequest, JobId, Outcome, Slots, Task, TokenSource};
use crate::studio::player::Player;
use crate::studio::settings::{EXPORT_SCALES, GenerateSettings, QueuedGeneration, SeedMode};

/// A clip sent to the Compare view.
pub enum CompareSource {
    /// A clip in memory (a row of the current generation).
    Clip(Arc<Video>),
    /// A saved clip (a gallery item), read when it is added.
    File(PathBuf),
}

/// One finished generation, kept in the history strip.
struct HistoryItem {
    clip: Arc<ClipPayload>,
    thumb: FrameTexture,
}

#[derive(Default)]
pub struct GenerateView {
    /// Own jobs, queued or running, with their requests.
    jobs: Vec<(JobId, GenerateRequest)>,
    progress: Option<(JobId, usize, usize, f64, std::time::Instant)>,
    pub clip: Option<Arc<ClipPayload>>,
    seen: u64,
    /// Which row (seed) of the current clip the player shows.
    row: usize,
    pub player: Player,
    history: Vec<HistoryItem>,
    /// Set when the user asks to see the current clip's tokens (the app opens the tokens view).
    pub to_tokens: Option<TokenSource>,
    /// Clips the user sent to the Compare view (the app moves them there).
    pub to_compare: Vec<(String, CompareSource)>,
    outcome: Option<Outcome>,
    error: Option<String>,
    random: SeedStream,
    /// An exported file whose metadata is being read.
    opening: Option<Opening>,
    /// The job decoding an opened file's tokens.
    decoding: Option<JobId>,
    /// The saved clips of the outputs folder, newest first.
    pub gallery: Vec<GalleryItem>,
    /// The folder `gallery` lists, and a listing in progress.
    gallery_dir: Option<PathBuf>,
    scan: Option<Scan>,
    /// Finished rows waiting to be saved: video, metadata, job, row.
    to_save: Vec<(Arc<Video>, Box<ExportMetadata>, JobId, usize)>,
    /// Saves in progress (export jobs) and the file each writes: a failure is shown here and
    /// the item leaves the gallery; a success is silent.
    saving: Vec<(JobId, PathBuf)>,
    /// The gallery's prompt filter.
    pub gallery_filter: String,
    /// The saved clip a "Delete…" asks about.
    confirm_delete: Option<PathBuf>,
    /// The highest queue number given (numbers are not reused while the view lives).
    last_number: u64,
    /// What happened to a queue row removed before it ran.
    queue_note: Option<String>,
    /// What the player shows when it is not a generation of this view (a sweep cell).
    shown_label: Option<String>,
    /// Preview events of the latest job that sent one: (job, count).
    pub previews: (JobId, usize),
}

/// Seeds for random mode and re-rolls: a splitmix64 stream that starts from the operating
/// system's randomness, so every session (and every view) draws different seeds.
struct SeedStream(u64);

impl Default for SeedStream {
    fn default() -> Self {
        Self(rand::random())
    }
}

impl SeedStream {
    /// The next seed, below one million (easy to read, lock and type back).
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % 1_000_000
    }
}

/// Export metadata for row `row` of a generation: the engine's when the clip is complete,
/// otherwise the request's settings.
pub fn metadata(video: &Video, clip: &ClipPayload, row: usize) -> ExportMetadata {
    if let Some(m) = clip.metas.get(row) {
        return m.clone();
    }
    let r = &clip.request;
    let mut m = ExportMetadata::for_video(video);
    m.prompt = Some(r.prompt.clone());
    m.negative_prompt = r.negative.clone();
    m.seed = r.seeds.get(row).copied();
    m.cfg_schedule = Some(r.cfg_schedule.clone());
    m.cfg = r.cfg_schedule.finest();
    m.sampler = SamplerSettings { temperature: Some(r.temperature), top_k: r.top_k, top_p: Some(r.top_p) };
    for (name, label) in &clip.models {
        m.extra.insert(name.clone(), serde_json::Value::String(label.clone()));
    }
    m.extra.insert("layers_decoded".into(), serde_json::json!(clip.layers_done));
    m
}

impl GenerateView {
    /// Adds a generation to the queue (it starts at once when nothing of this view runs).
    fn submit(&mut self, sh: &mut Shared<'_>, s: &mut GenerateSettings, req: GenerateRequest) {
        self.error = None;
        let number = s.queue.iter().map(|q| q.number).max().unwrap_or(0).max(self.last_number) + 1;
        self.last_number = number;
        s.queue.push(QueuedGeneration { number, request: req, paused: false });
        if sh.models.generator.is_none() {
            self.queue_note = Some(format!(
                "no generator loaded: train one (Train view), open a generator checkpoint folder, or press \"Use untrained tiny \
                 models\"; #q{number} waits in the queue until one is loaded"
            ));
        }
        self.pump(sh, s);
    }

    /// Starts the first queued generation that is not paused, when no generation of this view
    /// is on the engine and a generator is loaded.
    fn pump(&mut self, sh: &mut Shared<'_>, s: &mut GenerateSettings) {
        if !self.jobs.is_empty() || sh.models.generator.is_none() {
            return;
        }
        let Some(i) = s.queue.iter().position(|q| !q.paused) else { return };
        let q = s.queue.remove(i);
        let id = sh.engine.submit(Task::Generate(q.request.clone()));
        self.jobs.push((id, q.request));
    }

    /// The view's error, or how its last job ended (for tests and the debug panel).
    pub fn message(&self) -> Option<String> {
        self.error.clone().or_else(|| self.outcome.as_ref().map(|o| format!("{o:?}")))
    }

    /// Whether a generation has finished with every layer decoded (it is in the history).
    pub fn has_finished_clip(&self) -> bool {
        !self.history.is_empty()
    }

    /// Queues a generation with the current settings.
    pub fn generate(&mut self, sh: &mut Shared<'_>, s: &mut GenerateSettings) {
        match s.request(self.random.next()) {
            Ok(req) => {
                if s.seed_mode == SeedMode::Random {
                    s.seed = req.seeds[0];
                }
                self.submit(sh, s, req);
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Opens an exported clip (dropped or picked): its metadata is read off the UI thread, then
    /// [`Self::poll_open`] restores its settings and queues the decode of its tokens.
    pub fn open_export(&mut self, ctx: &egui::Context, path: PathBuf) {
        self.error = None;
        self.outcome = Some(Outcome::Done(format!("reading {} …", path.display())));
        self.opening = Some(Opening::start(ctx, path));
    }

    /// Picks up an opened file's metadata (call once per frame): restores the settings it
    /// records and, with a generator loaded, queues the decode of its tokens on the engine
    /// thread, so the clip plays and "Re-roll details" keeps its coarse layers.
    pub fn poll_open(&mut self, sh: &mut Shared<'_>, s: &mut GenerateSettings) {
        let Some(read) = self.opening.as_ref().and_then(Opening::poll) else { return };
        let Some(path) = self.opening.take().map(|o| o.path) else { return };
        let meta = match read {
            Ok(meta) => meta,
            Err(e) => {
                self.outcome = None;
                self.error = Some(format!("cannot restore settings: {e}"));
                return;
            }
        };
        s.restore(&meta);
        let restored = format!("settings restored from {}", path.display());
        self.outcome = Some(Outcome::Done(match decode_request(&path, meta, s) {
            Err(FileError::Unusable { reason, .. }) => format!("{restored}; {reason}"),
            Err(why) => format!("{restored}; {why}"),
            Ok(_) if sh.models.generator.is_none() => {
                format!("{restored}; load a generator (e.g. \"Use untrained tiny models\") and open the file again to see its clip and re-roll it")
            }
            Ok(req) => {
                self.decoding = Some(sh.engine.submit(Task::Decode(req)));
                format!("{restored}; decoding its clip …")
            }
        }));
    }

    /// Whether `job` is one of this view's (a generation or an opened file's decode).
    fn owns(&self, job: JobId) -> bool {
        self.decoding == Some(job) || self.jobs.iter().any(|(j, _)| *j == job)
    }

    pub fn on_event(&mut self, e: &Event, slots: &Slots) {
        match e {
            Event::Finished { job, outcome } if self.saving.iter().any(|(j, _)| j == job) => {
                let path = self.saving.iter().find(|(j, _)| j == job).map(|(_, p)| p.clone());
                self.saving.retain(|(j, _)| j != job);
                if let (Outcome::Failed(why) | Outcome::NotAvailable(why) | Outcome::Cancelled(why), Some(p)) = (outcome, path) {
                    self.error = Some(format!("the clip was not saved to the gallery: {why}"));
                    self.gallery.retain(|i| i.path != p);
                }
            }
            Event::Payload { job, .. } if self.owns(*job) => {
                // One event per decoded preview (coarsest layer first), counted per job even when
                // the slot already holds a later one.
                match &mut self.previews {
                    (j, n) if *j == *job => *n += 1,
                    p => *p = (*job, 1),
                }
                let mut seen = self.seen;
                if let Some(c) = slots.clip.take_newer(&mut seen)
                    && c.job == *job
                {
                    self.show_clip(c);
                }
                self.seen = seen;
            }
            Event::Progress { job, done, total, rate } if self.jobs.iter().any(|(j, _)| j == job) => {
                let since = self.progress.as_ref().filter(|p| p.0 == *job).map(|p| p.4).unwrap_or_else(std::time::Instant::now);
                self.progress = Some((*job, *done, *total, *rate, since));
            }
            Event::Finished { job, outcome } if self.owns(*job) => {
                let was_decode = self.decoding == Some(*job);
                self.jobs.retain(|(j, _)| j != job);
                if self.decoding == Some(*job) {
                    self.decoding = None;
                }
                if self.progress.as_ref().is_some_and(|p| p.0 == *job) {
                    self.progress = None;
                }
                if let (Outcome::Done(_), Some(clip)) = (outcome, &self.clip)
                    && clip.job == *job
                {
                    self.history.push(HistoryItem { clip: Arc::clone(clip), thumb: FrameTexture::default() });
                    // A finished generation (not an opened file's decode) goes to the gallery.
                    if !was_decode {
                        for (row, v) in clip.videos.iter().enumerate() {
                            self.to_save.push((Arc::clone(v), Box::new(metadata(v, clip, row)), *job, row));
                        }
                    }
                }
                self.outcome = Some(outcome.clone());
            }
            _ => {}
        }
    }

    fn show_clip(&mut self, clip: Arc<ClipPayload>) {
        let same_job = self.clip.as_ref().is_some_and(|c| c.job == clip.job);
        self.row = if same_job { self.row.min(clip.videos.len().saturating_sub(1)) } else { 0 };
        if let Some(v) = clip.videos.get(self.row) {
            if same_job { self.player.replace(Arc::clone(v)) } else { self.player.set_video(Arc::clone(v)) }
        }
        self.clip = Some(clip);
    }

    /// The view: settings at the left, the gallery at the right, the queue, the clip (as large
    /// as the middle allows) and this session's history in the middle.
    pub fn ui(&mut self, ui: &mut egui::Ui, sh: &mut Shared<'_>, s: &mut GenerateSettings) {
        egui::Panel::right("gallery").default_size(300.0).resizable(true).show(ui, |ui| self.gallery_ui(ui, sh, s));
        let shortcut = egui::KeyboardShortcut::new(egui::Modifiers::COMMAND, egui::Key::Enter);
        let mut go = ui.input_mut(|i| i.consume_shortcut(&shortcut));
        egui::Panel::left("generate-settings").default_size(440.0).min_size(420.0).resizable(true).show(ui, |ui| {
            egui::ScrollArea::vertical().id_salt("generate-settings-scroll").show(ui, |ui| go |= self.settings_panel_ui(ui, sh, s));
        });
        if go {
            self.generate(sh, s);
        }
        if let Some(e) = &self.error {
            ui.colored_label(ERROR, e);
        }
        outcome_label(ui, &self.outcome);
        self.queue_ui(ui, sh, s);
        self.preview_ui(ui, sh, s);
        self.history_ui(ui, s);
    }

    /// The left panel: models, the settings grid, Generate, Re-roll and Open; true when
    /// Generate was pressed.
    fn settings_panel_ui(&mut self, ui: &mut egui::Ui, sh: &mut Shared<'_>, s: &mut GenerateSettings) -> bool {
        let mut go = false;
        sh.models_row(ui, true);
        if sh.models.generator.is_none() {
            ui.label(
                "No generator loaded. The demo models load by themselves when assets/models holds them (run \
                 scripts/demo-models to make them). Or train one (Train view), open a checkpoint folder (Open \
                 generator…), or press \"Use untrained tiny models\" to try the pipeline with random weights.",
            );
        }
        settings_ui(ui, s);
        ui.horizontal_wrapped(|ui| {
            go |= ui.button("Generate").on_hover_text("Ctrl+Enter").clicked();
            let can_reroll = self.clip.as_ref().is_some_and(|c| c.layers_done == c.layers_total) && self.jobs.is_empty() && self.decoding.is_none();
            ui.add(egui::DragValue::new(&mut s.keep_layers).range(1..=8).prefix("keep "));
            if ui
                .add_enabled(can_reroll, egui::Button::new("Re-roll details"))
                .on_hover_text("keep the coarse layers, resample the finer ones with fresh seeds and the current CFG and sampling settings")
                .clicked()
            {
                self.reroll(sh, s);
            }
            // The file chosen is opened by the app ([`DialogPurpose::GenerateOpenExport`]).
            if ui.add_enabled(!sh.dialogs.is_open(), egui::Button::new("Open exported file…")).clicked() {
                sh.dialogs.open(DialogPurpose::GenerateOpenExport, DialogSpec::pick_file());
            }
        });
        go
    }

    /// Keeps the clip's coarse layers and samples the finer ones again: the clip's prompt, a
    /// fresh seed per row, and the current CFG schedule and sampling settings.
    fn reroll(&mut self, sh: &mut Shared<'_>, s: &mut GenerateSettings) {
        let Some(clip) = self.clip.clone() else { return };
        let Some(layers) = sh.models.tokenizer_layers.get(..s.keep_layers.min(clip.layers_total.saturating_sub(1)).max(1)) else { return };
        let keep_n: usize = layers.iter().map(|l| l[0] * l[1] * l[2]).sum();
        let seeds = clip.tokens.iter().map(|_| self.random.next()).collect();
        let mut req = match s.request_with(clip.request.prompt.clone(), clip.request.negative.clone(), seeds) {
            Ok(req) => req,
            Err(e) => {
                self.error = Some(e.to_string());
                return;
            }
        };
        req.keep = clip.tokens.iter().map(|t| t[..keep_n.min(t.len())].to_vec()).collect();
        self.submit(sh, s, req);
    }

    /// The engine's generation (Cancel) and the queue behind it: each row can be cancelled,
    /// paused or resumed, moved up or down, and duplicated.
    fn queue_ui(&mut self, ui: &mut egui::Ui, sh: &mut Shared<'_>, s: &mut GenerateSettings) {
        for (id, req) in &self.jobs {
            ui.horizontal(|ui| {
                let running = sh.engine.pending().iter().any(|p| p.id == *id && p.started);
                // The button first: a long prompt or seed list must not push it out of reach.
                if ui.small_button("Cancel").clicked() {
                    sh.engine.cancel(*id);
                }
                let state = if running { "(running)" } else { "(starting)" };
                ui.add(egui::Label::new(format!("#{id} {state} · {} · {}", seeds_text(&req.seeds), req.prompt)).truncate()).on_hover_text(&req.prompt);
            });
        }
        enum Act {
            Cancel,
            Pause,
            Up,
            Down,
            Duplicate,
        }
        let mut act = None;
        let n = s.queue.len();
        for (i, q) in s.queue.iter().enumerate() {
            ui.horizontal(|ui| {
                if ui.small_button("Cancel").clicked() {
                    act = Some((i, Act::Cancel));
                }
                if ui.small_button(if q.paused { "Resume" } else { "Pause" }).clicked() {
                    act = Some((i, Act::Pause));
                }
                if ui.add_enabled(i > 0, egui::Button::new("Up").small()).on_hover_text("run earlier").clicked() {
                    act = Some((i, Act::Up));
                }
                if ui.add_enabled(i + 1 < n, egui::Button::new("Down").small()).on_hover_text("run later").clicked() {
                    act = Some((i, Act::Down));
                }
                if ui.small_button("Duplicate").clicked() {
                    act = Some((i, Act::Duplicate));
                }
                let r = &q.request;
                let state = if q.paused { "(paused)" } else { "(queued)" };
                ui.add(egui::Label::new(format!("#q{} {state} · {} · CFG {} · {}", q.number, seeds_text(&r.seeds), r.cfg_schedule, r.prompt)).truncate())
                    .on_hover_text(&r.prompt);
            });
        }
        if act.is_some() {
            // The rows drawn this frame are stale once the queue changes.
            ui.ctx().request_repaint();
        }
        match act {
            Some((i, Act::Cancel)) => {
                let q = s.queue.remove(i);
                self.queue_note = Some(format!("#q{} cancelled before it started", q.number));
            }
            Some((i, Act::Pause)) => s.queue[i].paused = !s.queue[i].paused,
            Some((i, Act::Up)) => s.queue.swap(i, i - 1),
            Some((i, Act::Down)) => s.queue.swap(i, i + 1),
            Some((i, Act::Duplicate)) => {
                let mut copy = s.queue[i].clone();
                copy.number = s.queue.iter().map(|q| q.number).max().unwrap_or(0).max(self.last_number) + 1;
                self.last_number = copy.number;
                s.queue.insert(i + 1, copy);
            }
            None => {}
        }
        if let Some(note) = &self.queue_note {
            ui.label(note);
        }
        if self.decoding.is_some() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("decoding the opened clip's tokens …");
            });
        }
        if let Some((_, done, total, rate, since)) = &self.progress {
            let eta = if *done > 0 { since.elapsed().as_secs_f64() * (total - done) as f64 / *done as f64 } else { 0.0 };
            ui.add(
                egui::ProgressBar::new(*done as f32 / (*total).max(1) as f32).text(format!("{done} / {total} tokens · {rate:.0} tokens/s · ETA {eta:.1} s")),
            );
        }
    }

    /// Shows a clip made elsewhere (a sweep cell) in the player, with a line saying what it is;
    /// the settings that made it are restored by the caller.
    pub fn show_video(&mut self, video: Arc<Video>, label: String) {
        self.clip = None;
        self.player.set_video(video);
        self.shown_label = Some(label);
    }

    fn preview_ui(&mut self, ui: &mut egui::Ui, sh: &mut Shared<'_>, s: &mut GenerateSettings) {
        let Some(clip) = self.clip.clone() else {
            if let (Some(label), Some(_)) = (&self.shown_label, self.player.video()) {
                ui.label(label);
                self.player.ui(ui);
            }
            return;
        };
        ui.horizontal(|ui| {
            ui.label(format!("preview: {} of {} layers decoded", clip.layers_done, clip.layers_total));
            for (i, seed) in clip.request.seeds.iter().enumerate() {
                if ui.selectable_label(self.row == i, format!("seed {seed}")).clicked() {
                    self.row = i;
                    if let Some(v) = clip.videos.get(i) {
                        self.player.set_video(Arc::clone(v));
                    }
                }
            }
        });
        // One row of buttons follows the frame, and the history strip when there is one.
        let row = ui.spacing().interact_size.y;
        let strip = if self.history.is_empty() { 0.0 } else { 64.0 + 3.0 * row };
        self.player.ui_with_room_below(ui, 2.0 * row + strip);
        ui.horizontal_wrapped(|ui| {
            let complete = clip.layers_done == clip.layers_total;
            if ui.add_enabled(complete, egui::Button::new("Compare seeds")).on_hover_text("every seed of this clip side by side in the Compare view").clicked()
            {
                for (seed, v) in clip.request.seeds.iter().zip(&clip.videos) {
                    self.to_compare.push((format!("{} (seed {seed})", clip.request.prompt), CompareSource::Clip(Arc::clone(v))));
                }
            }
            if ui.add_enabled(complete, egui::Button::new("Show tokens")).on_hover_text("this clip's tokens in the tokens view").clicked()
                && let Some(tokens) = clip.tokens.get(self.row)
            {
                let seed = clip.request.seeds.get(self.row).copied().unwrap_or(0);
                self.to_tokens = Some(TokenSource::Generated { tokens: tokens.clone(), label: format!("generated: {} (seed {seed})", clip.request.prompt) });
            }
            let free = !sh.dialogs.is_open();
            let scale = &mut s.export_scale;
            egui::ComboBox::from_id_salt("export-scale")
                .selected_text(format!("{scale}x"))
                .show_ui(ui, |ui| {
                    for s in EXPORT_SCALES {
                        ui.selectable_value(scale, s, format!("{s}x"));
                    }
                })
                .response
                .on_hover_text("exports enlarged by nearest neighbour (every pixel a block, no blur); the metadata is the 1x clip's");
            let scale = *scale;
            for (label, format, ext) in
                [("Export MP4…", ExportFormat::Mp4, "mp4"), ("Export GIF…", ExportFormat::Gif, "gif"), ("Export PNG frames…", ExportFormat::Png, "")]
            {
                if ui.add_enabled(free, egui::Button::new(label)).clicked() {
                    let Some(video) = clip.videos.get(self.row) else { continue };
                    let spec = if ext.is_empty() {
                        DialogSpec::pick_folder().file_name("frames")
                    } else {
                        DialogSpec::save_file().file_name(format!("clip.{ext}")).filter(ext, &[ext])
                    };
                    // The app exports to the path chosen (with the format's extension, see
                    // [`DialogPurpose::SaveExport`]).
                    let meta = Box::new(metadata(video, &clip, self.row));
                    sh.dialogs.open(DialogPurpose::SaveExport { video: Arc::clone(video), meta, format, scale }, spec);
                }
            }
        });
    }

    /// Saves a clip made elsewhere (a sweep's grid) to the gallery with the next save.
    pub fn save_to_gallery(&mut self, video: Arc<Video>, meta: Box<ExportMetadata>, job: JobId) {
        self.to_save.push((video, meta, job, 0));
    }

    /// The outputs folder of `s`.
    pub fn outputs_dir(sh: &Shared<'_>, s: &GenerateSettings) -> PathBuf {
        s.outputs_dir.clone().unwrap_or_else(|| sh.work_dir.join("outputs"))
    }

    /// Once per frame, whatever view is shown: starts the next queued generation, lists the
    /// outputs folder when it changed, picks up a finished listing, and saves finished
    /// generations there.
    pub fn logic(&mut self, sh: &mut Shared<'_>, s: &mut GenerateSettings) {
        self.pump(sh, s);
        let dir = Self::outputs_dir(sh, s);
        if self.gallery_dir.as_ref() != Some(&dir) && self.scan.as_ref().is_none_or(|sc| sc.dir != dir) {
            self.scan = Some(Scan::start(dir.clone()));
        }
        if let Some(result) = self.scan.as_ref().and_then(Scan::poll) {
            let scanned = self.scan.take().map(|sc| sc.dir);
            match result {
                Ok(items) => self.gallery = items,
                Err(e) => {
                    self.gallery.clear();
                    self.error = Some(e.to_string());
                }
            }
            self.gallery_dir = scanned;
        }
        if self.to_save.is_empty() {
            return;
        }
        if !s.autosave {
            self.to_save.clear();
            return;
        }
        if let Err(e) = std::fs::create_dir_all(&dir) {
            self.error = Some(format!("{}: cannot create the outputs folder ({e}); choose another one in the gallery", dir.display()));
            self.to_save.clear();
            return;
        }
        let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        for (video, meta, job, row) in std::mem::take(&mut self.to_save) {
            let path = gallery::output_path(&dir, ms, job, row, meta.prompt.as_deref().unwrap_or(""));
            self.gallery.insert(0, GalleryItem { path: path.clone(), meta: (*meta).clone(), modified: std::time::SystemTime::now() });
            let id = sh.engine.submit(Task::Export { video, path: path.clone(), meta, scale: 1 });
            self.saving.push((id, path));
        }
    }

    /// The gallery at the side: the outputs folder, a prompt filter, the saved clips (a click
    /// restores one), and a confirmed delete.
    fn gallery_ui(&mut self, ui: &mut egui::Ui, sh: &mut Shared<'_>, s: &mut GenerateSettings) {
        ui.heading("Gallery");
        let dir = Self::outputs_dir(sh, s);
        ui.add(egui::Label::new(format!("{} saved in {}", self.gallery.len(), dir.display())).wrap());
        ui.horizontal_wrapped(|ui| {
            ui.checkbox(&mut s.autosave, "save every clip");
            if ui.add_enabled(!sh.dialogs.is_open(), egui::Button::new("Outputs folder…")).clicked() {
                sh.dialogs.open(
                    DialogPurpose::OutputsFolder,
                    DialogSpec::pick_folder().title("Outputs folder (generated clips are saved here)").directory(dir.clone()),
                );
            }
        });
        ui.add(egui::TextEdit::singleline(&mut self.gallery_filter).hint_text("filter by prompt"));
        if self.scan.is_some() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("listing the outputs folder …");
            });
        }
        let mut open = None;
        let mut delete = None;
        egui::ScrollArea::vertical().id_salt("gallery-items").show(ui, |ui| {
            for item in self.gallery.iter().filter(|i| i.matches(&self.gallery_filter)) {
                let name = item.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                ui.horizontal(|ui| {
                    if ui.button("Delete…").on_hover_text(format!("delete {name}")).clicked() {
                        self.confirm_delete = Some(item.path.clone());
                    }
                    if ui.button("Add to compare").on_hover_text("add this clip to the Compare view").clicked() {
                        self.to_compare.push((item.label(), CompareSource::File(item.path.clone())));
                    }
                    let r = ui
                        .add(egui::Button::selectable(false, item.label()).truncate())
                        .on_hover_text(format!("{name}: click to restore its settings and clip"));
                    if r.clicked() {
                        open = Some(item.path.clone());
                    }
                });
                if self.confirm_delete.as_ref() == Some(&item.path) {
                    ui.horizontal(|ui| {
                        ui.colored_label(ERROR, format!("delete {name}?"));
                        if ui.button("Delete").clicked() {
                            delete = Some(item.clone());
                        }
                        if ui.button("Keep").clicked() {
                            self.confirm_delete = None;
                        }
                    });
                }
            }
        });
        if let Some(path) = open {
            self.open_export(ui.ctx(), path);
        }
        if let Some(item) = delete {
            self.confirm_delete = None;
            match gallery::delete(&item) {
                Ok(()) => self.gallery.retain(|i| i.path != item.path),
                Err(e) => self.error = Some(e.to_string()),
            }
        }
    }

    fn history_ui(&mut self, ui: &mut egui::Ui, s: &mut GenerateSettings) {
        if self.history.is_empty() {
            return;
        }
        ui.label("history (click to restore)");
        let mut pick = None;
        egui::ScrollArea::horizontal().show(ui, |ui| {
            ui.horizontal(|ui| {
                for (i, h) in self.history.iter_mut().enumerate().rev() {
                    let Some(v) = h.clip.videos.first() else { continue };
                    let r = h.thumb.show(ui, "history", v, h.clip.job, v.len() / 2, egui::vec2(64.0, 64.0));
                    let r = r.interact(egui::Sense::click());
                    let name = format!("history #{}: {}", h.clip.job, h.clip.request.prompt);
                    r.widget_info(|| egui::WidgetInfo::labeled(egui::accesskit::Role::Button, true, &name));
                    let r = r.on_hover_text(format!("{} · seeds {:?} · CFG {}", h.clip.request.prompt, h.clip.request.seeds, h.clip.request.cfg_schedule));
                    if r.clicked() {
                        pick = Some(i);
                    }
                }
            });
        });
        if let Some(i) = pick {
            let clip = Arc::clone(&self.history[i].clip);
            if let Some(v) = clip.videos.first() {
                s.restore(&metadata(v, &clip, 0));
            }
            self.clip = None;
            self.show_clip(clip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::GenerateView;

    #[test]
    fn fresh_views_draw_different_random_seeds() {
        let (mut a, mut b) = (GenerateView::default(), GenerateView::default());
        let (x, y) = (a.random.next(), b.random.next());
        assert_ne!(x, y, "two sessions drew the same random seed");
        assert_ne!(a.random.next(), x, "a session repeats its seed");
    }
}

//! Generate view: prompt and negative prompt, CFG value and schedule, seeds (random, locked or
//! a range), temperature / top-k / top-p, batch size; Generate (Ctrl+Enter) into a queue with
//! a progress bar (tokens/s, ETA); the coarse-to-fine preview in a player; re-roll of the fine
//! layers; export with metadata; a history gallery; restoring settings from an exported file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui;
use hitvideo_engine::video::meta::{SamplerSettings, read_metadata};
use hitvideo_engine::video::{ExportMetadata, Video};

use super::{ERROR, FrameTexture, Shared, outcome_label};
use crate::studio::jobs::{ClipPayload, Event, GenerateRequest, JobId, Outcome, Slots, Task, TokenSource};
use crate::studio::player::Player;
use crate::studio::settings::{GenerateSettings, ScheduleKind, SeedMode};

/// One finished generation, kept in the gallery.
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
    outcome: Option<Outcome>,
    error: Option<String>,
    random: u64,
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
    m.cfg = r.cfg_schedule.rsplit([':', ',']).next().and_then(|v| v.trim().parse().ok());
    m.sampler = SamplerSettings { temperature: Some(r.temperature), top_k: r.top_k, top_p: Some(r.top_p) };
    for (name, label) in &clip.models {
        m.extra.insert(name.clone(), serde_json::Value::String(label.clone()));
    }
    m.extra.insert("layers_decoded".into(), serde_json::json!(clip.layers_done));
    m
}

impl GenerateView {
    fn submit(&mut self, sh: &mut Shared<'_>, req: GenerateRequest) {
        self.error = None;
        let id = sh.engine.submit(Task::Generate(req.clone()));
        self.jobs.push((id, req));
    }

    /// Whether a generation has finished with every layer decoded (it is in the history).
    pub fn has_finished_clip(&self) -> bool {
        !self.history.is_empty()
    }

    /// Queues a generation with the current settings.
    pub fn generate(&mut self, sh: &mut Shared<'_>, s: &mut GenerateSettings) {
        self.random = hitvideo_engine::dataset::synth::item_seed(self.random ^ 0x5eed, self.jobs.len() + self.history.len());
        match s.request(self.random % 1_000_000) {
            Ok(req) => {
                if s.seed_mode == SeedMode::Random {
                    s.seed = req.seeds[0];
                }
                self.submit(sh, req);
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// Restores the settings recorded in an exported file (container tag or sidecar).
    pub fn restore_from_file(&mut self, path: &Path, s: &mut GenerateSettings) {
        match read_metadata(path) {
            Ok((meta, _)) => {
                s.restore(&meta);
                self.error = None;
                self.outcome = Some(Outcome::Done(format!("settings restored from {}", path.display())));
            }
            Err(e) => self.error = Some(format!("cannot restore settings: {e}")),
        }
    }

    pub fn on_event(&mut self, e: &Event, slots: &Slots) {
        match e {
            Event::Payload { job, .. } if self.jobs.iter().any(|(j, _)| j == job) => {
                let mut seen = self.seen;
                if let Some(c) = slots.clip.take_newer(&mut seen)
                    && c.job == *job {
                        self.show_clip(c);
                    }
                self.seen = seen;
            }
            Event::Progress { job, done, total, rate } if self.jobs.iter().any(|(j, _)| j == job) => {
                let since = self.progress.as_ref().filter(|p| p.0 == *job).map(|p| p.4).unwrap_or_else(std::time::Instant::now);
                self.progress = Some((*job, *done, *total, *rate, since));
            }
            Event::Finished { job, outcome } if self.jobs.iter().any(|(j, _)| j == job) => {
                self.jobs.retain(|(j, _)| j != job);
                if self.progress.as_ref().is_some_and(|p| p.0 == *job) {
                    self.progress = None;
                }
                if let (Outcome::Done(_), Some(clip)) = (outcome, &self.clip)
                    && clip.job == *job {
                        self.history.push(HistoryItem { clip: Arc::clone(clip), thumb: FrameTexture::default() });
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

    pub fn ui(&mut self, ui: &mut egui::Ui, sh: &mut Shared<'_>, s: &mut GenerateSettings) {
        let shortcut = egui::KeyboardShortcut::new(egui::Modifiers::COMMAND, egui::Key::Enter);
        let mut go = ui.input_mut(|i| i.consume_shortcut(&shortcut));
        sh.models_row(ui, true);
        if sh.models.generator.is_none() {
            ui.label(
                "No generator loaded. The demo models load by themselves when assets/models holds them (run \
                 scripts/demo-models to make them). Or train one (Train view), open a checkpoint folder (Open \
                 generator…), or press \"Use untrained tiny models\" to try the pipeline with random weights.",
            );
        }
        settings_ui(ui, s);
        ui.horizontal(|ui| {
            go |= ui.button("Generate").on_hover_text("Ctrl+Enter").clicked();
            let can_reroll = self.clip.as_ref().is_some_and(|c| c.layers_done == c.layers_total) && self.jobs.is_empty();
            ui.add(egui::DragValue::new(&mut s.keep_layers).range(1..=8).prefix("keep "));
            if ui.add_enabled(can_reroll, egui::Button::new("Re-roll details")).on_hover_text("keep the coarse layers, resample the finer ones").clicked() {
                self.reroll(sh, s);
            }
            if ui.button("Open exported file…").clicked()
                && let Some(p) = rfd::FileDialog::new().pick_file() {
                    self.restore_from_file(&p, s);
                }
        });
        if go {
            self.generate(sh, s);
        }
        if let Some(e) = &self.error {
            ui.colored_label(ERROR, e);
        }
        outcome_label(ui, &self.outcome);
        self.queue_ui(ui, sh);
        self.preview_ui(ui, sh);
        self.history_ui(ui, s);
    }

    fn reroll(&mut self, sh: &mut Shared<'_>, s: &GenerateSettings) {
        let Some(clip) = &self.clip else { return };
        let Some(layers) = sh.models.tokenizer_layers.get(..s.keep_layers.min(clip.layers_total.saturating_sub(1)).max(1)) else { return };
        let keep_n: usize = layers.iter().map(|l| l[0] * l[1] * l[2]).sum();
        let mut req = clip.request.clone();
        req.keep = clip.tokens.iter().map(|t| t[..keep_n.min(t.len())].to_vec()).collect();
        self.submit(sh, req);
    }

    fn queue_ui(&mut self, ui: &mut egui::Ui, sh: &mut Shared<'_>) {
        for (id, req) in &self.jobs {
            ui.horizontal(|ui| {
                let running = sh.engine.pending().iter().any(|p| p.id == *id && p.started);
                // The button first: a long prompt or seed list must not push it out of reach.
                if ui.small_button("Cancel").clicked() {
                    sh.engine.cancel(*id);
                }
                let state = if running { "(running)" } else { "(queued)" };
                ui.add(egui::Label::new(format!("#{id} {state} · {} · {}", seeds_text(&req.seeds), req.prompt)).truncate()).on_hover_text(&req.prompt);
            });
        }
        if let Some((_, done, total, rate, since)) = &self.progress {
            let eta = if *done > 0 { since.elapsed().as_secs_f64() * (total - done) as f64 / *done as f64 } else { 0.0 };
            ui.add(egui::ProgressBar::new(*done as f32 / (*total).max(1) as f32).text(format!("{done} / {total} tokens · {rate:.0} tokens/s · ETA {eta:.1} s")));
        }
    }

    fn preview_ui(&mut self, ui: &mut egui::Ui, sh: &mut Shared<'_>) {
        let Some(clip) = self.clip.clone() else { return };
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
        self.player.ui(ui);
        ui.horizontal(|ui| {
            let complete = clip.layers_done == clip.layers_total;
            if ui.add_enabled(complete, egui::Button::new("Show tokens")).on_hover_text("this clip's tokens in the tokens view").clicked()
                && let Some(tokens) = clip.tokens.get(self.row)
            {
                let seed = clip.request.seeds.get(self.row).copied().unwrap_or(0);
                self.to_tokens = Some(TokenSource::Generated { tokens: tokens.clone(), label: format!("generated: {} (seed {seed})", clip.request.prompt) });
            }
            for (label, ext) in [("Export MP4…", "mp4"), ("Export GIF…", "gif"), ("Export PNG frames…", "")] {
                if ui.button(label).clicked() {
                    let Some(video) = clip.videos.get(self.row) else { continue };
                    let dialog = rfd::FileDialog::new().set_file_name(if ext.is_empty() { "frames".to_string() } else { format!("clip.{ext}") });
                    let path: Option<PathBuf> = if ext.is_empty() { dialog.pick_folder() } else { dialog.add_filter(ext, &[ext]).save_file() };
                    if let Some(path) = path {
                        let meta = Box::new(metadata(video, &clip, self.row));
                        sh.submit_app(Task::Export { video: Arc::clone(video), path, meta });
                    }
                }
            }
        });
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
                    let r = r.interact(egui::Sense::click()).on_hover_text(format!("{} · seeds {:?} · CFG {}", h.clip.request.prompt, h.clip.request.seeds, h.clip.request.cfg_schedule));
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

fn settings_ui(ui: &mut egui::Ui, s: &mut GenerateSettings) {
    egui::Grid::new("gen-settings").num_columns(2).show(ui, |ui| {
        let l = ui.label("prompt");
        ui.add(egui::TextEdit::multiline(&mut s.prompt).desired_rows(2).desired_width(420.0).id_salt("prompt")).labelled_by(l.id);
        ui.end_row();
        let l = ui.label("negative prompt");
        ui.add(egui::TextEdit::singleline(&mut s.negative).desired_width(420.0).id_salt("negative")).labelled_by(l.id);
        ui.end_row();
        ui.label("CFG");
        ui.horizontal(|ui| {
            ui.radio_value(&mut s.schedule, ScheduleKind::Constant, "constant");
            ui.radio_value(&mut s.schedule, ScheduleKind::Linear, "linear ramp");
            ui.radio_value(&mut s.schedule, ScheduleKind::PerLayer, "per layer");
            match s.schedule {
                ScheduleKind::Constant => {
                    ui.add(egui::DragValue::new(&mut s.cfg).speed(0.1).range(0.0..=30.0).prefix("scale "));
                }
                ScheduleKind::Linear => {
                    ui.add(egui::DragValue::new(&mut s.cfg_from).speed(0.1).range(0.0..=30.0).prefix("from "));
                    ui.add(egui::DragValue::new(&mut s.cfg).speed(0.1).range(0.0..=30.0).prefix("to "));
                }
                ScheduleKind::PerLayer => {
                    let l = ui.label("values");
                    ui.add(egui::TextEdit::singleline(&mut s.per_layer).desired_width(120.0).id_salt("per-layer")).labelled_by(l.id);
                }
            }
        });
        ui.end_row();
        ui.label("seed");
        ui.horizontal(|ui| {
            ui.radio_value(&mut s.seed_mode, SeedMode::Random, "random");
            ui.radio_value(&mut s.seed_mode, SeedMode::Locked, "locked");
            ui.radio_value(&mut s.seed_mode, SeedMode::Range, "range");
            match s.seed_mode {
                SeedMode::Range => {
                    let l = ui.label("seeds");
                    ui.add(egui::TextEdit::singleline(&mut s.seed_range).desired_width(80.0).id_salt("seed-range")).labelled_by(l.id)
                }
                _ => ui.add(egui::DragValue::new(&mut s.seed).prefix("seed ")),
            };
        });
        ui.end_row();
        ui.label("sampling");
        ui.horizontal(|ui| {
            ui.add(egui::DragValue::new(&mut s.temperature).speed(0.01).range(0.05..=5.0).prefix("temperature "));
            ui.add(egui::DragValue::new(&mut s.top_k).range(0..=1 << 18).prefix("top-k ")).on_hover_text("0 keeps every token");
            ui.add(egui::DragValue::new(&mut s.top_p).speed(0.01).range(0.01..=1.0).prefix("top-p "));
        });
        ui.end_row();
        let l = ui.label("batch");
        ui.add_enabled(s.seed_mode != SeedMode::Range, egui::DragValue::new(&mut s.batch).range(1..=8)).labelled_by(l.id);
        ui.end_row();
    });
}

/// A short description of a request's seeds: the list when short, else its range or ends.
fn seeds_text(seeds: &[u64]) -> String {
    match seeds {
        [] => "no seeds".into(),
        [one] => format!("seed {one}"),
        _ if seeds.len() <= 4 => format!("seeds {}", seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
        [first, .., last] if seeds.windows(2).all(|w| w[1] == w[0] + 1) => format!("seeds {first}–{last} ({} clips)", seeds.len()),
        [first, second, .., last] => format!("seeds {first}, {second}, …, {last} ({} clips)", seeds.len()),
        _ => format!("{} seeds", seeds.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::seeds_text;

    #[test]
    fn seed_lists_are_summarized() {
        assert_eq!(seeds_text(&[7]), "seed 7");
        assert_eq!(seeds_text(&[1, 5, 9]), "seeds 1, 5, 9");
        assert_eq!(seeds_text(&(0..64).collect::<Vec<_>>()), "seeds 0–63 (64 clips)");
        assert_eq!(seeds_text(&[1, 5, 9, 10, 11]), "seeds 1, 5, …, 11 (5 clips)");
    }
}

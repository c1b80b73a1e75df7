//! The studio's views and the helpers they share. Views hold UI state only: they submit
//! tasks to the engine handle, read events and slots, and draw.

pub mod compare;
pub mod data;
pub mod generate;
mod generate_open;
mod generate_settings;
pub mod sweep;
pub mod tokens;
pub mod train;
pub mod train_run;
mod train_settings;

use hitvideo_engine::generator::config::GeneratorPreset;
use hitvideo_engine::tokenizer::config::TokenizerPreset;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui::{self, Color32};
use hitvideo_engine::video::{ExportFormat, ExportMetadata, Video};

use super::dialogs::{DialogPurpose, DialogSpec, Dialogs};
use super::jobs::{EngineHandle, JobId, ModelStatus, Outcome, Task};

/// Colour of error text.
pub const ERROR: Color32 = Color32::from_rgb(230, 90, 90);
/// Colour of warnings.
pub const WARN: Color32 = Color32::from_rgb(230, 180, 60);

/// What every view may use while drawing.
pub struct Shared<'a> {
    pub engine: &'a mut EngineHandle,
    pub models: &'a ModelStatus,
    /// Folder for new runs and other files the studio makes.
    pub work_dir: &'a Path,
    /// Jobs whose outcome the app itself shows (model loads from any view).
    pub app_jobs: &'a mut Vec<JobId>,
    /// The wgpu renderer, when the studio runs on it (token maps then draw with WGSL shaders).
    pub wgpu: Option<&'a eframe::egui_wgpu::RenderState>,
    /// File dialogs (off the UI thread): a view opens one with a [`DialogPurpose`], the app
    /// does what it says with the answer.
    pub dialogs: &'a mut Dialogs,
}

impl Shared<'_> {
    /// Submits a model task whose outcome the app reports.
    pub fn submit_app(&mut self, task: Task) {
        let id = self.engine.submit(task);
        self.app_jobs.push(id);
    }

    /// "Use untrained tiny models", "Open tokenizer…", "Open generator…" and what is loaded.
    pub fn models_row(&mut self, ui: &mut egui::Ui, need_generator: bool) {
        ui.horizontal_wrapped(|ui| {
            let tok = self.models.tokenizer.as_deref().unwrap_or("none");
            ui.label(format!("tokenizer: {tok}"));
            if need_generator {
                ui.label(format!("· generator: {}", self.models.generator.as_deref().unwrap_or("none")));
            }
            if ui.button("Use untrained tiny models").on_hover_text("random weights: tries the whole pipeline, output is noise").clicked() {
                self.submit_app(Task::UntrainedModels { tokenizer: TokenizerPreset::Tiny, generator: GeneratorPreset::Tiny });
            }
            let free = !self.dialogs.is_open();
            if ui.add_enabled(free, egui::Button::new("Open tokenizer…")).clicked() {
                self.dialogs.open(DialogPurpose::LoadTokenizer, DialogSpec::pick_folder().title("Tokenizer checkpoint folder"));
            }
            if need_generator && ui.add_enabled(free, egui::Button::new("Open generator…")).clicked() {
                self.dialogs.open(DialogPurpose::LoadGenerator, DialogSpec::pick_folder().title("Generator checkpoint folder"));
            }
        });
    }
}

/// Shows how a job ended (errors in red).
pub fn outcome_label(ui: &mut egui::Ui, outcome: &Option<Outcome>) {
    match outcome {
        Some(Outcome::Done(s)) if !s.is_empty() => {
            ui.label(s);
        }
        Some(Outcome::Cancelled(s)) => {
            ui.colored_label(WARN, s);
        }
        Some(Outcome::Failed(s)) | Some(Outcome::NotAvailable(s)) => {
            ui.colored_label(ERROR, s);
        }
        _ => {}
    }
}

/// `path` with `format`'s extension appended when its own does not name that format: a file
/// name typed without `.mp4` would otherwise be written as PNG frames. PNG folders stay.
pub fn with_export_extension(path: PathBuf, format: ExportFormat) -> PathBuf {
    let ext = match format {
        ExportFormat::Mp4 => "mp4",
        ExportFormat::Gif => "gif",
        ExportFormat::Png => return path,
    };
    if ExportFormat::from_path(&path) == format {
        return path;
    }
    let mut name = path.into_os_string();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// Queues the export of `video` to `path` (given `format`'s extension, see
/// [`with_export_extension`]) as a job whose outcome the app reports.
pub fn export_video(sh: &mut Shared<'_>, video: Arc<Video>, meta: Box<ExportMetadata>, format: ExportFormat, path: PathBuf, scale: u32) {
    sh.submit_app(Task::Export { video, path: with_export_extension(path, format), meta, scale });
}

/// Frame `t` of `v` as an egui image.
pub fn frame_image(v: &Video, t: usize) -> egui::ColorImage {
    let t = t.min(v.len().saturating_sub(1));
    egui::ColorImage::from_rgb([v.width() as usize, v.height() as usize], v.frame(t))
}

/// A texture kept up to date with a frame: re-uploaded only when `key` changes.
#[derive(Default)]
pub struct FrameTexture {
    tex: Option<egui::TextureHandle>,
    key: Option<(u64, usize)>,
}

impl FrameTexture {
    /// The texture showing frame `t` of `v`, where `version` identifies `v`.
    pub fn show(&mut self, ui: &mut egui::Ui, name: &str, v: &Video, version: u64, t: usize, size: egui::Vec2) -> egui::Response {
        if v.is_empty() {
            return ui.label("(no frames)");
        }
        if self.key != Some((version, t)) || self.tex.is_none() {
            let img = frame_image(v, t);
            match &mut self.tex {
                Some(tex) => tex.set(img, egui::TextureOptions::NEAREST),
                None => self.tex = Some(ui.ctx().load_texture(name, img, egui::TextureOptions::NEAREST)),
            }
            self.key = Some((version, t));
        }
        match &self.tex {
            Some(tex) => ui.add(egui::Image::new((tex.id(), size)).sense(egui::Sense::hover())),
            None => ui.label("(no frames)"),
        }
    }
}

/// A clock that advances a frame index at a clip's fps while playing.
#[derive(Default)]
pub struct Clock {
    last: f64,
}

impl Clock {
    /// The next frame index of `n` frames at `fps` (looping); asks for the next repaint.
    pub fn tick(&mut self, ui: &egui::Ui, frame: usize, n: usize, fps: f64) -> usize {
        if n == 0 || fps <= 0.0 {
            return 0;
        }
        let now = ui.input(|i| i.time);
        ui.ctx().request_repaint_after(std::time::Duration::from_secs_f64(1.0 / fps));
        if now - self.last >= 1.0 / fps {
            self.last = now;
            return (frame + 1) % n;
        }
        frame % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_paths_get_the_chosen_formats_extension() {
        let p = |s: &str, f| with_export_extension(PathBuf::from(s), f);
        assert_eq!(p("out/clip", ExportFormat::Mp4), PathBuf::from("out/clip.mp4"));
        assert_eq!(p("clip.MP4", ExportFormat::Mp4), PathBuf::from("clip.MP4"));
        assert_eq!(p("clip.mov", ExportFormat::Mp4), PathBuf::from("clip.mov"));
        assert_eq!(p("clip.v2", ExportFormat::Gif), PathBuf::from("clip.v2.gif"));
        assert_eq!(p("clip.gif", ExportFormat::Gif), PathBuf::from("clip.gif"));
        assert_eq!(p("clip.mp4", ExportFormat::Gif), PathBuf::from("clip.mp4.gif"));
        assert_eq!(p("frames", ExportFormat::Png), PathBuf::from("frames"));
    }
}

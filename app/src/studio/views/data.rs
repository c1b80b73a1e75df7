//! Data view: browse synthetic clips and play video files (decoded on a worker thread).

use crate::studio::error::FileError;
use std::path::PathBuf;
use std::sync::mpsc;

use eframe::egui;
use hitvideo_engine::dataset::shapes::RenderConfig;
use hitvideo_engine::dataset::synth::{self, SynthConfig};
use hitvideo_engine::video::{self, DecodeOptions, Video};

use super::ERROR;
use crate::studio::dialogs::{DialogPurpose, DialogSpec, Dialogs};
use crate::studio::player::Player;

#[derive(Default)]
pub struct DataView {
    pub player: Player,
    caption: String,
    status: String,
    error: Option<String>,
    loading: Option<mpsc::Receiver<Result<Video, FileError>>>,
}

/// Synthetic clip `seed` of the shapes domain at `size` pixels, and its caption.
pub fn synthetic_clip(seed: u64, frames: usize, size: u32) -> (Video, String) {
    let cfg = SynthConfig { render: RenderConfig { frames, size, fps: 8.0 }, seed, ..SynthConfig::default() };
    let item = synth::item(&cfg, 0);
    (item.render(&cfg.render), item.caption)
}

impl DataView {
    pub fn show_synthetic(&mut self, seed: u64) {
        let (v, caption) = synthetic_clip(seed, 16, 128);
        self.caption = caption;
        self.player.set_video(v);
    }

    /// Decodes a video file on a worker thread (the UI keeps drawing meanwhile).
    pub fn open_video(&mut self, path: PathBuf) {
        let (tx, rx) = mpsc::channel();
        self.status = format!("decoding {} ...", path.display());
        self.error = None;
        let opts = DecodeOptions { fps: Some(8.0), size: Some((256, 256)), max_frames: Some(256), ..DecodeOptions::default() };
        std::thread::spawn(move || {
            let _ = tx.send(video::decode(&path, &opts).map_err(FileError::from));
        });
        self.loading = Some(rx);
        self.caption.clear();
    }

    /// Picks up a finished decode; true while one is running.
    pub fn poll(&mut self) -> bool {
        let Some(rx) = &self.loading else { return false };
        match rx.try_recv() {
            Ok(Ok(v)) => {
                self.status = format!("{} frames, {}x{} at {} fps", v.len(), v.width(), v.height(), v.fps());
                self.player.set_video(v);
                self.loading = None;
            }
            Ok(Err(e)) => {
                self.error = Some(e.to_string());
                self.status.clear();
                self.loading = None;
            }
            Err(mpsc::TryRecvError::Empty) => return true,
            Err(mpsc::TryRecvError::Disconnected) => {
                self.error = Some("the decoder thread stopped unexpectedly".into());
                self.loading = None;
            }
        }
        false
    }

    /// The view; "Open video…" asks `dialogs` for a file (the app opens it, see
    /// [`DialogPurpose::DataOpenVideo`]).
    pub fn ui(&mut self, ui: &mut egui::Ui, dialogs: &mut Dialogs, seed: &mut u64) {
        ui.horizontal(|ui| {
            if ui.button("Next synthetic clip").clicked() {
                *seed = seed.wrapping_add(1);
                self.show_synthetic(*seed);
            }
            if ui.add_enabled(!dialogs.is_open(), egui::Button::new("Open video…")).clicked() {
                dialogs.open(DialogPurpose::DataOpenVideo, DialogSpec::open_video());
            }
            ui.label(&self.status);
        });
        if let Some(e) = &self.error {
            ui.colored_label(ERROR, e);
        }
        if !self.caption.is_empty() {
            ui.label(format!("caption: {}", self.caption));
        }
        self.player.ui(ui);
    }
}

//! Compare view: two or more clips side by side, played in step. Clips come from the Generate
//! view (the rows of the current clip) or from the gallery (a saved MP4, decoded on a helper
//! thread). One frame index drives every clip (a shorter clip holds its last frame); Play,
//! Prev, Next, the frame slider, Space and the arrow keys move them together; all are drawn at
//! the same whole-multiple scale, the largest that fits them side by side.

use crate::studio::error::FileError;
use std::path::PathBuf;
use std::sync::{Arc, mpsc};

use eframe::egui;
use hitvideo_engine::video::{self, DecodeOptions, Video};

use super::{ERROR, FrameTexture};
use crate::studio::player::{transport_keys, whole_fit};

/// A clip being decoded on a helper thread: its label, file and the answer's channel.
type Loading = (String, PathBuf, mpsc::Receiver<Result<Video, FileError>>);

/// One clip in the comparison.
pub struct CompareItem {
    pub label: String,
    pub video: Arc<Video>,
    tex: FrameTexture,
    /// Where it was drawn last (points), for tests.
    pub rect: Option<egui::Rect>,
}

/// The clips, the shared frame and the files being read.
#[derive(Default)]
pub struct CompareView {
    pub items: Vec<CompareItem>,
    frame: usize,
    playing: bool,
    clock: f64,
    version: u64,
    loading: Vec<Loading>,
    error: Option<String>,
}

impl CompareView {
    /// The frame every clip shows (a shorter clip shows its last one).
    pub fn frame(&self) -> usize {
        self.frame
    }

    /// Adds a clip already in memory.
    pub fn add(&mut self, label: String, video: Arc<Video>) {
        self.version += 1;
        self.items.push(CompareItem { label, video, tex: FrameTexture::default(), rect: None });
    }

    /// Adds a saved clip: it is decoded on a helper thread and appears when ready.
    pub fn add_file(&mut self, label: String, path: PathBuf) {
        let (tx, rx) = mpsc::channel();
        let file = path.clone();
        let spawned = std::thread::Builder::new().name("compare-decode".into()).spawn(move || {
            let _ = tx.send(video::decode(&file, &DecodeOptions::default()).map_err(FileError::from));
        });
        match spawned {
            Ok(_) => self.loading.push((label, path, rx)),
            Err(e) => self.error = Some(format!("cannot read {label}: {e}")),
        }
    }

    /// Whether clips are still being read.
    pub fn is_loading(&self) -> bool {
        !self.loading.is_empty()
    }

    fn poll(&mut self) {
        let mut done = Vec::new();
        for (i, (label, path, rx)) in self.loading.iter().enumerate() {
            match rx.try_recv() {
                Ok(r) => done.push((i, label.clone(), r)),
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => done.push((i, label.clone(), Err(FileError::Lost(path.clone())))),
            }
        }
        for (i, label, r) in done.into_iter().rev() {
            self.loading.remove(i);
            match r {
                Ok(v) => self.add(label, Arc::new(v)),
                Err(e) => self.error = Some(e.to_string()),
            }
        }
    }

    /// The longest clip's frame count.
    fn len(&self) -> usize {
        self.items.iter().map(|i| i.video.len()).max().unwrap_or(0)
    }

    fn step(&mut self, forward: bool) {
        let n = self.len().max(1);
        self.playing = false;
        self.frame = if forward { (self.frame + 1) % n } else { (self.frame + n - 1) % n };
    }

    pub fn ui(&mut self, ui: &mut egui::Ui) {
        self.poll();
        if self.is_loading() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("reading the clips to compare …");
            });
            ui.ctx().request_repaint_after(std::time::Duration::from_millis(100));
        }
        if let Some(e) = &self.error {
            ui.colored_label(ERROR, e);
        }
        if self.items.is_empty() {
            ui.label("No clips to compare. Press \"Compare seeds\" under a generated clip (Generate view), \"Add to compare\" on a gallery item, or drop video files here.");
            return;
        }
        let n = self.len();
        let (space, left, right) = transport_keys(ui);
        if space {
            self.playing = !self.playing;
        }
        if left || right {
            self.step(right);
        }
        let fps = self.items.first().map_or(8.0, |i| i.video.fps());
        let now = ui.input(|i| i.time);
        if self.playing {
            if now - self.clock >= 1.0 / fps {
                self.frame = (self.frame + 1) % n.max(1);
                self.clock = now;
            }
            ui.ctx().request_repaint_after(std::time::Duration::from_secs_f64(1.0 / fps));
        }
        ui.horizontal_wrapped(|ui| {
            if ui.button(if self.playing { "Pause all" } else { "Play all" }).clicked() {
                self.playing = !self.playing;
            }
            if ui.button("Previous frame").clicked() {
                self.step(false);
            }
            if ui.button("Next frame").clicked() {
                self.step(true);
            }
            ui.add(egui::Slider::new(&mut self.frame, 0..=n.saturating_sub(1)).text("frame"));
            if ui.button("Clear").clicked() {
                self.items.clear();
                self.frame = 0;
            }
        });
        let gap = ui.spacing().item_spacing.x;
        let total_w: f32 = self.items.iter().map(|i| i.video.width() as f32).sum::<f32>() + gap * self.items.len() as f32;
        let max_h = self.items.iter().map(|i| i.video.height() as f32).fold(1.0, f32::max);
        let room = ui.available_size() - egui::vec2(0.0, 3.0 * ui.spacing().interact_size.y);
        let scale = whole_fit(room.x / total_w.max(1.0), room.y / max_h) as f32;
        let mut remove = None;
        ui.horizontal(|ui| {
            for (k, item) in self.items.iter_mut().enumerate() {
                ui.vertical(|ui| {
                    let v = &item.video;
                    let t = self.frame.min(v.len().saturating_sub(1));
                    let size = egui::vec2(v.width() as f32, v.height() as f32) * scale;
                    item.rect = Some(item.tex.show(ui, "compare", v, self.version * 1000 + k as u64, t, size).rect);
                    ui.horizontal(|ui| {
                        if ui.small_button("Remove").clicked() {
                            remove = Some(k);
                        }
                        ui.add(egui::Label::new(&item.label).truncate()).on_hover_text(&item.label);
                    });
                });
            }
        });
        if let Some(k) = remove {
            self.items.remove(k);
            self.version += 1;
        }
    }
}

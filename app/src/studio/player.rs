//! A small clip player: play/pause, loop, scrub, step a frame, zoom.

use std::sync::Arc;

use eframe::egui;
use hitvideo_engine::video::Video;

/// Player state; the current frame lives in one GPU texture updated when it changes.
pub struct Player {
    video: Option<Arc<Video>>,
    version: u64,
    frame: usize,
    playing: bool,
    looping: bool,
    zoom: f32,
    clock: f64,
    texture: Option<egui::TextureHandle>,
    shown: Option<(u64, usize)>,
    /// Where the frame was drawn last (points), for screenshots and tests.
    pub frame_rect: Option<egui::Rect>,
}

impl Default for Player {
    fn default() -> Self {
        Self { video: None, version: 0, frame: 0, playing: true, looping: true, zoom: 2.0, clock: 0.0, texture: None, shown: None, frame_rect: None }
    }
}

impl Player {
    /// Shows a new clip from its first frame.
    pub fn set_video(&mut self, v: impl Into<Arc<Video>>) {
        self.replace(v);
        self.frame = 0;
        self.playing = true;
    }

    /// Swaps in a new version of the same clip (a sharper preview), keeping frame and state.
    pub fn replace(&mut self, v: impl Into<Arc<Video>>) {
        let v = v.into();
        self.frame = self.frame.min(v.len().saturating_sub(1));
        self.video = Some(v);
        self.version += 1;
    }

    pub fn video(&self) -> Option<&Arc<Video>> {
        self.video.as_ref()
    }

    /// The frame shown (0-based).
    pub fn frame(&self) -> usize {
        self.frame
    }

    /// Whether the clip advances by itself.
    pub fn is_playing(&self) -> bool {
        self.playing
    }

    /// Screen pixels per video pixel.
    pub fn zoom(&self) -> f32 {
        self.zoom
    }

    pub fn set_zoom(&mut self, zoom: f32) {
        self.zoom = zoom;
    }

    pub fn ui(&mut self, ui: &mut egui::Ui) {
        let Some(v) = self.video.clone() else {
            ui.label("no clip loaded");
            return;
        };
        let n = v.len();
        let now = ui.input(|i| i.time);
        if self.playing && n > 0 {
            if now - self.clock >= 1.0 / v.fps() {
                if self.frame + 1 >= n && !self.looping {
                    self.playing = false;
                } else {
                    self.frame = (self.frame + 1) % n;
                }
                self.clock = now;
            }
            ui.ctx().request_repaint_after(std::time::Duration::from_secs_f64(1.0 / v.fps()));
        }
        ui.horizontal(|ui| {
            if ui.button(if self.playing { "Pause" } else { "Play" }).clicked() {
                self.playing = !self.playing;
            }
            if ui.button("Prev").on_hover_text("previous frame").clicked() {
                self.playing = false;
                self.frame = (self.frame + n - 1) % n.max(1);
            }
            if ui.button("Next").on_hover_text("next frame").clicked() {
                self.playing = false;
                self.frame = (self.frame + 1) % n.max(1);
            }
            ui.checkbox(&mut self.looping, "loop");
            ui.add(egui::Slider::new(&mut self.frame, 0..=n.saturating_sub(1)).text("frame"));
            ui.add(egui::Slider::new(&mut self.zoom, 0.5..=8.0).text("zoom"));
        });
        if self.shown != Some((self.version, self.frame)) && n > 0 {
            let img = egui::ColorImage::from_rgb([v.width() as usize, v.height() as usize], v.frame(self.frame));
            match &mut self.texture {
                Some(t) => t.set(img, egui::TextureOptions::NEAREST),
                None => self.texture = Some(ui.ctx().load_texture("player", img, egui::TextureOptions::NEAREST)),
            }
            self.shown = Some((self.version, self.frame));
        }
        if let Some(t) = &self.texture {
            let size = egui::vec2(v.width() as f32, v.height() as f32) * self.zoom;
            self.frame_rect = Some(ui.image((t.id(), size)).rect);
        }
    }
}

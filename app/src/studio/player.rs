//! A small clip player: play/pause, loop, scrub, step a frame, zoom.

use eframe::egui;
use hitvideo_engine::video::Video;

/// Player state; the current frame lives in one GPU texture updated when it changes.
#[derive(Default)]
pub struct Player {
    video: Option<Video>,
    frame: usize,
    playing: bool,
    zoom: f32,
    clock: f64,
    texture: Option<egui::TextureHandle>,
    shown: Option<usize>,
}

impl Player {
    pub fn set_video(&mut self, v: Video) {
        self.video = Some(v);
        self.frame = 0;
        self.playing = true;
        self.shown = None;
        if self.zoom <= 0.0 {
            self.zoom = 2.0;
        }
    }

    pub fn ui(&mut self, ui: &mut egui::Ui) {
        let Some(v) = &self.video else {
            ui.label("no clip loaded");
            return;
        };
        let n = v.len();
        let now = ui.input(|i| i.time);
        if self.playing && n > 0 {
            if now - self.clock >= 1.0 / v.fps() {
                self.frame = (self.frame + 1) % n;
                self.clock = now;
            }
            ui.ctx().request_repaint_after(std::time::Duration::from_secs_f64(1.0 / v.fps()));
        }
        ui.horizontal(|ui| {
            if ui.button(if self.playing { "Pause" } else { "Play" }).clicked() {
                self.playing = !self.playing;
            }
            if ui.button("⏮ Prev").on_hover_text("previous frame").clicked() {
                self.playing = false;
                self.frame = (self.frame + n - 1) % n.max(1);
            }
            if ui.button("Next ⏭").on_hover_text("next frame").clicked() {
                self.playing = false;
                self.frame = (self.frame + 1) % n.max(1);
            }
            ui.add(egui::Slider::new(&mut self.frame, 0..=n.saturating_sub(1)).text("frame"));
            ui.add(egui::Slider::new(&mut self.zoom, 0.5..=8.0).text("zoom"));
        });
        if self.shown != Some(self.frame) && n > 0 {
            let img = egui::ColorImage::from_rgb([v.width() as usize, v.height() as usize], v.frame(self.frame));
            match &mut self.texture {
                Some(t) => t.set(img, egui::TextureOptions::NEAREST),
                None => self.texture = Some(ui.ctx().load_texture("player", img, egui::TextureOptions::NEAREST)),
            }
            self.shown = Some(self.frame);
        }
        if let Some(t) = &self.texture {
            let size = egui::vec2(v.width() as f32, v.height() as f32) * self.zoom;
            ui.image((t.id(), size));
        }
    }
}

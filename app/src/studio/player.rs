//! A clip player: play/pause, loop, scrub, step a frame, and a frame scaled by a whole multiple
//! (nearest-neighbour, never blurred) to fill the space it has, or by a chosen whole zoom.
//! Keys while no text field has focus: Space plays and pauses, Left and Right step a frame.

use std::sync::Arc;

use eframe::egui;
use hitvideo_engine::video::Video;

/// Whether Space, Left and Right were pressed this frame (consumed; never while a text field
/// has the keyboard): the playback keys of the player and the Compare view.
pub fn transport_keys(ui: &egui::Ui) -> (bool, bool, bool) {
    if ui.ctx().egui_wants_keyboard_input() {
        return (false, false, false);
    }
    ui.input_mut(|i| {
        (
            i.consume_key(egui::Modifiers::NONE, egui::Key::Space),
            i.consume_key(egui::Modifiers::NONE, egui::Key::ArrowLeft),
            i.consume_key(egui::Modifiers::NONE, egui::Key::ArrowRight),
        )
    })
}

/// The largest whole zoom.
pub const MAX_SCALE: u32 = 32;

/// The largest whole multiple (1..=`MAX_SCALE`) at which a frame fits `x` times across and
/// `y` times down the space.
pub fn whole_fit(x: f32, y: f32) -> u32 {
    let m = x.min(y).floor();
    if m.is_finite() { (m as u32).clamp(1, MAX_SCALE) } else { 1 }
}

/// Player state; the current frame lives in one GPU texture updated when it changes.
pub struct Player {
    video: Option<Arc<Video>>,
    version: u64,
    frame: usize,
    playing: bool,
    looping: bool,
    /// Scale by the largest whole multiple that fits the space (otherwise by `zoom`).
    fit: bool,
    zoom: f32,
    /// The whole multiple the frame was last drawn at.
    scale: u32,
    clock: f64,
    texture: Option<egui::TextureHandle>,
    shown: Option<(u64, usize)>,
    /// Where the frame was drawn last (points), for screenshots and tests.
    pub frame_rect: Option<egui::Rect>,
}

impl Default for Player {
    fn default() -> Self {
        Self {
            video: None,
            version: 0,
            frame: 0,
            playing: true,
            looping: true,
            fit: true,
            zoom: 2.0,
            scale: 1,
            clock: 0.0,
            texture: None,
            shown: None,
            frame_rect: None,
        }
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

    /// The chosen zoom (screen pixels per video pixel when not fitting).
    pub fn zoom(&self) -> f32 {
        self.zoom
    }

    /// Sets a whole zoom and stops fitting the frame to the space.
    pub fn set_zoom(&mut self, zoom: f32) {
        self.zoom = zoom.round().clamp(1.0, MAX_SCALE as f32);
        self.fit = false;
    }

    /// Whether the frame is scaled to fill the space it has.
    pub fn fits(&self) -> bool {
        self.fit
    }

    /// The whole multiple the frame was last drawn at.
    pub fn scale(&self) -> u32 {
        self.scale
    }

    /// Space, Left and Right, when no text field has the keyboard.
    fn keys(&mut self, ui: &egui::Ui, n: usize) {
        if n == 0 {
            return;
        }
        let (space, left, right) = transport_keys(ui);
        if space {
            self.playing = !self.playing;
        }
        if left {
            self.playing = false;
            self.frame = (self.frame + n - 1) % n;
        }
        if right {
            self.playing = false;
            self.frame = (self.frame + 1) % n;
        }
    }

    /// The controls and the frame, using all the space left.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        self.ui_with_room_below(ui, 0.0);
    }

    /// The controls and the frame, leaving `below` points under it for what the view draws next.
    pub fn ui_with_room_below(&mut self, ui: &mut egui::Ui, below: f32) {
        let Some(v) = self.video.clone() else {
            ui.label("no clip loaded");
            return;
        };
        let n = v.len();
        // The width before the controls: a row of controls wider than the space must not widen
        // the frame past it.
        let room_w = ui.available_width();
        self.keys(ui, n);
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
        ui.horizontal_wrapped(|ui| {
            ui.spacing_mut().slider_width = 110.0;
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
        });
        ui.horizontal_wrapped(|ui| {
            ui.spacing_mut().slider_width = 110.0;
            ui.add(egui::Slider::new(&mut self.frame, 0..=n.saturating_sub(1)).text("frame"));
        });
        ui.horizontal_wrapped(|ui| {
            ui.spacing_mut().slider_width = 110.0;
            ui.checkbox(&mut self.fit, "fit").on_hover_text("scale by the largest whole multiple that fits");
            let zoom = ui.add(egui::Slider::new(&mut self.zoom, 1.0..=MAX_SCALE as f32).step_by(1.0).text("zoom"));
            if zoom.changed() {
                self.fit = false;
            }
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
            let (w, h) = (v.width() as f32, v.height() as f32);
            self.scale = if self.fit {
                let room_h = ui.available_height() - below;
                whole_fit(room_w.min(ui.available_width()) / w, room_h / h)
            } else {
                self.zoom.round().clamp(1.0, MAX_SCALE as f32) as u32
            };
            let size = egui::vec2(w, h) * self.scale as f32;
            self.frame_rect = Some(ui.image((t.id(), size)).rect);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::whole_fit;

    #[test]
    fn the_fit_is_a_whole_multiple_within_bounds() {
        assert_eq!(whole_fit(34.4, 20.9), 20);
        assert_eq!(whole_fit(0.3, 5.0), 1);
        assert_eq!(whole_fit(1000.0, 1000.0), 32);
        assert_eq!(whole_fit(f32::NAN, 3.0), 3);
        assert_eq!(whole_fit(f32::INFINITY, f32::INFINITY), 1);
    }
}

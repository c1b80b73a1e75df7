//! Tokens view: a synthetic clip or any video file through the tokenizer — per-layer token
//! maps for each latent frame (coloured by id or by code similarity), hover details and the
//! video patch a token covers, reconstruction from the k coarsest layers beside the original,
//! every layer at once under a video-frame scrubber, per-layer codebook-usage histograms, and
//! the redundancy-mask overlay.

use std::path::PathBuf;
use std::sync::Arc;

use eframe::egui::{self, Color32, Stroke};
use egui_plot::{Bar, BarChart, Plot};

use super::data::synthetic_clip;
use super::{ERROR, FrameTexture, Shared, outcome_label};
use crate::studio::dialogs::{DialogPurpose, DialogSpec};
use crate::studio::jobs::{Event, JobId, LayerTokens, Masks, Outcome, Task, TokenPayload, TokenRequest, TokenSource};
use crate::studio::player::whole_fit;
use crate::studio::settings::{ColorMode, TokensSettings};
use crate::studio::{gpu_tokenmap, tokenmap};
use hitvideo_engine::tokenizer::FillStrategy;

/// The smallest side of the panels (original, token map, reconstruction), points.
const PANEL: f32 = 192.0;

/// One layer's map in the all-layers strip: its texture and the key (source, layer, colours)
/// it shows.
type StripMap = (Option<egui::TextureHandle>, Option<(u64, usize, ColorMode)>);

#[derive(Default)]
pub struct TokensView {
    job: Option<JobId>,
    payload: Option<Arc<TokenPayload>>,
    seen: u64,
    outcome: Option<Outcome>,
    seed: u64,
    path_text: String,
    /// The latent frame shown.
    pub t: usize,
    /// The token under the pointer: (layer, t, h, w).
    pub hover: Option<(usize, usize, usize, usize)>,
    /// Where the token map was drawn last frame.
    pub map_rect: Option<egui::Rect>,
    map_tex: Option<egui::TextureHandle>,
    map_key: Option<(u64, usize, usize, ColorMode, bool)>,
    orig_tex: FrameTexture,
    recon_tex: FrameTexture,
    masked_tex: FrameTexture,
    /// The clip on screen, re-tokenized when the mask settings change.
    source: Option<TokenSource>,
    /// The video frame of the all-layers strip (its scrubber also moves `t`).
    pub video_frame: usize,
    /// Each layer's map in the strip: texture and the key it shows.
    strip_tex: Vec<StripMap>,
    /// Where the strip's maps were drawn last frame, coarsest first (for tests).
    pub strip_rects: Vec<egui::Rect>,
    /// The latent frame each layer's map in the strip shows.
    pub strip_frames: Vec<usize>,
    strip_orig: FrameTexture,
    /// The window chosen on the slider (shown once "Show window" is pressed).
    pub window_choice: Option<usize>,
    /// The side the panels were drawn at last (points), for tests.
    pub panel_side: f32,
}

impl TokensView {
    /// Tokenizes a video file (decoded on the engine thread; errors show here).
    pub fn tokenize_file(&mut self, sh: &mut Shared<'_>, s: &TokensSettings, path: PathBuf) {
        self.path_text = path.display().to_string();
        self.submit(sh, s, TokenSource::File { path, window: 0 });
    }

    /// Tokenizes an in-memory clip.
    pub fn tokenize_clip(&mut self, sh: &mut Shared<'_>, s: &TokensSettings, video: Arc<hitvideo_engine::video::Video>, label: String) {
        self.submit(sh, s, TokenSource::Clip { video, label });
    }

    /// Shows `source` (a clip, a file, a generated clip's tokens).
    pub fn submit(&mut self, sh: &mut Shared<'_>, s: &TokensSettings, source: TokenSource) {
        if let Some(j) = self.job {
            sh.engine.cancel(j);
        }
        self.outcome = None;
        self.source = Some(source.clone());
        let fill = s.fill;
        let general = s.general && sh.models.general.is_some();
        self.job = Some(sh.engine.submit(Task::Tokenize(TokenRequest { source, cap: s.cap, tolerance: s.tolerance, fill, general })));
    }

    /// The payload on screen, if any.
    pub fn payload(&self) -> Option<&TokenPayload> {
        self.payload.as_deref()
    }

    pub fn on_event(&mut self, e: &Event) {
        if let Event::Finished { job, outcome } = e
            && Some(*job) == self.job
        {
            self.job = None;
            self.outcome = Some(outcome.clone());
        }
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, sh: &mut Shared<'_>, s: &mut TokensSettings) {
        sh.models_row(ui, false);
        if let Some(general) = sh.models.general.clone() {
            ui.horizontal_wrapped(|ui| {
                ui.label("videos through");
                ui.radio_value(&mut s.general, true, "the general tokenizer").on_hover_text(format!("made for real footage: {general}"));
                ui.radio_value(&mut s.general, false, "the loaded tokenizer").on_hover_text("the demo's shapes tokenizer, or the one you opened");
            });
        }
        ui.horizontal_wrapped(|ui| {
            ui.add(egui::DragValue::new(&mut self.seed).prefix("clip seed "));
            if ui.button("Tokenize synthetic clip").clicked() {
                let (v, caption) = synthetic_clip(self.seed, 16, 128);
                self.tokenize_clip(sh, s, Arc::new(v), format!("synthetic clip {} ({caption})", self.seed));
            }
            // The file chosen is tokenized by the app ([`DialogPurpose::TokensOpenVideo`]).
            if ui.add_enabled(!sh.dialogs.is_open(), egui::Button::new("Open video…")).clicked() {
                sh.dialogs.open(DialogPurpose::TokensOpenVideo, DialogSpec::open_video());
            }
            let l = ui.label("video file");
            ui.add(egui::TextEdit::singleline(&mut self.path_text).hint_text("path (or drop a file)").desired_width(260.0)).labelled_by(l.id);
            if ui.button("Tokenize file").clicked() && !self.path_text.trim().is_empty() {
                self.tokenize_file(sh, s, PathBuf::from(self.path_text.trim()));
            }
        });
        if let Some(j) = self.job {
            ui.horizontal(|ui| {
                if ui.small_button("Cancel").clicked() {
                    sh.engine.cancel(j);
                }
                ui.spinner();
                ui.label("tokenizing…");
            });
        }
        outcome_label(ui, &self.outcome);
        let mut seen = self.seen;
        if let Some(p) = sh.engine.slots().tokens.take_newer(&mut seen) {
            self.payload = Some(p);
            self.map_key = None;
        }
        self.seen = seen;
        let Some(p) = self.payload.clone() else {
            ui.label("Tokenize a clip to see its token maps.");
            return;
        };
        egui::ScrollArea::vertical().show(ui, |ui| self.payload_ui(ui, sh, s, &p));
    }

    fn payload_ui(&mut self, ui: &mut egui::Ui, sh: &mut Shared<'_>, s: &mut TokensSettings, p: &TokenPayload) {
        let pad = if p.padded > 0 { format!(" · {} frames padded (clip shorter than the tokenizer's)", p.padded) } else { String::new() };
        ui.label(format!("{} · tokenizer {}{pad}", p.label, p.tokenizer));
        // Every window of a long file is reachable: another window is tokenized on request.
        if let (Some(n), Some(TokenSource::File { path, .. })) = (p.windows.filter(|&n| n > 1), self.source.clone()) {
            ui.horizontal(|ui| {
                let mut w = self.window_choice.unwrap_or(p.window).min(n - 1);
                ui.add(egui::Slider::new(&mut w, 0..=n - 1).text("window").custom_formatter(|v, _| format!("{}", v as usize + 1)));
                self.window_choice = Some(w);
                if ui.add_enabled(w != p.window && self.job.is_none(), egui::Button::new("Show window")).clicked() {
                    self.submit(sh, s, TokenSource::File { path, window: w });
                }
            });
        }
        let n = p.layers.len();
        s.layer = s.layer.min(n.saturating_sub(1));
        ui.horizontal_wrapped(|ui| {
            for (j, l) in p.layers.iter().enumerate() {
                let [t, h, w] = l.shape;
                ui.selectable_value(&mut s.layer, j, format!("layer {} · {t}×{h}×{w} · {} bits", j + 1, l.bits));
            }
        });
        let Some(layer) = p.layers.get(s.layer) else { return };
        let [lt, lh, lw] = layer.shape;
        self.t = self.t.min(lt.saturating_sub(1));
        ui.horizontal(|ui| {
            if lt > 1 {
                ui.add(egui::Slider::new(&mut self.t, 0..=lt - 1).text("latent frame"));
            }
            ui.radio_value(&mut s.color, ColorMode::Id, "colour by id");
            ui.radio_value(&mut s.color, ColorMode::Similarity, "by code similarity");
            ui.checkbox(&mut s.show_mask, "redundancy mask");
        });
        let frames = p.original.len();
        let per = (frames / lt.max(1)).max(1);
        let first = (self.t * per).min(frames.saturating_sub(1));
        let k = if s.k == 0 || s.k > n { n } else { s.k };
        let mask_view = match (&p.masks, s.show_mask) {
            (Masks::Ready { layers, .. }, true) => layers.get(s.layer).and_then(|m| m.as_ref()),
            _ => None,
        };
        let mask = mask_view.map(|m| m.mask.clone());
        ui.label(format!("token map: layer {}, latent frame {} ({lh}×{lw}) covers frames {}–{}", s.layer + 1, self.t, first, first + per - 1));
        // Panels (original, map, reconstruction, masked) as large as the view allows, by a whole
        // multiple of the clip's side (so every layer's grid divides them), at least PANEL.
        let panels = if s.show_mask { 4.0 } else { 3.0 };
        let clip = p.original.width().max(p.original.height()).max(1) as f32;
        let fit = whole_fit((ui.available_width() - 4.0 * ui.spacing().item_spacing.x) / (panels * clip), (ui.available_height() - 430.0) / clip);
        let side = clip * (fit as f32).max((PANEL / clip).floor().max(1.0));
        self.panel_side = side;
        let size = egui::vec2(side, side);
        let (orig_rect, map_resp) = ui
            .horizontal(|ui| {
                let orig = self.orig_tex.show(ui, "tokens-original", &p.original, self.seen, first, size);
                let map = self.map_ui(ui, sh, layer, s, mask.as_deref(), size);
                if let Some(r) = p.recon.get(k - 1) {
                    self.recon_tex.show(ui, "tokens-recon", r, self.seen * 64 + k as u64, first, size);
                }
                if let (true, Masks::Ready { recon, .. }) = (s.show_mask, &p.masks) {
                    self.masked_tex.show(ui, "tokens-masked", recon, self.seen, first, size);
                }
                (orig.rect, map)
            })
            .inner;
        self.map_rect = Some(map_resp.rect);
        self.hover = map_resp.hover_pos().and_then(|pos| tokenmap::cell_at(map_resp.rect, pos, lh, lw)).map(|(h, w)| (s.layer, self.t, h, w));
        if let Some((_, t, h, w)) = self.hover {
            let cell = |r: egui::Rect| {
                let (cw, ch) = (r.width() / lw as f32, r.height() / lh as f32);
                egui::Rect::from_min_size(r.min + egui::vec2(w as f32 * cw, h as f32 * ch), egui::vec2(cw, ch))
            };
            let stroke = Stroke::new(2.0, Color32::WHITE);
            ui.painter().rect_stroke(cell(orig_rect), 0.0, stroke, egui::StrokeKind::Inside);
            ui.painter().rect_stroke(cell(map_resp.rect), 0.0, stroke, egui::StrokeKind::Inside);
            let at = (t * lh + h) * lw + w;
            let id = layer.ids.get(at).copied().unwrap_or(0);
            ui.label(format!("layer {} · t {t} · h {h} · w {w} · token {id} · bits {}", s.layer + 1, tokenmap::bits_text(id, layer.bits)));
            // With the mask overlay: this position's entry of the difference matrix.
            if let Some(m) = mask_view
                && t > 0
                && let (Some(d), Some(&masked)) = (m.diff.get(at), m.mask.get(at))
            {
                ui.label(format!(
                    "difference to the previous latent frame: {d:.0} of {} bits (layer mean {:.2}) · {}",
                    layer.bits,
                    m.mean_diff(lt),
                    if masked { "masked" } else { "kept" }
                ));
            }
        } else {
            ui.label("hover the token map for details");
        }
        ui.horizontal(|ui| {
            let mut kk = k;
            ui.add(egui::Slider::new(&mut kk, 1..=n.max(1)).text("layers decoded (k coarsest)"));
            s.k = kk;
            if let Some(db) = p.psnr.get(k - 1) {
                ui.label(format!("PSNR with {k} of {n} layers: {db:.2} dB (left: original, right: reconstruction)"));
            }
        });
        self.strip_ui(ui, s, p);
        self.masks_ui(ui, sh, s, &p.masks);
        histogram_ui(ui, layer, s.layer);
    }

    /// Every layer at once, aligned: the video frame and, at the same size, each layer's token
    /// map at the latent frame that covers it. The scrubber moves through the video frames and
    /// takes the selected layer's map above along.
    fn strip_ui(&mut self, ui: &mut egui::Ui, s: &TokensSettings, p: &TokenPayload) {
        let frames = p.original.len();
        if frames == 0 || p.layers.is_empty() {
            return;
        }
        ui.separator();
        self.video_frame = self.video_frame.min(frames - 1);
        let before = self.video_frame;
        ui.add(egui::Slider::new(&mut self.video_frame, 0..=frames - 1).text("video frame"));
        let latent = |l: &LayerTokens, f: usize| (f * l.shape[0] / frames).min(l.shape[0].saturating_sub(1));
        if self.video_frame != before
            && let Some(l) = p.layers.get(s.layer)
        {
            self.t = latent(l, self.video_frame);
        }
        // The same side for every map: a whole multiple of each grid when sides are powers of 2.
        let side = (PANEL / 2.0).round();
        self.strip_tex.resize_with(p.layers.len(), || (None, None));
        self.strip_rects.clear();
        self.strip_frames = p.layers.iter().map(|l| latent(l, self.video_frame)).collect();
        ui.horizontal_wrapped(|ui| {
            ui.vertical(|ui| {
                self.strip_orig.show(ui, "strip-original", &p.original, self.seen, self.video_frame, egui::vec2(side, side));
                ui.label(format!("frame {}", self.video_frame));
            });
            for (j, l) in p.layers.iter().enumerate() {
                let t = self.strip_frames[j];
                let key = (self.seen, t, s.color);
                let (tex, shown) = &mut self.strip_tex[j];
                if *shown != Some(key) || tex.is_none() {
                    let img = tokenmap::token_image(&l.ids, l.shape, t, l.bits as u32, s.color, None);
                    match tex {
                        Some(h) => h.set(img, egui::TextureOptions::NEAREST),
                        None => *tex = Some(ui.ctx().load_texture(format!("strip-layer-{j}"), img, egui::TextureOptions::NEAREST)),
                    }
                    *shown = Some(key);
                }
                ui.vertical(|ui| {
                    if let Some(h) = tex {
                        self.strip_rects.push(ui.image((h.id(), egui::vec2(side, side))).rect);
                    }
                    ui.label(format!("layer {} · t {t} of {}", j + 1, l.shape[0]));
                });
            }
        });
    }

    fn map_ui(
        &mut self,
        ui: &mut egui::Ui,
        sh: &Shared<'_>,
        layer: &LayerTokens,
        s: &TokensSettings,
        mask: Option<&[bool]>,
        size: egui::Vec2,
    ) -> egui::Response {
        if let Some(rs) = sh.wgpu {
            return gpu_tokenmap::paint(ui, rs, layer, self.t, s.color, mask, size);
        }
        let key = (self.seen, s.layer, self.t, s.color, mask.is_some());
        if self.map_key != Some(key) || self.map_tex.is_none() {
            let img = tokenmap::token_image(&layer.ids, layer.shape, self.t, layer.bits as u32, s.color, mask);
            match &mut self.map_tex {
                Some(t) => t.set(img, egui::TextureOptions::NEAREST),
                None => self.map_tex = Some(ui.ctx().load_texture("token-map", img, egui::TextureOptions::NEAREST)),
            }
            self.map_key = Some(key);
        }
        match &self.map_tex {
            Some(t) => ui.add(egui::Image::new((t.id(), size)).sense(egui::Sense::hover())),
            None => ui.label("(no map)"),
        }
    }

    fn masks_ui(&mut self, ui: &mut egui::Ui, sh: &mut Shared<'_>, s: &mut TokensSettings, masks: &Masks) {
        if !s.show_mask {
            return;
        }
        ui.horizontal(|ui| {
            ui.add(egui::DragValue::new(&mut s.cap).speed(0.01).range(0.0..=1.0).prefix("mask cap "));
            ui.add(egui::DragValue::new(&mut s.tolerance).speed(0.01).range(0.0..=1.0).prefix("tolerance ")).on_hover_text(
                "a token changed by more than this fraction of its bits is never masked; 0 masks only unchanged tokens, so the repeat fill is exact",
            );
            let l = ui.label("fill");
            egui::ComboBox::from_id_salt("mask-fill")
                .selected_text(s.fill.name())
                .show_ui(ui, |ui| {
                    for f in FillStrategy::ALL {
                        ui.selectable_value(&mut s.fill, f, f.name());
                    }
                })
                .response
                .labelled_by(l.id);
            if ui.add_enabled(self.job.is_none(), egui::Button::new("Apply")).clicked()
                && let Some(src) = self.source.clone()
            {
                self.submit(sh, s, src);
            }
        });
        match masks {
            Masks::Unavailable(why) => {
                ui.colored_label(ERROR, format!("mask overlay: {why}"));
            }
            Masks::Ready { layers, cap, fill, ratio_all, psnr, .. } => {
                match layers.get(s.layer).and_then(|m| m.as_ref()) {
                    Some(m) => {
                        ui.label(format!("layer {}: realized mask ratio {:.1}% of maskable tokens (cap {:.0}%)", s.layer + 1, m.ratio * 100.0, cap * 100.0))
                    }
                    None => ui.label(format!("layer {} has one latent frame: nothing to mask", s.layer + 1)),
                };
                ui.label(format!("whole clip: {:.1}% of tokens masked; decoded with fill '{fill}' (rightmost panel): PSNR {psnr:.2} dB", ratio_all * 100.0));
            }
        }
    }
}

fn histogram_ui(ui: &mut egui::Ui, layer: &LayerTokens, j: usize) {
    ui.label(format!(
        "codebook usage, layer {}: {} of {} codes used in this clip, perplexity {:.1}{}",
        j + 1,
        layer.used,
        1u64 << layer.bits,
        layer.perplexity,
        if layer.bin > 1 { format!(" (bars group {} ids)", layer.bin) } else { String::new() }
    ));
    let bars = layer.histogram.iter().enumerate().map(|(i, &c)| Bar::new((i * layer.bin) as f64, c as f64).width(layer.bin as f64)).collect();
    Plot::new(("usage", j)).height(120.0).allow_scroll(false).show(ui, |p| p.bar_chart(BarChart::new("tokens", bars)));
}

//! Sweep view: a CFG x seed grid that fills in cell by cell; every cell plays; the analyzer's
//! score per cell; score against CFG (egui_plot); export of the grid as one tiled clip.

use std::sync::Arc;

use eframe::egui;
use egui_plot::{Legend, Line, Plot, Points};
use hitvideo_engine::generator::grid::{GridLabels, compose};
use hitvideo_engine::video::{ExportMetadata, Video};

use super::{Clock, ERROR, FrameTexture, Shared, outcome_label};
use crate::studio::jobs::{Event, JobId, Outcome, SweepPayload, SweepRequest, Task};
use crate::studio::settings::{GenerateSettings, SweepSettings, parse_cfgs, parse_seeds};

/// Cell size on screen, points.
const CELL: f32 = 96.0;

#[derive(Default)]
pub struct SweepView {
    job: Option<JobId>,
    pub grid: Option<Arc<SweepPayload>>,
    seen: u64,
    textures: Vec<FrameTexture>,
    frame: usize,
    clock: Clock,
    outcome: Option<Outcome>,
    error: Option<String>,
}

/// All cells in one clip with labelled axes (rows: CFG, columns: seeds, the analyzer's score
/// under each cell), drawn by the engine's grid composer like `hitvideo sweep`'s; `None` until
/// every cell is done.
pub fn tile(grid: &SweepPayload) -> Option<Video> {
    let cells: Vec<Option<&Video>> = grid.cells.iter().map(|c| c.as_ref().map(|c| c.video.as_ref())).collect();
    if cells.iter().any(Option::is_none) {
        return None;
    }
    let labels = GridLabels {
        title: format!("seed →   (prompt: {}; under each clip: analyzer score)", grid.prompt),
        columns: grid.seeds.iter().map(|s| format!("seed {s}")).collect(),
        rows: grid.cfgs.iter().map(|c| format!("CFG {c}")).collect(),
        captions: grid.cells.iter().map(|c| c.as_ref().and_then(|c| c.score).map_or_else(|| "score -".to_string(), |s| format!("score {s:.2}"))).collect(),
    };
    compose(&cells, &labels, 2)
}

impl SweepView {
    pub fn on_event(&mut self, e: &Event) {
        if let Event::Finished { job, outcome } = e
            && Some(*job) == self.job {
                self.job = None;
                self.outcome = Some(outcome.clone());
            }
    }

    /// Starts a sweep with the generate view's prompt and sampling settings.
    pub fn run(&mut self, sh: &mut Shared<'_>, g: &GenerateSettings, s: &SweepSettings) {
        let parsed = parse_cfgs(&s.cfgs).and_then(|cfgs| Ok((cfgs, parse_seeds(&s.seeds)?))).and_then(|(cfgs, seeds)| {
            let base = g.request(0)?;
            Ok(SweepRequest { base, cfgs, seeds })
        });
        match parsed {
            Ok(req) => {
                self.error = None;
                self.outcome = None;
                self.grid = None;
                self.job = Some(sh.engine.submit(Task::Sweep(req)));
            }
            Err(e) => self.error = Some(e),
        }
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, sh: &mut Shared<'_>, g: &GenerateSettings, s: &mut SweepSettings) {
        sh.models_row(ui, true);
        ui.label(format!("prompt (from the generate view): {}", g.prompt));
        ui.horizontal(|ui| {
            let l = ui.label("CFG values");
            ui.add(egui::TextEdit::singleline(&mut s.cfgs).desired_width(140.0).id_salt("sweep-cfgs")).labelled_by(l.id);
            let l = ui.label("seeds");
            ui.add(egui::TextEdit::singleline(&mut s.seeds).desired_width(80.0).id_salt("sweep-seeds")).labelled_by(l.id);
            if ui.add_enabled(self.job.is_none(), egui::Button::new("Run sweep")).clicked() {
                self.run(sh, g, s);
            }
            if let Some(j) = self.job
                && ui.button("Cancel").clicked() {
                    sh.engine.cancel(j);
                }
        });
        if let Some(e) = &self.error {
            ui.colored_label(ERROR, e);
        }
        outcome_label(ui, &self.outcome);
        let mut seen = self.seen;
        if let Some(grid) = sh.engine.slots().sweep.take_newer(&mut seen) {
            self.grid = Some(grid);
        }
        self.seen = seen;
        let Some(grid) = self.grid.clone() else { return };
        let done = grid.cells.iter().filter(|c| c.is_some()).count();
        ui.label(format!("{done} of {} cells", grid.cells.len()));
        let frames = grid.cells.iter().flatten().map(|c| c.video.len()).max().unwrap_or(0);
        let fps = grid.cells.iter().flatten().map(|c| c.video.fps()).next().unwrap_or(8.0);
        self.frame = self.clock.tick(ui, self.frame, frames, fps);
        self.textures.resize_with(grid.cells.len(), FrameTexture::default);
        egui::Grid::new("sweep-grid").show(ui, |ui| {
            ui.label("CFG \\ seed");
            for seed in &grid.seeds {
                ui.label(format!("seed {seed}"));
            }
            ui.end_row();
            for (ci, cfg) in grid.cfgs.iter().enumerate() {
                ui.label(format!("{cfg}"));
                for si in 0..grid.seeds.len() {
                    let i = ci * grid.seeds.len() + si;
                    ui.vertical(|ui| match &grid.cells[i] {
                        Some(cell) => {
                            if let Some(t) = self.textures.get_mut(i) {
                                t.show(ui, "sweep-cell", &cell.video, self.seen, self.frame, egui::vec2(CELL, CELL));
                            }
                            let score = cell.score.map(|s| format!("{:.0}%", s * 100.0)).unwrap_or_else(|| "n/a".into());
                            ui.label(format!("score {score} · {:.1} s", cell.seconds));
                        }
                        None => {
                            ui.add_sized([CELL, CELL], egui::Spinner::new());
                        }
                    });
                }
                ui.end_row();
            }
        });
        plot_ui(ui, &grid);
        if ui.add_enabled(done == grid.cells.len(), egui::Button::new("Export grid…")).clicked()
            && let (Some(video), Some(path)) = (tile(&grid), rfd::FileDialog::new().set_file_name("sweep.mp4").save_file()) {
                let mut meta = ExportMetadata::for_video(&video);
                meta.prompt = Some(grid.prompt.clone());
                meta.extra.insert("sweep_cfgs".into(), serde_json::json!(grid.cfgs));
                meta.extra.insert("sweep_seeds".into(), serde_json::json!(grid.seeds));
                meta.extra.insert("sweep_scores".into(), serde_json::json!(grid.cells.iter().map(|c| c.as_ref().and_then(|c| c.score)).collect::<Vec<_>>()));
                sh.submit_app(Task::Export { video: Arc::new(video), path, meta: Box::new(meta) });
            }
    }
}

fn plot_ui(ui: &mut egui::Ui, grid: &SweepPayload) {
    let mut points = Vec::new();
    let mut means = Vec::new();
    for (ci, cfg) in grid.cfgs.iter().enumerate() {
        let scores: Vec<f64> =
            (0..grid.seeds.len()).filter_map(|si| grid.cells[ci * grid.seeds.len() + si].as_ref()?.score).map(f64::from).collect();
        points.extend(scores.iter().map(|s| [f64::from(*cfg), *s]));
        if !scores.is_empty() {
            means.push([f64::from(*cfg), scores.iter().sum::<f64>() / scores.len() as f64]);
        }
    }
    ui.label("analyzer score against CFG");
    Plot::new("sweep-plot").height(160.0).include_y(0.0).include_y(1.0).legend(Legend::default()).show(ui, |p| {
        p.points(Points::new("cells", points).radius(3.0));
        p.line(Line::new("mean over seeds", means));
    });
}

//! Sweep view: a grid over two sampling parameters (any two of CFG, seed, temperature, top-k,
//! top-p) that fills in cell by cell; every cell plays; the analyzer's score per cell; score
//! against the row (or column) parameter (egui_plot); export of the grid as one tiled clip; a
//! cell opens in the Generate view with its settings. Cells are scaled by the largest whole
//! multiple that fits the grid in the window.

use std::sync::Arc;

use eframe::egui;
use egui_plot::{Legend, Line, Plot, Points};
use hitvideo_engine::eval::grid::{GridLabels, compose};
use hitvideo_engine::video::meta::SamplerSettings;
use hitvideo_engine::video::{ExportMetadata, Video};

use super::{Clock, ERROR, FrameTexture, Shared, outcome_label};
use crate::studio::dialogs::{DialogPurpose, DialogSpec};
use crate::studio::jobs::{Event, JobId, Outcome, SweepAxis, SweepPayload, SweepRequest, Task};
use crate::studio::player::whole_fit;
use crate::studio::settings::{GenerateSettings, SweepSettings};

/// The smallest cell side on screen, points.
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
    /// The request of the sweep on screen (a cell's settings are its base with the cell's values).
    request: Option<SweepRequest>,
    /// A cell to open in the Generate view: its settings and its clip (the app moves it there).
    pub to_generate: Option<(Box<ExportMetadata>, Arc<Video>)>,
    /// The side cells were drawn at last (points), for tests.
    pub cell_side: f32,
    /// A finished sweep's tiled grid for the gallery (the app hands it to the Generate view's
    /// gallery), and the last sweep handed over.
    pub to_gallery: Option<(Arc<Video>, Box<ExportMetadata>, JobId)>,
    saved: Option<JobId>,
    /// Cells sent to the Compare view (the app moves them there).
    pub to_compare: Vec<(String, Arc<Video>)>,
}

/// The metadata of a tiled sweep grid: the prompt, both axes and every cell's score.
fn grid_metadata(grid: &SweepPayload, video: &Video) -> ExportMetadata {
    let mut meta = ExportMetadata::for_video(video);
    meta.prompt = Some(grid.prompt.clone());
    meta.extra.insert("sweep_rows".into(), grid.rows.to_json());
    meta.extra.insert("sweep_columns".into(), grid.columns.to_json());
    meta.extra.insert("sweep_scores".into(), serde_json::json!(grid.cells.iter().map(|c| c.as_ref().and_then(|c| c.fraction)).collect::<Vec<_>>()));
    meta
}

/// The generation settings of cell (`ri`, `ci`) of a sweep, as export metadata.
pub fn cell_metadata(req: &SweepRequest, ri: usize, ci: usize, video: &Video) -> ExportMetadata {
    let r = req.cell_request(ri, ci);
    let mut m = ExportMetadata::for_video(video);
    m.prompt = Some(r.prompt.clone());
    m.negative_prompt = r.negative.clone();
    m.seed = r.seeds.first().copied();
    m.cfg = r.cfg_schedule.finest();
    m.cfg_schedule = Some(r.cfg_schedule);
    m.sampler = SamplerSettings { temperature: Some(r.temperature), top_k: r.top_k, top_p: Some(r.top_p) };
    m
}

/// All cells in one clip with labelled axes (the row and column parameters, the analyzer's
/// score under each cell), drawn by the engine's grid composer like `hitvideo sweep`'s; `None` until
/// every cell is done.
pub fn tile(grid: &SweepPayload) -> Option<Video> {
    let cells: Vec<Option<&Video>> = grid.cells.iter().map(|c| c.as_ref().map(|c| c.video.as_ref())).collect();
    if cells.iter().any(Option::is_none) {
        return None;
    }
    let labels = GridLabels {
        title: format!("{} →   (prompt: {}; under each clip: analyzer score)", grid.columns.axis().label(), grid.prompt),
        columns: (0..grid.columns.len()).map(|i| grid.columns.label(i)).collect(),
        rows: (0..grid.rows.len()).map(|i| grid.rows.label(i)).collect(),
        captions: grid.cells.iter().map(|c| c.as_ref().and_then(|c| c.fraction).map_or_else(|| "score -".to_string(), |s| format!("score {s:.2}"))).collect(),
    };
    compose(&cells, &labels, 2)
}

impl SweepView {
    pub fn on_event(&mut self, e: &Event) {
        if let Event::Finished { job, outcome } = e
            && Some(*job) == self.job
        {
            self.job = None;
            self.outcome = Some(outcome.clone());
        }
    }

    /// Starts a sweep with the generate view's prompt and sampling settings (and its seed
    /// field's seed when neither axis is the seed).
    pub fn run(&mut self, sh: &mut Shared<'_>, g: &GenerateSettings, s: &SweepSettings) {
        let parsed = s.axes().and_then(|(rows, columns)| Ok(SweepRequest { base: g.sweep_base()?, rows, columns }));
        match parsed {
            Ok(req) => {
                self.error = None;
                self.outcome = None;
                self.grid = None;
                self.request = Some(req.clone());
                self.job = Some(sh.engine.submit(Task::Sweep(req)));
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, sh: &mut Shared<'_>, g: &GenerateSettings, s: &mut SweepSettings) {
        sh.models_row(ui, true);
        ui.label(format!("prompt (from the generate view): {}", g.prompt));
        ui.label(format!("other settings from the generate view (seed {} unless an axis varies the seed)", g.seed));
        ui.horizontal(|ui| {
            axis_ui(ui, "rows", "sweep-rows", &mut s.rows, s.columns);
            let l = ui.label(format!("{} values", s.rows.label()));
            ui.add(egui::TextEdit::singleline(s.values_mut(s.rows)).desired_width(120.0).id_salt("sweep-row-values")).labelled_by(l.id);
            ui.separator();
            axis_ui(ui, "columns", "sweep-columns", &mut s.columns, s.rows);
            let l = ui.label(format!("{} values", s.columns.label()));
            ui.add(egui::TextEdit::singleline(s.values_mut(s.columns)).desired_width(120.0).id_salt("sweep-column-values")).labelled_by(l.id);
            if ui.add_enabled(self.job.is_none(), egui::Button::new("Run sweep")).clicked() {
                self.run(sh, g, s);
            }
            if let Some(j) = self.job
                && ui.button("Cancel").clicked()
            {
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
        // The app exports to the path chosen ([`DialogPurpose::SaveSweep`]).
        if ui.add_enabled(done == grid.cells.len() && !sh.dialogs.is_open(), egui::Button::new("Export grid…")).clicked()
            && let Some(video) = tile(&grid)
        {
            let meta = grid_metadata(&grid, &video);
            sh.dialogs.open(DialogPurpose::SaveSweep { video: Arc::new(video), meta: Box::new(meta) }, DialogSpec::save_file().file_name("sweep.mp4"));
        }
        // A finished sweep goes to the gallery too (once).
        if done == grid.cells.len()
            && self.saved != Some(grid.job)
            && let Some(video) = tile(&grid)
        {
            self.saved = Some(grid.job);
            let meta = grid_metadata(&grid, &video);
            self.to_gallery = Some((Arc::new(video), Box::new(meta), grid.job));
        }
        let frames = grid.cells.iter().flatten().map(|c| c.video.len()).max().unwrap_or(0);
        let fps = grid.cells.iter().flatten().map(|c| c.video.fps()).next().unwrap_or(8.0);
        self.frame = self.clock.tick(ui, self.frame, frames, fps);
        self.textures.resize_with(grid.cells.len(), FrameTexture::default);
        // Cells as large as the window allows, by a whole multiple of the clip's side.
        let clip_side = grid.cells.iter().flatten().map(|c| c.video.width().max(c.video.height()) as f32).next().unwrap_or(32.0);
        let row = ui.spacing().interact_size.y;
        let per_w = ui.available_width() / (grid.columns.len() as f32 + 0.7) - 2.0 * ui.spacing().item_spacing.x;
        // Room under the grid for the plot (160) and the export row.
        let per_h = (ui.available_height() - 160.0 - 4.0 * row) / grid.rows.len().max(1) as f32 - 2.0 * row;
        let side = (clip_side * whole_fit(per_w / clip_side, per_h / clip_side) as f32).max(CELL.min(clip_side * 3.0));
        self.cell_side = side;
        let mut open = None;
        egui::Grid::new("sweep-grid").show(ui, |ui| {
            ui.label(format!("{} \\ {}", grid.rows.axis().label(), grid.columns.axis().label()));
            for ci in 0..grid.columns.len() {
                ui.label(grid.columns.label(ci));
            }
            ui.end_row();
            for ri in 0..grid.rows.len() {
                ui.label(grid.rows.value_text(ri));
                for ci in 0..grid.columns.len() {
                    let i = ri * grid.columns.len() + ci;
                    ui.vertical(|ui| match &grid.cells[i] {
                        Some(cell) => {
                            if let Some(t) = self.textures.get_mut(i) {
                                t.show(ui, "sweep-cell", &cell.video, self.seen, self.frame, egui::vec2(side, side));
                            }
                            let score = cell.fraction.map(|s| format!("{:.0}%", s * 100.0)).unwrap_or_else(|| "n/a".into());
                            ui.horizontal(|ui| {
                                ui.label(format!("score {score} · {:.1} s", cell.seconds()));
                                if ui.small_button("Open").on_hover_text("open this cell in the Generate view with its settings").clicked() {
                                    open = Some((ri, ci, Arc::clone(&cell.video)));
                                }
                                if ui.small_button("Compare").on_hover_text("add this cell to the Compare view").clicked() {
                                    let label = format!(
                                        "{} {} · {} {}",
                                        grid.rows.axis().label(),
                                        grid.rows.value_text(ri),
                                        grid.columns.axis().label(),
                                        grid.columns.value_text(ci)
                                    );
                                    self.to_compare.push((label, Arc::clone(&cell.video)));
                                }
                            });
                        }
                        None => {
                            ui.add_sized([side, side], egui::Spinner::new());
                        }
                    });
                }
                ui.end_row();
            }
        });
        if let (Some((ri, ci, video)), Some(req)) = (open, &self.request) {
            self.to_generate = Some((Box::new(cell_metadata(req, ri, ci, &video)), video));
        }
        plot_ui(ui, &grid);
    }
}

/// A choice of sweep axis; `other` (the other axis's choice) is not offered.
fn axis_ui(ui: &mut egui::Ui, label: &str, id: &str, axis: &mut SweepAxis, other: SweepAxis) {
    let l = ui.label(label);
    egui::ComboBox::from_id_salt(id)
        .selected_text(axis.label())
        .show_ui(ui, |ui| {
            for a in SweepAxis::ALL.into_iter().filter(|a| *a != other) {
                ui.selectable_value(axis, a, a.label());
            }
        })
        .response
        .labelled_by(l.id);
}

/// Score against the row parameter (against the column one when only the rows are seeds),
/// every cell a point and a line through the means over the other axis.
fn plot_ui(ui: &mut egui::Ui, grid: &SweepPayload) {
    let along_rows = grid.rows.axis() != SweepAxis::Seed || grid.columns.axis() == SweepAxis::Seed;
    let (along, over) = if along_rows { (&grid.rows, &grid.columns) } else { (&grid.columns, &grid.rows) };
    let mut points = Vec::new();
    let mut means = Vec::new();
    for xi in 0..along.len() {
        let x = along.x(xi);
        let scores: Vec<f64> =
            (0..over.len()).filter_map(|oi| if along_rows { grid.cell(xi, oi) } else { grid.cell(oi, xi) }).filter_map(|c| c.fraction).map(f64::from).collect();
        points.extend(scores.iter().map(|s| [x, *s]));
        if !scores.is_empty() {
            means.push([x, scores.iter().sum::<f64>() / scores.len() as f64]);
        }
    }
    ui.label(format!("analyzer score against {}", along.axis().label()));
    Plot::new("sweep-plot").height(160.0).include_y(0.0).include_y(1.0).legend(Legend::default()).show(ui, |p| {
        p.points(Points::new("cells", points).radius(3.0));
        p.line(Line::new(format!("mean over {}", over.axis().plural()), means));
    });
}

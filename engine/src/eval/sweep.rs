//! CFG x seed sweeps over a list of prompts: every cell generated (the seeds of one prompt and
//! scale as one batch), decoded, scored by the attribute analyzer and timed; then a labelled
//! grid (rows: prompt and seed; columns: CFG scale) and a table of every cell.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::Serialize;

use super::grid::{GridLabels, compose};
use crate::eval::analyze::{self, Analysis, AttributeScore, PromptAttributes};
use crate::generator::pipeline::{ClipRequest, Pipeline, PipelineError};
use crate::generator::sample::SamplingConfig;
use crate::video::Video;

/// What to sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSpec {
    pub prompts: Vec<String>,
    /// Constant CFG scales, one column each.
    pub cfgs: Vec<f32>,
    pub seeds: Vec<u64>,
    pub negative: Option<String>,
    pub sampling: SamplingConfig,
    pub use_cache: bool,
}

/// One generated, scored and timed cell.
#[derive(Debug, Clone, Serialize)]
pub struct SweepCell {
    pub prompt: String,
    pub seed: u64,
    pub cfg: f32,
    pub analysis: Analysis,
    pub score: AttributeScore,
    /// Fraction of the attributes the prompt names that the clip shows.
    pub fraction: Option<f32>,
    /// Generation time of the cell's batch divided by its rows, and decoding time likewise.
    pub generate_seconds: f64,
    pub decode_seconds: f64,
    pub tokens: Vec<u32>,
    #[serde(skip)]
    pub video: Video,
}

/// Runs every cell of `spec` (order: prompt, CFG, seed); `progress(done, total)` after each
/// batch; `cancel` stops between tokens.
pub fn run(p: &Pipeline, spec: &SweepSpec, cancel: &AtomicBool, mut progress: impl FnMut(usize, usize)) -> Result<Vec<SweepCell>, PipelineError> {
    let total = spec.prompts.len() * spec.cfgs.len() * spec.seeds.len();
    let mut cells = Vec::with_capacity(total);
    for prompt in &spec.prompts {
        let wanted = PromptAttributes::parse(prompt);
        for &cfg in &spec.cfgs {
            let req = ClipRequest::at_cfg(vec![prompt.clone()], spec.seeds.clone(), cfg, &spec.sampling, spec.negative.clone(), spec.use_cache);
            let t0 = Instant::now();
            let tokens = p.generate(&req, cancel, |_| {})?;
            let t1 = Instant::now();
            let videos = p.decode(&tokens, p.cfg.layers.len())?;
            let (gen_s, dec_s) = ((t1 - t0).as_secs_f64(), t1.elapsed().as_secs_f64());
            let n = tokens.len().max(1) as f64;
            for ((seed, row), video) in spec.seeds.iter().zip(tokens).zip(videos) {
                let analysis = analyze::analyze(&video);
                let score = analyze::score(&analysis, &wanted);
                cells.push(SweepCell {
                    prompt: prompt.clone(),
                    seed: *seed,
                    cfg,
                    fraction: score.fraction(),
                    analysis,
                    score,
                    generate_seconds: gen_s / n,
                    decode_seconds: dec_s / n,
                    tokens: row,
                    video,
                });
            }
            progress(cells.len(), total);
        }
    }
    Ok(cells)
}

fn mark(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "✓",
        Some(false) => "✗",
        None => "·",
    }
}

/// The grid of a sweep: rows `prompt · seed s`, columns `CFG c`; under each cell the
/// shape/color/motion verdicts and the score.
pub fn grid(cells: &[SweepCell], spec: &SweepSpec, scale: usize) -> Option<Video> {
    let mut rows = Vec::new();
    let mut ordered = Vec::new();
    let mut captions = Vec::new();
    for prompt in &spec.prompts {
        for &seed in &spec.seeds {
            rows.push(format!("{prompt} · seed {seed}"));
            for &cfg in &spec.cfgs {
                let cell = cells.iter().find(|c| &c.prompt == prompt && c.seed == seed && c.cfg == cfg);
                ordered.push(cell.map(|c| &c.video));
                captions.push(cell.map_or_else(String::new, |c| {
                    let s = c.score;
                    let f = c.fraction.map_or_else(|| "-".to_string(), |f| format!("{:.0}%", f * 100.0));
                    format!("{}{}{} {f}", mark(s.shape), mark(s.color), mark(s.motion))
                }));
            }
        }
    }
    let labels = GridLabels {
        title: "CFG scale →   (under each clip: shape, color, motion match; score)".into(),
        columns: spec.cfgs.iter().map(|c| format!("CFG {c}")).collect(),
        rows,
        captions,
    };
    compose(&ordered, &labels, scale)
}

/// The table of a sweep as CSV (one line per cell).
pub fn to_csv(cells: &[SweepCell]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "prompt",
        "seed",
        "cfg",
        "score",
        "shape_ok",
        "color_ok",
        "motion_ok",
        "shape",
        "color",
        "motion",
        "frames_found",
        "generate_seconds",
        "decode_seconds",
    ])?;
    let opt = |b: Option<bool>| b.map_or_else(String::new, |b| b.to_string());
    let name = |s: Option<String>| s.unwrap_or_default();
    for c in cells {
        w.write_record([
            c.prompt.clone(),
            c.seed.to_string(),
            c.cfg.to_string(),
            c.fraction.map_or_else(String::new, |f| format!("{f:.4}")),
            opt(c.score.shape),
            opt(c.score.color),
            opt(c.score.motion),
            name(c.analysis.shape.map(|s| format!("{s:?}").to_lowercase())),
            name(c.analysis.color.map(|s| format!("{s:?}").to_lowercase())),
            name(c.analysis.motion.map(|s| format!("{s:?}").to_lowercase())),
            c.analysis.frames_found.to_string(),
            format!("{:.4}", c.generate_seconds),
            format!("{:.4}", c.decode_seconds),
        ])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Mean score per CFG scale (cells whose prompt names no attribute are left out).
pub fn mean_by_cfg(cells: &[SweepCell], cfgs: &[f32]) -> Vec<(f32, Option<f32>)> {
    cfgs.iter()
        .map(|&c| {
            let v: Vec<f32> = cells.iter().filter(|x| x.cfg == c).filter_map(|x| x.fraction).collect();
            (c, (!v.is_empty()).then(|| v.iter().sum::<f32>() / v.len() as f32))
        })
        .collect()
}

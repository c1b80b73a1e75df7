//! Sweeps over any two sampling parameters (CFG scale, seed, temperature, top-k, top-p) for a
//! list of prompts, the same for `hitvideo sweep` and the studio's Sweep view: every cell
//! generated (the seeds of a seed axis as one batch), decoded, scored by the attribute analyzer
//! and timed; then a labelled grid (per prompt, rows by columns) and a table of every cell.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::Serialize;

use super::grid::{GridLabels, compose};
use crate::eval::analyze::{self, Analysis, AttributeScore, PromptAttributes};
use crate::generator::lists::{self, ListError};
use crate::generator::pipeline::{ClipRequest, Pipeline, PipelineError};
use crate::generator::sample::{CfgSchedule, SamplingConfig};
use crate::video::Video;

/// Most values one axis may take.
pub const MAX_AXIS_VALUES: usize = 16;

/// A sampling parameter a sweep can vary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
pub enum SweepAxis {
    /// A constant CFG scale (replaces the base settings' schedule).
    #[default]
    Cfg,
    Seed,
    Temperature,
    /// Top-k (0: every token).
    TopK,
    TopP,
}

impl SweepAxis {
    /// Every axis, in the order the sweep view lists them.
    pub const ALL: [SweepAxis; 5] = [SweepAxis::Cfg, SweepAxis::Seed, SweepAxis::Temperature, SweepAxis::TopK, SweepAxis::TopP];

    /// The parameter's name as the views and the CLI write it.
    pub fn label(self) -> &'static str {
        match self {
            SweepAxis::Cfg => "CFG",
            SweepAxis::Seed => "seed",
            SweepAxis::Temperature => "temperature",
            SweepAxis::TopK => "top-k",
            SweepAxis::TopP => "top-p",
        }
    }

    /// Its values, plural ("mean over seeds").
    pub fn plural(self) -> &'static str {
        match self {
            SweepAxis::Cfg => "CFG scales",
            SweepAxis::Seed => "seeds",
            SweepAxis::Temperature => "temperatures",
            SweepAxis::TopK => "top-k values",
            SweepAxis::TopP => "top-p values",
        }
    }
}

/// Why an axis could not be read; the message says how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AxisError {
    #[error("sweep axis '{0}': choose cfg, seed, temperature, top-k or top-p")]
    Unknown(String),
    #[error("sweep axis '{0}': write AXIS=VALUES, e.g. cfg=1,2.5,5 or seed=0-3")]
    Form(String),
    #[error("{what} list '{text}': '{value}' is not {hint}")]
    Value { what: &'static str, text: String, value: String, hint: &'static str },
    #[error("{what} list '{text}': give between 1 and {MAX_AXIS_VALUES} values")]
    Count { what: &'static str, text: String },
    #[error(transparent)]
    List(#[from] ListError),
    #[error("rows and columns both vary {0}; choose two different parameters")]
    Same(&'static str),
}

impl FromStr for SweepAxis {
    type Err = AxisError;
    fn from_str(s: &str) -> Result<Self, AxisError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cfg" => Ok(Self::Cfg),
            "seed" | "seeds" => Ok(Self::Seed),
            "temperature" => Ok(Self::Temperature),
            "top-k" | "top_k" | "topk" => Ok(Self::TopK),
            "top-p" | "top_p" | "topp" => Ok(Self::TopP),
            other => Err(AxisError::Unknown(other.to_string())),
        }
    }
}

/// The values of one sweep axis.
#[derive(Debug, Clone, PartialEq)]
pub enum AxisValues {
    Cfg(Vec<f32>),
    Seed(Vec<u64>),
    Temperature(Vec<f32>),
    /// `None` keeps every token.
    TopK(Vec<Option<usize>>),
    TopP(Vec<f32>),
}

/// One cell's sampling settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CellSettings {
    pub cfg: CfgSchedule,
    pub seed: u64,
    pub sampling: SamplingConfig,
}

/// Numbers each of which `ok` accepts, 1 to [`MAX_AXIS_VALUES`] of them.
fn numbers<T: FromStr + Copy>(text: &str, what: &'static str, ok: impl Fn(T) -> bool, hint: &'static str) -> Result<Vec<T>, AxisError> {
    let t = text.trim();
    let v: Vec<T> = t
        .split(',')
        .map(|s| s.trim().parse::<T>().ok().filter(|x| ok(*x)).ok_or_else(|| AxisError::Value { what, text: t.to_string(), value: s.trim().to_string(), hint }))
        .collect::<Result<_, _>>()?;
    if v.is_empty() || v.len() > MAX_AXIS_VALUES {
        return Err(AxisError::Count { what, text: t.to_string() });
    }
    Ok(v)
}

impl AxisValues {
    /// The values of `axis` from text: the seed and CFG lists of [`lists`], numbers for the
    /// others (top-k 0 keeps every token); at most [`MAX_AXIS_VALUES`].
    pub fn parse(axis: SweepAxis, text: &str) -> Result<Self, AxisError> {
        Ok(match axis {
            SweepAxis::Cfg => AxisValues::Cfg(lists::parse_cfgs(text, MAX_AXIS_VALUES)?),
            SweepAxis::Seed => AxisValues::Seed(lists::parse_seeds(text, MAX_AXIS_VALUES)?),
            SweepAxis::Temperature => {
                AxisValues::Temperature(numbers(text, "temperature", |t: f32| t.is_finite() && t > 0.0, "a number > 0; write e.g. 0.7,1,1.3")?)
            }
            SweepAxis::TopK => AxisValues::TopK(
                numbers(text, "top-k", |_: usize| true, "a whole number >= 0 (0 keeps every token); write e.g. 0,16,64")?
                    .into_iter()
                    .map(|k| (k > 0).then_some(k))
                    .collect(),
            ),
            SweepAxis::TopP => AxisValues::TopP(numbers(text, "top-p", |p: f32| p > 0.0 && p <= 1.0, "a number in (0, 1]; write e.g. 0.8,0.95,1")?),
        })
    }

    /// `AXIS=VALUES` (`cfg=1,2.5,5`, `seed=0-3`, `top-k=0,16`), as the CLI takes an axis.
    pub fn parse_assignment(text: &str) -> Result<Self, AxisError> {
        let (axis, values) = text.split_once('=').ok_or_else(|| AxisError::Form(text.to_string()))?;
        Self::parse(axis.parse()?, values)
    }

    /// Which parameter these values are of.
    pub fn axis(&self) -> SweepAxis {
        match self {
            AxisValues::Cfg(_) => SweepAxis::Cfg,
            AxisValues::Seed(_) => SweepAxis::Seed,
            AxisValues::Temperature(_) => SweepAxis::Temperature,
            AxisValues::TopK(_) => SweepAxis::TopK,
            AxisValues::TopP(_) => SweepAxis::TopP,
        }
    }

    /// How many values.
    pub fn len(&self) -> usize {
        match self {
            AxisValues::Cfg(v) | AxisValues::Temperature(v) | AxisValues::TopP(v) => v.len(),
            AxisValues::Seed(v) => v.len(),
            AxisValues::TopK(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i` as text (`5`, `0.9`, `all` for top-k without a limit); empty past the end.
    pub fn value_text(&self, i: usize) -> String {
        match self {
            AxisValues::Cfg(v) | AxisValues::Temperature(v) | AxisValues::TopP(v) => v.get(i).map(f32::to_string),
            AxisValues::Seed(v) => v.get(i).map(u64::to_string),
            AxisValues::TopK(v) => v.get(i).map(|k| k.map_or_else(|| "all".to_string(), |k| k.to_string())),
        }
        .unwrap_or_default()
    }

    /// Value `i` with the parameter's name, e.g. `CFG 5` or `top-k all`.
    pub fn label(&self, i: usize) -> String {
        format!("{} {}", self.axis().label(), self.value_text(i))
    }

    /// Value `i` as a number for plots (top-k without a limit: 0).
    pub fn x(&self, i: usize) -> f64 {
        match self {
            AxisValues::Cfg(v) | AxisValues::Temperature(v) | AxisValues::TopP(v) => v.get(i).map_or(0.0, |&x| f64::from(x)),
            AxisValues::Seed(v) => v.get(i).map_or(0.0, |&s| s as f64),
            AxisValues::TopK(v) => v.get(i).copied().flatten().map_or(0.0, |k| k as f64),
        }
    }

    /// Sets the parameter of `cell` to value `i` (nothing past the end).
    pub fn apply(&self, i: usize, cell: &mut CellSettings) {
        match self {
            AxisValues::Cfg(v) => {
                if let Some(&scale) = v.get(i) {
                    cell.cfg = CfgSchedule::Constant { scale };
                }
            }
            AxisValues::Seed(v) => {
                if let Some(&s) = v.get(i) {
                    cell.seed = s;
                }
            }
            AxisValues::Temperature(v) => {
                if let Some(&t) = v.get(i) {
                    cell.sampling.temperature = t;
                }
            }
            AxisValues::TopK(v) => {
                if let Some(&k) = v.get(i) {
                    cell.sampling.top_k = k;
                }
            }
            AxisValues::TopP(v) => {
                if let Some(&p) = v.get(i) {
                    cell.sampling.top_p = p;
                }
            }
        }
    }

    /// The axis as JSON for export metadata: `{"axis": "top-k", "values": [4, null]}`.
    pub fn to_json(&self) -> serde_json::Value {
        let values = match self {
            AxisValues::Cfg(v) | AxisValues::Temperature(v) | AxisValues::TopP(v) => serde_json::json!(v),
            AxisValues::Seed(v) => serde_json::json!(v),
            AxisValues::TopK(v) => serde_json::json!(v),
        };
        serde_json::json!({ "axis": self.axis().label(), "values": values })
    }
}

/// What to sweep: every prompt, every row value by every column value, over `base`.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSpec {
    pub prompts: Vec<String>,
    pub rows: AxisValues,
    pub columns: AxisValues,
    /// The settings the axes change.
    pub base: CellSettings,
    pub negative: Option<String>,
    pub use_cache: bool,
}

impl SweepSpec {
    /// Refuses two axes of one parameter.
    pub fn check(&self) -> Result<(), AxisError> {
        if self.rows.axis() == self.columns.axis() {
            return Err(AxisError::Same(self.rows.axis().label()));
        }
        Ok(())
    }

    /// Cells in all: prompts x rows x columns.
    pub fn cells(&self) -> usize {
        self.prompts.len() * self.rows.len() * self.columns.len()
    }

    /// The settings of cell `(row, column)`.
    pub fn settings(&self, row: usize, column: usize) -> CellSettings {
        let mut s = self.base.clone();
        self.rows.apply(row, &mut s);
        self.columns.apply(column, &mut s);
        s
    }

    /// Index of a cell in [`run`]'s output: prompt-major, then row, then column.
    pub fn index(&self, prompt: usize, row: usize, column: usize) -> usize {
        (prompt * self.rows.len() + row) * self.columns.len() + column
    }
}

/// One generated, scored and timed cell.
#[derive(Debug, Clone, Serialize)]
pub struct SweepCell {
    pub prompt: String,
    /// Its place in the grid.
    pub row: usize,
    pub column: usize,
    pub seed: u64,
    /// The CFG schedule, as `generate --cfg` takes it.
    pub cfg: String,
    pub temperature: f32,
    pub top_k: Option<usize>,
    pub top_p: f32,
    pub analysis: Analysis,
    pub score: AttributeScore,
    /// Fraction of the attributes the prompt names that the clip shows.
    pub fraction: Option<f32>,
    /// Generation time of the cell's batch divided by its rows, and decoding time likewise.
    pub generate_seconds: f64,
    pub decode_seconds: f64,
    pub tokens: Vec<u32>,
    #[serde(skip)]
    pub video: Arc<Video>,
}

impl SweepCell {
    /// Generation and decoding time.
    pub fn seconds(&self) -> f64 {
        self.generate_seconds + self.decode_seconds
    }
}

/// Runs every cell of `spec` (prompt-major, then row, then column; the seeds of a seed axis run
/// as one batch) and returns them in [`SweepSpec::index`] order; `on_cell(cell, done, total)`
/// sees each cell as it is scored; `cancel` stops between tokens.
pub fn run(p: &Pipeline, spec: &SweepSpec, cancel: &AtomicBool, mut on_cell: impl FnMut(&SweepCell, usize, usize)) -> Result<Vec<SweepCell>, PipelineError> {
    spec.check().map_err(|e| PipelineError::Generate(crate::generator::GenerateError::Request(e.to_string())))?;
    let total = spec.cells();
    let mut cells: Vec<Option<SweepCell>> = vec![None; total];
    let mut done = 0;
    // A batch is one (prompt, row, column) cell, or every column (row) of a seed axis.
    let (seed_rows, seed_cols) = (spec.rows.axis() == SweepAxis::Seed, spec.columns.axis() == SweepAxis::Seed);
    for (pi, prompt) in spec.prompts.iter().enumerate() {
        let wanted = PromptAttributes::parse(prompt);
        let mut batches: Vec<Vec<(usize, usize)>> = Vec::new();
        if seed_cols {
            batches.extend((0..spec.rows.len()).map(|r| (0..spec.columns.len()).map(|c| (r, c)).collect()));
        } else if seed_rows {
            batches.extend((0..spec.columns.len()).map(|c| (0..spec.rows.len()).map(|r| (r, c)).collect()));
        } else {
            batches.extend((0..spec.rows.len()).flat_map(|r| (0..spec.columns.len()).map(move |c| vec![(r, c)])));
        }
        for batch in batches {
            let settings: Vec<CellSettings> = batch.iter().map(|&(r, c)| spec.settings(r, c)).collect();
            let first = &settings[0];
            let req = ClipRequest {
                prompts: vec![prompt.clone()],
                negative: spec.negative.clone(),
                seeds: settings.iter().map(|s| s.seed).collect(),
                sampling: first.sampling.clone(),
                cfg: first.cfg.clone(),
                keep: Vec::new(),
                use_cache: spec.use_cache,
            };
            let t0 = Instant::now();
            let tokens = p.generate(&req, cancel, |_| {})?;
            let t1 = Instant::now();
            let videos = p.decode(&tokens, p.cfg.layers.len())?;
            let n = tokens.len().max(1) as f64;
            let (gen_s, dec_s) = ((t1 - t0).as_secs_f64() / n, t1.elapsed().as_secs_f64() / n);
            for (((&(r, c), s), row), video) in batch.iter().zip(&settings).zip(tokens).zip(videos) {
                let analysis = analyze::analyze(&video);
                let score = analyze::score(&analysis, &wanted);
                let cell = SweepCell {
                    prompt: prompt.clone(),
                    row: r,
                    column: c,
                    seed: s.seed,
                    cfg: s.cfg.to_string(),
                    temperature: s.sampling.temperature,
                    top_k: s.sampling.top_k,
                    top_p: s.sampling.top_p,
                    fraction: score.fraction(),
                    analysis,
                    score,
                    generate_seconds: gen_s,
                    decode_seconds: dec_s,
                    tokens: row,
                    video: Arc::new(video),
                };
                done += 1;
                on_cell(&cell, done, total);
                cells[spec.index(pi, r, c)] = Some(cell);
            }
        }
    }
    Ok(cells.into_iter().flatten().collect())
}

fn mark(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "✓",
        Some(false) => "✗",
        None => "·",
    }
}

/// The grid of a sweep: per prompt, one row per row value (`prompt · seed 2`), one column per
/// column value (`CFG 5`); under each cell the shape/color/motion verdicts and the score.
pub fn grid(cells: &[SweepCell], spec: &SweepSpec, scale: usize) -> Option<Video> {
    let mut rows = Vec::new();
    let mut ordered = Vec::new();
    let mut captions = Vec::new();
    for prompt in &spec.prompts {
        for r in 0..spec.rows.len() {
            rows.push(format!("{prompt} · {}", spec.rows.label(r)));
            for c in 0..spec.columns.len() {
                let cell = cells.iter().find(|x| &x.prompt == prompt && x.row == r && x.column == c);
                ordered.push(cell.map(|x| x.video.as_ref()));
                captions.push(cell.map_or_else(String::new, |x| {
                    let s = x.score;
                    let f = x.fraction.map_or_else(|| "-".to_string(), |f| format!("{:.0}%", f * 100.0));
                    format!("{}{}{} {f}", mark(s.shape), mark(s.color), mark(s.motion))
                }));
            }
        }
    }
    let labels = GridLabels {
        title: format!("{} →   (under each clip: shape, color, motion match; score)", spec.columns.axis().label()),
        columns: (0..spec.columns.len()).map(|c| spec.columns.label(c)).collect(),
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
        "temperature",
        "top_k",
        "top_p",
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
            c.cfg.clone(),
            c.temperature.to_string(),
            c.top_k.map_or_else(|| "all".to_string(), |k| k.to_string()),
            c.top_p.to_string(),
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

/// Mean score per value of `axis` (the rows' or the columns'), over every other cell; cells
/// whose prompt names no attribute are left out.
pub fn mean_by(cells: &[SweepCell], spec: &SweepSpec, along_rows: bool) -> Vec<(String, Option<f32>)> {
    let axis = if along_rows { &spec.rows } else { &spec.columns };
    (0..axis.len())
        .map(|i| {
            let v: Vec<f32> = cells.iter().filter(|x| (if along_rows { x.row } else { x.column }) == i).filter_map(|x| x.fraction).collect();
            (axis.label(i), (!v.is_empty()).then(|| v.iter().sum::<f32>() / v.len() as f32))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> CellSettings {
        CellSettings { cfg: CfgSchedule::parse("linear:1:5").expect("schedule"), seed: 1, sampling: SamplingConfig::default() }
    }

    #[test]
    fn axes_parse_label_and_apply() {
        let mut cell = base();
        AxisValues::Cfg(vec![2.5]).apply(0, &mut cell);
        AxisValues::Seed(vec![9]).apply(0, &mut cell);
        AxisValues::Temperature(vec![0.5, 0.7]).apply(1, &mut cell);
        AxisValues::TopK(vec![None, Some(4)]).apply(1, &mut cell);
        AxisValues::TopP(vec![0.9]).apply(0, &mut cell);
        assert_eq!(
            (cell.cfg.to_string(), cell.seed, cell.sampling.temperature, cell.sampling.top_k, cell.sampling.top_p),
            ("2.5".into(), 9, 0.7, Some(4), 0.9)
        );
        let k = AxisValues::TopK(vec![None, Some(16)]);
        assert_eq!((k.label(0), k.label(1), k.x(1), k.len()), ("top-k all".to_string(), "top-k 16".to_string(), 16.0, 2));
        assert_eq!(k.to_json(), serde_json::json!({"axis": "top-k", "values": [null, 16]}));
        assert_eq!(AxisValues::parse_assignment("top-k=0,16"), Ok(AxisValues::TopK(vec![None, Some(16)])));
        assert_eq!(AxisValues::parse_assignment("seed=0-2"), Ok(AxisValues::Seed(vec![0, 1, 2])));
        assert!(AxisValues::parse_assignment("seed").unwrap_err().to_string().contains("AXIS=VALUES"));
        assert!(AxisValues::parse_assignment("colour=1").unwrap_err().to_string().contains("choose cfg"));
        assert!(AxisValues::parse(SweepAxis::TopP, "0.5,1.2").unwrap_err().to_string().contains("'1.2' is not a number in (0, 1]"));
        assert!(AxisValues::parse(SweepAxis::Temperature, "0").unwrap_err().to_string().contains("> 0"));
        assert!(AxisValues::parse(SweepAxis::Seed, "0-16").unwrap_err().to_string().contains("at most 16"));
    }

    #[test]
    fn cells_are_placed_prompt_row_column() {
        let spec = SweepSpec {
            prompts: vec!["a".into(), "b".into()],
            rows: AxisValues::Temperature(vec![0.7, 1.0]),
            columns: AxisValues::Seed(vec![0, 1, 2]),
            base: base(),
            negative: None,
            use_cache: true,
        };
        assert_eq!((spec.cells(), spec.index(1, 1, 2)), (12, 11));
        assert_eq!(spec.settings(1, 2).seed, 2);
        assert_eq!(spec.settings(1, 2).sampling.temperature, 1.0);
        let same = SweepSpec { columns: AxisValues::Temperature(vec![1.0]), ..spec };
        assert_eq!(same.check(), Err(AxisError::Same("temperature")));
    }
}

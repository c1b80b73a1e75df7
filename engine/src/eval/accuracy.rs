//! Text-to-video alignment of a trained generator on the synthetic shapes domain: attribute
//! accuracy (color, shape, motion, all three) by CFG scale on prompts the generator never
//! trained on, per split — in-distribution validation captions, held-out attribute combinations,
//! held-out caption templates — measured by the attribute analyzer (`crate::eval::analyze`).
//!
//! The same items' real clips, passed through the tokenizer, give the ceiling: how often the
//! analyzer recovers the attributes from a reconstruction, whatever the generator does.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::dataset::shapes::RenderConfig;
use crate::dataset::synth::{self, Split, SynthConfig, SynthItem};
use crate::eval::analyze::{self, AttributeScore, PromptAttributes};
use crate::generator::pipeline::{ClipRequest, Pipeline, PipelineError};
use crate::generator::sample::SamplingConfig;

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct AccuracySpec {
    /// CFG scales (constant schedule), one row each per split.
    pub cfgs: Vec<f32>,
    /// Seeds per prompt.
    pub seeds: Vec<u64>,
    /// Prompts per split (the first items of each split in dataset order).
    pub per_split: usize,
    /// The synthetic dataset the generator's token cache was built from (`lm cache
    /// --synthetic-count --data-seed`): its non-train items are the held-out prompts.
    pub data_count: usize,
    pub data_seed: u64,
    pub sampling: SamplingConfig,
    /// Replaces the unconditional branch of CFG.
    pub negative: Option<String>,
    /// KV-cache on (off only for checking).
    pub use_cache: bool,
    /// Prompts per generation batch (rows of one request).
    pub batch: usize,
}

/// The splits evaluated, in table order.
pub const SPLITS: [Split; 3] = [Split::Val, Split::HeldoutCombo, Split::HeldoutTemplate];

/// Accuracy over some clips; `cfg` is `None` for the tokenizer-reconstruction ceiling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccuracyRow {
    pub split: String,
    pub cfg: Option<f32>,
    pub clips: usize,
    pub color: f64,
    pub shape: f64,
    pub motion: f64,
    /// All three attributes right.
    pub all: f64,
    /// Generation seconds per clip (0 for the ceiling rows).
    pub seconds_per_clip: f64,
}

/// The whole evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccuracyReport {
    pub rows: Vec<AccuracyRow>,
    /// Every prompt used, per split.
    pub prompts: Vec<(String, Vec<String>)>,
}

/// Tally of attribute verdicts.
#[derive(Default)]
struct Tally {
    n: usize,
    color: usize,
    shape: usize,
    motion: usize,
    all: usize,
}

impl Tally {
    fn add(&mut self, s: &AttributeScore) {
        let ok = |b: Option<bool>| usize::from(b == Some(true));
        self.n += 1;
        self.color += ok(s.color);
        self.shape += ok(s.shape);
        self.motion += ok(s.motion);
        self.all += ok(s.color) * ok(s.shape) * ok(s.motion);
    }

    fn row(&self, split: Split, cfg: Option<f32>, seconds: f64) -> AccuracyRow {
        let f = |k: usize| if self.n == 0 { 0.0 } else { k as f64 / self.n as f64 };
        AccuracyRow {
            split: split.to_string(),
            cfg,
            clips: self.n,
            color: f(self.color),
            shape: f(self.shape),
            motion: f(self.motion),
            all: f(self.all),
            seconds_per_clip: if self.n == 0 { 0.0 } else { seconds / self.n as f64 },
        }
    }
}

/// The first `per_split` items of each evaluated split of the dataset.
pub fn eval_items(spec: &AccuracySpec, render: RenderConfig) -> Vec<(Split, Vec<SynthItem>)> {
    let cfg = SynthConfig { count: spec.data_count, seed: spec.data_seed, render, ..SynthConfig::default() };
    SPLITS.iter().map(|&split| (split, (0..cfg.count).map(|i| synth::item(&cfg, i)).filter(|it| it.split == split).take(spec.per_split).collect())).collect()
}

/// Runs the evaluation: for each split, the ceiling row, then one row per CFG scale.
/// `progress(done, total)` counts generated clips.
pub fn evaluate(p: &Pipeline, spec: &AccuracySpec, cancel: &AtomicBool, mut progress: impl FnMut(usize, usize)) -> Result<AccuracyReport, PipelineError> {
    let render = RenderConfig { frames: p.tok_cfg.frames, size: p.tok_cfg.height as u32, fps: p.tok_cfg.fps };
    let splits = eval_items(spec, render);
    let total: usize = splits.iter().map(|(_, it)| it.len()).sum::<usize>() * spec.cfgs.len() * spec.seeds.len();
    let mut done = 0;
    let mut rows = Vec::new();
    for (split, items) in &splits {
        let mut ceiling = Tally::default();
        for chunk in items.chunks(spec.batch.max(1)) {
            let clips: Vec<_> = chunk.iter().map(|it| it.render(&render)).collect();
            let codes = p.tokenizer.encode_batch(crate::tensor::to_tensor(&clips, p.device())).codes;
            for (it, video) in chunk.iter().zip(crate::tensor::to_videos(p.tokenizer.decode_batch(&codes), render.fps)?) {
                ceiling.add(&analyze::score(&analyze::analyze(&video), &PromptAttributes::parse(&it.caption)));
            }
        }
        rows.push(ceiling.row(*split, None, 0.0));
        for &cfg in &spec.cfgs {
            let mut tally = Tally::default();
            let mut seconds = 0.0;
            for chunk in items.chunks(spec.batch.max(1)) {
                let prompts = chunk.iter().map(|it| it.caption.clone()).collect();
                let req = ClipRequest::at_cfg(prompts, spec.seeds.clone(), cfg, &spec.sampling, spec.negative.clone(), spec.use_cache);
                let t0 = Instant::now();
                let tokens = p.generate(&req, cancel, |_| {})?;
                seconds += t0.elapsed().as_secs_f64();
                let videos = p.decode(&tokens, p.cfg.layers.len())?;
                for ((prompt, _), video) in req.rows().into_iter().zip(&videos) {
                    tally.add(&analyze::score(&analyze::analyze(video), &PromptAttributes::parse(prompt)));
                }
                done += videos.len();
                progress(done, total);
            }
            rows.push(tally.row(*split, Some(cfg), seconds));
        }
    }
    let prompts = splits.iter().map(|(s, it)| (s.to_string(), it.iter().map(|i| i.caption.clone()).collect())).collect();
    Ok(AccuracyReport { rows, prompts })
}

/// The report as a Markdown table (percentages).
pub fn to_markdown(report: &AccuracyReport) -> String {
    let mut s = String::from("| split | CFG | clips | color | shape | motion | all three |\n|---|---|---|---|---|---|---|\n");
    let pct = |v: f64| format!("{:.0}%", v * 100.0);
    for r in &report.rows {
        let cfg = r.cfg.map(|c| format!("{c}")).unwrap_or_else(|| "tokenizer recon. (ceiling)".into());
        s.push_str(&format!("| {} | {} | {} | {} | {} | {} | {} |\n", r.split, cfg, r.clips, pct(r.color), pct(r.shape), pct(r.motion), pct(r.all)));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_items_are_held_out_and_split_as_asked() {
        let spec = AccuracySpec {
            cfgs: vec![1.0],
            seeds: vec![0],
            per_split: 5,
            data_count: 4000,
            data_seed: 0,
            sampling: SamplingConfig { greedy: false, temperature: 1.0, top_k: None, top_p: 1.0 },
            negative: None,
            use_cache: true,
            batch: 4,
        };
        let splits = eval_items(&spec, RenderConfig { frames: 16, size: 32, fps: 8.0 });
        assert_eq!(splits.len(), 3);
        for (split, items) in &splits {
            assert_eq!(items.len(), 5, "{split}");
            assert!(items.iter().all(|i| i.split == *split));
        }
        let combos = &splits[1].1;
        assert!(combos.iter().all(|i| synth::is_heldout_combo(i.attributes)));
        let templates = &splits[2].1;
        assert!(templates.iter().all(|i| i.template >= crate::dataset::captions::TRAIN_TEMPLATES));
    }

    #[test]
    fn tally_counts_each_attribute_and_all_three() {
        let mut t = Tally::default();
        t.add(&AttributeScore { shape: Some(true), color: Some(true), motion: Some(true) });
        t.add(&AttributeScore { shape: Some(false), color: Some(true), motion: None });
        let r = t.row(Split::Val, Some(2.5), 1.0);
        assert_eq!((r.clips, r.color, r.shape, r.motion, r.all, r.seconds_per_clip), (2, 1.0, 0.5, 0.5, 0.5, 0.5));
        assert!(to_markdown(&AccuracyReport { rows: vec![r], prompts: vec![] }).contains("| val | 2.5 | 2 | 100% | 50% | 50% | 50% |"));
    }
}

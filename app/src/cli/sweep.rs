//! `hitvideo sweep`: a grid over any two sampling parameters (CFG x seed by default) for a file
//! of prompts, every cell scored by the attribute analyzer and timed (the engine's
//! `eval::sweep`, as the studio's Sweep view runs it); grid video and image with labelled axes,
//! CSV and JSON tables.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use hitvideo_engine::device::DeviceChoice;
use hitvideo_engine::eval::sweep::{self, AxisValues, CellSettings, SweepAxis};
use hitvideo_engine::generator::{CfgSchedule, ClipRequest};
use hitvideo_engine::video::{self, ExportMetadata};

use super::generate::ModelArgs;

/// Options of `sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// A text file with one prompt per line (blank lines and lines starting with # are skipped).
    #[arg(long)]
    pub prompts: PathBuf,
    /// The columns: AXIS=VALUES, AXIS one of cfg, seed, temperature, top-k, top-p (e.g.
    /// `cfg=1,2.5,5,7.5,10`, `top-k=0,16,64`).
    #[arg(long, default_value = "cfg=1,2.5,5,7.5,10")]
    pub columns: String,
    /// The rows (per prompt): AXIS=VALUES, another parameter than the columns' (e.g.
    /// `seed=0-3`, `temperature=0.7,1,1.3`).
    #[arg(long, default_value = "seed=0-3")]
    pub rows: String,
    /// Shorthand: the CFG scales of a `cfg` axis (replaces its values).
    #[arg(long)]
    pub cfg: Option<String>,
    /// Shorthand: the seeds of a `seed` axis (replaces its values): `0-3`, `0,3,9` or `7`.
    #[arg(long)]
    pub seeds: Option<String>,
    /// The base seed of every cell when no axis varies the seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder: grid.mp4, grid.png, results.csv, results.json (and clips/ with --save-clips).
    #[arg(long)]
    pub out: PathBuf,
    /// Cell magnification in the grid.
    #[arg(long, default_value_t = 3)]
    pub scale: usize,
    /// Also export every cell's clip into <out>/clips/.
    #[arg(long)]
    pub save_clips: bool,
}

fn sweep_cmd(a: SweepArgs, choice: DeviceChoice) -> Result<()> {
    let text = std::fs::read_to_string(&a.prompts).with_context(|| format!("{}: cannot read the prompts file", a.prompts.display()))?;
    let prompts: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect();
    if prompts.is_empty() {
        bail!("{}: no prompts (one per line; # starts a comment)", a.prompts.display());
    }
    let axis = |text: &str| -> Result<AxisValues> {
        let mut values = AxisValues::parse_assignment(text)?;
        match (&values, &a.cfg, &a.seeds) {
            (AxisValues::Cfg(_), Some(cfg), _) => values = AxisValues::parse(SweepAxis::Cfg, cfg)?,
            (AxisValues::Seed(_), _, Some(seeds)) => values = AxisValues::parse(SweepAxis::Seed, seeds)?,
            _ => {}
        }
        Ok(values)
    };
    let (columns, rows) = (axis(&a.columns)?, axis(&a.rows)?);
    let base = CellSettings { cfg: CfgSchedule::Constant { scale: 2.5 }, seed: a.seed, sampling: a.model.sampling()? };
    let spec = sweep::SweepSpec { prompts, rows, columns, base, negative: a.model.negative_prompt.clone(), use_cache: !a.model.no_cache };
    spec.check()?;
    let p = a.model.load(choice)?;
    let total = spec.cells();
    let bar = super::progress_bar(total as u64, "sweep");
    let started = Instant::now();
    let cells = sweep::run(&p, &spec, &AtomicBool::new(false), |_, done, _| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    std::fs::create_dir_all(&a.out).with_context(|| format!("{}: cannot create the folder", a.out.display()))?;
    let grid = sweep::grid(&cells, &spec, a.scale.clamp(1, 16)).context("the sweep produced no clip")?;
    let mut meta = ExportMetadata::for_video(&grid);
    meta.source = Some(format!(
        "sweep of {} prompts x {} ({}) x {} ({})",
        spec.prompts.len(),
        spec.rows.axis().plural(),
        spec.rows.to_json()["values"],
        spec.columns.axis().plural(),
        spec.columns.to_json()["values"]
    ));
    meta.negative_prompt = spec.negative.clone();
    meta.model_checksums = p.checksums.clone();
    video::export(&grid, &a.out.join("grid.mp4"), &meta)?;
    let mid = grid.frame(grid.len() / 2);
    let png = video::png::encode_png(mid, grid.width(), grid.height(), Some(&meta.to_json())).map_err(|e| anyhow::anyhow!("grid.png: {e}"))?;
    hitvideo_engine::fsutil::write_atomic(&a.out.join("grid.png"), &png).with_context(|| format!("{}: cannot write grid.png", a.out.display()))?;
    hitvideo_engine::fsutil::write_atomic(&a.out.join("results.csv"), &sweep::to_csv(&cells)?)?;
    let means = sweep::mean_by(&cells, &spec, false);
    let b = &spec.base.sampling;
    let json = serde_json::json!({
        "prompts": spec.prompts, "rows": spec.rows.to_json(), "columns": spec.columns.to_json(), "negative_prompt": spec.negative,
        "sampling": {"greedy": b.greedy, "temperature": b.temperature, "top_k": b.top_k, "top_p": b.top_p, "seed": spec.base.seed},
        "kv_cache": spec.use_cache, "models": p.checksums, "seconds": secs,
        "mean_score_by_column": means.iter().map(|(c, m)| serde_json::json!({"column": c, "score": m})).collect::<Vec<_>>(),
        "cells": cells,
    });
    hitvideo_engine::fsutil::write_atomic(&a.out.join("results.json"), &serde_json::to_vec_pretty(&json)?)?;
    if a.save_clips {
        std::fs::create_dir_all(a.out.join("clips"))?;
        for c in &cells {
            let pi = spec.prompts.iter().position(|x| *x == c.prompt).unwrap_or(0);
            let path = a.out.join("clips").join(format!("p{pi}-r{}-c{}.mp4", c.row, c.column));
            let s = spec.settings(c.row, c.column);
            let req = ClipRequest {
                prompts: vec![c.prompt.clone()],
                negative: spec.negative.clone(),
                seeds: vec![s.seed],
                sampling: s.sampling,
                cfg: s.cfg,
                keep: Vec::new(),
                use_cache: spec.use_cache,
            };
            video::export(&c.video, &path, &p.metadata(&req, &c.prompt, c.seed, &c.tokens, &c.video))?;
        }
    }
    for (c, m) in &means {
        println!("{c:>12}: mean score {}", m.map_or_else(|| "-".into(), |m| format!("{:.1}%", m * 100.0)));
    }
    println!("{total} cells in {secs:.1} s -> {}", a.out.display());
    Ok(())
}

pub fn run_sweep(a: SweepArgs, device: DeviceChoice) -> Result<()> {
    sweep_cmd(a, device)
}

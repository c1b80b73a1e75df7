//! `hitvideo sweep`: a CFG x seed grid over a file of prompts, every cell scored by the
//! attribute analyzer and timed; grid video and image with labelled axes, CSV and JSON tables.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use hitvideo_engine::device::DeviceChoice;
use hitvideo_engine::eval::sweep;
use hitvideo_engine::generator::{ClipRequest, lists};
use hitvideo_engine::video::{self, ExportMetadata};

use super::generate::{MAX_CFGS, MAX_SEEDS, ModelArgs};

/// Options of `sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// A text file with one prompt per line (blank lines and lines starting with # are skipped).
    #[arg(long)]
    pub prompts: PathBuf,
    /// Constant CFG scales, one grid column each.
    #[arg(long, default_value = "1,2.5,5,7.5,10")]
    pub cfg: String,
    /// Seeds: `0-3`, `0,3,9` or `7`.
    #[arg(long, default_value = "0-3")]
    pub seeds: String,
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
    let spec = sweep::SweepSpec {
        prompts,
        cfgs: lists::parse_cfgs(&a.cfg, MAX_CFGS)?,
        seeds: lists::parse_seeds(&a.seeds, MAX_SEEDS)?,
        negative: a.model.negative_prompt.clone(),
        sampling: a.model.sampling()?,
        use_cache: !a.model.no_cache,
    };
    let p = a.model.load(choice)?;
    let total = spec.prompts.len() * spec.cfgs.len() * spec.seeds.len();
    let bar = super::progress_bar(total as u64, "sweep");
    let started = Instant::now();
    let cells = sweep::run(&p, &spec, &AtomicBool::new(false), |done, _| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    std::fs::create_dir_all(&a.out).with_context(|| format!("{}: cannot create the folder", a.out.display()))?;
    let grid = sweep::grid(&cells, &spec, a.scale.clamp(1, 16)).context("the sweep produced no clip")?;
    let mut meta = ExportMetadata::for_video(&grid);
    meta.source = Some(format!("sweep of {} prompts x CFG {:?} x seeds {:?}", spec.prompts.len(), spec.cfgs, spec.seeds));
    meta.negative_prompt = spec.negative.clone();
    meta.model_checksums = p.checksums.clone();
    video::export(&grid, &a.out.join("grid.mp4"), &meta)?;
    let mid = grid.frame(grid.len() / 2);
    let png = video::png::encode_png(mid, grid.width(), grid.height(), Some(&meta.to_json())).map_err(|e| anyhow::anyhow!("grid.png: {e}"))?;
    hitvideo_engine::fsutil::write_atomic(&a.out.join("grid.png"), &png).with_context(|| format!("{}: cannot write grid.png", a.out.display()))?;
    hitvideo_engine::fsutil::write_atomic(&a.out.join("results.csv"), &sweep::to_csv(&cells)?)?;
    let means = sweep::mean_by_cfg(&cells, &spec.cfgs);
    let json = serde_json::json!({
        "prompts": spec.prompts, "cfgs": spec.cfgs, "seeds": spec.seeds, "negative_prompt": spec.negative,
        "sampling": {"greedy": spec.sampling.greedy, "temperature": spec.sampling.temperature, "top_k": spec.sampling.top_k, "top_p": spec.sampling.top_p},
        "kv_cache": spec.use_cache, "models": p.checksums, "seconds": secs,
        "mean_score_by_cfg": means.iter().map(|(c, m)| serde_json::json!({"cfg": c, "score": m})).collect::<Vec<_>>(),
        "cells": cells,
    });
    hitvideo_engine::fsutil::write_atomic(&a.out.join("results.json"), &serde_json::to_vec_pretty(&json)?)?;
    if a.save_clips {
        for c in &cells {
            let path = a.out.join("clips").join(format!("p{}-cfg{}-s{}.mp4", spec.prompts.iter().position(|x| *x == c.prompt).unwrap_or(0), c.cfg, c.seed));
            std::fs::create_dir_all(a.out.join("clips"))?;
            let req = ClipRequest::at_cfg(vec![c.prompt.clone()], vec![c.seed], c.cfg, &spec.sampling, spec.negative.clone(), spec.use_cache);
            video::export(&c.video, &path, &p.metadata(&req, &c.prompt, c.seed, &c.tokens, &c.video))?;
        }
    }
    for (c, m) in &means {
        println!("CFG {c:>5}: mean score {}", m.map_or_else(|| "-".into(), |m| format!("{:.1}%", m * 100.0)));
    }
    println!("{total} cells in {secs:.1} s -> {}", a.out.display());
    Ok(())
}

pub fn run_sweep(a: SweepArgs, device: DeviceChoice) -> Result<()> {
    sweep_cmd(a, device)
}

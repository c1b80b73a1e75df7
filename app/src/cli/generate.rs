//! `hitvideo generate`: text to clip, batches of prompts and seeds, negative prompt, CFG
//! schedules, coarse previews, re-roll (the model and sampling options are shared with
//! `hitvideo sweep`, in `sweep.rs`).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use hitvideo_engine::device::{self, DeviceChoice};
use hitvideo_engine::generator::lists;
use hitvideo_engine::generator::pipeline::tokens_from_metadata;
use hitvideo_engine::generator::{CfgSchedule, ClipRequest, GenEvent, Pipeline, SamplingConfig};
use hitvideo_engine::service::reroll::{self, RerollError};
use hitvideo_engine::video::{self, ExportMetadata};

/// Models and sampling settings shared by `generate` and `sweep`.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Generator checkpoint (run or step folder, from `lm train`; default: the demo models in
    /// assets/models, checked against their SHA256SUMS).
    #[arg(long)]
    pub generator: Option<PathBuf>,
    /// Tokenizer checkpoint (default: the one the generator's token cache was built with, or
    /// the demo bundle's).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// MiniLM folder for MiniLM-conditioned generators (default: the model cache).
    #[arg(long)]
    pub text_model: Option<PathBuf>,
    /// A prompt that replaces the unconditional branch of CFG ("what not to show").
    #[arg(long)]
    pub negative_prompt: Option<String>,
    /// Softmax temperature (> 0).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// Keep only the k most likely tokens of each bit group (>= 1; larger than the vocabulary
    /// keeps all).
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Nucleus sampling: keep the most likely tokens up to this probability mass, in (0, 1].
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Argmax decoding (temperature, top-k and top-p are then unused).
    #[arg(long)]
    pub greedy: bool,
    /// Recompute the whole sequence at every step instead of using the KV-cache (slow; for
    /// checking and benchmarking).
    #[arg(long)]
    pub no_cache: bool,
}

/// Options of `generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The prompt; repeat for a batch of prompts (default with --reroll: the clip's own).
    #[arg(long)]
    pub prompt: Vec<String>,
    /// CFG: a scale (`7.5`), a linear ramp from the coarsest to the finest layer
    /// (`linear:1:7.5`) or one value per layer (`1,3,5,7.5`). 1 turns guidance off.
    /// Default: 2.5 (where the demo generator follows held-out prompts best, docs/results.md),
    /// or with --reroll the clip's own schedule.
    #[arg(long)]
    pub cfg: Option<CfgSchedule>,
    /// Seeds: `7`, `0,3,9` or a range `0-3`; one clip per prompt and seed.
    #[arg(long, default_value = "0")]
    pub seed: String,
    /// Output video (.mp4, .gif, or a folder of PNG frames); with several clips, `-p<i>`
    /// and `-s<seed>` are added to the name.
    #[arg(long, default_value = "clip.mp4")]
    pub out: PathBuf,
    /// Export each clip enlarged this many times by nearest neighbour (1 to 16; e.g. 4 or 8 for
    /// a 64x64 clip); the metadata is the same as at 1x.
    #[arg(long, default_value_t = 1)]
    pub scale: u32,
    /// Also write a GIF of each coarse preview (the clip decoded from the first k layers) as
    /// soon as layer k is done.
    #[arg(long)]
    pub previews: bool,
    /// Re-roll: an export of `generate` whose coarse layers are kept (tokens come from its
    /// metadata); only the finer layers are sampled again.
    #[arg(long)]
    pub reroll: Option<PathBuf>,
    /// With --reroll: how many of the coarsest layers to keep.
    #[arg(long, default_value_t = 1)]
    pub keep_layers: usize,
}

/// Most seeds one command takes (`--seed`, `--seeds`).
pub const MAX_SEEDS: usize = 4096;
/// Most CFG scales one command takes (`--cfg` lists).
pub const MAX_CFGS: usize = 64;

impl ModelArgs {
    pub(super) fn sampling(&self) -> Result<SamplingConfig> {
        let s = SamplingConfig { greedy: self.greedy, temperature: self.temperature, top_k: self.top_k, top_p: self.top_p };
        s.validate()?;
        Ok(s)
    }

    pub(super) fn load(&self, choice: DeviceChoice) -> Result<Pipeline> {
        let chosen = device::select(choice)?;
        eprintln!("device: {}", chosen.description);
        let (generator, tokenizer) = match &self.generator {
            Some(g) => (g.clone(), self.tokenizer.clone()),
            None => {
                let bundle = hitvideo_engine::bundle::locate(None).ok_or_else(|| anyhow::anyhow!(hitvideo_engine::bundle::missing_hint()))??;
                eprintln!("models: the demo bundle in {}", bundle.root.display());
                (bundle.generator, Some(self.tokenizer.clone().unwrap_or(bundle.tokenizer)))
            }
        };
        Ok(Pipeline::load(&generator, tokenizer.as_deref(), self.text_model.as_deref(), &chosen.device)?)
    }
}

/// `clip.mp4` -> `clip-p1-s7.mp4` (parts present only when needed).
fn row_path(out: &Path, prompt: Option<usize>, seed: Option<u64>, suffix: &str) -> PathBuf {
    let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "clip".into());
    let ext = out.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    let mut name = stem;
    if let Some(p) = prompt {
        name.push_str(&format!("-p{p}"));
    }
    if let Some(s) = seed {
        name.push_str(&format!("-s{s}"));
    }
    name.push_str(suffix);
    out.with_file_name(format!("{name}{}", if suffix.is_empty() { ext } else { String::new() }))
}

fn generate_cmd(a: GenerateArgs, choice: DeviceChoice) -> Result<()> {
    let sampling = a.model.sampling()?;
    let seeds = lists::parse_seeds(&a.seed, MAX_SEEDS)?;
    let mut prompts = a.prompt.clone();
    let mut negative = a.model.negative_prompt.clone();
    let mut schedule = a.cfg.clone();
    let mut keep_row = Vec::new();
    if a.scale == 0 || a.scale > video::clip::MAX_UPSCALE {
        bail!("--scale {}: use 1 to {} (4 or 8 for a 64x64 clip)", a.scale, video::clip::MAX_UPSCALE);
    }
    let p = a.model.load(choice)?;
    if let Some(src) = &a.reroll {
        let (meta, _) = video::meta::read_metadata(src)?;
        let tokens = tokens_from_metadata(&meta)
            .with_context(|| format!("{}: its metadata holds no generated tokens; re-roll needs a clip made by `hitvideo generate`", src.display()))?;
        keep_row = reroll::kept_tokens(&p.cfg, &tokens, a.keep_layers).map_err(|e| match e {
            RerollError::Keep { max, .. } => anyhow::anyhow!("--keep-layers must be 1..{max} for this generator"),
            other => anyhow::anyhow!("{}: {other}; re-roll it with the generator it was made with", src.display()),
        })?;
        if meta.model_checksums.get("generator") != p.checksums.get("generator") {
            eprintln!("note: {} was made by another generator; its coarse tokens are kept as they are", src.display());
        }
        if prompts.is_empty() {
            prompts.extend(meta.prompt.clone());
        }
        negative = negative.or(meta.negative_prompt.clone());
        schedule = schedule.or(meta.cfg_schedule.clone());
    }
    if prompts.is_empty() {
        bail!("give a --prompt (or --reroll a clip made by `hitvideo generate`)");
    }
    let cfg = schedule.unwrap_or(CfgSchedule::Constant { scale: 2.5 });
    cfg.scales(p.cfg.layers.len())?;
    let req = ClipRequest {
        prompts,
        negative,
        seeds,
        sampling,
        cfg,
        keep: if keep_row.is_empty() { Vec::new() } else { vec![keep_row] },
        use_cache: !a.model.no_cache,
    };
    let rows = req.rows();
    let name = |r: usize, suffix: &str| {
        let pi = (req.prompts.len() > 1).then_some(r / req.seeds.len());
        let si = (rows.len() > 1).then_some(rows[r].1);
        row_path(&a.out, pi, si, suffix)
    };
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create the output folder", dir.display()))?;
    }
    let prompts: Vec<&str> = req.prompts.iter().map(String::as_str).collect();
    for note in p.truncation_notes(&prompts)? {
        eprintln!("warning: {note}");
    }
    let layers = p.cfg.layers.len();
    let started = Instant::now();
    let mut preview_err = None;
    let tokens = p.generate(&req, &AtomicBool::new(false), |e| {
        if let GenEvent::LayerDone { layer, tokens } = e {
            eprintln!("layer {}/{layers} done at {:.2} s", layer + 1, started.elapsed().as_secs_f64());
            if a.previews && layer + 1 < layers {
                let previews = match p.decode(&tokens, layer + 1) {
                    Ok(v) => v,
                    Err(e) => {
                        preview_err.get_or_insert(anyhow::Error::from(e));
                        Vec::new()
                    }
                };
                for (r, v) in previews.iter().enumerate() {
                    let path = name(r, &format!(".layer{}.gif", layer + 1));
                    let mut meta = ExportMetadata::for_video(v);
                    meta.prompt = Some(rows[r].0.to_string());
                    meta.seed = Some(rows[r].1);
                    meta.source = Some(format!("coarse preview: {} of {layers} layers", layer + 1));
                    if let Err(e) = video::export(v, &path, &meta) {
                        preview_err.get_or_insert(e.into());
                    }
                }
            }
        }
    })?;
    if let Some(e) = preview_err {
        return Err(e.context("writing a coarse preview"));
    }
    let gen_s = started.elapsed().as_secs_f64();
    let videos = p.decode(&tokens, layers)?;
    for (r, (v, t)) in videos.iter().zip(&tokens).enumerate() {
        let path = name(r, "");
        let meta = p.metadata(&req, rows[r].0, rows[r].1, t, v);
        video::export(&v.upscaled(a.scale)?, &path, &meta)?;
        println!("{} (prompt \"{}\", seed {})", path.display(), rows[r].0, rows[r].1);
    }
    let n = tokens.iter().map(Vec::len).sum::<usize>() - req.keep.first().map_or(0, Vec::len) * tokens.len();
    println!(
        "{} clip(s) in {:.2} s ({:.0} tokens/s generating, CFG {}, {})",
        videos.len(),
        started.elapsed().as_secs_f64(),
        n as f64 / gen_s.max(1e-9),
        req.cfg,
        if req.use_cache { "KV-cache" } else { "no cache" }
    );
    Ok(())
}

pub fn run_generate(a: GenerateArgs, device: DeviceChoice) -> Result<()> {
    generate_cmd(a, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_cfgs_and_names() {
        assert_eq!(row_path(Path::new("out/clip.mp4"), Some(1), Some(7), ""), PathBuf::from("out/clip-p1-s7.mp4"));
        assert_eq!(row_path(Path::new("clip.mp4"), None, None, ".layer2.gif"), PathBuf::from("clip.layer2.gif"));
    }
}

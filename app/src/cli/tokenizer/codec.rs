//! `hitvideo tokenizer eval | encode | decode`: thin wrappers over
//! `hitvideo_engine::tokenizer::{eval, codec, tokens}`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use hitvideo_engine::device::{self, DeviceChoice};
use hitvideo_engine::tokenizer::eval::{self, EvalOptions};
use hitvideo_engine::tokenizer::{Tokenizer, TokenizerConfig, codec, tokens::TokenFile};
use hitvideo_engine::train::tokenizer::load_tokenizer;

/// Options of `tokenizer eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Tokenizer run folder (its latest checkpoint) or step-* folder.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Evaluate this many held-out synthetic clips (the default source, 32 clips, when neither
    /// --video nor --dataset is given).
    #[arg(long, value_name = "N")]
    pub synthetic: Option<usize>,
    /// Size of the synthetic dataset the held-out clips come from (as `tokenizer train
    /// --synthetic-count`, so the clips are the run's own validation clips).
    #[arg(long, default_value_t = 4000)]
    pub synthetic_count: usize,
    /// Seed of the synthetic dataset.
    #[arg(long, default_value_t = 0)]
    pub data_seed: u64,
    /// Video files to evaluate, whole (resampled to the tokenizer's fps and size and encoded in
    /// windows).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub video: Vec<PathBuf>,
    /// A dataset folder whose validation windows are evaluated.
    #[arg(long, value_name = "DIR")]
    pub dataset: Option<PathBuf>,
    /// At most this many dataset windows.
    #[arg(long, default_value_t = 32)]
    pub max_clips: usize,
    /// Also encode every clip with H.264 (libx264) at the tokens' bits per pixel and report its
    /// quality.
    #[arg(long)]
    pub h264: bool,
    /// x264 preset of the H.264 baseline (ultrafast ... veryslow).
    #[arg(long, default_value = "medium")]
    pub h264_preset: String,
    /// Windows per forward pass.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Also write the full report (per clip, per layer) as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Options of `tokenizer encode`.
#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// Tokenizer run folder (its latest checkpoint) or step-* folder.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The video to encode (anything FFmpeg reads; resampled to the tokenizer's fps,
    /// center-cropped and resized to its frame size, cut into windows).
    pub input: PathBuf,
    /// The token file to write.
    #[arg(long)]
    pub out: PathBuf,
}

/// Options of `tokenizer decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Tokenizer run folder or step-* folder; must be the tokenizer that wrote the tokens.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// A token file written by `tokenizer encode`.
    pub tokens: PathBuf,
    /// Output video: .mp4, .gif, or a folder of PNG frames (with a <out>.json metadata sidecar).
    #[arg(long)]
    pub out: PathBuf,
    /// Decode from the k coarsest layers only (default: all layers).
    #[arg(long, value_name = "K")]
    pub layers: Option<usize>,
}

fn load(checkpoint: &Path, choice: DeviceChoice) -> Result<(Tokenizer, TokenizerConfig)> {
    let chosen = device::select(choice)?;
    eprintln!("device: {}", chosen.description);
    let (model, cfg, state) = load_tokenizer(checkpoint, None, &chosen.device)?;
    eprintln!("tokenizer '{}' at step {} from {}", cfg.name, state.step, checkpoint.display());
    Ok((model, cfg))
}

pub fn eval_cmd(a: EvalArgs, choice: DeviceChoice) -> Result<()> {
    if a.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let (model, cfg) = load(&a.checkpoint, choice)?;
    let mut clips = Vec::new();
    let synthetic = a.synthetic.or((a.video.is_empty() && a.dataset.is_none()).then_some(32));
    if let Some(n) = synthetic {
        clips.extend(eval::synthetic_clips(&cfg, a.synthetic_count, a.data_seed, n));
    }
    if let Some(dir) = &a.dataset {
        clips.extend(eval::dataset_clips(&cfg, dir, a.max_clips)?);
    }
    for path in &a.video {
        clips.push((path.display().to_string(), codec::read_video(&cfg, path)?));
    }
    eprintln!("evaluating {} clips{}", clips.len(), if a.h264 { " (and the H.264 baseline)" } else { "" });
    let opts = EvalOptions { batch: a.batch, h264_preset: a.h264.then(|| a.h264_preset.clone()) };
    let report = eval::evaluate(&model, &cfg, &clips, &opts)?;
    print!("{report}");
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&report)?;
        hitvideo_engine::fsutil::write_atomic(path, text.as_bytes()).with_context(|| format!("{}: cannot write the report", path.display()))?;
        println!("report: {}", path.display());
    }
    Ok(())
}

pub fn encode_cmd(a: EncodeArgs, choice: DeviceChoice) -> Result<()> {
    let (model, cfg) = load(&a.checkpoint, choice)?;
    let tokens = codec::encode_file(&model, &cfg, &a.input)?;
    tokens.write(&a.out)?;
    let bytes = std::fs::metadata(&a.out).map(|m| m.len()).unwrap_or(0);
    println!(
        "{}: {} frames at {} fps in {} windows of {} -> {} ({} id bits, {:.4} bpp; {bytes} bytes)",
        a.input.display(),
        tokens.frames,
        tokens.fps,
        tokens.windows.len(),
        tokens.window_frames,
        a.out.display(),
        tokens.id_bits(),
        tokens.bpp()
    );
    Ok(())
}

pub fn decode_cmd(a: DecodeArgs, choice: DeviceChoice) -> Result<()> {
    let tokens = TokenFile::read(&a.tokens)?;
    let (model, cfg) = load(&a.checkpoint, choice)?;
    let clip = codec::decode_tokens(&model, &cfg, &tokens, &a.tokens, a.layers)?;
    let weights = codec::weights_sha256(&a.checkpoint).ok();
    let layers = a.layers.unwrap_or(cfg.layers.len());
    let written = codec::export_decoded(&clip, &a.out, &tokens, &a.tokens, layers, weights)?;
    println!("{}: {} frames from {layers} of {} layers", a.tokens.display(), clip.len(), cfg.layers.len());
    for p in written {
        println!("wrote {}", p.display());
    }
    Ok(())
}

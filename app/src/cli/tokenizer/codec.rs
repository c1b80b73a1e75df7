//! `hitvideo tokenizer eval | encode | decode`: thin wrappers over
//! `hitvideo_engine::tokenizer::{eval, codec, tokens}`.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use clap::Args;
use hitvideo_engine::bundle;
use hitvideo_engine::device::{self, DeviceChoice};
use hitvideo_engine::eval::tokenizer::{self as eval, EvalOptions};
use hitvideo_engine::service::tokens::{self as token_view, ClipInput, MaskOptions, Masks};
use hitvideo_engine::tokenizer::load_tokenizer;
use hitvideo_engine::tokenizer::{FillStrategy, Fills, MaskConfig, Tokenizer, TokenizerConfig, codec, masked_codec, tokens::TokenFile};

/// Dynamic encoding (redundancy masks) on `eval`, `encode` and `decode`.
#[derive(Debug, Args)]
pub struct MaskArgs {
    /// Mask tokens that barely change from the previous latent frame and fill them at decode:
    /// `repeat` (the previous frame's token), `zero` (a zero code) or `learned` (the layer's
    /// learned mask embedding). `eval` also takes a comma-separated list or `all`; `encode`
    /// stores the masks and this fill as the file's default; `decode` overrides the file's fill.
    #[arg(long, value_name = "FILL")]
    pub mask: Option<Fills>,
    /// Largest masked fraction of each layer's maskable tokens (frames 1..t), 0 to 1.
    #[arg(long, default_value_t = 0.85, value_name = "RATIO")]
    pub mask_cap: f64,
    /// A token changed by more than this fraction of its bits is never masked, 0 to 1 (0: only
    /// tokens whose code did not change are masked, so `repeat` is exact).
    #[arg(long, default_value_t = 0.0, value_name = "FRACTION")]
    pub mask_tolerance: f64,
    /// Seed of the random unmasking that enforces the cap.
    #[arg(long, default_value_t = 0)]
    pub mask_seed: u64,
}

impl MaskArgs {
    /// The masking rule and the fill strategies, when `--mask` is given.
    fn parse(&self) -> Result<Option<(MaskConfig, Vec<FillStrategy>)>> {
        let Some(fills) = &self.mask else { return Ok(None) };
        for (name, v) in [("--mask-cap", self.mask_cap), ("--mask-tolerance", self.mask_tolerance)] {
            if !(0.0..=1.0).contains(&v) {
                bail!("{name} {v} is out of range; give a value from 0 to 1");
            }
        }
        let fills = fills.as_slice().to_vec();
        let cfg = MaskConfig::new().with_cap(self.mask_cap).with_tolerance(self.mask_tolerance).with_seed(self.mask_seed);
        Ok(Some((cfg, fills)))
    }

    /// As [`Self::parse`] for commands that take one fill.
    fn parse_one(&self) -> Result<Option<(MaskConfig, FillStrategy)>> {
        match self.parse()? {
            None => Ok(None),
            Some((cfg, fills)) if fills.len() == 1 => Ok(Some((cfg, fills[0]))),
            Some(_) => bail!("--mask takes one fill strategy here (repeat, zero or learned); lists are for `tokenizer eval`"),
        }
    }
}

/// Options of `tokenizer eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Tokenizer run folder (its latest checkpoint) or step-* folder, or `general` / `shapes`
    /// for the model bundle's. Default: the general tokenizer when --video or --dataset is
    /// given (real footage), the shapes tokenizer for the synthetic clips alone.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
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
    #[command(flatten)]
    pub mask: MaskArgs,
}

/// Options of `tokenizer encode`.
#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// Tokenizer run folder (its latest checkpoint) or step-* folder, or `general` / `shapes`
    /// for the model bundle's (default: the general tokenizer, made for real videos).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// The video to encode (anything FFmpeg reads; resampled to the tokenizer's fps,
    /// center-cropped and resized to its frame size, cut into windows).
    pub input: PathBuf,
    /// The token file to write.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub mask: MaskArgs,
}

/// Options of `tokenizer decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Tokenizer run folder or step-* folder, or `general` / `shapes` for the model bundle's;
    /// must be the tokenizer that wrote the tokens, weights included (default: whichever of
    /// the bundle's tokenizers did; tokens from other weights are refused).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// A token file written by `tokenizer encode`.
    pub tokens: PathBuf,
    /// Output video: .mp4, .gif, or a folder of PNG frames (with a <out>.json metadata sidecar).
    #[arg(long)]
    pub out: PathBuf,
    /// Decode from the k coarsest layers only (default: all layers).
    #[arg(long, value_name = "K")]
    pub layers: Option<usize>,
    /// Masked positions are filled with the file's own fill unless --mask names one; a file
    /// without masks is masked here by the rule these flags give.
    #[command(flatten)]
    pub mask: MaskArgs,
}

fn print_mask_summary(s: &masked_codec::MaskSummary) {
    println!(
        "dynamic encoding (cap {:.2}): {} of {} maskable tokens masked ({:.1}%), {} of {} tokens kept; {:.4} bpp masked against {:.4} unmasked",
        s.cap,
        s.masked,
        s.maskable,
        100.0 * s.ratio(),
        s.tokens - s.masked,
        s.tokens,
        s.bpp(),
        s.dense_bpp()
    );
}

/// The checkpoint a command uses: `--checkpoint` (a folder, or `general` / `shapes` naming
/// the model bundle's tokenizers), else the bundle's general tokenizer for real footage
/// (`real`) and its shapes tokenizer otherwise.
pub fn checkpoint_for(arg: Option<&Path>, real: bool) -> Result<PathBuf> {
    let named = arg.and_then(Path::to_str).filter(|n| matches!(*n, "general" | "shapes") && !Path::new(n).exists());
    if let (Some(p), None) = (arg, named) {
        return Ok(p.to_path_buf());
    }
    let general = named.map_or(real, |n| n == "general");
    let b = bundle::locate(None).ok_or_else(|| anyhow::anyhow!(bundle::missing_hint()))??;
    if !general {
        return Ok(b.tokenizer);
    }
    b.general.ok_or_else(|| {
        anyhow::anyhow!(
            "the model bundle in {} has no general tokenizer (the one for real videos); add it with `hitvideo models add-general --checkpoint <run>` \
             (scripts/general-tokenizer trains one), or pass --checkpoint",
            b.root.display()
        )
    })
}

/// The bundle tokenizer (general first, then shapes) that wrote `tokens`: its config, and its
/// weights where the file records them (another run of the same config is refused by name).
fn checkpoint_of_tokens(tokens: &TokenFile, path: &Path) -> Result<PathBuf> {
    let b = bundle::locate(None).ok_or_else(|| anyhow::anyhow!(bundle::missing_hint()))??;
    for dir in b.general.iter().chain([&b.tokenizer]) {
        let text = std::fs::read(dir.join("config.json")).with_context(|| format!("{}: cannot read config.json", dir.display()))?;
        let cfg = TokenizerConfig::from_json(&text).with_context(|| format!("{}: bad config.json", dir.display()))?;
        if tokens.check_config(&cfg, path).is_ok() {
            if tokens.weights_sha256.is_some() {
                tokens
                    .check_weights(&codec::weights_sha256(dir)?, path)
                    .with_context(|| format!("the model bundle's '{}' tokenizer ({}) shares the file's config, not its weights", cfg.name, dir.display()))?;
            }
            return Ok(dir.clone());
        }
    }
    bail!("{}: written by tokenizer '{}', which is not one of the model bundle's; pass the --checkpoint that wrote it", path.display(), tokens.preset)
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
    let mask = a.mask.parse()?;
    let real = !a.video.is_empty() || a.dataset.is_some();
    let (model, cfg) = load(&checkpoint_for(a.checkpoint.as_deref(), real)?, choice)?;
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
    let opts = EvalOptions { batch: a.batch, h264_preset: a.h264.then(|| a.h264_preset.clone()), mask };
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
    let mask = a.mask.parse_one()?;
    let checkpoint = checkpoint_for(a.checkpoint.as_deref(), true)?;
    let (model, cfg) = load(&checkpoint, choice)?;
    let mut tokens = codec::encode_file(&model, &cfg, &a.input)?;
    tokens.weights_sha256 = Some(codec::weights_sha256(&checkpoint)?);
    if let Some((mcfg, fill)) = &mask {
        let s = masked_codec::mask_windows(&mut tokens.windows, mcfg, cfg.frames * cfg.height * cfg.width)?;
        tokens.fill = Some(*fill);
        print_mask_summary(&s);
    }
    tokens.write(&a.out)?;
    let bytes = std::fs::metadata(&a.out).map(|m| m.len()).unwrap_or(0);
    println!(
        "{}: {} frames at {} fps in {} windows of {} -> {} ({} of {} id bits stored{}, {:.4} bpp; {bytes} bytes)",
        a.input.display(),
        tokens.frames,
        tokens.fps,
        tokens.windows.len(),
        tokens.window_frames,
        a.out.display(),
        tokens.stored_bits(),
        tokens.id_bits(),
        if mask.is_some() { " with the mask bits" } else { "" },
        tokens.stored_bits() as f64 / (tokens.frames * tokens.height * tokens.width) as f64
    );
    Ok(())
}

pub fn decode_cmd(a: DecodeArgs, choice: DeviceChoice) -> Result<()> {
    let mut tokens = TokenFile::read(&a.tokens)?;
    let mask = a.mask.parse_one()?;
    let checkpoint = match &a.checkpoint {
        Some(c) => checkpoint_for(Some(c), true)?,
        None => checkpoint_of_tokens(&tokens, &a.tokens)?,
    };
    let weights = codec::weights_sha256(&checkpoint)?;
    tokens.check_weights(&weights, &a.tokens)?;
    let (model, cfg) = load(&checkpoint, choice)?;
    let has_masks = tokens.windows.iter().any(|w| w.layers.iter().any(|l| l.mask.is_some()));
    if let Some((mcfg, _)) = mask.as_ref().filter(|_| !has_masks) {
        tokens.check_config(&cfg, &a.tokens)?;
        let s = masked_codec::mask_windows(&mut tokens.windows, mcfg, cfg.frames * cfg.height * cfg.width)?;
        print_mask_summary(&s);
    }
    let fill = mask.map(|(_, f)| f);
    if has_masks || fill.is_some() {
        let name = fill.or(tokens.fill).unwrap_or(FillStrategy::Repeat);
        eprintln!("masked tokens are filled with '{name}'");
    }
    let clip = codec::decode_tokens_filled(&model, &cfg, &tokens, &a.tokens, a.layers, fill)?;
    let layers = a.layers.unwrap_or(cfg.layers.len());
    let written = codec::export_decoded(&clip, &a.out, &tokens, &a.tokens, layers, Some(weights))?;
    println!("{}: {} frames from {layers} of {} layers", a.tokens.display(), clip.len(), cfg.layers.len());
    for p in written {
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// Options of `tokenizer show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The video file.
    pub video: PathBuf,
    /// Which window of the tokenizer's length, from 0.
    #[arg(long, default_value_t = 0)]
    pub window: usize,
    /// Tokenizer run folder or step-* folder, or `general` / `shapes` for the model bundle's
    /// (default: the bundle's general tokenizer, the one for real videos).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Largest fraction of a layer's maskable tokens that may be masked, 0 to 1.
    #[arg(long, default_value_t = 0.85)]
    pub mask_cap: f64,
    /// A token changed by more than this fraction of its bits is never masked, 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    pub mask_tolerance: f64,
    /// Fill of the masked decode: repeat, zero or learned.
    #[arg(long, default_value = "repeat")]
    pub mask_fill: FillStrategy,
}

pub fn show_cmd(a: ShowArgs, choice: DeviceChoice) -> Result<()> {
    let checkpoint = checkpoint_for(a.checkpoint.as_deref(), true)?;
    let chosen = device::select(choice)?;
    let (model, cfg, _) = load_tokenizer(&checkpoint, None, &chosen.device)?;
    let mask = MaskOptions { cap: a.mask_cap, tolerance: a.mask_tolerance, fill: a.mask_fill };
    let input = ClipInput::File { path: a.video.clone(), window: a.window };
    let view = token_view::tokenize(&model, &cfg, input, &mask, &chosen.device, &AtomicBool::new(false)).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{} through tokenizer '{}' ({})", view.label, cfg.name, checkpoint.display());
    if view.padded > 0 {
        println!("{} frames padded (the window is shorter than {} frames)", view.padded, cfg.frames);
    }
    for (j, (l, psnr)) in view.layers.iter().zip(&view.psnr).enumerate() {
        let [t, h, w] = l.shape;
        println!(
            "layer {}: {t}x{h}x{w} tokens of {} bits, {} distinct, perplexity {:.1}; PSNR from layers 1..={}: {psnr:.2} dB",
            j + 1,
            l.bits,
            l.used,
            l.perplexity,
            j + 1
        );
    }
    match &view.masks {
        Masks::Ready { layers, ratio_all, psnr, fill, .. } => {
            let ratios: Vec<String> = layers.iter().map(|m| m.as_ref().map_or_else(|| "-".to_string(), |m| format!("{:.0}%", m.ratio * 100.0))).collect();
            println!(
                "redundancy masks: {} masked by layer, {:.1}% of all tokens; decoded with fill '{fill}': PSNR {psnr:.2} dB",
                ratios.join(" / "),
                ratio_all * 100.0
            );
        }
        Masks::Unavailable(why) => println!("redundancy masks: none ({why})"),
    }
    Ok(())
}

//! `hitvideo tokenizer ...`: presets and model information, training, evaluation, and
//! encoding videos to token files and back.

mod codec;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use hitvideo_engine::device::DeviceChoice;
use hitvideo_engine::service::runs::{self, TokenizerStart};
use hitvideo_engine::tokenizer::Fills;
use hitvideo_engine::tokenizer::config::{TokenizerChoice, TokenizerPreset};
use hitvideo_engine::tokenizer::info;
use hitvideo_engine::train::data::{ClipSource, DataSpec};
use hitvideo_engine::train::tokenizer::{self as train, TokenizerTrainConfig, TrainEvent};

#[derive(Debug, Subcommand)]
pub enum TokenizerCommand {
    /// Evaluate a checkpoint: PSNR/SSIM/MS-SSIM from the k coarsest layers for every k, bits
    /// per pixel, compression ratio, per-layer codebook usage and perplexity, timings; with
    /// --h264, H.264 at the same bits per pixel on the same clips.
    Eval(codec::EvalArgs),
    /// Encode a video to a token file (all layers, window shapes, the tokenizer's config
    /// checksum); long videos are cut into windows, the last padded.
    Encode(codec::EncodeArgs),
    /// Decode a token file back to a video (MP4/GIF/PNG with metadata), optionally from the
    /// k coarsest layers only.
    Decode(codec::DecodeArgs),
    /// One window of a video through a tokenizer, as the studio's Tokens view shows it: per
    /// layer the grid, distinct codes and perplexity, PSNR from the k coarsest layers for every
    /// k, and the redundancy masks of dynamic encoding with the masked decode's PSNR.
    Show(codec::ShowArgs),
    /// Train a tokenizer (progressive layers, LFQ losses, adversarial loss after a warm-up) with
    /// atomic checkpoints, resume and a JSONL metrics log.
    Train(TrainArgs),
    /// Per-layer latent shape, tokens, bits, bpp, compression ratio, parameters and an estimate
    /// of training memory for a preset (or for every preset with --all).
    Info {
        /// Preset name (see --all), or a tokenizer config JSON file.
        #[arg(long, default_value = "tiny")]
        preset: TokenizerChoice,
        /// Describe every preset.
        #[arg(long)]
        all: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Options of `tokenizer train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Run folder: checkpoints (step-*/, latest) and metrics.jsonl go here.
    #[arg(long)]
    pub out: PathBuf,
    /// Preset to train, or a tokenizer config JSON file (for example a checkpoint's
    /// config.json, edited); ignored with --resume, which keeps the run's own.
    #[arg(long, default_value = "tiny")]
    pub preset: TokenizerChoice,
    /// Where the clips come from: `shapes` (the synthetic world, the default), `photos` (clips
    /// made from the installed photographs) or a dataset folder (from `data import` or `data
    /// synth`; imported videos are decoded a window at a time). Repeat it to mix sources: each
    /// training clip comes from one of them at random, in proportion to the weights after `@`
    /// (1 when absent: `--data photos --data my_videos/@0.25`).
    #[arg(long, value_name = "shapes|photos|FOLDER")]
    pub data: Vec<String>,
    /// Synthetic clips to draw from for `--data shapes` (the default).
    #[arg(long, default_value_t = 4000)]
    pub synthetic_count: usize,
    /// Seed of the synthetic dataset and of the photo world.
    #[arg(long, default_value_t = 0)]
    pub data_seed: u64,
    /// Continue the run in --out from its latest checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Total optimizer steps.
    #[arg(long, default_value_t = 2000)]
    pub steps: usize,
    /// Clips per micro-batch (one forward and backward pass).
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Accumulation, devices and precision.
    #[command(flatten)]
    pub scale: super::scale::ScaleArgs,
    /// Peak learning rate (AdamW).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Linear warm-up steps before the cosine decay.
    #[arg(long, default_value_t = 50)]
    pub warmup: usize,
    /// Step at which the discriminator and the adversarial loss start.
    #[arg(long, default_value_t = 1000)]
    pub disc_start: usize,
    /// Weight of the adversarial loss (0, the default, disables the discriminator; the paper
    /// trains with one, e.g. 0.05 from --disc-start).
    #[arg(long, default_value_t = 0.0)]
    pub adversarial_weight: f32,
    /// Weight of the LFQ entropy penalty.
    #[arg(long, default_value_t = 0.1)]
    pub entropy_weight: f32,
    /// Weight of the commitment loss.
    #[arg(long, default_value_t = 0.25)]
    pub commitment_weight: f32,
    /// Fraction of the run after which each finer layer switches on (0, the default: all from
    /// the start; the paper's progressive schedule is e.g. 0.1, which made `tiny` ignore its
    /// finer layers, docs/results.md).
    #[arg(long, default_value_t = 0.0)]
    pub stage_fraction: f64,
    /// Probability that a step decodes from a random number of the coarser active layers only
    /// (keeps partial decodes valid; the rest of the steps decode from all active layers).
    #[arg(long, default_value_t = 0.0)]
    pub partial_decode_prob: f64,
    /// Weight of an extra L1 loss on a decode from a random number of the coarser active layers,
    /// added to every step's full decode (0: off). Keeps coarse decodes valid while the finer
    /// layers still get a gradient in every step.
    #[arg(long, default_value_t = 0.0)]
    pub partial_loss_weight: f64,
    /// Weight of a squared-error term on that partial decode (0: its loss is L1 only). With
    /// it, the coarse layers learn to draw a blurred shape instead of the background alone.
    #[arg(long, default_value_t = 0.0)]
    pub partial_l2_weight: f64,
    /// Let the entropy penalty train only the quantizers' projections (its gradient stops at
    /// the latents), so that the encoder learns from reconstruction alone.
    #[arg(long)]
    pub entropy_detach: bool,
    /// Weight of a squared-error term beside the L1 loss (0: L1 only, as the paper). L1 alone
    /// lets uncertain shapes fade into the background (docs/results.md).
    #[arg(long, default_value_t = 4.0)]
    pub l2_weight: f64,
    /// Weight of a gradient-difference term: L1 between the spatial differences of the
    /// reconstruction and of the clip, so edges and corners weigh beside the pixels they
    /// cover (0: off).
    #[arg(long, default_value_t = 0.0)]
    pub edge_weight: f64,
    /// Validate every N steps.
    #[arg(long, default_value_t = 100)]
    pub val_every: usize,
    /// Validation clips.
    #[arg(long, default_value_t = 32)]
    pub val_clips: usize,
    /// Checkpoint every N steps.
    #[arg(long, default_value_t = 250)]
    pub checkpoint_every: usize,
    /// Seed of initialisation and batch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Start a new run (step 0, fresh optimizers) from the weights of this tokenizer run or
    /// step folder, or of the model bundle's `general` (real footage) or `shapes` tokenizer (its
    /// preset wins over --preset): how a tokenizer is fine-tuned on your own clips (`--data`), or
    /// a decoder for masked decoding with --mask-prob.
    #[arg(long, value_name = "DIR")]
    pub finetune_from: Option<PathBuf>,
    /// Masked training (dynamic encoding): probability that a step decodes from its own tokens
    /// masked by the redundancy rule and filled with one of --mask-fill (0 never).
    #[arg(long, default_value_t = 0.0)]
    pub mask_prob: f64,
    /// Fills trained in masked steps: `all` or a comma-separated list of repeat, zero, learned.
    #[arg(long, default_value = "all")]
    pub mask_fill: Fills,
    /// Largest masked fraction of each layer's maskable tokens in masked steps, 0 to 1.
    #[arg(long, default_value_t = 0.85)]
    pub mask_cap: f64,
    /// A token changed by more than this fraction of its bits is never masked, 0 to 1 (0: only
    /// tokens whose code did not change).
    #[arg(long, default_value_t = 0.0)]
    pub mask_tolerance: f64,
    /// Train the decoder side only: the encoder, and so the token ids, stay as loaded.
    #[arg(long)]
    pub freeze_encoder: bool,
}

fn train_cmd(a: TrainArgs, choice: DeviceChoice) -> Result<()> {
    if !(a.l2_weight >= 0.0 && a.l2_weight.is_finite()) {
        bail!("--l2-weight must be a number >= 0 (got {})", a.l2_weight);
    }
    if !(a.partial_loss_weight >= 0.0 && a.partial_loss_weight.is_finite()) {
        bail!("--partial-loss-weight must be a number >= 0 (got {})", a.partial_loss_weight);
    }
    if !(a.partial_l2_weight >= 0.0 && a.partial_l2_weight.is_finite()) {
        bail!("--partial-l2-weight must be a number >= 0 (got {})", a.partial_l2_weight);
    }
    let devices = a.scale.select(choice)?;
    let chosen = devices.main.clone();
    let start = if a.resume {
        TokenizerStart::Resume { steps: a.steps }
    } else {
        let t = TokenizerTrainConfig::new()
            .with_steps(a.steps)
            .with_batch(a.batch.max(1))
            .with_accumulate(a.scale.accumulate)
            .with_lr(a.lr)
            .with_warmup(a.warmup)
            .with_disc_start(a.disc_start)
            .with_adversarial_weight(a.adversarial_weight)
            .with_entropy_weight(a.entropy_weight)
            .with_commitment_weight(a.commitment_weight)
            .with_stage_fraction(a.stage_fraction)
            .with_partial_decode_prob(a.partial_decode_prob.clamp(0.0, 1.0))
            .with_partial_loss_weight(a.partial_loss_weight)
            .with_partial_l2_weight(a.partial_l2_weight)
            .with_entropy_detach(a.entropy_detach)
            .with_l2_weight(a.l2_weight)
            .with_edge_weight(a.edge_weight)
            .with_val_every(a.val_every.max(1))
            .with_val_clips(a.val_clips.max(1))
            .with_checkpoint_every(a.checkpoint_every.max(1))
            .with_seed(a.seed)
            .with_mask_prob(a.mask_prob)
            .with_mask_fill(a.mask_fill.clone())
            .with_mask_cap(a.mask_cap)
            .with_mask_tolerance(a.mask_tolerance)
            .with_freeze_encoder(a.freeze_encoder);
        t.check_masking()?;
        match &a.finetune_from {
            Some(from) => {
                let from = codec::checkpoint_for(Some(from), true)?;
                eprintln!("fine-tuning from {}", from.display());
                TokenizerStart::FineTune { from, train: t }
            }
            None => TokenizerStart::New { cfg: a.preset.config()?, train: t },
        }
    };
    let mut trainer = runs::start_tokenizer(&a.out, start, &chosen.device).map_err(super::run_error)?;
    if !(a.lr > 0.0 && a.lr.is_finite()) {
        bail!("--lr must be a positive number");
    }
    let c = &trainer.cfg;
    let names = if a.data.is_empty() { vec!["shapes".to_string()] } else { a.data.clone() };
    let specs = names.iter().map(|d| DataSpec::parse(d, a.synthetic_count, a.data_seed)).collect::<Result<Vec<_>, _>>()?;
    let data = ClipSource::from_specs(&specs, c.frames, c.height, c.fps)?;
    eprintln!("training '{}' from step {} to {} -> {}; data: {}", c.name, trainer.step, trainer.train.steps, a.out.display(), data.describe());
    let params = trainer.num_params();
    devices.check_memory(&trainer.cfg.name, trainer.train.batch, |clips| hitvideo_engine::tokenizer::info::training_memory(&trainer.cfg, params, clips))?;
    // Replicas share the batch statistics (tokenizer_sync); --entropy-detach keeps one device.
    trainer.set_devices(&devices.others_at(trainer.train.batch, trainer.train.entropy_detach))?;
    trainer.set_precision(a.scale.precision)?;
    let bar = super::progress_bar(trainer.train.steps as u64, "training");
    bar.set_position(trainer.step as u64);
    let started = std::time::Instant::now();
    let result = train::run(&mut trainer, &data, &a.out, Arc::new(AtomicBool::new(false)), &mut |e| match e {
        TrainEvent::Step { record: r, .. } => {
            bar.set_position(r.step as u64);
            bar.set_message(format!("loss {:.4} l1 {:.4} layers {}", r.loss, r.l1, r.active_layers));
        }
        TrainEvent::Validation(v) => bar.println(format!("validation: {v}")),
        TrainEvent::Checkpoint(p) => bar.println(format!("checkpoint: {}", p.display())),
        TrainEvent::Preparing { .. } => {}
    });
    bar.finish_and_clear();
    let val = result?.map_or_else(|| "none".to_string(), |v| v.to_string());
    println!("done in {:.1} s; last validation: {val}", started.elapsed().as_secs_f64());
    Ok(())
}

pub fn run(cmd: TokenizerCommand, device: DeviceChoice) -> Result<()> {
    match cmd {
        TokenizerCommand::Train(a) => train_cmd(a, device),
        TokenizerCommand::Eval(a) => codec::eval_cmd(a, device),
        TokenizerCommand::Encode(a) => codec::encode_cmd(a, device),
        TokenizerCommand::Decode(a) => codec::decode_cmd(a, device),
        TokenizerCommand::Show(a) => codec::show_cmd(a, device),
        TokenizerCommand::Info { preset, all, json } => {
            let choices: Vec<TokenizerChoice> = if all { TokenizerPreset::ALL.into_iter().map(TokenizerChoice::Preset).collect() } else { vec![preset] };
            for choice in choices {
                let report = info::info(&choice.config()?);
                if json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    println!("{report}\n");
                }
            }
            Ok(())
        }
    }
}

//! `hitvideo lm ...`: the generator's token cache and its training.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use hitvideo_engine::device::{self, DeviceChoice};
use hitvideo_engine::generator::config::GeneratorPreset;
use hitvideo_engine::generator::lists;
use hitvideo_engine::service::cache::{self, CacheSource};
use hitvideo_engine::service::runs::{self, GeneratorRun, GeneratorStart, NewGenerator};
use hitvideo_engine::service::text::EncoderChoice;
use hitvideo_engine::train::generator::{self as train, GeneratorTrainConfig, GeneratorTrainEvent};

#[derive(Debug, Subcommand)]
pub enum LmCommand {
    /// Encode a dataset once with a trained tokenizer: the generator's training data
    /// (`cache.json` + `ids.bin`).
    Cache(CacheArgs),
    /// Train the coarse-to-fine generator on a token cache, with atomic checkpoints, resume,
    /// a NaN guard and a JSONL metrics log.
    Train(TrainArgs),
    /// Attribute accuracy of a trained generator by CFG on held-out prompts (validation
    /// captions, unseen attribute combinations, unseen caption templates), scored by the
    /// analyzer, with the tokenizer's reconstructions of the same items as the ceiling.
    Eval(EvalArgs),
}

/// Options of `lm eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: super::generate::ModelArgs,
    /// Constant CFG scales, one row each per split.
    #[arg(long, default_value = "1,2.5,5,7.5,10")]
    pub cfg: String,
    /// Seeds per prompt: `0-3`, `0,3,9` or `7`.
    #[arg(long, default_value = "0")]
    pub seeds: String,
    /// Prompts per split.
    #[arg(long, default_value_t = 40)]
    pub per_split: usize,
    /// The synthetic dataset the generator's token cache was built from (its held-out items
    /// give the prompts).
    #[arg(long, default_value_t = 4000)]
    pub synthetic_count: usize,
    /// Seed of that synthetic dataset (as `lm cache --data-seed`).
    #[arg(long, default_value_t = 0)]
    pub data_seed: u64,
    /// Prompts per generation batch.
    #[arg(long, default_value_t = 20)]
    pub batch: usize,
    /// Also write the report (rows and prompts) as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn eval_cmd(a: EvalArgs, choice: DeviceChoice) -> Result<()> {
    use hitvideo_engine::eval::accuracy;
    if a.per_split == 0 {
        bail!("--per-split must be at least 1");
    }
    let spec = accuracy::AccuracySpec {
        cfgs: lists::parse_cfgs(&a.cfg, super::generate::MAX_CFGS)?,
        seeds: lists::parse_seeds(&a.seeds, super::generate::MAX_SEEDS)?,
        per_split: a.per_split,
        data_count: a.synthetic_count,
        data_seed: a.data_seed,
        sampling: a.model.sampling()?,
        negative: a.model.negative_prompt.clone(),
        use_cache: !a.model.no_cache,
        batch: a.batch,
    };
    let p = a.model.load(choice)?;
    // The engine reports the true total (a split may hold fewer items than --per-split).
    let bar = super::progress_bar(0, "eval");
    let started = std::time::Instant::now();
    let report = accuracy::evaluate(&p, &spec, &AtomicBool::new(false), |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    println!("{}", accuracy::to_markdown(&report));
    eprintln!("{:.1} s; generator {}", started.elapsed().as_secs_f64(), p.generator_dir.display());
    if let Some(out) = &a.out {
        let json = serde_json::json!({"spec": {"cfgs": spec.cfgs, "seeds": spec.seeds, "per_split": spec.per_split,
            "synthetic_count": spec.data_count, "data_seed": spec.data_seed, "temperature": spec.sampling.temperature,
            "top_k": spec.sampling.top_k, "top_p": spec.sampling.top_p, "greedy": spec.sampling.greedy},
            "models": p.checksums, "generator": p.generator_dir, "tokenizer": p.tokenizer_dir, "report": report});
        hitvideo_engine::fsutil::write_atomic(out, &serde_json::to_vec_pretty(&json)?)
            .with_context(|| format!("{}: cannot write the report", out.display()))?;
    }
    Ok(())
}

/// Options of `lm cache`.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// Tokenizer checkpoint (run or step folder) that makes the tokens.
    #[arg(long)]
    pub tokenizer: PathBuf,
    /// Cache folder to write.
    #[arg(long)]
    pub out: PathBuf,
    /// A dataset folder (from `data import` or `data synth`); default: synthetic shapes.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Synthetic clips when no --data is given.
    #[arg(long, default_value_t = 4000)]
    pub synthetic_count: usize,
    /// Seed of the synthetic dataset.
    #[arg(long, default_value_t = 0)]
    pub data_seed: u64,
}

/// Options of `lm train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Token cache folder (from `lm cache`); with --resume, default: the run's own.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Run folder: checkpoints (step-*/, latest) and metrics.jsonl go here.
    #[arg(long)]
    pub out: PathBuf,
    /// Generator preset: tiny, medium or paper (ignored with --resume).
    #[arg(long, default_value = "tiny")]
    pub preset: GeneratorPreset,
    /// Text encoder: `small` (trained with the generator), `minilm` (frozen all-MiniLM-L6-v2,
    /// installed by scripts/setup) or `auto` (minilm when installed, else small). Ignored with
    /// --resume.
    #[arg(long, default_value = "auto")]
    pub text_encoder: String,
    /// MiniLM folder (default: the model cache scripts/setup fills).
    #[arg(long)]
    pub text_model: Option<PathBuf>,
    /// Continue the run in --out from its latest checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Total optimizer steps.
    #[arg(long, default_value_t = 3000)]
    pub steps: usize,
    /// Sequences per micro-batch (one forward and backward pass).
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Accumulation, devices and precision.
    #[command(flatten)]
    pub scale: super::scale::ScaleArgs,
    /// Peak learning rate (AdamW).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Linear warm-up steps before the cosine decay.
    #[arg(long, default_value_t = 100)]
    pub warmup: usize,
    /// Probability of replacing an input token by a random one.
    #[arg(long, default_value_t = 0.1)]
    pub token_dropout: f64,
    /// Probability of training a row unconditionally (the CFG branch).
    #[arg(long, default_value_t = 0.1)]
    pub cond_dropout: f64,
    /// Loss weight of the tokens that change from one latent frame to the next (where a shape
    /// moves) against 1 for the rest; 1 is the plain mean. Ignored with --resume.
    #[arg(long, default_value_t = 1.0)]
    pub change_weight: f32,
    /// 3D RoPE coordinates: `finest` places each token at the centre of the region it covers
    /// on the finest layer's grid (a fine token and the coarse one above it rotate alike);
    /// `layer` uses each layer's own grid. Ignored with --resume.
    #[arg(long, default_value = "finest", value_parser = ["finest", "layer"])]
    pub rope_grid: String,
    /// Validate every N steps.
    #[arg(long, default_value_t = 200)]
    pub val_every: usize,
    /// Held-out items per validation.
    #[arg(long, default_value_t = 64)]
    pub val_items: usize,
    /// Checkpoint every N steps.
    #[arg(long, default_value_t = 250)]
    pub checkpoint_every: usize,
    /// Seed of initialisation, batch order and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

fn cache_cmd(a: CacheArgs, choice: DeviceChoice) -> Result<()> {
    let chosen = device::select(choice)?;
    eprintln!("device: {}", chosen.description);
    let tok = cache::open_tokenizer(&a.tokenizer, &chosen.device)?;
    eprintln!("tokenizer '{}' at step {} ({} tokens per clip)", tok.cfg.name, tok.state.step, tok.cfg.total_tokens());
    let bar = super::progress_bar(0, "encoding");
    let progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let source = match &a.data {
        Some(dir) => CacheSource::Dataset(dir.clone()),
        None => CacheSource::Shapes { count: a.synthetic_count, seed: a.data_seed },
    };
    let cache = cache::build(&tok, &source, &chosen.device, &AtomicBool::new(false), progress)?;
    bar.finish_and_clear();
    cache.write(&a.out)?;
    println!(
        "{} clips ({} train, {} held out) x {} tokens -> {}",
        cache.len(),
        cache.split("train").len(),
        cache.validation_items().len(),
        cache.tokens_per_item(),
        a.out.display()
    );
    Ok(())
}

fn train_cmd(a: TrainArgs, choice: DeviceChoice) -> Result<()> {
    let devices = a.scale.select(choice)?;
    let chosen = devices.main.clone();
    for (name, p) in [("--token-dropout", a.token_dropout), ("--cond-dropout", a.cond_dropout)] {
        if !(0.0..1.0).contains(&p) {
            bail!("{name} must be in [0, 1) (got {p})");
        }
    }
    if !(a.change_weight.is_finite() && a.change_weight > 0.0) {
        bail!("--change-weight must be a positive number (got {})", a.change_weight);
    }
    let start = if a.resume {
        GeneratorStart::Resume { steps: a.steps, cache: a.cache.clone() }
    } else {
        let Some(cache) = a.cache.clone() else { bail!("--cache is required for a new run (build one with `hitvideo lm cache`)") };
        let encoder: EncoderChoice = a.text_encoder.parse()?;
        eprintln!("text encoder: {}", encoder.resolve(a.text_model.as_deref()).name());
        let train = GeneratorTrainConfig::new()
            .with_steps(a.steps)
            .with_batch(a.batch.max(1))
            .with_accumulate(a.scale.accumulate)
            .with_lr(a.lr)
            .with_warmup(a.warmup)
            .with_val_every(a.val_every.max(1))
            .with_val_items(a.val_items.max(1))
            .with_checkpoint_every(a.checkpoint_every.max(1))
            .with_seed(a.seed)
            .with_change_weight(a.change_weight);
        GeneratorStart::New(Box::new(NewGenerator {
            cache,
            preset: a.preset,
            encoder,
            token_dropout: Some(a.token_dropout),
            cond_dropout: Some(a.cond_dropout),
            rope_finest_grid: Some(a.rope_grid == "finest"),
            train,
        }))
    };
    let GeneratorRun { mut trainer, cache, .. } = runs::start_generator(&a.out, start, a.text_model.as_deref(), &chosen.device).map_err(super::run_error)?;
    eprintln!(
        "training '{}' ({} parameters, text: {}) from step {} to {}: {} training and {} held-out sequences of {} tokens -> {}",
        trainer.cfg.name,
        trainer.num_params(),
        trainer.cfg.text.encoder,
        trainer.step,
        trainer.train.steps,
        cache.split("train").len(),
        cache.validation_items().len(),
        trainer.cfg.video_tokens(),
        a.out.display()
    );
    eprintln!(
        "estimated training memory at batch {}: {:.0} MiB (weights, optimizer state, activations)",
        trainer.train.batch,
        trainer.cfg.training_memory(trainer.train.batch) as f64 / 1048576.0
    );
    devices.check_memory(&trainer.cfg.name, trainer.train.batch, |items| trainer.cfg.training_memory(items))?;
    trainer.set_devices(&devices.others_at(trainer.train.batch, false))?;
    trainer.set_precision(a.scale.precision)?;
    let bar = super::progress_bar(trainer.train.steps as u64, "training");
    bar.set_position(trainer.step as u64);
    bar.reset_eta();
    let started = std::time::Instant::now();
    let result = train::run(&mut trainer, &cache, &a.out, Arc::new(AtomicBool::new(false)), &mut |e| match e {
        GeneratorTrainEvent::Step { record: r, .. } => {
            bar.set_position(r.step as u64);
            let layers: Vec<String> = r.ce_by_layer.iter().map(|c| format!("{c:.2}")).collect();
            bar.set_message(format!("loss {:.3} ce/layer [{}]", r.loss, layers.join(" ")));
        }
        GeneratorTrainEvent::Validation(v) => bar.println(format!("validation: {v}")),
        GeneratorTrainEvent::Checkpoint(p) => bar.println(format!("checkpoint: {}", p.display())),
        GeneratorTrainEvent::Preparing { done, total } => bar.set_message(format!("text features of the captions: {done}/{total}")),
    });
    bar.finish_and_clear();
    let val = result?.map_or_else(|| "none".to_string(), |v| v.to_string());
    println!("done in {:.1} s; last validation: {val}", started.elapsed().as_secs_f64());
    Ok(())
}

pub fn run(cmd: LmCommand, device: DeviceChoice) -> Result<()> {
    match cmd {
        LmCommand::Cache(a) => cache_cmd(a, device),
        LmCommand::Train(a) => train_cmd(a, device),
        LmCommand::Eval(a) => eval_cmd(a, device),
    }
}

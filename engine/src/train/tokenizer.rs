//! Tokenizer training: L1 + commitment + entropy + (after a warm-up) adversarial loss from a 3D
//! patch discriminator with its own optimizer; progressive layers (coarsest first, finer ones
//! switched on in stages); AdamW with warm-up and cosine LR and gradient clipping; a NaN guard;
//! periodic validation; atomic checkpoints; resume; JSONL metrics.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use burn::config::Config;
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::data::{ClipSource, DataError};
use super::metrics::{CodebookUse, TokenizerStep, TokenizerValidation};
use super::parallel::{CoreShares, ShardPlan, per_device};
use super::precision::{self, LossScaler, Precision};
use super::run_loop::{Progress, RunEvent, Trainable, run_loop};
use super::schedule::lr_at;
use super::sync::{AbortGuard, AllReduce};
use super::tokenizer_step::{self as step, DiscUpdate, Models, StepPlan, StepSums};
use crate::checkpoint::{self, CheckpointError, CheckpointState, damaged, load_module};
use crate::dataset::synth::item_seed;
use crate::tokenizer::disc::Discriminator;
use crate::tokenizer::dynamic::Fills;
use crate::tokenizer::lfq::usage_and_perplexity;
use crate::tokenizer::load::{KIND, load_model, read_model_config};
use crate::tokenizer::{Tokenizer, TokenizerConfig};

/// Training batches prepared ahead of the step being computed.
pub const PREFETCH: usize = 2;

/// Hyper-parameters of a tokenizer run (saved beside every checkpoint).
#[derive(Config, Debug)]
pub struct TokenizerTrainConfig {
    /// Optimizer steps in total.
    #[config(default = 2000)]
    pub steps: usize,
    /// Clips per micro-batch (one forward and backward pass).
    #[config(default = 8)]
    pub batch: usize,
    /// Micro-batches whose gradients are summed into one optimizer step (gradient
    /// accumulation): a step sees `batch * accumulate` clips with the memory of `batch`.
    #[config(default = 1)]
    pub accumulate: usize,
    /// Peak learning rate of the tokenizer (AdamW).
    #[config(default = 1e-3)]
    pub lr: f64,
    /// Linear warm-up steps.
    #[config(default = 50)]
    pub warmup: usize,
    /// Final learning rate as a fraction of the peak (cosine floor).
    #[config(default = 0.05)]
    pub min_lr_ratio: f64,
    /// AdamW betas, epsilon and decoupled weight decay.
    #[config(default = 0.9)]
    pub beta1: f32,
    #[config(default = 0.99)]
    pub beta2: f32,
    #[config(default = 1e-8)]
    pub epsilon: f32,
    #[config(default = 1e-4)]
    pub weight_decay: f32,
    /// Gradient clipping: maximum L2 norm of each parameter's gradient.
    #[config(default = 1.0)]
    pub grad_clip: f32,
    /// Weight of the commitment loss.
    #[config(default = 0.25)]
    pub commitment_weight: f32,
    /// Weight of the entropy penalty (sample entropy minus codebook entropy).
    #[config(default = 0.1)]
    pub entropy_weight: f32,
    /// Temperature of the LFQ code distribution in the entropy terms.
    #[config(default = 1.0)]
    pub entropy_tau: f32,
    /// Weight of the adversarial (hinge) loss once the discriminator is on (the paper's; off
    /// by default: not measured at the CPU presets' scale, where every recipe of
    /// docs/results.md trains without it).
    #[config(default = 0.0)]
    pub adversarial_weight: f32,
    /// Steps before the discriminator starts (0 turns the GAN off for the whole run when
    /// `adversarial_weight` is 0).
    #[config(default = 1000)]
    pub disc_start: usize,
    /// Discriminator learning rate.
    #[config(default = 2e-4)]
    pub disc_lr: f64,
    /// Fraction of the run after which each further (finer) layer is switched on; 0 trains all
    /// layers from the start (the default: on `tiny` the paper's progressive schedule made the
    /// decoder ignore the finer layers, docs/results.md).
    #[config(default = 0.0)]
    pub stage_fraction: f64,
    /// Probability of decoding a step from fewer than all active layers (keeps partial
    /// decodes valid; `partial_loss_weight` does so without taking full decodes away).
    #[config(default = 0.0)]
    pub partial_decode_prob: f64,
    /// Weight of an extra L1 term on a decode from a random number of coarsest layers (fewer
    /// than all active), added to every step's full decode. Unlike `partial_decode_prob`,
    /// which replaces the full decode, the finer layers keep their gradient in every step. 0
    /// turns it off.
    #[config(default = 0.0)]
    pub partial_loss_weight: f64,
    /// Weight of a squared-error term on that partial decode, beside its L1 (as `l2_weight`
    /// for the full decode). Under L1 alone the coarse decode of an uncertain shape is the
    /// background, so the coarse layers have no reason to carry it.
    #[config(default = 0.0)]
    pub partial_l2_weight: f64,
    /// Whether the entropy penalty's gradient stops at the latents (training only the
    /// quantizers' projections) instead of reaching the whole encoder: the encoder then learns
    /// from reconstruction alone, and the projections spread its content over the codebook.
    #[config(default = false)]
    pub entropy_detach: bool,
    /// Weight of a squared-error term added to the L1 reconstruction loss (0: L1 only, as the
    /// paper). Squared error weighs large errors (a missing shape) more than many small ones.
    #[config(default = 4.0)]
    pub l2_weight: f64,
    /// Weight of a gradient-difference term (Mathieu et al. 2016): L1 between the spatial
    /// finite differences of the reconstruction and of the clip, so edges and corners count
    /// beside the pixels they cover. 0 turns it off.
    #[config(default = 0.0)]
    pub edge_weight: f64,
    /// Validate (and log) every this many steps.
    #[config(default = 100)]
    pub val_every: usize,
    /// Validation clips.
    #[config(default = 32)]
    pub val_clips: usize,
    /// Checkpoint every this many steps (and at the end, and on cancel).
    #[config(default = 250)]
    pub checkpoint_every: usize,
    /// Checkpoints kept.
    #[config(default = 3)]
    pub keep_checkpoints: usize,
    /// Seed of initialisation and of the batch stream.
    #[config(default = 0)]
    pub seed: u64,
    /// Masked training (dynamic encoding): probability that a step decodes from masked inputs,
    /// its own token ids masked by the redundancy rule (`tokenizer::dynamic`) and filled with
    /// one of `mask_fill`. 0 never masks.
    #[config(default = 0.0)]
    pub mask_prob: f64,
    /// Largest masked fraction of each layer's maskable tokens in masked steps.
    #[config(default = 0.85)]
    pub mask_cap: f64,
    /// Hamming tolerance of the redundancy rule (a fraction of each layer's bits; 0: only
    /// unchanged tokens are masked).
    #[config(default = 0.0)]
    pub mask_tolerance: f64,
    /// Fill strategies trained, a random one each masked step: `all`, or a comma-separated
    /// list of `repeat`, `zero`, `learned` (saved in that form).
    #[config(default = "Fills::all()")]
    pub mask_fill: Fills,
    /// Train the decoder side only: codes are detached and the commitment and entropy terms
    /// dropped, so the encoder (and the token ids it gives) stays exactly as loaded.
    #[config(default = false)]
    pub freeze_encoder: bool,
}

/// Upper bounds on training settings read from files (a `train.json` from elsewhere).
pub const MAX_BATCH: usize = 4096;
pub const MAX_STEPS: usize = 100_000_000;

/// Checks the settings both trainers share; `what` names the file or flags in messages.
pub(crate) fn check_common(steps: usize, batch: usize, lr: f64, warmup: usize, min_lr_ratio: f64, cadence: [(&str, usize); 3]) -> Result<(), TrainError> {
    let bad = |reason: String| Err(TrainError::Invalid(reason));
    if steps == 0 || steps > MAX_STEPS {
        return bad(format!("field `steps` is {steps}; it must be 1..={MAX_STEPS}"));
    }
    if batch == 0 || batch > MAX_BATCH {
        return bad(format!("field `batch` is {batch}; it must be 1..={MAX_BATCH}"));
    }
    if !(lr.is_finite() && lr > 0.0) {
        return bad(format!("field `lr` is {lr}; it must be a positive number"));
    }
    if warmup > MAX_STEPS {
        return bad(format!("field `warmup` is {warmup}; it must be at most {MAX_STEPS}"));
    }
    if !(0.0..=1.0).contains(&min_lr_ratio) {
        return bad(format!("field `min_lr_ratio` is {min_lr_ratio}; it must be between 0 and 1"));
    }
    for (name, v) in cadence {
        if v == 0 {
            return bad(format!("field `{name}` is 0; it must be at least 1"));
        }
    }
    Ok(())
}

/// Errors unless every weight is finite and not negative.
/// Checks `accumulate` and the clips or sequences a step sees (`batch * accumulate`).
pub(crate) fn check_accumulate(batch: usize, accumulate: usize) -> Result<(), TrainError> {
    if accumulate == 0 || batch.saturating_mul(accumulate) > MAX_BATCH {
        return Err(TrainError::Invalid(format!(
            "field `accumulate` is {accumulate}; it must be at least 1, with batch x accumulate ({batch} x {accumulate}) at most {MAX_BATCH}"
        )));
    }
    Ok(())
}

pub(crate) fn check_weights(weights: &[(&str, f64)]) -> Result<(), TrainError> {
    match weights.iter().find(|(_, w)| !(w.is_finite() && *w >= 0.0)) {
        Some((name, w)) => Err(TrainError::Invalid(format!("field `{name}` is {w}; it must be a finite number >= 0"))),
        None => Ok(()),
    }
}

impl TokenizerTrainConfig {
    /// Checks every setting (counts, cadences, probabilities, weights) with the field's name,
    /// so a hand-edited or hostile `train.json` is refused before training starts.
    pub fn validate(&self) -> Result<(), TrainError> {
        check_common(
            self.steps,
            self.batch,
            self.lr,
            self.warmup,
            self.min_lr_ratio,
            [("val_every", self.val_every), ("checkpoint_every", self.checkpoint_every), ("keep_checkpoints", self.keep_checkpoints)],
        )?;
        check_accumulate(self.batch, self.accumulate)?;
        if self.val_clips == 0 || self.val_clips > 100_000 {
            return Err(TrainError::Invalid(format!("field `val_clips` is {}; it must be 1..=100000", self.val_clips)));
        }
        if !(self.disc_lr.is_finite() && self.disc_lr > 0.0) {
            return Err(TrainError::Invalid(format!("field `disc_lr` is {}; it must be a positive number", self.disc_lr)));
        }
        for (name, p) in [("stage_fraction", self.stage_fraction), ("partial_decode_prob", self.partial_decode_prob)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(TrainError::Invalid(format!("field `{name}` is {p}; it must be between 0 and 1")));
            }
        }
        check_weights(&[
            ("commitment_weight", f64::from(self.commitment_weight)),
            ("entropy_weight", f64::from(self.entropy_weight)),
            ("entropy_tau", f64::from(self.entropy_tau)),
            ("adversarial_weight", f64::from(self.adversarial_weight)),
            ("partial_loss_weight", self.partial_loss_weight),
            ("partial_l2_weight", self.partial_l2_weight),
            ("l2_weight", self.l2_weight),
            ("edge_weight", self.edge_weight),
            ("weight_decay", f64::from(self.weight_decay)),
            ("grad_clip", f64::from(self.grad_clip)),
            ("epsilon", f64::from(self.epsilon)),
        ])?;
        self.check_masking()
    }

    /// Checks the masking settings (the fills are checked where their text is parsed).
    pub fn check_masking(&self) -> Result<(), TrainError> {
        let bad = |what: &str, v: f64| TrainError::Invalid(format!("{what} is {v}; it must be between 0 and 1"));
        if !(0.0..=1.0).contains(&self.mask_prob) {
            return Err(bad("mask_prob", self.mask_prob));
        }
        if !(0.0..=1.0).contains(&self.mask_cap) {
            return Err(bad("mask_cap", self.mask_cap));
        }
        if !(0.0..=1.0).contains(&self.mask_tolerance) {
            return Err(bad("mask_tolerance", self.mask_tolerance));
        }
        Ok(())
    }
}

/// Progress reported to the caller (CLI progress bar, studio events).
pub type TrainEvent = RunEvent<TokenizerStep, TokenizerValidation>;

/// Why training stopped early or could not start.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(
        "loss became {value} at step {step} (non-finite); training stopped. The last good checkpoint is {last}. \
         Lower --lr, raise --warmup, or resume from it"
    )]
    NonFinite { step: usize, value: f32, last: String },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{0}")]
    Invalid(String),
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Read(#[from] crate::tensor::ReadError),
}

/// Layers active at `step`: the coarsest first, one more every `stage_fraction` of the run.
pub fn active_layers(step: usize, steps: usize, layers: usize, stage_fraction: f64) -> usize {
    if stage_fraction <= 0.0 {
        return layers;
    }
    let stage = (step as f64 / (stage_fraction * steps as f64).max(1.0)).floor() as usize;
    (stage + 1).min(layers)
}

/// The tokenizer's own state: model, discriminator and their optimizers.
pub struct TokenizerTrainer {
    pub cfg: TokenizerConfig,
    pub train: TokenizerTrainConfig,
    pub model: Tokenizer,
    pub disc: Discriminator,
    opt_g: ModuleOptimizer,
    opt_d: ModuleOptimizer,
    pub step: usize,
    device: Device,
    /// Every training device, the main one (`device`) first (see [`super::parallel`]).
    devices: Vec<Device>,
    /// The cores' shares of the replicas of a data-parallel run on the CPU.
    pub(super) cores: Option<CoreShares>,
    /// Compute precision of this process's steps (a run setting, not saved: checkpoints are
    /// fp32 whatever it is).
    precision: Precision,
    /// The f16 loss scale.
    scaler: LossScaler,
}

fn optimizer(t: &TokenizerTrainConfig) -> ModuleOptimizer {
    AdamWConfig::new()
        .with_beta_1(t.beta1)
        .with_beta_2(t.beta2)
        .with_epsilon(t.epsilon)
        .with_weight_decay(t.weight_decay)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(t.grad_clip)))
        .init()
}

/// Reads `train.json`; fields added since the checkpoint was written take their defaults.
fn read_train_config(dir: &Path) -> Result<TokenizerTrainConfig, CheckpointError> {
    let mut saved: serde_json::Value = serde_json::from_slice(&checkpoint::read_file(dir, "train.json")?).map_err(|e| damaged(dir, "train.json", e))?;
    if let (Some(obj), Ok(serde_json::Value::Object(defaults))) = (saved.as_object_mut(), serde_json::to_value(TokenizerTrainConfig::new())) {
        for (k, v) in defaults {
            obj.entry(k).or_insert(v);
        }
    }
    let train: TokenizerTrainConfig = serde_json::from_value(saved).map_err(|e| damaged(dir, "train.json", e))?;
    train.validate().map_err(|e| damaged(dir, "train.json", e))?;
    Ok(train)
}

impl TokenizerTrainer {
    /// Parameters of the tokenizer (the discriminator not counted).
    pub fn num_params(&self) -> usize {
        burn::module::Module::num_params(&self.model)
    }

    /// A fresh run on `device` (autodiff is switched on here).
    pub fn new(cfg: TokenizerConfig, train: TokenizerTrainConfig, device: &Device) -> Self {
        let device = device.clone().autodiff();
        device.seed(train.seed);
        let model = cfg.init(&device);
        let disc = Discriminator::new(cfg.disc_channels, &device);
        super::parallel::initialize(&model);
        super::parallel::initialize(&disc);
        let scaler = LossScaler::new(Precision::F32);
        Self {
            opt_g: optimizer(&train),
            opt_d: optimizer(&train),
            cfg,
            train,
            model,
            disc,
            step: 0,
            devices: vec![device.clone()],
            cores: None,
            precision: Precision::F32,
            scaler,
            device,
        }
    }

    /// Continues the run saved at `path` (run or step folder) with its own configs; `steps`
    /// may extend the run.
    pub fn resume(path: &Path, steps: Option<usize>, device: &Device) -> Result<Self, CheckpointError> {
        let dir = checkpoint::resolve(path)?;
        let state = checkpoint::read_state(&dir, KIND, None)?;
        let cfg = TokenizerConfig::from_json(&checkpoint::read_file(&dir, "config.json")?).map_err(|e| damaged(&dir, "config.json", e))?;
        cfg.validate().map_err(|e| damaged(&dir, "config.json", e))?;
        let mut train = read_train_config(&dir)?;
        if let Some(s) = steps {
            train.steps = s;
        }
        let mut t = Self::new(cfg, train, device);
        t.model = load_model(t.model, &dir)?;
        t.disc = load_module(t.disc, &dir, "disc.bpk")?;
        let opt = |name: &str| -> Result<ModuleOptimizer, CheckpointError> {
            let bytes = checkpoint::read_file(&dir, name)?;
            optimizer(&t.train).from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| damaged(&dir, name, e))
        };
        t.opt_g = opt("optim_g.bpk")?;
        t.opt_d = opt("optim_d.bpk")?;
        t.step = state.step;
        Ok(t)
    }

    /// Starts a new run (step 0, fresh optimizers) from the model and discriminator weights
    /// saved at `path` (run or step folder, or a packed model bundle's tokenizer), with the
    /// training settings `train`: how a decoder is fine-tuned for masked decoding
    /// (`mask_prob`, `freeze_encoder`). A bundle holds no discriminator; one starts fresh then.
    pub fn finetune_from(path: &Path, train: TokenizerTrainConfig, device: &Device) -> Result<Self, CheckpointError> {
        let dir = checkpoint::resolve(path)?;
        let state = checkpoint::read_state(&dir, KIND, None)?;
        let mut t = Self::new(read_model_config(&dir, &state)?, train, device);
        t.model = load_model(t.model, &dir)?;
        if dir.join("disc.bpk").exists() {
            t.disc = load_module(t.disc, &dir, "disc.bpk")?;
        } else {
            tracing::info!("{}: no discriminator saved here (a model bundle); it starts from fresh weights", dir.display());
        }
        Ok(t)
    }

    /// Saves model, discriminator, both optimizers, both configs and the step.
    pub fn save(&self, run_dir: &Path, metrics: serde_json::Value) -> Result<PathBuf, CheckpointError> {
        checkpoint::check_finite(&self.model, run_dir)?;
        checkpoint::check_finite(&self.disc, run_dir)?;
        let bytes = |r: Result<Bytes, burn::store::RecordError>, name: &str| r.map(|b| b.to_vec()).map_err(|e| damaged(run_dir, name, e));
        let json = |r: Result<Vec<u8>, serde_json::Error>, name: &str| r.map_err(|e| damaged(run_dir, name, e));
        let cfg_json = json(serde_json::to_vec_pretty(&self.cfg), "config.json")?;
        let files = vec![
            ("model.bpk", bytes(self.model.clone().into_record().into_bytes(), "model.bpk")?),
            ("disc.bpk", bytes(self.disc.clone().into_record().into_bytes(), "disc.bpk")?),
            ("optim_g.bpk", bytes(self.opt_g.into_bytes(), "optim_g.bpk")?),
            ("optim_d.bpk", bytes(self.opt_d.into_bytes(), "optim_d.bpk")?),
            ("train.json", json(serde_json::to_vec_pretty(&self.train), "train.json")?),
            ("config.json", cfg_json.clone()),
        ];
        let state = CheckpointState {
            kind: KIND.into(),
            preset: self.cfg.name.clone(),
            config_sha256: checkpoint::sha256_hex(&cfg_json),
            step: self.step,
            app_version: crate::VERSION.into(),
            metrics,
            files: Vec::new(),
        };
        checkpoint::save(run_dir, &files, &state, self.train.keep_checkpoints)
    }

    /// Trains on the main device and `others` at once (data parallel, see
    /// [`super::parallel`]): each step's batch is split evenly over them, so the batch must be
    /// a multiple of the device count. An empty `others` trains on the main device alone.
    /// The replicas share the batch statistics (`tokenizer_sync.rs`), so the update is the
    /// one device's up to rounding; `entropy_detach`, whose extra bit-norm pass they do not
    /// share, trains on one device only.
    pub fn set_devices(&mut self, others: &[Device]) -> Result<(), TrainError> {
        ShardPlan::new(self.train.batch, self.train.accumulate, others.len() + 1)?;
        if self.train.entropy_detach && !others.is_empty() {
            return Err(TrainError::Invalid(
                "--entropy-detach trains on one device only (its second bit-norm pass takes per-replica statistics); use --devices 1".into(),
            ));
        }
        self.devices = super::parallel::autodiff_devices(&self.device, others);
        self.cores = super::parallel::core_shares(&self.devices)?;
        Ok(())
    }

    /// Computes this process's steps in `precision` (see [`super::precision`]): the device's
    /// default float type must already be its half type ([`precision::configure`], before the
    /// trainer was built); the weights become fp32 master weights.
    pub fn set_precision(&mut self, precision: Precision) -> Result<(), TrainError> {
        precision::check_configured(&self.device, precision)?;
        self.model = precision::master_weights(self.model.clone(), precision);
        self.disc = precision::master_weights(self.disc.clone(), precision);
        (self.precision, self.scaler) = (precision, LossScaler::new(precision));
        Ok(())
    }

    /// The devices this run trains on, the main one first.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// One optimizer step on batch `x` (`[batch * accumulate, 3, T, H, W]` in `[-1, 1]`, on the
    /// main device); returns the logged scalars (means over the micro-batches).
    ///
    /// The step is cut into `devices x accumulate` micro-batches ([`ShardPlan`]), each run
    /// forward and backward with its losses divided by their number, and the summed gradients
    /// make one update. The bit norms' batch statistics and the codebook entropy are taken over
    /// each round of micro-batches that the devices run at once (synchronized, as
    /// synchronized batch norm is), so devices do not change the update, while accumulation
    /// takes them per micro-batch (as batch norm is under accumulation). With more than
    /// one micro-batch the discriminator steps once, after the last, so each micro-batch's
    /// adversarial term is scored by the discriminator as it was when the step began.
    pub fn train_step(&mut self, x: Tensor<5>) -> TokenizerStep {
        let t = self.train.clone();
        let n = self.cfg.layers.len();
        let active = active_layers(self.step, t.steps, n, t.stage_fraction);
        let mut rng = ChaCha8Rng::seed_from_u64(crate::dataset::synth::item_seed(t.seed ^ 0x6b, self.step));
        let k = if active > 1 && rng.random_bool(t.partial_decode_prob) { rng.random_range(1..active) } else { active };
        // Drawn after `k` (and only when masking is on), so runs without masking are unchanged.
        let fill = if t.mask_prob > 0.0 && rng.random_bool(t.mask_prob.min(1.0)) {
            let fills = t.mask_fill.as_slice();
            Some(fills[rng.random_range(0..fills.len())])
        } else {
            None
        };
        // Drawn last, and only when on, so that runs without it keep their random streams.
        let aux_k = (t.partial_loss_weight > 0.0 && active > 1).then(|| rng.random_range(1..active));
        let adversarial = t.adversarial_weight > 0.0 && self.step >= t.disc_start;
        let plan = StepPlan { active, k, fill, aux_k, adversarial, mask_seed: item_seed(t.seed ^ 0x6d, self.step) };
        let shards = ShardPlan::new(x.dims()[0] / t.accumulate.max(1), t.accumulate, self.devices.len()).unwrap_or(ShardPlan {
            devices: 1,
            accumulate: 1,
            micro: x.dims()[0],
        });
        let (sums, grads) = if shards.parts() == 1 {
            let compute = precision::compute_copy(&self.model, self.precision);
            let models = Models { master: &self.model, compute: &compute, precision: self.precision, loss_scale: self.scaler.scale };
            let out = step::shard(models, &mut self.disc, x, &t, &plan, 1.0, DiscUpdate::Now(&mut self.opt_d), None);
            (out.sums, out.grads)
        } else {
            self.sharded_step(x, &t, &plan, shards)
        };
        let lr = lr_at(self.step, t.steps, t.lr, t.warmup, t.min_lr_ratio);
        let (grads, finite) = if self.scaler.active() { self.scaler.unscale(grads, &self.model) } else { (grads, true) };
        if self.scaler.active() {
            self.scaler.update(finite);
        }
        if sums.loss.is_finite() && finite {
            self.model = self.opt_g.step(lr, self.model.clone(), grads);
        }
        self.step += 1;
        TokenizerStep {
            step: self.step,
            lr,
            loss: sums.loss,
            l1: sums.l1,
            commitment: sums.commitment,
            entropy: sums.entropy,
            d_loss: sums.d_loss,
            active_layers: active,
            decoded_layers: k,
            l1_partial: sums.l1_partial,
            partial_layers: aux_k,
            fill,
            mask_ratio: sums.mask_ratio,
        }
    }

    /// A step of several micro-batches: each device runs its share on a replica (the models
    /// themselves on a single device) and accumulates their gradients; they are summed on the
    /// main device, where the discriminator steps (adversarial steps). Returns the summed
    /// scalars and the tokenizer's summed gradients.
    fn sharded_step(&mut self, x: Tensor<5>, t: &TokenizerTrainConfig, plan: &StepPlan, shards: ShardPlan) -> (StepSums, GradientsParams) {
        let single = shards.devices == 1;
        let scale = shards.scale();
        // Replicas take the bit norms' statistics and the codebook entropy over the whole batch.
        let exchange = (!single).then(|| AllReduce::new(shards.devices));
        let sync = exchange.as_ref();
        let jobs: Vec<_> = self
            .devices
            .iter()
            .enumerate()
            .map(|(d, device)| {
                let (model, mut disc) = if single {
                    (self.model.clone(), self.disc.clone())
                } else {
                    (super::parallel::replica(self.model.clone(), device), super::parallel::replica(self.disc.clone(), device))
                };
                let (precision, loss_scale) = (self.precision, self.scaler.scale);
                let xs: Vec<Tensor<5>> = shards.shards_of(d).map(|i| x.clone().narrow(0, i * shards.micro, shards.micro).to_device(device)).collect();
                move || {
                    // A replica that fails stops the others rather than leaving them waiting.
                    let _guard = sync.map(AbortGuard);
                    let (mut sums, mut grads, mut grads_d, mut stats) =
                        (StepSums::default(), GradientsAccumulator::new(), GradientsAccumulator::new(), Vec::new());
                    let compute = precision::compute_copy(&model, precision);
                    for x in xs {
                        let models = Models { master: &model, compute: &compute, precision, loss_scale };
                        let out = step::shard(models, &mut disc, x, t, plan, scale, DiscUpdate::Accumulate, sync);
                        sums.merge(&out.sums);
                        stats.extend(out.bit_stats);
                        grads.accumulate(&model, out.grads);
                        if let Some(g) = out.grads_d {
                            grads_d.accumulate(&disc, g);
                        }
                    }
                    (sums, grads.grads(), grads_d.grads(), stats)
                }
            })
            .collect();
        let (mut sums, mut grads, mut grads_d) = (StepSums::default(), GradientsAccumulator::<Tokenizer>::new(), GradientsAccumulator::<Discriminator>::new());
        for (d, (s, g, gd, stats)) in per_device(jobs, self.cores.as_ref()).into_iter().enumerate() {
            // Every replica holds the same statistics; the first one's move the running ones
            // here, round after round.
            if d == 0 {
                for (layer, mean, var) in stats {
                    if let Some(norm) = self.model.bit_norm(layer) {
                        norm.update_running(mean, var);
                    }
                }
            }
            sums.merge(&s);
            grads.accumulate(&self.model, if single { g } else { g.to_device(&self.device, &self.model) });
            grads_d.accumulate(&self.disc, if single { gd } else { gd.to_device(&self.device, &self.disc) });
        }
        if plan.adversarial {
            self.disc = self.opt_d.step(t.disc_lr, self.disc.clone(), grads_d.grads());
        }
        (sums, grads.grads())
    }

    /// Validation on `clips` clips of `data`: PSNR with the k coarsest layers for every k, and
    /// codebook usage and perplexity per layer.
    pub fn validate(&self, data: &ClipSource, clips: usize) -> Result<TokenizerValidation, TrainError> {
        validate(&self.model.valid(), &self.cfg, data, clips)
    }
}

/// Validation of any tokenizer (see [`TokenizerTrainer::validate`]).
pub fn validate(model: &Tokenizer, cfg: &TokenizerConfig, data: &ClipSource, clips: usize) -> Result<TokenizerValidation, TrainError> {
    let device = model.devices().first().cloned().unwrap_or_else(Device::flex);
    let n = clips.min(data.val_len()).max(1);
    let layers = cfg.layers.len();
    let mut psnr_sum = vec![0f64; layers];
    let mut hist: Vec<Vec<u64>> = cfg.layers.iter().map(|l| vec![0u64; 1usize << l.bits.min(24)]).collect();
    let batch = 4;
    let mut i = 0;
    while i < n {
        let x = data.val_batch(i..(i + batch).min(n), &device)?;
        let b = x.dims()[0];
        let enc = model.encode_batch(x.clone());
        for (l, indices) in enc.indices.iter().enumerate() {
            for id in crate::tensor::ids(indices.clone(), "validation token ids")? {
                if let Some(c) = hist[l].get_mut(id as usize) {
                    *c += 1;
                }
            }
        }
        for k in 1..=layers {
            let r = model.decode_batch(&enc.codes[..k]).clamp(-1.0, 1.0);
            // Per-clip MSE in [0, 1] units, then PSNR per clip.
            let mse = (r - x.clone()).mul_scalar(0.5).powf_scalar(2.0).reshape([b as i32, -1]).mean_dim(1);
            let mse = crate::tensor::floats(mse, "validation errors")?;
            psnr_sum[k - 1] += mse.iter().map(|&m| -10.0 * f64::from(m.max(1e-10)).log10()).sum::<f64>();
        }
        i += b;
    }
    let psnr: Vec<f64> = psnr_sum.iter().map(|s| s / n as f64).collect();
    let codebook = hist
        .iter()
        .zip(&cfg.layers)
        .map(|(h, l)| {
            let (usage, perplexity) = usage_and_perplexity(h);
            CodebookUse { bits: l.bits, usage, perplexity }
        })
        .collect();
    Ok(TokenizerValidation { clips: n, psnr: psnr.last().copied().unwrap_or(0.0), psnr_by_layers: psnr, codebook })
}

impl Trainable for TokenizerTrainer {
    type Data = ClipSource;
    type Batch = Tensor<5>;
    type Step = TokenizerStep;
    type Validation = TokenizerValidation;

    fn progress(&self) -> Progress {
        let t = &self.train;
        Progress { done: self.step, total: t.steps, val_every: t.val_every, checkpoint_every: t.checkpoint_every }
    }
    fn run_step(&mut self, _data: &ClipSource, batch: Tensor<5>) -> Result<TokenizerStep, TrainError> {
        Ok(self.train_step(batch))
    }
    fn run_validation(&mut self, data: &ClipSource) -> Result<TokenizerValidation, TrainError> {
        self.validate(data, self.train.val_clips)
    }
    fn save_checkpoint(&self, run_dir: &Path, metrics: serde_json::Value) -> Result<PathBuf, CheckpointError> {
        self.save(run_dir, metrics)
    }
}

/// Runs (or continues) training to `trainer.train.steps` on [`run_loop`], writing checkpoints
/// and `metrics.jsonl` into `run_dir`; batches are made on a CPU thread, up to `PREFETCH`
/// steps ahead. Stops early, with a checkpoint, when `cancel` is set. Returns the last
/// validation.
pub fn run(
    trainer: &mut TokenizerTrainer,
    data: &ClipSource,
    run_dir: &Path,
    cancel: Arc<AtomicBool>,
    on_event: &mut dyn FnMut(TrainEvent),
) -> Result<Option<TokenizerValidation>, TrainError> {
    if data.train_len() == 0 || data.val_len() == 0 {
        return Err(TrainError::Invalid("the dataset has no training or no validation clips".into()));
    }
    trainer.train.validate()?;
    ShardPlan::new(trainer.train.batch, trainer.train.accumulate, trainer.devices.len())?;
    std::fs::create_dir_all(run_dir).map_err(|source| TrainError::Io { path: run_dir.to_path_buf(), source })?;
    let clips_per_step = trainer.train.batch * trainer.train.accumulate.max(1);
    data.set_error_log(&run_dir.join("errors.log"));
    // Batches are rendered or cut on a CPU thread, up to PREFETCH steps ahead, while the
    // device computes the current step.
    std::thread::scope(|scope| {
        let (first, steps, seed) = (trainer.step, trainer.train.steps, trainer.train.seed);
        let mut batches = data.prefetch(scope, first..steps, clips_per_step, seed, PREFETCH, trainer.device.clone());
        let next = move |step: usize| -> Result<Tensor<5>, TrainError> { Ok(batches(step)?) };
        run_loop(trainer, data, run_dir, &cancel, next, on_event)
    })
}

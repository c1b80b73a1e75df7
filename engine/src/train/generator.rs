//! Generator training on a token cache: weighted per-layer cross-entropy with token dropout
//! and condition dropout (for CFG); AdamW with warm-up, cosine LR and gradient clipping; a NaN
//! guard; periodic validation on the held-out items; atomic checkpoints (`checkpoint.rs`);
//! resume; JSONL metrics (`log.rs`); events and a cancel flag.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::config::Config;
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::generator_data::{TextSource, embedded_input, layer_ids, rows_of, to_tensors, token_dropout};
use super::metrics::{GeneratorStep, GeneratorValidation};
use super::parallel::{CoreShares, ShardPlan, per_device};
use super::precision::{self, LossScaler, Precision};
use super::run_loop::{Progress, RunEvent, Trainable, run_loop};
use super::schedule::lr_at;
pub use super::tokenizer::TrainError;
use crate::checkpoint::{self, CheckpointError, CheckpointState, damaged, load_module};
use crate::dataset::synth::item_seed;
use crate::generator::load::{KIND, read_config};
use crate::generator::token_cache::TokenCache;
use crate::generator::{Generator, GeneratorConfig, TextInput, layer_losses};
use crate::text::MiniLm;

/// Hyper-parameters of a generator run (saved beside every checkpoint).
#[derive(Config, Debug)]
pub struct GeneratorTrainConfig {
    /// Optimizer steps in total.
    #[config(default = 3000)]
    pub steps: usize,
    /// Sequences per micro-batch (one forward and backward pass).
    #[config(default = 16)]
    pub batch: usize,
    /// Micro-batches whose gradients are summed into one optimizer step (gradient
    /// accumulation): a step sees `batch * accumulate` sequences with the memory of `batch`.
    #[config(default = 1)]
    pub accumulate: usize,
    /// Peak learning rate (AdamW).
    #[config(default = 1e-3)]
    pub lr: f64,
    /// Linear warm-up steps.
    #[config(default = 100)]
    pub warmup: usize,
    /// Final learning rate as a fraction of the peak (cosine floor).
    #[config(default = 0.05)]
    pub min_lr_ratio: f64,
    /// AdamW betas, epsilon and decoupled weight decay.
    #[config(default = 0.9)]
    pub beta1: f32,
    #[config(default = 0.95)]
    pub beta2: f32,
    #[config(default = 1e-8)]
    pub epsilon: f32,
    #[config(default = 0.01)]
    pub weight_decay: f32,
    /// Gradient clipping: maximum L2 norm of each parameter's gradient.
    #[config(default = 1.0)]
    pub grad_clip: f32,
    /// Validate (and log) every this many steps.
    #[config(default = 200)]
    pub val_every: usize,
    /// Held-out items per validation.
    #[config(default = 64)]
    pub val_items: usize,
    /// Checkpoint every this many steps (and at the end, and on cancel).
    #[config(default = 250)]
    pub checkpoint_every: usize,
    /// Checkpoints kept.
    #[config(default = 3)]
    pub keep_checkpoints: usize,
    /// Seed of initialisation, batch order and dropout.
    #[config(default = 0)]
    pub seed: u64,
    /// The token cache folder trained on (for `--resume` and generation defaults).
    #[config(default = "String::new()")]
    pub cache: String,
    /// Loss weight of the tokens that change from one latent frame to the next (where a shape
    /// moves), against 1 for the rest ([`crate::generator::loss::change_weights`]); 1 is the
    /// plain per-layer mean.
    #[config(default = 1.0)]
    pub change_weight: f32,
}

impl GeneratorTrainConfig {
    /// Checks every setting with the field's name (see [`super::tokenizer::TokenizerTrainConfig::validate`]).
    pub fn validate(&self) -> Result<(), TrainError> {
        super::tokenizer::check_common(
            self.steps,
            self.batch,
            self.lr,
            self.warmup,
            self.min_lr_ratio,
            [("val_every", self.val_every), ("checkpoint_every", self.checkpoint_every), ("keep_checkpoints", self.keep_checkpoints)],
        )?;
        super::tokenizer::check_accumulate(self.batch, self.accumulate)?;
        if self.val_items == 0 || self.val_items > 1_000_000 {
            return Err(TrainError::Invalid(format!("field `val_items` is {}; it must be 1..=1000000", self.val_items)));
        }
        for (name, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(TrainError::Invalid(format!("field `{name}` is {b}; it must be in [0, 1)")));
            }
        }
        super::tokenizer::check_weights(&[
            ("change_weight", f64::from(self.change_weight)),
            ("weight_decay", f64::from(self.weight_decay)),
            ("grad_clip", f64::from(self.grad_clip)),
            ("epsilon", f64::from(self.epsilon)),
        ])
    }

    /// Reads a run's `train.json`, giving fields added since it was written their defaults.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let mut value: serde_json::Value = serde_json::from_slice(bytes)?;
        if let Some(map) = value.as_object_mut() {
            map.entry("change_weight").or_insert(json!(1.0));
            map.entry("accumulate").or_insert(json!(1));
        }
        serde_json::from_value(value)
    }
}

/// Progress reported to the caller (CLI progress bar, studio events); `Preparing` counts the
/// captions whose frozen text features are ready before the first step.
pub type GeneratorTrainEvent = RunEvent<GeneratorStep, GeneratorValidation>;

/// The generator's training state: model, optimizer, step and the prompt-feature source.
pub struct GeneratorTrainer {
    pub cfg: GeneratorConfig,
    pub train: GeneratorTrainConfig,
    pub model: Generator,
    opt: ModuleOptimizer,
    pub step: usize,
    text: TextSource,
    device: Device,
    /// Every training device, the main one (`device`) first (see [`super::parallel`]).
    devices: Vec<Device>,
    /// The cores' shares of the replicas of a data-parallel run on the CPU.
    cores: Option<CoreShares>,
    /// Compute precision of this process's steps (a run setting, not saved: checkpoints are
    /// fp32 whatever it is).
    precision: Precision,
    /// The f16 loss scale.
    scaler: LossScaler,
}

fn optimizer(t: &GeneratorTrainConfig) -> ModuleOptimizer {
    AdamWConfig::new()
        .with_beta_1(t.beta1)
        .with_beta_2(t.beta2)
        .with_epsilon(t.epsilon)
        .with_weight_decay(t.weight_decay)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(t.grad_clip)))
        .init()
}

impl GeneratorTrainer {
    /// Parameters of the generator.
    pub fn num_params(&self) -> usize {
        burn::module::Module::num_params(&self.model)
    }

    /// A fresh run on `device` (autodiff is switched on here). `minilm` is required when the
    /// generator is conditioned on MiniLM features.
    pub fn new(cfg: GeneratorConfig, train: GeneratorTrainConfig, minilm: Option<MiniLm>, device: &Device) -> Result<Self, TrainError> {
        cfg.validate().map_err(|e| TrainError::Invalid(e.to_string()))?;
        train.validate()?;
        let text = TextSource::for_config(&cfg, minilm).map_err(|e| TrainError::Invalid(e.to_string()))?;
        let device = device.clone().autodiff();
        device.seed(train.seed);
        let model = cfg.init(&device);
        super::parallel::initialize(&model);
        let scaler = LossScaler::new(Precision::F32);
        Ok(Self {
            opt: optimizer(&train),
            cfg,
            train,
            model,
            step: 0,
            text,
            devices: vec![device.clone()],
            cores: None,
            precision: Precision::F32,
            scaler,
            device,
        })
    }

    /// Continues the run saved at `path` (run or step folder) with its own configs; `steps`
    /// may extend the run.
    pub fn resume(path: &Path, steps: Option<usize>, minilm: Option<MiniLm>, device: &Device) -> Result<Self, TrainError> {
        let dir = checkpoint::resolve(path)?;
        let state = checkpoint::read_state(&dir, KIND, None)?;
        let cfg = read_config(&dir, &state)?;
        let mut train: GeneratorTrainConfig =
            GeneratorTrainConfig::from_json(&checkpoint::read_file(&dir, "train.json")?).map_err(|e| damaged(&dir, "train.json", e))?;
        train.validate().map_err(|e| damaged(&dir, "train.json", e))?;
        if let Some(s) = steps {
            train.steps = s;
        }
        let mut t = Self::new(cfg, train, minilm, device)?;
        t.model = load_module(t.model, &dir, "model.bpk")?;
        let bytes = checkpoint::read_file(&dir, "optim.bpk")?;
        t.opt = optimizer(&t.train).from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| damaged(&dir, "optim.bpk", e))?;
        t.step = state.step;
        Ok(t)
    }

    /// Saves model, optimizer, both configs and the step.
    pub fn save(&self, run_dir: &Path, metrics: serde_json::Value) -> Result<PathBuf, CheckpointError> {
        checkpoint::check_finite(&self.model, run_dir)?;
        let bytes = |r: Result<Bytes, burn::store::RecordError>, name: &str| r.map(|b| b.to_vec()).map_err(|e| damaged(run_dir, name, e));
        let json = |v: serde_json::Result<Vec<u8>>, name: &str| v.map_err(|e| damaged(run_dir, name, e));
        let cfg_json = json(serde_json::to_vec_pretty(&self.cfg), "config.json")?;
        let files = vec![
            ("model.bpk", bytes(self.model.clone().into_record().into_bytes(), "model.bpk")?),
            ("optim.bpk", bytes(self.opt.into_bytes(), "optim.bpk")?),
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
    pub fn set_devices(&mut self, others: &[Device]) -> Result<(), TrainError> {
        ShardPlan::new(self.train.batch, self.train.accumulate, others.len() + 1)?;
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
        (self.precision, self.scaler) = (precision, LossScaler::new(precision));
        Ok(())
    }

    /// The devices this run trains on, the main one first.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// One optimizer step on `batch * accumulate` items drawn from `items` of `cache` (seeded
    /// by the run's seed and the step, so a resumed run sees the same batches); returns the
    /// logged scalars.
    ///
    /// The items are cut into `devices x accumulate` micro-batches ([`ShardPlan`]), each run
    /// forward and backward with its loss divided by their number, and the summed gradients
    /// make one step on the main device: the same update as one batch (exactly, up to
    /// rounding, when `change_weight` is 1; with another weight each micro-batch normalizes
    /// its own weights).
    pub fn train_step(&mut self, cache: &TokenCache, items: &[usize]) -> Result<GeneratorStep, TrainError> {
        let t = &self.train;
        let shards = ShardPlan::new(t.batch, t.accumulate, self.devices.len())?;
        let mut rng = ChaCha8Rng::seed_from_u64(item_seed(t.seed ^ 0x6c6d_7472, self.step));
        let rows: Vec<usize> = (0..t.batch * shards.accumulate).map(|_| items[rng.random_range(0..items.len().max(1))]).collect();
        let targets = layer_ids(cache, &self.cfg, &rows);
        let inputs = token_dropout(&targets, &self.cfg, self.cfg.token_dropout, &mut rng);
        let uncond: Vec<bool> = rows.iter().map(|_| rng.random_bool(self.cfg.cond_dropout)).collect();
        let lr = lr_at(self.step, t.steps, t.lr, t.warmup, t.min_lr_ratio);
        let (cfg, change_weight, micro, scale) = (&self.cfg, t.change_weight, shards.micro, shards.scale());
        let (prec, loss_scale) = (self.precision, self.scaler.scale);
        let single = shards.devices == 1;
        // The frozen encoder's features are read here (its cache is the trainer's); the
        // embedded encoder runs inside each replica's forward pass.
        let mut texts: Vec<Option<TextInput>> = Vec::with_capacity(shards.parts());
        for i in 0..shards.parts() {
            let range = i * micro..(i + 1) * micro;
            texts.push(if self.text.is_embedded() {
                None
            } else {
                let captions: Vec<&str> = rows[range.clone()].iter().map(|&r| cache.header.items[r].caption.as_str()).collect();
                let device = &self.devices[i % shards.devices];
                Some(self.text.input(&self.model, cfg, &captions, uncond[range].to_vec(), device).map_err(|e| TrainError::Invalid(e.to_string()))?)
            });
        }
        let mut texts: Vec<Option<Option<TextInput>>> = texts.into_iter().map(Some).collect();
        let jobs: Vec<_> = self
            .devices
            .iter()
            .enumerate()
            .map(|(d, device)| {
                let model = if single { self.model.clone() } else { super::parallel::replica(self.model.clone(), device) };
                let work: Vec<(usize, Option<TextInput>)> = shards.shards_of(d).map(|i| (i, texts[i].take().flatten())).collect();
                let (rows, inputs, targets, uncond) = (&rows, &inputs, &targets, &uncond);
                move || -> Result<(f32, Vec<f32>, GradientsParams), TrainError> {
                    let master = &model;
                    let model = precision::compute_copy(master, prec);
                    let mut accumulator = GradientsAccumulator::<Generator>::new();
                    let (mut loss, mut per_layer) = (0f32, vec![0f32; cfg.layers.len()]);
                    for (i, text) in work {
                        let range = i * micro..(i + 1) * micro;
                        let text = match text {
                            Some(text) => text,
                            None => {
                                let captions: Vec<&str> = rows[range.clone()].iter().map(|&r| cache.header.items[r].caption.as_str()).collect();
                                embedded_input(&model, cfg, &captions, uncond[range.clone()].to_vec()).map_err(|e| TrainError::Invalid(e.to_string()))?
                            }
                        };
                        let input_ids = to_tensors(&rows_of(inputs, cfg, range.clone()), cfg, micro, device);
                        let target_ids = to_tensors(&rows_of(targets, cfg, range), cfg, micro, device);
                        let h = model.forward_train(cfg, &text, &input_ids);
                        let losses = layer_losses(&model, cfg, h, &target_ids, change_weight);
                        let total = precision::to_f32(losses.total, prec);
                        loss += total.clone().into_scalar::<f32>() * scale;
                        for (sum, l) in per_layer.iter_mut().zip(losses.per_layer) {
                            *sum += precision::to_f32(l, prec).into_scalar::<f32>() * scale;
                        }
                        let factor = scale * loss_scale;
                        let total = if factor == 1.0 { total } else { total.mul_scalar(factor) };
                        accumulator.accumulate(master, GradientsParams::from_grads(total.backward(), master));
                    }
                    Ok((loss, per_layer, accumulator.grads()))
                }
            })
            .collect();
        let mut accumulator = GradientsAccumulator::<Generator>::new();
        let (mut loss_value, mut per_layer) = (0f32, vec![0f32; self.cfg.layers.len()]);
        for out in per_device(jobs, self.cores.as_ref()) {
            let (loss, layers, grads) = out?;
            loss_value += loss;
            per_layer.iter_mut().zip(layers).for_each(|(a, b)| *a += b);
            accumulator.accumulate(&self.model, if single { grads } else { grads.to_device(&self.device, &self.model) });
        }
        let grads = accumulator.grads();
        let (grads, finite) = if self.scaler.active() { self.scaler.unscale(grads, &self.model) } else { (grads, true) };
        if self.scaler.active() {
            self.scaler.update(finite);
        }
        if loss_value.is_finite() && finite {
            self.model = self.opt.step(lr, self.model.clone(), grads);
        }
        self.step += 1;
        Ok(GeneratorStep { step: self.step, lr, loss: loss_value, ce_by_layer: per_layer })
    }

    /// Teacher-forced validation on up to `val_items` held-out items (no dropout): mean
    /// cross-entropy and next-token accuracy per layer.
    pub fn validate(&mut self, cache: &TokenCache) -> Result<GeneratorValidation, TrainError> {
        let model = self.model.valid();
        let device = model.devices().first().cloned().unwrap_or_else(Device::flex);
        let items: Vec<usize> = cache.validation_items().into_iter().take(self.train.val_items.max(1)).collect();
        let layers = self.cfg.layers.len();
        let (mut ce, mut acc, mut n) = (vec![0f64; layers], vec![0f64; layers], 0usize);
        for chunk in items.chunks(self.train.batch.max(1)) {
            let captions: Vec<&str> = chunk.iter().map(|&r| cache.header.items[r].caption.as_str()).collect();
            let text = self.text.input(&model, &self.cfg, &captions, vec![false; chunk.len()], &device).map_err(|e| TrainError::Invalid(e.to_string()))?;
            let ids = to_tensors(&layer_ids(cache, &self.cfg, chunk), &self.cfg, chunk.len(), &device);
            let h = model.forward_train(&self.cfg, &text, &ids);
            let losses = layer_losses(&model, &self.cfg, h.clone(), &ids, 1.0);
            let correct = crate::generator::loss::accuracy(&model, &self.cfg, h, &ids);
            for j in 0..layers {
                ce[j] += f64::from(losses.per_layer[j].clone().into_scalar::<f32>()) * chunk.len() as f64;
                acc[j] += correct[j] * chunk.len() as f64;
            }
            n += chunk.len();
        }
        let n = n.max(1) as f64;
        let ce: Vec<f64> = ce.iter().map(|v| v / n).collect();
        let acc: Vec<f64> = acc.iter().map(|v| v / n).collect();
        let w: Vec<f64> = (0..layers).map(|j| f64::from(self.cfg.loss_weight(j))).collect();
        let loss = ce.iter().zip(&w).map(|(c, w)| c * w).sum::<f64>() / w.iter().sum::<f64>().max(1e-9);
        Ok(GeneratorValidation { items: items.len(), loss, ce_by_layer: ce, accuracy_by_layer: acc })
    }
}

impl Trainable for GeneratorTrainer {
    type Data = TokenCache;
    /// The cache's training items (the step draws its rows from them).
    type Batch = Arc<[usize]>;
    type Step = GeneratorStep;
    type Validation = GeneratorValidation;

    fn progress(&self) -> Progress {
        let t = &self.train;
        Progress { done: self.step, total: t.steps, val_every: t.val_every, checkpoint_every: t.checkpoint_every }
    }
    fn run_step(&mut self, cache: &TokenCache, items: Arc<[usize]>) -> Result<GeneratorStep, TrainError> {
        self.train_step(cache, &items)
    }
    fn run_validation(&mut self, cache: &TokenCache) -> Result<GeneratorValidation, TrainError> {
        self.validate(cache)
    }
    fn save_checkpoint(&self, run_dir: &Path, metrics: serde_json::Value) -> Result<PathBuf, CheckpointError> {
        self.save(run_dir, metrics)
    }
}

/// Runs (or continues) training to `trainer.train.steps` on the `train` items of `cache` on
/// [`run_loop`], writing checkpoints and `metrics.jsonl` into `run_dir`. Stops early, with a
/// checkpoint, when `cancel` is set. Returns the last validation.
pub fn run(
    trainer: &mut GeneratorTrainer,
    cache: &TokenCache,
    run_dir: &Path,
    cancel: Arc<AtomicBool>,
    on_event: &mut dyn FnMut(GeneratorTrainEvent),
) -> Result<Option<GeneratorValidation>, TrainError> {
    if cache.header.layers != trainer.cfg.layers {
        return Err(TrainError::Invalid("the token cache's layers differ from the generator's; build the cache with the generator's tokenizer".into()));
    }
    let train_items: Arc<[usize]> = cache.split("train").into();
    if train_items.is_empty() || cache.validation_items().is_empty() {
        return Err(TrainError::Invalid("the token cache has no training or no held-out items; build it from more clips".into()));
    }
    // A frozen text encoder's features of every caption, computed once in large batches (a
    // few new captions at every step cost several times a training step).
    let captions: Vec<&str> = cache.header.items.iter().map(|it| it.caption.as_str()).collect();
    if !trainer.cfg.text.is_small() {
        for (i, chunk) in captions.chunks(256).enumerate() {
            if cancel.load(Ordering::Relaxed) {
                break;
            }
            trainer.text.prefill(chunk, trainer.cfg.text.max_len, 64).map_err(|e| TrainError::Invalid(e.to_string()))?;
            on_event(RunEvent::Preparing { done: (256 * (i + 1)).min(captions.len()), total: captions.len() });
        }
    }
    run_loop(trainer, cache, run_dir, &cancel, |_| Ok(train_items.clone()), on_event)
}

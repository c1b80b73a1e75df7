//! One micro-batch of a tokenizer training step: the forward pass, the losses, the
//! discriminator's update or gradients, and the tokenizer's gradients. `TokenizerTrainer::
//! train_step` (`tokenizer.rs`) runs it once per micro-batch, on one device or several.

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::precision::{self, Precision};
use super::sync::AllReduce;
use super::tokenizer::TokenizerTrainConfig;
use super::tokenizer_sync::{self, BitStatistics};
use crate::tokenizer::disc::Discriminator;
use crate::tokenizer::dynamic::{FillStrategy, MaskConfig, decode_masked_batch, masked_fraction};
use crate::tokenizer::lfq;
use crate::tokenizer::{Encoded, Tokenizer};

/// What one step draws once for all its micro-batches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepPlan {
    /// Layers trained (the progressive schedule).
    pub active: usize,
    /// Coarsest layers decoded for the main reconstruction.
    pub k: usize,
    /// The masked-decoding fill of a masked step.
    pub fill: Option<FillStrategy>,
    /// Coarsest layers of the auxiliary partial decode.
    pub aux_k: Option<usize>,
    /// Whether the discriminator and the adversarial term are on.
    pub adversarial: bool,
    /// Seed of the redundancy masks.
    pub mask_seed: u64,
}

/// How a micro-batch treats the discriminator's gradients.
pub(crate) enum DiscUpdate<'a> {
    /// Step the discriminator at once (a step of one micro-batch: the adversarial term is then
    /// scored by the updated discriminator).
    Now(&'a mut ModuleOptimizer),
    /// Return its gradients, scaled like the losses, for one update after the last micro-batch.
    Accumulate,
}

/// The logged scalars of a step, summed over its micro-batches (each already scaled).
#[derive(Debug, Default, Clone)]
pub(crate) struct StepSums {
    pub loss: f32,
    pub l1: f32,
    pub commitment: f32,
    pub entropy: f32,
    pub d_loss: Option<f32>,
    pub l1_partial: Option<f32>,
    pub mask_ratio: Option<f64>,
}

impl StepSums {
    /// Adds another micro-batch's (already scaled) scalars.
    pub fn merge(&mut self, o: &StepSums) {
        self.loss += o.loss;
        self.l1 += o.l1;
        self.commitment += o.commitment;
        self.entropy += o.entropy;
        let add = |a: Option<f32>, b: Option<f32>| match (a, b) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.d_loss = add(self.d_loss, o.d_loss);
        self.l1_partial = add(self.l1_partial, o.l1_partial);
        self.mask_ratio = match (self.mask_ratio, o.mask_ratio) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
    }
}

/// One micro-batch's results: scalars scaled by `scale`, and gradients of the scaled losses.
pub(crate) struct Shard {
    pub sums: StepSums,
    pub grads: GradientsParams,
    /// The discriminator's gradients ([`DiscUpdate::Accumulate`] on adversarial steps).
    pub grads_d: Option<GradientsParams>,
    /// The whole batch's bit-norm statistics of a replica's micro-batch (with `sync`), for the
    /// model's own thread to move the running statistics with; empty otherwise (the step moved
    /// them itself).
    pub bit_stats: Vec<BitStatistics>,
}

/// The models one micro-batch runs on: the fp32 master weights (gradients are read from them)
/// and the compute copy (the master itself in fp32, see [`precision::compute_copy`]).
pub(crate) struct Models<'a> {
    pub master: &'a Tokenizer,
    pub compute: &'a Tokenizer,
    pub precision: Precision,
    /// The f16 loss scale (1 otherwise).
    pub loss_scale: f32,
}

/// Runs micro-batch `x` (`[b, 3, T, H, W]` in `[-1, 1]`, on the model's device) through the
/// tokenizer and `disc`; every loss is multiplied by `scale` (1 / micro-batches per step) before
/// its backward pass, so that summed gradients are the whole batch's mean. `disc` holds master
/// weights too; it computes in the same precision. `sync`: the exchange with the other
/// data-parallel replicas running their parts of the batch at once, whose batch statistics
/// are then the whole batch's (see `tokenizer_sync.rs`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn shard(
    models: Models<'_>,
    disc: &mut Discriminator,
    x: Tensor<5>,
    t: &TokenizerTrainConfig,
    plan: &StepPlan,
    scale: f32,
    update: DiscUpdate<'_>,
    sync: Option<&AllReduce>,
) -> Shard {
    let device = x.device();
    let prec = models.precision;
    let model = models.compute;
    let x = precision::to_compute(x, prec);
    let mut grads_d = None;
    let mut cuts = None;
    // A frozen encoder runs without autodiff: a graph that no backward pass consumes would
    // be kept alive step after step (20 MB a step at batch 8). It also keeps its bit norms'
    // running statistics, so its ids stay the same.
    let (enc, entropy_terms) = if t.freeze_encoder {
        let frozen = model.valid();
        let logits = frozen.logits_of_latents(frozen.latents(x.clone().inner()), false);
        (Encoded { layers: logits.into_iter().map(|z| lfq::quantize(z.autodiff(), t.entropy_tau)).collect() }, None)
    } else if let Some(sync) = sync.filter(|_| !t.entropy_detach) {
        let (enc, c) = tokenizer_sync::encode(model, x.clone(), t.entropy_tau, sync);
        cuts = Some((c, sync));
        (enc, None)
    } else {
        let latents = model.latents(x.clone());
        // The entropy penalty trains only the quantizers' projections when `entropy_detach`
        // is on: it sees the latents without their gradient path into the encoder.
        let entropy_terms = t.entropy_detach.then(|| {
            let detached: Vec<Tensor<5>> = latents.iter().map(|l| l.clone().detach()).collect();
            model.logits_of_latents(detached, true).into_iter().map(|z| lfq::quantize(z, t.entropy_tau)).collect::<Vec<_>>()
        });
        (Encoded { layers: model.logits_of_latents(latents, true).into_iter().map(|z| lfq::quantize(z, t.entropy_tau)).collect() }, entropy_terms)
    };
    let all_codes: Vec<Tensor<5>> =
        enc.layers[..plan.active].iter().map(|o| if t.freeze_encoder { o.codes.clone().detach() } else { o.codes.clone() }).collect();
    let codes = all_codes[..plan.k].to_vec();
    let mut mask_ratio = None;
    let recon = match plan.fill {
        Some(fill) => {
            let indices: Vec<Tensor<4, Int>> = enc.layers[..plan.k].iter().map(|o| o.indices.clone()).collect();
            let mcfg = MaskConfig::new().with_cap(t.mask_cap).with_tolerance(t.mask_tolerance).with_seed(plan.mask_seed);
            match decode_masked_batch(model, &codes, &indices, &mcfg, fill) {
                Ok((video, masks)) => {
                    mask_ratio = Some(masked_fraction(&masks));
                    video
                }
                // Unreachable: the ids come from this model's own quantizers.
                Err(_) => model.decode(&codes),
            }
        }
        None => model.decode(&codes),
    };
    let l1 = (recon.clone() - x.clone()).abs().mean();
    let zero = precision::to_compute(Tensor::<1>::zeros([1], &device), prec);
    let (mut commit, mut entropy) = (zero.clone(), zero);
    for (j, o) in enc.layers[..plan.active].iter().enumerate() {
        commit = commit + o.commitment.clone();
        let e = entropy_terms.as_ref().and_then(|v| v.get(j)).unwrap_or(o);
        entropy = entropy + e.sample_entropy.clone() - e.codebook_entropy.clone();
    }
    let mut loss = l1.clone();
    if t.l2_weight > 0.0 {
        let err = recon.clone() - x.clone();
        loss = loss + (err.clone() * err).mean().mul_scalar(t.l2_weight);
    }
    if t.edge_weight > 0.0 {
        loss = loss + edge_loss(recon.clone() - x.clone()).mul_scalar(t.edge_weight);
    }
    let mut l1_partial = None;
    if let Some(j) = plan.aux_k {
        let err = model.decode(&all_codes[..j]) - x.clone();
        let partial = err.clone().abs().mean();
        l1_partial = Some(precision::to_f32(partial.clone(), prec).into_scalar::<f32>());
        loss = loss + partial.mul_scalar(t.partial_loss_weight);
        if t.partial_l2_weight > 0.0 {
            loss = loss + (err.clone() * err).mean().mul_scalar(t.partial_l2_weight);
        }
    }
    if !t.freeze_encoder {
        loss = loss + commit.clone().mul_scalar(t.commitment_weight) + entropy.clone().mul_scalar(t.entropy_weight);
    }
    let mut d_loss = None;
    if plan.adversarial {
        let d = precision::compute_copy(&*disc, prec);
        let real = d.forward(x.clone());
        let fake = d.forward(recon.clone().detach());
        let ld = precision::to_f32(relu(real.neg().add_scalar(1.0)).mean() + relu(fake.add_scalar(1.0)).mean(), prec);
        d_loss = Some(ld.clone().into_scalar::<f32>());
        match update {
            DiscUpdate::Now(opt) => {
                let grads = GradientsParams::from_grads(ld.backward(), &*disc);
                *disc = opt.step(t.disc_lr, disc.clone(), grads);
            }
            DiscUpdate::Accumulate => grads_d = Some(GradientsParams::from_grads(ld.mul_scalar(scale).backward(), &*disc)),
        }
        let g_adv = precision::compute_copy(&*disc, prec).no_grad().forward(recon).mean().neg();
        loss = loss + g_adv.mul_scalar(t.adversarial_weight);
    }
    let loss = precision::to_f32(loss, prec);
    let scaled = |v: f32| v * scale;
    let read = |v: Tensor<1>| precision::to_f32(v, prec).into_scalar::<f32>();
    let sums = StepSums {
        loss: scaled(loss.clone().into_scalar::<f32>()),
        l1: scaled(read(l1)),
        commitment: scaled(read(commit)),
        entropy: scaled(read(entropy)),
        d_loss: d_loss.map(scaled),
        l1_partial: l1_partial.map(scaled),
        mask_ratio: mask_ratio.map(|m| m * f64::from(scale)),
    };
    let factor = scale * models.loss_scale;
    let loss = if factor == 1.0 { loss } else { loss.mul_scalar(factor) };
    let (grads, bit_stats) = match cuts {
        Some((c, sync)) => {
            let stats = c.statistics();
            (c.backward(loss, models.master, sync), stats)
        }
        None => (GradientsParams::from_grads(loss.backward(), models.master), Vec::new()),
    };
    Shard { sums, grads, grads_d, bit_stats }
}

/// The gradient-difference loss of a reconstruction error `err` `[B, C, T, H, W]`: the mean
/// absolute difference of neighbouring errors along the width plus that along the height, i.e.
/// L1 between the spatial finite differences of the reconstruction and of the clip. Returns `[1]`.
pub fn edge_loss(err: Tensor<5>) -> Tensor<1> {
    let [b, c, t, h, w] = err.dims();
    let dx = err.clone().slice([0..b, 0..c, 0..t, 0..h, 1..w]) - err.clone().slice([0..b, 0..c, 0..t, 0..h, 0..w - 1]);
    let dy = err.clone().slice([0..b, 0..c, 0..t, 1..h, 0..w]) - err.slice([0..b, 0..c, 0..t, 0..h - 1, 0..w]);
    dx.abs().mean() + dy.abs().mean()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_edge_loss_sees_edges_not_offsets() {
        let device = Device::flex();
        let read = |t: Tensor<1>| t.into_scalar::<f32>();
        // A constant error (a brightness offset) has no edges.
        assert_eq!(read(edge_loss(Tensor::<5>::ones([1, 3, 2, 4, 4], &device).mul_scalar(0.5))), 0.0);
        // One wrong pixel: along each axis it makes two differences of 1 out of C*T*H*(W-1).
        let mut v = vec![0.0f32; 4 * 4];
        v[5] = 1.0;
        let one = Tensor::<5>::from_data(TensorData::new(v, [1, 1, 1, 4, 4]), &device);
        let got = read(edge_loss(one));
        assert!((got - (2.0 / 12.0 + 2.0 / 12.0)).abs() < 1e-6, "{got}");
    }
}

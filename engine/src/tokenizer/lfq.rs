//! Lookup-free quantization (MAGVIT-v2, Yu et al. 2023): each latent channel is quantized to
//! its sign, so a position with `D` channels holds one of `2^D` codes and its token id is the
//! binary number of its bits. Gradients pass straight through.
//!
//! The entropy penalty: with `q(c | z) ∝ exp(-|z - c|² / τ)` over `c ∈ {-1, 1}^D`, the
//! distribution factorizes into independent bits with `p(bit_i = 1) = sigmoid(4 z_i / τ)`, so
//! the per-sample entropy is exactly the sum of the bits' entropies. The codebook entropy (of
//! the batch-average distribution) does not factorize: summing per-bit marginal entropies is an
//! upper bound that a degenerate code with all bits equal maximizes while using 2 codes. It is
//! therefore computed exactly within groups of at most [`GROUP_BITS`] bits (18 bits = 2 x 9) and
//! summed over groups, so memory grows with `positions x 2^GROUP_BITS`, not `2^D`.

use burn::module::RunningState;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

/// Largest group of bits whose joint code distribution is computed exactly.
pub const GROUP_BITS: usize = 9;

/// What quantizing one layer gives.
#[derive(Debug, Clone)]
pub struct LfqOutput {
    /// Quantized codes with straight-through gradients, `[B, D, t, h, w]`, values ±1.
    pub codes: Tensor<5>,
    /// Token ids, `[B, t, h, w]`, in `0 .. 2^D`.
    pub indices: Tensor<4, Int>,
    /// Commitment loss `mean((z - sg(q))²)`, `[1]`.
    pub commitment: Tensor<1>,
    /// Mean per-position entropy of the code distribution (nats), `[1]`: minimized.
    pub sample_entropy: Tensor<1>,
    /// Entropy of the batch-average code distribution (nats, per-bit form), `[1]`: maximized.
    pub codebook_entropy: Tensor<1>,
}

fn binary_entropy(p: Tensor<5>) -> Tensor<5> {
    let eps = 1e-6;
    let q = p.clone().neg().add_scalar(1.0);
    (p.clone() * p.clamp(eps, 1.0).log() + q.clone() * q.clamp(eps, 1.0).log()).neg()
}

/// Quantizes `z` (`[B, D, t, h, w]`) with entropy temperature `tau`.
pub fn quantize(z: Tensor<5>, tau: f32) -> LfqOutput {
    let (mut out, logits) = quantize_bits(z, tau);
    out.codebook_entropy = grouped_codebook_entropy(logits);
    out
}

/// [`quantize`] for one part of a batch whose other parts are elsewhere (data-parallel
/// replicas): its `codebook_entropy`, a term of the whole batch, is left at zero, and this
/// part's sums for it come beside; [`CodebookSums::entropy`] computes it.
pub fn quantize_part(z: Tensor<5>, tau: f32) -> (LfqOutput, CodebookSums) {
    let (out, logits) = quantize_bits(z, tau);
    let [b, _, t, h, w] = logits.dims();
    let groups = group_log_q(logits).into_iter().map(|log_q| log_q.exp().sum_dim(0).reshape([-1])).collect();
    (out, CodebookSums { groups, positions: b * t * h * w })
}

/// The codes, ids, commitment and per-position entropy of `z` (codebook entropy zero), and
/// the entropy logits `4 z / τ`.
fn quantize_bits(z: Tensor<5>, tau: f32) -> (LfqOutput, Tensor<5>) {
    let [b, d, t, h, w] = z.dims();
    let device = z.device();
    let positive = z.clone().greater_elem(0.0);
    let q = positive.clone().float().mul_scalar(2.0).sub_scalar(1.0);
    let codes = z.clone() + (q.clone() - z.clone()).detach();
    let weights: Vec<i64> = (0..d).map(|i| 1i64 << i).collect();
    let weights = Tensor::<1, Int>::from_data(TensorData::new(weights, [d]), &device).reshape([1, d, 1, 1, 1]);
    let indices = (positive.int() * weights).sum_dim(1).reshape([b, t, h, w]);
    let commitment = (z.clone() - q.detach()).powf_scalar(2.0).mean();
    let logits = z.mul_scalar(4.0 / tau);
    let sample_entropy = binary_entropy(sigmoid(logits.clone())).sum_dim(1).mean();
    let codebook_entropy = Tensor::<1>::zeros([1], &device);
    (LfqOutput { codes, indices, commitment, sample_entropy, codebook_entropy }, logits)
}

/// One part's sums of the code distribution `q(code | position)` over its positions, per group
/// of at most [`GROUP_BITS`] bits (`[2^g]` each, with their gradient path), and its positions.
#[derive(Debug, Clone)]
pub struct CodebookSums {
    groups: Vec<Tensor<1>>,
    positions: usize,
}

impl CodebookSums {
    /// This part's positions.
    pub fn positions(&self) -> usize {
        self.positions
    }

    /// This part's sums, every group in turn (`[Σ 2^g]`), without their gradient path: what
    /// the other parts add to theirs.
    pub fn values(&self) -> Tensor<1> {
        Tensor::cat(self.groups.iter().map(|g| g.clone().detach()).collect(), 0)
    }

    /// The codebook entropy (nats, `[1]`) of the whole batch: this part's sums plus `others`
    /// (the other parts' [`Self::values`] summed, constants here) over `positions` in all. Its
    /// gradient reaches this part's positions exactly, so the parts' gradients add up to the
    /// whole batch's.
    pub fn entropy(self, others: Tensor<1>, positions: usize) -> Tensor<1> {
        let device = others.device();
        let mut total = Tensor::<1>::zeros([1], &device);
        let mut start = 0;
        for g in self.groups {
            let [n] = g.dims();
            total = total + distribution_entropy((g + others.clone().narrow(0, start, n)).div_scalar(positions as f32));
            start += n;
        }
        total
    }
}

/// Entropy (nats) of the batch-average code distribution, exact within groups of at most
/// [`GROUP_BITS`] bits and summed over groups. `logits` `[B, D, t, h, w]` are `4 z / τ`.
fn grouped_codebook_entropy(logits: Tensor<5>) -> Tensor<1> {
    let device = logits.device();
    let mut total = Tensor::<1>::zeros([1], &device);
    for log_q in group_log_q(logits) {
        // The batch average of q.
        total = total + distribution_entropy(log_q.exp().mean_dim(0));
    }
    total
}

/// Entropy (nats, `[1]`) of a code distribution `avg` (any shape, summing to 1).
fn distribution_entropy<const D: usize>(avg: Tensor<D>) -> Tensor<1> {
    (avg.clone() * avg.clamp(1e-12, 1.0).log()).sum().neg()
}

/// `[B, D, t, h, w]` -> `[D, B t h w]`: each bit's values over the batch's positions.
pub fn per_bit(z: Tensor<5>) -> Tensor<2> {
    let [_, d, ..] = z.dims();
    z.swap_dims(0, 1).reshape([d as i32, -1])
}

/// `log q(code | position)` within each group of at most [`GROUP_BITS`] bits, `[N, 2^g]` each
/// (`N = B t h w` positions), from `logits` `[B, D, t, h, w]` (`4 z / τ`).
fn group_log_q(logits: Tensor<5>) -> Vec<Tensor<2>> {
    let [b, d, t, h, w] = logits.dims();
    let device = logits.device();
    let n = b * t * h * w;
    // [N, D] log-probabilities of each bit being 1 and 0.
    let x = logits.swap_dims(0, 1).reshape([d, n]).swap_dims(0, 1);
    let log_p1 = burn::tensor::activation::log_sigmoid(x.clone());
    let log_p0 = burn::tensor::activation::log_sigmoid(x.neg());
    let mut out = Vec::new();
    let mut start = 0;
    while start < d {
        let g = GROUP_BITS.min(d - start);
        let codes = 1usize << g;
        // [g, 2^g]: bit i of code c.
        let bits: Vec<f32> = (0..g).flat_map(|i| (0..codes).map(move |c| ((c >> i) & 1) as f32)).collect();
        let on = Tensor::<2>::from_data(TensorData::new(bits, [g, codes]), &device);
        let off = on.clone().neg().add_scalar(1.0);
        let lp1 = log_p1.clone().slice([0..n, start..start + g]);
        let lp0 = log_p0.clone().slice([0..n, start..start + g]);
        out.push(lp1.matmul(on) + lp0.matmul(off));
        start += g;
    }
    out
}

/// Per-bit normalization before the sign (as binary networks put a batch norm before their
/// sign activations), without a learned shift or scale: while training each bit's value is
/// centred and scaled by its batch statistics, at inference by their running averages. A bit's
/// threshold thus sits inside the data, where the straight-through gradient can move examples
/// across it; without it, the encoder pushes most bits to one sign for every input (dead bits,
/// values growing without bound) and the decoder learns to ignore the codes.
#[derive(Module, Debug)]
pub struct BitNorm {
    mean: RunningState<Tensor<1>>,
    var: RunningState<Tensor<1>>,
}

impl BitNorm {
    /// Running statistics start at mean 0, variance 1 (the identity).
    pub fn new(bits: usize, device: &Device) -> Self {
        Self { mean: RunningState::new(Tensor::zeros([bits], device)), var: RunningState::new(Tensor::ones([bits], device)) }
    }

    /// `[B, D, t, h, w]` -> the same, each of the `D` bits normalized: by the batch's statistics
    /// when `train` (which also moves the running ones, momentum 0.1), else by the running ones
    /// (every encode outside a training step, so inference never depends on the batch).
    pub fn forward(&self, z: Tensor<5>, train: bool) -> Tensor<5> {
        let [_, d, ..] = z.dims();
        let device = z.device();
        let (mean, var) = if train {
            let flat = per_bit(z.clone());
            let mean = flat.clone().mean_dim(1);
            let var = (flat - mean.clone()).powf_scalar(2.0).mean_dim(1);
            self.update_running(mean.clone().reshape([d]), var.clone().reshape([d]));
            (mean.reshape([1, d, 1, 1, 1]), var.reshape([1, d, 1, 1, 1]))
        } else {
            let dtype = z.dtype();
            let m = self.mean.value().to_device(&device).cast(dtype).reshape([1, d, 1, 1, 1]);
            (m, self.var.value().to_device(&device).cast(dtype).reshape([1, d, 1, 1, 1]))
        };
        (z - mean) / var.add_scalar(1e-5).sqrt()
    }

    /// `[B, D, t, h, w]` -> the same, normalized by given statistics (`[D]` each, constants
    /// here: a batch's, gathered from several replicas). The running statistics do not move
    /// ([`Self::update_running`] moves them, on the thread that owns the model). Its gradient
    /// is not batch norm's (the statistics are constants); the data-parallel trainer adds the
    /// statistics' part itself.
    pub fn forward_with(&self, z: Tensor<5>, mean: Tensor<1>, var: Tensor<1>) -> Tensor<5> {
        let [_, d, ..] = z.dims();
        (z - mean.detach().reshape([1, d, 1, 1, 1])) / var.detach().reshape([1, d, 1, 1, 1]).add_scalar(1e-5).sqrt()
    }

    /// Moves the running statistics towards a batch's (`[D]` each; momentum 0.1), as a
    /// training step's [`Self::forward`] does. Burn's running state keeps one value per thread
    /// until the next read on a thread that wrote; replicas on threads that live for one step
    /// never read theirs again, so they leave the update to the model's own thread.
    pub fn update_running(&self, mean: Tensor<1>, var: Tensor<1>) {
        let device = mean.device();
        // The running statistics stay in their own (fp32) dtype under mixed precision.
        let (rm, rv) = (self.mean.value_sync().to_device(&device), self.var.value_sync().to_device(&device));
        let (m1, v1) = (mean.detach().cast(rm.dtype()), var.detach().cast(rv.dtype()));
        self.mean.update(rm.mul_scalar(0.9) + m1.mul_scalar(0.1));
        self.var.update(rv.mul_scalar(0.9) + v1.mul_scalar(0.1));
    }
}

/// Codes (±1, `[B, D, t, h, w]`) from token ids (`[B, t, h, w]`).
pub fn codes_from_indices(indices: Tensor<4, Int>, bits: usize) -> Tensor<5> {
    let [b, t, h, w] = indices.dims();
    let device = indices.device();
    let powers: Vec<i64> = (0..bits).map(|i| 1i64 << i).collect();
    let powers = Tensor::<1, Int>::from_data(TensorData::new(powers, [bits]), &device).reshape([1, bits, 1, 1, 1]);
    let idx = indices.reshape([b, 1, t, h, w]).repeat_dim(1, bits);
    // bit_i = (index / 2^i) mod 2
    let bit = (idx / powers).remainder_scalar(2);
    bit.float().mul_scalar(2.0).sub_scalar(1.0)
}

/// Codebook usage of a histogram of token ids: (fraction of codes used, perplexity).
pub fn usage_and_perplexity(counts: &[u64]) -> (f64, f64) {
    let total: u64 = counts.iter().sum();
    if total == 0 || counts.is_empty() {
        return (0.0, 0.0);
    }
    let used = counts.iter().filter(|&&c| c > 0).count();
    let h: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / total as f64;
            -p * p.ln()
        })
        .sum();
    (used as f64 / counts.len() as f64, h.exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_norm_centres_bits_in_training_and_uses_running_statistics_after() {
        let device = Device::flex().autodiff();
        let norm = BitNorm::new(2, &device);
        // Before any training step the running statistics are the identity.
        let z0 = Tensor::<5>::from_data(TensorData::new(vec![2.0f32, -3.0], [1, 2, 1, 1, 1]), &device);
        let id = norm.forward(z0, false).into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 values");
        assert!((id[0] - 2.0).abs() < 1e-4 && (id[1] + 3.0).abs() < 1e-4, "{id:?}");
        // Bit 0: values 10..17 (mean 13.5); bit 1: all 3 apart from one 5.
        let mut v: Vec<f32> = (0..8).map(|i| 10.0 + i as f32).collect();
        v.extend([3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 5.0]);
        let z = Tensor::<5>::from_data(TensorData::new(v, [1, 2, 2, 2, 2]), &device);
        let out = norm.forward(z.clone(), true).into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 values");
        // Without the norm every bit of this input would be +1 (a dead code); with it both bits
        // split the positions, and each bit has zero mean and unit variance.
        let pos0 = out[..8].iter().filter(|&&x| x > 0.0).count();
        assert_eq!(pos0, 4);
        assert_eq!(out[8..].iter().filter(|&&x| x > 0.0).count(), 1);
        for bit in out.chunks(8) {
            let m = bit.iter().sum::<f32>() / 8.0;
            let var = bit.iter().map(|x| (x - m) * (x - m)).sum::<f32>() / 8.0;
            assert!(m.abs() < 1e-4 && (var - 1.0).abs() < 1e-3, "{m} {var}");
        }
        // Running statistics moved 10% of the way from (0, 1) to the batch's.
        let plain = Device::flex();
        let probe = Tensor::<5>::from_data(TensorData::new(vec![13.5f32, 3.25], [1, 2, 1, 1, 1]), &plain);
        let valid = norm.valid();
        let r = valid.forward(probe, false).into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 values");
        let expect0 = (13.5 - 1.35) / (0.9f32 + 0.1 * 5.25).sqrt();
        assert!((r[0] - expect0).abs() < 1e-3, "{r:?} vs {expect0}");
        // Gradients flow through the normalization.
        let z = z.require_grad();
        let g = norm.forward(z.clone(), true).powf_scalar(3.0).sum().backward();
        assert!(z.grad(&g).is_some());
    }

    #[test]
    fn signs_indices_and_round_trip() {
        let device = Device::flex();
        // One position, 3 bits: z = (+0.5, -2, +0.1) -> bits 1,0,1 -> index 1 + 4 = 5.
        let z = Tensor::<5>::from_data(TensorData::new(vec![0.5f32, -2.0, 0.1], [1, 3, 1, 1, 1]), &device);
        let out = quantize(z, 1.0);
        let idx = out.indices.clone().into_data().convert::<i64>().try_to_vec::<i64>().expect("ids");
        assert_eq!(idx, vec![5]);
        let codes = out.codes.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 values");
        assert_eq!(codes, vec![1.0, -1.0, 1.0]);
        let back = codes_from_indices(out.indices, 3).into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 values");
        assert_eq!(back, vec![1.0, -1.0, 1.0]);
        let c = out.commitment.into_scalar::<f32>();
        assert!((c - (0.25 + 1.0 + 0.81) / 3.0).abs() < 1e-5, "{c}");
    }

    #[test]
    fn straight_through_gradient_is_identity() {
        let device = Device::flex().autodiff();
        let z = Tensor::<5>::from_data(TensorData::new(vec![0.3f32, -0.7], [1, 2, 1, 1, 1]), &device).require_grad();
        let out = quantize(z.clone(), 1.0);
        let grads = out.codes.sum().backward();
        let g = z.grad(&grads).map(|g| g.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 values")).expect("a gradient");
        assert_eq!(g, vec![1.0, 1.0]);
    }

    #[test]
    fn codebook_entropy_sees_correlated_bits() {
        let device = Device::flex();
        // Two positions whose 2 bits are copies of each other: only codes 00 and 11 are used,
        // so the codebook entropy is ln 2, not the per-bit bound 2 ln 2.
        let z = Tensor::<5>::from_data(TensorData::new(vec![5.0f32, 5.0, -5.0, -5.0], [2, 2, 1, 1, 1]), &device);
        let cb = quantize(z, 1.0).codebook_entropy.into_scalar::<f32>();
        assert!((cb - std::f32::consts::LN_2).abs() < 1e-3, "{cb}");
        // 12 bits split into groups of 9 + 3 still give the exact value for independent bits.
        let vals: Vec<f32> = (0..4096usize).flat_map(|c| (0..12).map(move |i| if (c >> i) & 1 == 1 { 8.0 } else { -8.0 })).collect();
        let z = Tensor::<5>::from_data(TensorData::new(vals, [4096, 12, 1, 1, 1]), &device);
        let cb = quantize(z, 1.0).codebook_entropy.into_scalar::<f32>();
        assert!((cb - 12.0 * std::f32::consts::LN_2).abs() < 1e-2, "{cb}");
    }

    #[test]
    fn entropy_terms_behave() {
        let device = Device::flex();
        // Confident codes 01 and 10, one each: low sample entropy, codebook entropy ln 2.
        let z = Tensor::<5>::from_data(TensorData::new(vec![5.0f32, -5.0, -5.0, 5.0], [2, 2, 1, 1, 1]), &device);
        let out = quantize(z, 1.0);
        assert!(out.sample_entropy.into_scalar::<f32>() < 1e-3);
        let cb = out.codebook_entropy.into_scalar::<f32>();
        assert!((cb - std::f32::consts::LN_2).abs() < 1e-3, "{cb}");
        let (usage, ppl) = usage_and_perplexity(&[5, 5, 0, 0]);
        assert_eq!(usage, 0.5);
        assert!((ppl - 2.0).abs() < 1e-9);
    }
}

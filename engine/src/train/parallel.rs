//! Data-parallel training over several devices, built from Burn's own pieces the way
//! burn-train's multi-device strategy (`MultiDeviceOptim::OptimMainDevice`) is: each device
//! holds a replica of the main model ([`replica`]: Burn's `Module::fork` without its graph
//! nodes; the same parameter ids, fresh autodiff leaves), runs its share of the step's
//! micro-batches on a thread of its own and accumulates their gradients; the main thread moves
//! every device's gradients to the main device (`GradientsParams::to_device`), sums them with a
//! `GradientsAccumulator` and takes one optimizer step there. Parameters and optimizer state
//! live on the main device only, so checkpoints are the same as single-device ones.
//!
//! Burn sums gradients; the trainers scale each micro-batch's loss by 1 / micro-batches so the
//! sum is the whole batch's mean. Burn 0.22's all-reduce (`burn::tensor::distributed`) runs on
//! CUDA only; on WGPU and on the CPU this gather-to-main path is what Burn offers.
//!
//! On the CPU, Flex is one device, so the replicas are several workers on it: [`CoreShares`]
//! (`crate::cores`) gives each its own share of the cores (a rayon pool of its own), so two
//! replicas on two cores are two single-threaded workers.

pub use crate::cores::CoreShares;
use crate::device::MAX_DEVICES;
use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::Bool;

use super::tokenizer::TrainError;

/// How one optimizer step is cut: `devices x accumulate` micro-batches of `micro` items;
/// micro-batch `i` runs on device `i % devices`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardPlan {
    pub devices: usize,
    pub accumulate: usize,
    /// Items per micro-batch (`batch / devices`).
    pub micro: usize,
}

impl ShardPlan {
    /// The plan of a step of `batch` items per micro-step (split over `devices`) and
    /// `accumulate` micro-steps; `batch` must be a multiple of `devices`.
    pub fn new(batch: usize, accumulate: usize, devices: usize) -> Result<Self, TrainError> {
        if devices == 0 || devices > MAX_DEVICES {
            return Err(TrainError::Invalid(format!("{devices} devices; use 1..={MAX_DEVICES}")));
        }
        if !batch.is_multiple_of(devices) {
            return Err(TrainError::Invalid(format!(
                "batch {batch} does not split evenly over {devices} devices; use a batch that is a multiple of {devices}"
            )));
        }
        Ok(Self { devices, accumulate: accumulate.max(1), micro: batch / devices })
    }

    /// Micro-batches per step.
    pub fn parts(&self) -> usize {
        self.devices * self.accumulate
    }

    /// The factor each micro-batch's loss is multiplied by.
    pub fn scale(&self) -> f32 {
        1.0 / self.parts() as f32
    }

    /// The micro-batches device `d` runs, in order.
    pub fn shards_of(&self, d: usize) -> impl Iterator<Item = usize> {
        (d..self.parts()).step_by(self.devices)
    }
}

/// A replica of `model` on `device` for one step: the same parameter ids and values, fresh
/// autodiff leaves. It is `Module::fork`, except that each parameter is detached before it
/// moves. Burn's fork moves the tracked tensor first (`to_device` is a tracked op, even to the
/// same device), which adds a node to the autodiff graph of the main model's parameter at every
/// step; that graph lives as long as the model, so the nodes were never freed, and
/// burn-autodiff's sweep after each backward walked all of them: a `tiny` tokenizer step on two
/// replicas went from 0.16 s at the start of a run to 0.56 s by step 2,000 (docs/benchmarks.md,
/// session 17).
pub fn replica<M: Module>(model: M, device: &Device) -> M {
    model.map(&mut Replica(device))
}

struct Replica<'a>(&'a Device);

impl ModuleMapper for Replica<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| {
            let grad = t.is_require_grad();
            // Detached twice: the move of a detached tensor is untracked (no graph node), but
            // its result is not a leaf until detached again.
            let t = t.detach().to_device(self.0).detach();
            if grad { t.require_grad() } else { t }
        })
    }

    fn map_int<const D: usize>(&mut self, param: Param<Tensor<D, Int>>) -> Param<Tensor<D, Int>> {
        param.map(|t| t.to_device(self.0))
    }

    fn map_bool<const D: usize>(&mut self, param: Param<Tensor<D, Bool>>) -> Param<Tensor<D, Bool>> {
        param.map(|t| t.to_device(self.0))
    }
}

/// Initializes every parameter of `model` now, in visiting order. Burn initializes a
/// parameter lazily, from the device's random stream at its first use, and a data-parallel
/// step first uses them in another order than a one-device step (the replicas' copies walk the
/// module; a forward pass walks the graph). Trainers call this right after seeding, so that a
/// seed gives the same initial weights whatever the devices.
pub fn initialize<M: Module>(model: &M) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    model.visit(&mut Touch);
}

/// The core shares of a run on `devices` (see [`CoreShares`]): `Some` when they are several
/// and all on the CPU, `None` otherwise (GPUs, or one device, which keeps every core).
pub fn core_shares(devices: &[Device]) -> Result<Option<CoreShares>, TrainError> {
    if devices.len() > 1 && devices.iter().all(crate::device::is_flex) {
        CoreShares::new(devices.len()).map(Some).map_err(|e| TrainError::Invalid(e.to_string()))
    } else {
        Ok(None)
    }
}

/// Replicas a CPU run takes unless told otherwise (see [`default_replicas`]).
pub const CPU_REPLICAS: usize = crate::cores::CPU_WORKERS;

/// How many data-parallel replicas a run on `device` at `batch` items per micro-batch takes
/// by default: on the CPU [`CPU_REPLICAS`], each on its share of the cores, where rayon has
/// at least that many threads and the batch splits evenly; one elsewhere (a GPU is one device
/// unless `--devices` asks for more).
///
/// A step whose batch statistics the replicas would take per replica (`unshared_statistics`:
/// the tokenizer with `entropy_detach`) stays on one device. The tokenizer's bit norms and
/// codebook entropy are otherwise shared (`tokenizer_sync.rs`), and the generator has none, so
/// both make the one device's update on replicas, up to rounding.
pub fn default_replicas(device: &Device, batch: usize, unshared_statistics: bool) -> usize {
    let n = CPU_REPLICAS;
    if !unshared_statistics && crate::device::is_flex(device) && rayon::current_num_threads() >= n && batch.is_multiple_of(n) { n } else { 1 }
}

/// The further devices of [`default_replicas`]: copies of `device` (on the CPU, Flex is one
/// device; the replicas are workers on it).
pub fn default_others(device: &Device, batch: usize, unshared_statistics: bool) -> Vec<Device> {
    vec![device.clone(); default_replicas(device, batch, unshared_statistics) - 1]
}

/// Runs one job per device and returns their results in order: inline for a single job, on
/// scoped threads otherwise, job `i` on share `i` of the cores where `cores` is given. A
/// panicking job panics the caller, as it would inline, with its own panic rather than the
/// [`super::sync::ReplicaAborted`] of the replicas it stopped.
pub fn per_device<T: Send, F: FnOnce() -> T + Send>(jobs: Vec<F>, cores: Option<&CoreShares>) -> Vec<T> {
    if jobs.len() == 1 && cores.is_none() {
        return jobs.into_iter().map(|job| job()).collect();
    }
    let results = crate::cores::run_scoped(jobs, cores);
    let aborted = |e: &Box<dyn std::any::Any + Send>| e.is::<super::sync::ReplicaAborted>();
    let (mut out, mut failure) = (Vec::new(), None);
    for r in results {
        match r {
            Ok(v) => out.push(v),
            Err(e) if failure.as_ref().is_none_or(|f| aborted(f) && !aborted(&e)) => failure = Some(e),
            Err(_) => {}
        }
    }
    if let Some(e) = failure {
        std::panic::resume_unwind(e);
    }
    out
}

/// The training devices (autodiff on) of a run whose main device is `main`: `main` first, then
/// `others` (duplicates of `main` allowed: on the CPU, Flex is a single device, and several
/// replicas on it share the cores).
pub fn autodiff_devices(main: &Device, others: &[Device]) -> Vec<Device> {
    std::iter::once(main.clone()).chain(others.iter().cloned()).map(Device::autodiff).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_cut_a_step_into_device_and_accumulation_shards() {
        let p = ShardPlan::new(8, 3, 2).unwrap();
        assert_eq!((p.micro, p.parts()), (4, 6));
        assert_eq!(p.shards_of(0).collect::<Vec<_>>(), vec![0, 2, 4]);
        assert_eq!(p.shards_of(1).collect::<Vec<_>>(), vec![1, 3, 5]);
        assert!((p.scale() - 1.0 / 6.0).abs() < 1e-7);
        let err = ShardPlan::new(6, 1, 4).unwrap_err().to_string();
        assert!(err.contains("multiple of 4"), "{err}");
        assert!(ShardPlan::new(4, 1, 0).is_err());
    }

    #[test]
    fn jobs_run_on_threads_and_return_in_order() {
        let out = per_device((0..3).map(|i| move || i * 10).collect(), None);
        assert_eq!(out, vec![0, 10, 20]);
    }

    #[test]
    fn a_replica_has_the_same_parameters_as_fresh_leaves() {
        use burn::module::Param;
        use burn::nn::{Linear, LinearConfig};
        let device = Device::flex().autodiff();
        let mut model: Linear = LinearConfig::new(3, 2).init(&device);
        model.weight = Param::from_tensor(crate::ops::test_values([3, 2], 1.0, &device));
        let copy = replica(model.clone(), &device);
        assert_eq!(copy.weight.id, model.weight.id);
        assert!(copy.weight.val().is_require_grad());
        copy.weight.val().into_data().assert_eq(&model.weight.val().into_data(), true);
        // Gradients reach the replica's parameters under the main model's ids, and the main
        // model's own parameters are not part of the replica's graph.
        let x = crate::ops::test_values([4, 3], 2.0, &device);
        let grads = burn::optim::GradientsParams::from_grads(copy.forward(x).sum().backward(), &copy);
        let g = grads.get::<2>(model.weight.id).expect("a gradient for the weight");
        assert!(g.abs().sum().into_scalar::<f32>() > 0.0);
        assert!(model.weight.val().grad(&copy.forward(crate::ops::test_values([4, 3], 3.0, &device)).sum().backward()).is_none());
    }

    #[test]
    fn each_cpu_replica_computes_on_its_own_share_of_the_cores() {
        // Six threads over two replicas: three each, whatever the global pool has.
        let cores = CoreShares::with_threads(2, 6).unwrap();
        assert_eq!(cores.threads_each(), 3);
        let seen = per_device((0..2).map(|_| || (rayon::current_num_threads(), std::thread::current().name().map(str::to_owned))).collect(), Some(&cores));
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), vec![3, 3]);
        assert_eq!(seen[0].1.as_deref().map(|n| n.starts_with("cpu-replica-0.")), Some(true), "{seen:?}");
        assert_eq!(seen[1].1.as_deref().map(|n| n.starts_with("cpu-replica-1.")), Some(true), "{seen:?}");
        // At least one thread each, however many replicas.
        assert_eq!(CoreShares::with_threads(4, 2).unwrap().threads_each(), 1);
        // Two replicas by default on a CPU with two threads or more, when the batch splits.
        let cpu = Device::flex();
        let two = rayon::current_num_threads() >= 2;
        assert_eq!(default_replicas(&cpu, 8, false), if two { 2 } else { 1 });
        assert_eq!(default_replicas(&cpu, 7, false), 1);
        assert_eq!(default_others(&cpu, 8, false).len(), default_replicas(&cpu, 8, false) - 1);
        // A step with statistics the replicas would not share stays on one device.
        assert_eq!(default_replicas(&cpu, 8, true), 1);
        // Shares only for several CPU devices.
        assert!(core_shares(&[Device::flex()]).unwrap().is_none());
        assert!(core_shares(&[Device::flex(), Device::flex()]).unwrap().is_some());
    }
}

//! Data-parallel training over several devices, built from Burn's own pieces the way
//! burn-train's multi-device strategy (`MultiDeviceOptim::OptimMainDevice`) is: each device
//! holds a replica forked from the main model (`Module::fork`: the same parameter ids, fresh
//! autodiff leaves), runs its share of the step's micro-batches on a thread of its own and
//! accumulates their gradients; the main thread moves every device's gradients to the main
//! device (`GradientsParams::to_device`), sums them with a `GradientsAccumulator` and takes one
//! optimizer step there. Parameters and optimizer state live on the main device only, so
//! checkpoints are the same as single-device ones.
//!
//! Burn sums gradients; the trainers scale each micro-batch's loss by 1 / micro-batches so the
//! sum is the whole batch's mean. Burn 0.22's all-reduce (`burn::tensor::distributed`) runs on
//! CUDA only; on WGPU and on the CPU this gather-to-main path is what Burn offers.

use crate::device::MAX_DEVICES;
use burn::prelude::*;

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

/// Runs one job per device and returns their results in order: inline for a single job, on
/// scoped threads otherwise. A panicking job panics the caller, as it would inline.
pub fn per_device<T: Send, F: FnOnce() -> T + Send>(jobs: Vec<F>) -> Vec<T> {
    if jobs.len() == 1 {
        return jobs.into_iter().map(|job| job()).collect();
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs.into_iter().map(|job| s.spawn(job)).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    })
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
        let out = per_device((0..3).map(|i| move || i * 10).collect());
        assert_eq!(out, vec![0, 10, 20]);
    }
}

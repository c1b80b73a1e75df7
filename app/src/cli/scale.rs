//! What both trainers share about how a step is spread: gradient accumulation, the devices it
//! runs on and its compute precision (the options, and the device set-up they imply).

use anyhow::{Result, bail};
use clap::Args;
use hitvideo_engine::device::{self, Device, DeviceChoice, SelectedDevice};
use hitvideo_engine::train::parallel;
use hitvideo_engine::train::precision::{self, Precision};

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// Micro-batches of --batch whose gradients make one optimizer step (gradient
    /// accumulation): a step sees batch x accumulate items with the memory of --batch.
    #[arg(long, default_value_t = 1)]
    pub accumulate: usize,
    /// Devices to train on at once (data parallel): --batch is split evenly over them. On the
    /// CPU they are replicas, each computing on its share of the cores. Default: two replicas
    /// on the CPU when --batch is even (the update is one device's: the tokenizer's replicas
    /// share its batch statistics), one device elsewhere and with --entropy-detach.
    #[arg(long)]
    pub devices: Option<usize>,
    /// Compute precision: f32, or f16 / bf16 over fp32 master weights on GPUs (f16 with loss
    /// scaling). The CPU trains in f32.
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
}

/// The devices of a training run: the main one and the others of a data-parallel run.
pub struct TrainDevices {
    pub main: SelectedDevice,
    pub others: Vec<Device>,
    /// Whether --devices was given (else the default applies; see [`TrainDevices::others_at`]).
    chosen: bool,
}

impl ScaleArgs {
    /// Selects and prints the devices, checks the precision against the main one and makes it
    /// every device's default float type. Runs before any tensor exists (Burn fixes a device's
    /// defaults at its first tensor).
    pub fn select(&self, choice: DeviceChoice) -> Result<TrainDevices> {
        let devices = device::select_many(choice, self.devices.unwrap_or(1))?;
        if self.devices.is_some() || devices[0].is_gpu {
            for d in &devices {
                eprintln!("device: {}", d.description);
            }
        }
        let main = devices[0].clone();
        self.precision.check(&main.device, main.is_gpu).map_err(anyhow::Error::msg)?;
        for d in &devices {
            precision::configure(&d.device, self.precision).map_err(anyhow::Error::msg)?;
        }
        Ok(TrainDevices { main, others: devices[1..].iter().map(|d| d.device.clone()).collect(), chosen: self.devices.is_some() })
    }
}

impl TrainDevices {
    /// The further devices of a run at `batch` items per micro-batch of a step whose batch
    /// statistics replicas would not share (`unshared_statistics`) or not: those chosen with
    /// --devices, else the default (on the CPU, replicas sharing the cores unless
    /// `unshared_statistics`; see `train::parallel::default_replicas`), printed with the main
    /// device.
    pub fn others_at(&self, batch: usize, unshared_statistics: bool) -> Vec<Device> {
        if self.chosen || self.main.is_gpu {
            return self.others.clone();
        }
        let others = parallel::default_others(&self.main.device, batch, unshared_statistics);
        let n = others.len() + 1;
        if n > 1 {
            eprintln!("device: {}; {n} replicas, each on its share of the cores (data parallel; --devices 1 for one)", self.main.description);
        } else {
            eprintln!("device: {}", self.main.description);
        }
        others
    }

    /// On a GPU, compares the training memory `estimate(items per device)` of model `name` at
    /// `batch` items per step with the device's limit: an error above it, a warning above 90%.
    pub fn check_memory(&self, name: &str, batch: usize, estimate: impl Fn(usize) -> u64) -> Result<()> {
        if !self.main.is_gpu {
            return Ok(());
        }
        let per_device = batch / (self.others.len() + 1);
        let what = format!("'{name}' at {per_device} per device");
        match device::check_memory(estimate(per_device), device::memory_limit(&self.main.device), &what) {
            Ok(Some(note)) => eprintln!("warning: {note}"),
            Ok(None) => {}
            Err(e) => bail!(e),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(devices: Option<usize>) -> ScaleArgs {
        ScaleArgs { accumulate: 1, devices, precision: Precision::F32 }
    }

    #[test]
    fn the_cpu_trains_on_two_replicas_unless_told_otherwise() {
        let two = parallel::default_replicas(&Device::flex(), 8, false) == 2;
        let default = args(None).select(DeviceChoice::Cpu).unwrap();
        assert_eq!(default.others_at(8, false).len(), usize::from(two), "an even batch splits over two replicas");
        assert!(default.others_at(7, false).is_empty(), "an odd batch stays on one");
        assert!(default.others_at(8, true).is_empty(), "a step with unshared statistics stays on one");
        assert!(args(Some(1)).select(DeviceChoice::Cpu).unwrap().others_at(8, false).is_empty(), "--devices 1 is one");
        assert_eq!(args(Some(4)).select(DeviceChoice::Cpu).unwrap().others_at(8, true).len(), 3, "--devices 4 is four, whatever the default");
    }
}

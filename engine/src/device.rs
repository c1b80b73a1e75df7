//! Choosing the Burn compute device: `auto`, `cpu` (Flex, pure Rust), `gpu` (WGPU) or `cuda`
//! (Burn's CUDA backend, in builds with the `cuda` feature).
//!
//! `auto` takes a CUDA device when the build has CUDA and the driver reports one (Burn's native
//! NVIDIA backend, where WGPU goes through Vulkan), else a real GPU adapter (discrete,
//! integrated or virtual) when wgpu finds one, and the CPU otherwise. Software rasterisers such
//! as Mesa's lavapipe report themselves as CPU adapters: `auto` skips them (they are ~40x slower
//! than Flex), `gpu` accepts them.

use std::fmt;
use std::str::FromStr;

/// The device models and tensors live on (re-exported so the front ends name it without Burn).
pub use burn::tensor::Device;
use burn::tensor::DeviceKind;

/// Devices a run may use at once.
pub const MAX_DEVICES: usize = 64;

/// What the user asked for on the command line or in the studio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// A real GPU when one exists, the CPU otherwise.
    #[default]
    Auto,
    /// Burn's Flex backend on the CPU.
    Cpu,
    /// WGPU on the best adapter found, software ones included.
    Gpu,
    /// Burn's CUDA backend (builds with the `cuda` feature).
    Cuda,
}

impl DeviceChoice {
    /// Every choice, in menu order.
    pub const ALL: [DeviceChoice; 4] = [Self::Auto, Self::Cpu, Self::Gpu, Self::Cuda];
}

/// A device name that is none of `auto`, `cpu`, `gpu`, `cuda`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown device '{0}': use auto, cpu, gpu or cuda")]
pub struct UnknownDevice(pub String);

impl FromStr for DeviceChoice {
    type Err = UnknownDevice;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" | "flex" => Ok(Self::Cpu),
            "gpu" | "wgpu" => Ok(Self::Gpu),
            "cuda" => Ok(Self::Cuda),
            other => Err(UnknownDevice(other.to_string())),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Cpu => "cpu",
            Self::Gpu => "gpu",
            Self::Cuda => "cuda",
        })
    }
}

/// One wgpu adapter as reported by the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterInfo {
    pub name: String,
    pub backend: String,
    pub kind: AdapterKind,
}

/// The adapter classes wgpu distinguishes; `Software` covers lavapipe and similar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterKind {
    Discrete,
    Integrated,
    Virtual,
    Software,
    Other,
}

impl AdapterInfo {
    /// Whether this adapter is real GPU hardware (what `auto` looks for).
    pub fn is_hardware(&self) -> bool {
        matches!(self.kind, AdapterKind::Discrete | AdapterKind::Integrated | AdapterKind::Virtual)
    }
}

/// Lists the adapters wgpu can see on its primary APIs (Vulkan, Metal, DX12, WebGPU) — the
/// ones Burn computes on — without creating a device.
pub fn list_adapters() -> Vec<AdapterInfo> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
    adapters
        .into_iter()
        .map(|a| {
            let info = a.get_info();
            let kind = match info.device_type {
                wgpu::DeviceType::DiscreteGpu => AdapterKind::Discrete,
                wgpu::DeviceType::IntegratedGpu => AdapterKind::Integrated,
                wgpu::DeviceType::VirtualGpu => AdapterKind::Virtual,
                wgpu::DeviceType::Cpu => AdapterKind::Software,
                wgpu::DeviceType::Other => AdapterKind::Other,
            };
            AdapterInfo { name: info.name, backend: format!("{:?}", info.backend), kind }
        })
        .collect()
}

/// The device a command runs on, with a sentence saying why it was chosen.
#[derive(Clone)]
pub struct SelectedDevice {
    pub device: Device,
    pub is_gpu: bool,
    pub description: String,
}

impl fmt::Debug for SelectedDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectedDevice").field("is_gpu", &self.is_gpu).field("description", &self.description).finish()
    }
}

/// Raised when the device asked for does not exist.
#[derive(Debug, thiserror::Error)]
pub enum NoAdapter {
    #[error(
        "no GPU adapter found for --device gpu (wgpu saw none); install a Vulkan driver \
         (on Debian: apt-get install mesa-vulkan-drivers) or use --device cpu"
    )]
    Wgpu,
    #[error("--device cuda: {0}")]
    Cuda(String),
}

/// CUDA devices the driver reports (0 without the `cuda` feature, the driver or a GPU; Burn
/// checks for `libcuda` before asking, so a machine without it gives 0, not a panic).
pub fn cuda_devices() -> usize {
    #[cfg(feature = "cuda")]
    {
        Device::enumerate(burn::tensor::DeviceType::Cuda).len()
    }
    #[cfg(not(feature = "cuda"))]
    {
        0
    }
}

/// CUDA device `index` (`None` in builds without the `cuda` feature).
fn cuda_device(index: usize) -> Option<Device> {
    #[cfg(feature = "cuda")]
    {
        Some(Device::cuda(index))
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = index;
        None
    }
}

/// Why `--device cuda` finds nothing in this build or on this machine.
fn no_cuda() -> NoAdapter {
    NoAdapter::Cuda(if cfg!(feature = "cuda") {
        "the CUDA driver reports no device (is libcuda installed and a GPU visible?); use --device gpu or cpu".into()
    } else {
        "this build has no CUDA backend; build with `--features cuda` (see scripts/gpu-check) or use --device gpu".into()
    })
}

fn cuda_selected(index: usize, count: usize, why: &str) -> Option<SelectedDevice> {
    cuda_device(index).map(|device| SelectedDevice { device, is_gpu: true, description: format!("GPU {index} of {count} via CUDA{why}") })
}

/// Resolves a [`DeviceChoice`] to a Burn device.
pub fn select(choice: DeviceChoice) -> Result<SelectedDevice, NoAdapter> {
    // `cpu` needs no adapter list: enumerating would wake the GPU drivers (and their log lines)
    // for nothing.
    let adapters = if matches!(choice, DeviceChoice::Cpu | DeviceChoice::Cuda) { Vec::new() } else { list_adapters() };
    let cuda = if matches!(choice, DeviceChoice::Auto | DeviceChoice::Cuda) { cuda_devices() } else { 0 };
    select_with(choice, &adapters, cuda)
}

/// As [`select`], over a given adapter list and no CUDA device (lets tests cover every branch).
pub fn select_from(choice: DeviceChoice, adapters: &[AdapterInfo]) -> Result<SelectedDevice, NoAdapter> {
    select_with(choice, adapters, 0)
}

/// As [`select`], over a given adapter list and CUDA device count.
pub fn select_with(choice: DeviceChoice, adapters: &[AdapterInfo], cuda: usize) -> Result<SelectedDevice, NoAdapter> {
    if cuda > 0 && matches!(choice, DeviceChoice::Auto | DeviceChoice::Cuda) {
        let why = if choice == DeviceChoice::Auto { " — auto prefers CUDA, Burn's native NVIDIA backend, to WGPU over Vulkan" } else { "" };
        if let Some(d) = cuda_selected(0, cuda, why) {
            return Ok(d);
        }
    }
    if choice == DeviceChoice::Cuda {
        return Err(no_cuda());
    }
    let cpu = || SelectedDevice { device: Device::flex(), is_gpu: false, description: "CPU (Burn Flex backend)".to_string() };
    let gpu = |a: &AdapterInfo| {
        let same_kind = adapters.iter().filter(|b| b.kind == a.kind);
        let index = same_kind.take_while(|b| *b != a).count();
        let kind = match a.kind {
            AdapterKind::Discrete => DeviceKind::DiscreteGpu(index),
            AdapterKind::Integrated => DeviceKind::IntegratedGpu(index),
            AdapterKind::Virtual => DeviceKind::VirtualGpu(index),
            AdapterKind::Software => DeviceKind::Cpu,
            AdapterKind::Other => DeviceKind::DefaultDevice,
        };
        SelectedDevice { device: Device::wgpu(kind), is_gpu: true, description: format!("GPU via WGPU: {} ({}, {:?})", a.name, a.backend, a.kind) }
    };
    let rank = |a: &AdapterInfo| match a.kind {
        AdapterKind::Discrete => 0,
        AdapterKind::Integrated => 1,
        AdapterKind::Virtual => 2,
        AdapterKind::Other => 3,
        AdapterKind::Software => 4,
    };
    let best = adapters.iter().min_by_key(|a| rank(a));
    match choice {
        DeviceChoice::Cpu => Ok(cpu()),
        DeviceChoice::Gpu => best.map(gpu).ok_or(NoAdapter::Wgpu),
        DeviceChoice::Cuda => Err(no_cuda()),
        DeviceChoice::Auto => match best.filter(|a| a.is_hardware()) {
            Some(a) => Ok(gpu(a)),
            None => {
                let mut d = cpu();
                d.description = match best {
                    Some(a) => format!(
                        "{} — auto found only a software GPU ({}), slower than the CPU path; \
                         pass --device gpu to use it anyway",
                        d.description, a.name
                    ),
                    None => format!("{} — auto found no GPU adapter", d.description),
                };
                Ok(d)
            }
        },
    }
}

/// The memory a GPU device says a workload may use (CUDA: the card's total memory; WGPU:
/// the largest device-local heap where the driver reports one), `None` on the CPU and where
/// the runtime reports no figure. Opens the device.
pub fn memory_limit(device: &Device) -> Option<u64> {
    fn of(d: &burn::backend::DispatchDevice) -> Option<u64> {
        match d {
            burn::backend::DispatchDevice::Cube(c) => c.client().properties().memory.max_memory(),
            burn::backend::DispatchDevice::Autodiff(a) => of(a),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
    of(device.as_dispatch())
}

/// Whether `device` records an autodiff graph (a training device).
pub fn is_autodiff(device: &Device) -> bool {
    matches!(device.as_dispatch(), burn::backend::DispatchDevice::Autodiff(_))
}

/// Whether `device` is Burn's Flex backend (the CPU), with or without autodiff.
pub fn is_flex(device: &Device) -> bool {
    fn of(d: &burn::backend::DispatchDevice) -> bool {
        match d {
            burn::backend::DispatchDevice::Flex(_) => true,
            burn::backend::DispatchDevice::Autodiff(a) => of(a),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
    of(device.as_dispatch())
}

/// Compares a run's estimated training memory with the device's limit (see
/// [`memory_limit`]): an error above it, naming the settings that lower it; `Ok(Some(note))`
/// above 90% of it; `Ok(None)` below, or when the device reports no limit.
pub fn check_memory(estimate: u64, limit: Option<u64>, what: &str) -> Result<Option<String>, String> {
    let Some(limit) = limit else { return Ok(None) };
    let mib = |b: u64| b as f64 / 1048576.0;
    if estimate > limit {
        return Err(format!(
            "{what}: estimated training memory {:.0} MiB is more than the device's {:.0} MiB; lower --batch (with --accumulate to keep \
             the step's batch), use --precision bf16 or f16, or add --devices",
            mib(estimate),
            mib(limit)
        ));
    }
    Ok((estimate * 10 > limit * 9)
        .then(|| format!("{what}: estimated training memory {:.0} MiB is over 90% of the device's {:.0} MiB", mib(estimate), mib(limit))))
}

/// Raised when `--devices` asks for more devices than exist.
#[derive(Debug, thiserror::Error)]
pub enum DevicesError {
    #[error(transparent)]
    NoAdapter(#[from] NoAdapter),
    #[error("--devices {asked}: use 1 to {max}")]
    Count { asked: usize, max: usize },
    #[error(
        "--devices {asked}: wgpu found {found} {kind:?} adapter(s); pass --devices {found} or fewer, \
         or --device cpu to test the data-parallel path on CPU replicas"
    )]
    TooFew { asked: usize, found: usize, kind: AdapterKind },
    #[error("--devices {asked}: the CUDA driver reports {found} device(s); pass --devices {found} or fewer")]
    TooFewCuda { asked: usize, found: usize },
}

/// The devices of a data-parallel run of `count` devices: [`select`]'s choice first, then
/// further adapters of the same kind (GPU 1, 2, ...). On the CPU, Flex is a single device:
/// `count` replicas of it, which the trainers run each on its share of the cores
/// (`cores::CoreShares`).
pub fn select_many(choice: DeviceChoice, count: usize) -> Result<Vec<SelectedDevice>, DevicesError> {
    let adapters = if matches!(choice, DeviceChoice::Cpu | DeviceChoice::Cuda) { Vec::new() } else { list_adapters() };
    let cuda = if matches!(choice, DeviceChoice::Auto | DeviceChoice::Cuda) { cuda_devices() } else { 0 };
    select_many_with(choice, count, &adapters, cuda)
}

/// As [`select_many`], over a given adapter list and no CUDA device.
pub fn select_many_from(choice: DeviceChoice, count: usize, adapters: &[AdapterInfo]) -> Result<Vec<SelectedDevice>, DevicesError> {
    select_many_with(choice, count, adapters, 0)
}

/// As [`select_many`], over a given adapter list and CUDA device count.
pub fn select_many_with(choice: DeviceChoice, count: usize, adapters: &[AdapterInfo], cuda: usize) -> Result<Vec<SelectedDevice>, DevicesError> {
    const MAX: usize = MAX_DEVICES;
    if count == 0 || count > MAX {
        return Err(DevicesError::Count { asked: count, max: MAX });
    }
    let first = select_with(choice, adapters, cuda)?;
    if first.description.contains("via CUDA") {
        if cuda < count {
            return Err(DevicesError::TooFewCuda { asked: count, found: cuda });
        }
        return Ok((0..count).filter_map(|i| cuda_selected(i, cuda, "")).collect());
    }
    if !first.is_gpu {
        let mut all = vec![first; count];
        if count > 1 {
            for (i, d) in all.iter_mut().enumerate() {
                d.description = format!("CPU replica {} of {count} (Burn Flex; each replica computes on its share of the cores)", i + 1);
            }
        }
        return Ok(all);
    }
    let kind = adapters.iter().find(|a| first.description.contains(&a.name)).map_or(AdapterKind::Discrete, |a| a.kind);
    let same: Vec<&AdapterInfo> = adapters.iter().filter(|a| a.kind == kind).collect();
    if same.len() < count {
        return Err(DevicesError::TooFew { asked: count, found: same.len(), kind });
    }
    Ok(same
        .iter()
        .take(count)
        .enumerate()
        .map(|(i, a)| SelectedDevice {
            device: Device::wgpu(match kind {
                AdapterKind::Discrete => DeviceKind::DiscreteGpu(i),
                AdapterKind::Integrated => DeviceKind::IntegratedGpu(i),
                AdapterKind::Virtual => DeviceKind::VirtualGpu(i),
                AdapterKind::Software => DeviceKind::Cpu,
                AdapterKind::Other => DeviceKind::DefaultDevice,
            }),
            is_gpu: true,
            description: format!("GPU {i} via WGPU: {} ({}, {:?})", a.name, a.backend, a.kind),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(name: &str, kind: AdapterKind) -> AdapterInfo {
        AdapterInfo { name: name.into(), backend: "Vulkan".into(), kind }
    }

    #[test]
    fn several_devices_are_replicas_on_the_cpu_and_adapters_of_one_kind_on_gpus() {
        let cpu = select_many_from(DeviceChoice::Cpu, 2, &[]).unwrap();
        assert_eq!(cpu.len(), 2);
        assert!(cpu.iter().all(|d| !d.is_gpu) && cpu[1].description.contains("replica 2 of 2"), "{:?}", cpu);
        let gpus = [adapter("A", AdapterKind::Discrete), adapter("soft", AdapterKind::Software), adapter("B", AdapterKind::Discrete)];
        let two = select_many_from(DeviceChoice::Gpu, 2, &gpus).unwrap();
        assert_eq!(
            two.iter().map(|d| d.description.as_str()).collect::<Vec<_>>(),
            ["GPU 0 via WGPU: A (Vulkan, Discrete)", "GPU 1 via WGPU: B (Vulkan, Discrete)"]
        );
        let err = select_many_from(DeviceChoice::Gpu, 3, &gpus).unwrap_err().to_string();
        assert!(err.contains("found 2 Discrete adapter(s)"), "{err}");
        assert!(select_many_from(DeviceChoice::Cpu, 0, &[]).is_err());
    }

    #[test]
    fn cuda_is_chosen_only_where_built_and_present() {
        let gpus = [adapter("A", AdapterKind::Discrete)];
        // No CUDA device: auto falls back to WGPU, `cuda` says why it cannot.
        assert!(select_with(DeviceChoice::Auto, &gpus, 0).unwrap().description.contains("WGPU"));
        let err = select_with(DeviceChoice::Cuda, &gpus, 0).unwrap_err().to_string();
        assert!(err.starts_with("--device cuda: "), "{err}");
        if cfg!(feature = "cuda") {
            let d = select_with(DeviceChoice::Auto, &gpus, 2).unwrap();
            assert!(d.is_gpu && d.description.contains("via CUDA") && d.description.contains("auto prefers CUDA"), "{}", d.description);
            assert_eq!(select_many_with(DeviceChoice::Cuda, 2, &[], 2).unwrap().len(), 2);
            assert!(select_many_with(DeviceChoice::Cuda, 3, &[], 2).is_err());
        } else {
            // A build without CUDA never picks it, whatever the count says.
            assert!(select_with(DeviceChoice::Auto, &gpus, 2).unwrap().description.contains("WGPU"));
            assert!(err.contains("--features cuda"), "{err}");
        }
    }

    #[test]
    fn memory_estimates_are_checked_against_the_device_limit() {
        assert_eq!(check_memory(10 << 30, None, "run"), Ok(None));
        assert_eq!(check_memory(1 << 30, Some(8 << 30), "run"), Ok(None));
        assert!(check_memory(15 << 29, Some(8 << 30), "run").unwrap().unwrap().contains("over 90%"));
        let err = check_memory(9 << 30, Some(8 << 30), "tokenizer 'paper' at batch 4").unwrap_err();
        assert!(err.contains("9216 MiB is more than the device's 8192 MiB") && err.contains("--accumulate"), "{err}");
        assert_eq!(memory_limit(&Device::flex()), None);
    }

    #[test]
    fn parses_choices_and_rejects_others() {
        assert_eq!("AUTO".parse::<DeviceChoice>(), Ok(DeviceChoice::Auto));
        assert_eq!("cpu".parse::<DeviceChoice>(), Ok(DeviceChoice::Cpu));
        assert_eq!("wgpu".parse::<DeviceChoice>(), Ok(DeviceChoice::Gpu));
        assert_eq!("CUDA".parse::<DeviceChoice>(), Ok(DeviceChoice::Cuda));
        assert!("tpu".parse::<DeviceChoice>().unwrap_err().to_string().contains("auto, cpu, gpu or cuda"));
    }

    #[test]
    fn auto_prefers_hardware_and_skips_software() {
        let soft = [adapter("llvmpipe", AdapterKind::Software)];
        let d = select_from(DeviceChoice::Auto, &soft).unwrap();
        assert!(!d.is_gpu);
        assert!(d.description.contains("software GPU (llvmpipe)"), "{}", d.description);

        let both = [adapter("llvmpipe", AdapterKind::Software), adapter("RTX", AdapterKind::Discrete)];
        let d = select_from(DeviceChoice::Auto, &both).unwrap();
        assert!(d.is_gpu);
        assert!(d.description.contains("RTX"));

        let d = select_from(DeviceChoice::Auto, &[]).unwrap();
        assert!(!d.is_gpu && d.description.contains("no GPU adapter"));
    }

    #[test]
    fn gpu_takes_software_but_fails_without_any_adapter() {
        let soft = [adapter("llvmpipe", AdapterKind::Software)];
        assert!(select_from(DeviceChoice::Gpu, &soft).unwrap().is_gpu);
        let err = select_from(DeviceChoice::Gpu, &[]).unwrap_err();
        assert!(err.to_string().contains("--device cpu"));
    }
}

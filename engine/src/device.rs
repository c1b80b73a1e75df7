//! Choosing the Burn compute device: `auto`, `cpu` (Flex, pure Rust) or `gpu` (WGPU).
//!
//! `auto` takes a real GPU adapter (discrete, integrated or virtual) when wgpu finds one and
//! the CPU otherwise. Software rasterisers such as Mesa's lavapipe report themselves as CPU
//! adapters: `auto` skips them (they are ~40x slower than Flex), `gpu` accepts them.

use std::fmt;
use std::str::FromStr;

use burn::tensor::{Device, DeviceKind};

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
}

impl FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" | "flex" => Ok(Self::Cpu),
            "gpu" | "wgpu" => Ok(Self::Gpu),
            other => Err(format!("unknown device '{other}': use auto, cpu or gpu")),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Cpu => "cpu",
            Self::Gpu => "gpu",
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
        f.debug_struct("SelectedDevice")
            .field("is_gpu", &self.is_gpu)
            .field("description", &self.description)
            .finish()
    }
}

/// Raised when `--device gpu` is asked for and no adapter exists.
#[derive(Debug, thiserror::Error)]
#[error(
    "no GPU adapter found for --device gpu (wgpu saw none); install a Vulkan driver \
     (on Debian: apt-get install mesa-vulkan-drivers) or use --device cpu"
)]
pub struct NoAdapter;

/// Resolves a [`DeviceChoice`] to a Burn device.
pub fn select(choice: DeviceChoice) -> Result<SelectedDevice, NoAdapter> {
    // `cpu` needs no adapter list: enumerating would wake the GPU drivers (and their log lines)
    // for nothing.
    let adapters = if choice == DeviceChoice::Cpu { Vec::new() } else { list_adapters() };
    select_from(choice, &adapters)
}

/// As [`select`], over a given adapter list (lets tests cover every branch).
pub fn select_from(choice: DeviceChoice, adapters: &[AdapterInfo]) -> Result<SelectedDevice, NoAdapter> {
    let cpu = || SelectedDevice {
        device: Device::flex(),
        is_gpu: false,
        description: "CPU (Burn Flex backend)".to_string(),
    };
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
        SelectedDevice {
            device: Device::wgpu(kind),
            is_gpu: true,
            description: format!("GPU via WGPU: {} ({}, {:?})", a.name, a.backend, a.kind),
        }
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
        DeviceChoice::Gpu => best.map(gpu).ok_or(NoAdapter),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(name: &str, kind: AdapterKind) -> AdapterInfo {
        AdapterInfo { name: name.into(), backend: "Vulkan".into(), kind }
    }

    #[test]
    fn parses_choices_and_rejects_others() {
        assert_eq!("AUTO".parse::<DeviceChoice>(), Ok(DeviceChoice::Auto));
        assert_eq!("cpu".parse::<DeviceChoice>(), Ok(DeviceChoice::Cpu));
        assert_eq!("wgpu".parse::<DeviceChoice>(), Ok(DeviceChoice::Gpu));
        assert!("tpu".parse::<DeviceChoice>().unwrap_err().contains("auto, cpu or gpu"));
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

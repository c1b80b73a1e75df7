//! A small tensor computation on the WGPU device (Mesa's software Vulkan in CI) matches the
//! Flex (CPU) result. Kept tiny: shader compilation on lavapipe takes minutes.

use burn::tensor::{Device, Tensor, TensorData};
use hitvideo_engine::device::{self, AdapterKind};

fn compute(device: &Device) -> Vec<f32> {
    // Same inputs on both devices: built from host data, not from a device RNG.
    let a: Vec<f32> = (0..64).map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0).collect();
    let b: Vec<f32> = (0..64).map(|i| ((i * 11 % 13) as f32 - 6.0) / 6.0).collect();
    let a = Tensor::<2>::from_data(TensorData::new(a, [8, 8]), device);
    let b = Tensor::<2>::from_data(TensorData::new(b, [8, 8]), device);
    let y = burn::tensor::activation::softmax(a.matmul(b).exp().mul_scalar(0.1), 1).sum_dim(0);
    y.into_data().try_to_vec::<f32>().unwrap_or_default()
}

#[test]
fn wgpu_matches_flex() {
    let adapters = device::list_adapters();
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if adapters.is_empty() {
        assert!(!ci, "CI must have a Vulkan adapter (mesa-vulkan-drivers); none found");
        eprintln!("skipping: no wgpu adapter on this machine");
        return;
    }
    eprintln!("adapters: {adapters:?}");
    let cpu = compute(&Device::flex());
    let gpu_choice = device::select(device::DeviceChoice::Gpu).unwrap();
    let gpu = compute(&gpu_choice.device);
    assert_eq!(cpu.len(), 8);
    assert_eq!(cpu.len(), gpu.len());
    for (c, g) in cpu.iter().zip(&gpu) {
        assert!((c - g).abs() <= 1e-4, "flex {cpu:?} vs wgpu {gpu:?}");
    }
    // `auto` never picks a software adapter.
    let auto = device::select(device::DeviceChoice::Auto).unwrap();
    if adapters.iter().all(|a| a.kind == AdapterKind::Software) {
        assert!(!auto.is_gpu);
    }
}

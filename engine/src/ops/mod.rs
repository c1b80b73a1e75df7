//! Tensor operations the engine defines itself, each with its own backward pass, through Burn's
//! backend-extension API (`Tensor::try_into_primitive` and the autodiff `Backward` trait).
//! Every op keeps Burn's mathematics and falls back to Burn's own op wherever it is not
//! measured faster.

pub mod attention;
pub mod conv;

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::tensor::FloatTensor;
use burn::backend::{DispatchDevice, Flex, GradientCheckpointingStrategy};
use burn::prelude::*;

/// The Flex autodiff backend the ops' own backward passes run on.
pub(crate) type FlexAd = Autodiff<Flex, NoCheckpointing>;

/// Whether tensors on `device` take the ops' own backward passes: Flex with autodiff and no
/// gradient checkpointing (the backend type [`FlexAd`] the primitives are converted to).
/// It reads the device's description only (no device is constructed), since inference calls it
/// once per block and token.
pub fn uses_fused_backward(device: &Device) -> bool {
    match device.as_dispatch() {
        DispatchDevice::Autodiff(ad) => {
            ad.gradient_checkpointing_strategy() == GradientCheckpointingStrategy::Disabled && matches!(&**ad, DispatchDevice::Flex(_))
        }
        _ => false,
    }
}

/// `t`'s primitive on [`FlexAd`]; only for tensors on a device where [`uses_fused_backward`] holds.
pub(crate) fn flex_ad<const D: usize>(t: Tensor<D>) -> FloatTensor<FlexAd> {
    t.try_into_primitive::<FlexAd>().expect("a tensor on the Flex autodiff device converts to its primitive")
}

/// Fixed pseudo-random test values (not the device's RNG, which tests running at once share).
#[cfg(test)]
pub(crate) fn test_values<const D: usize>(shape: [usize; D], seed: f32, device: &Device) -> Tensor<D> {
    let n = shape.iter().product::<usize>();
    let v: Vec<f32> = (0..n).map(|i| ((i as f32 + 0.37 * seed) * 12.9898).sin()).collect();
    Tensor::from_data(burn::tensor::TensorData::new(v, shape), device)
}

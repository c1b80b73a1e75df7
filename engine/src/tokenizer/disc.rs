//! 3D patch discriminator for the adversarial loss: strided 3D convolutions that score
//! overlapping space-time patches as real or reconstructed.

use burn::nn::conv::{Conv3d, Conv3dConfig};
use burn::nn::{GroupNorm, PaddingConfig3d};
use burn::prelude::*;
use burn::tensor::activation::leaky_relu;

use super::blocks::group_norm;

/// The discriminator network.
#[derive(Module, Debug)]
pub struct Discriminator {
    c1: Conv3d,
    c2: Conv3d,
    n2: GroupNorm,
    c3: Conv3d,
}

impl Discriminator {
    /// Width `d` for the first layer, `2d` for the second.
    pub fn new(d: usize, device: &Device) -> Self {
        let conv = |i: usize, o: usize, k: usize, s: usize| {
            Conv3dConfig::new([i, o], [k, k, k]).with_stride([s, s, s]).with_padding(PaddingConfig3d::Explicit(1, 1, 1)).init(device)
        };
        Self { c1: conv(3, d, 4, 2), c2: conv(d, 2 * d, 4, 2), n2: group_norm(2 * d, device), c3: conv(2 * d, 1, 3, 1) }
    }

    /// Video `[B, 3, T, H, W]` -> patch logits `[B, 1, T/4, H/4, W/4]`.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let h = leaky_relu(self.c1.forward(x), 0.2);
        let h = leaky_relu(self.n2.forward(self.c2.forward(h)), 0.2);
        self.c3.forward(h)
    }
}

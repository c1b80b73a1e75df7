//! Causal 3D convolution building blocks. Burn's `Conv3d` pads symmetrically, so time is
//! padded here explicitly on the past side only (replicating the first frame); space is
//! zero-padded by the convolution. Normalization is per frame for the same reason.

use burn::nn::PaddingConfig3d;
use burn::nn::conv::{Conv3d, Conv3dConfig};
use burn::nn::{GroupNorm, GroupNormConfig};
use burn::prelude::*;
use burn::tensor::activation::silu;
use burn::tensor::ops::{ConvOptions, PadMode};

/// A 3D convolution that never looks at future frames.
#[derive(Module, Debug)]
pub struct CausalConv3d {
    conv: Conv3d,
    /// Frames of past padding (`kernel_t - stride_t`).
    pad_t: usize,
}

impl CausalConv3d {
    /// `kernel` is cubic; `stride` is `[t, h, w]`.
    pub fn new(c_in: usize, c_out: usize, kernel: usize, stride: [usize; 3], device: &Device) -> Self {
        let pad_hw = kernel / 2;
        // Space is zero-padded by the convolution itself (no padded copy of the input, nor of its
        // gradient); the padding is not part of the saved weights.
        let conv = Conv3dConfig::new([c_in, c_out], [kernel, kernel, kernel])
            .with_stride(stride)
            .with_padding(PaddingConfig3d::Explicit(0, pad_hw, pad_hw))
            .init(device);
        Self { conv, pad_t: kernel.saturating_sub(stride[0]) }
    }

    /// `[B, C_in, T, H, W]` -> `[B, C_out, T / s_t, H / s_h, W / s_w]`.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let x = if self.pad_t > 0 { x.pad([(self.pad_t, 0), (0, 0), (0, 0)], PadMode::Edge) } else { x };
        conv3d(&self.conv, x)
    }
}

/// `conv.forward(x)` through `ops::conv::conv3d`: Burn's convolution with a faster weight
/// gradient when training on the CPU (issue 22), with the module's weights and options. A module
/// without a bias or with `Same` padding takes `conv.forward`.
pub fn conv3d(conv: &Conv3d, x: Tensor<5>) -> Tensor<5> {
    let padding = match conv.padding {
        PaddingConfig3d::Explicit(t, h, w) => [t, h, w],
        PaddingConfig3d::Valid => [0, 0, 0],
        PaddingConfig3d::Same => return conv.forward(x),
    };
    match &conv.bias {
        Some(bias) => crate::ops::conv::conv3d(x, conv.weight.val(), bias.val(), ConvOptions::new(conv.stride, padding, conv.dilation, conv.groups)),
        None => conv.forward(x),
    }
}

/// Group norm with up to 8 groups that divide the channels.
pub fn group_norm(channels: usize, device: &Device) -> GroupNorm {
    let groups = [8, 4, 2, 1].into_iter().find(|g| channels.is_multiple_of(*g)).unwrap_or(1);
    GroupNormConfig::new(groups, channels).init(device)
}

/// Group norm applied to each frame on its own, so statistics never mix in future frames:
/// `[B, C, T, H, W]` -> same shape. The statistics are taken over `[C/G, H, W]` of each group and
/// frame in place (the tensor viewed as `[B, G, C/G, T, H W]`), with `norm`'s epsilon and affine
/// parameters: the same mathematics as `norm` on frames stacked into the batch, without the
/// two transposed copies (and their gradients) that stacking takes.
pub fn frame_norm(norm: &GroupNorm, x: Tensor<5>) -> Tensor<5> {
    let [b, c, t, h, w] = x.dims();
    let g = norm.num_groups;
    let y = x.reshape([b, g, c / g, t, h * w]);
    // [B, G, 1, T, 1]: per group and frame.
    let mean = y.clone().mean_dim(4).mean_dim(2);
    let centred = y - mean;
    let var = centred.clone().square().mean_dim(4).mean_dim(2);
    let normed = (centred / var.add_scalar(norm.epsilon).sqrt()).reshape([b, c, t, h, w]);
    match (&norm.gamma, &norm.beta) {
        (Some(gamma), Some(beta)) => normed * gamma.val().reshape([1, c, 1, 1, 1]) + beta.val().reshape([1, c, 1, 1, 1]),
        _ => normed,
    }
}

/// Pre-activation ResNet block: GN, SiLU, causal conv, GN, SiLU, causal conv, plus a 1x1x1
/// projection of the input when the width changes.
#[derive(Module, Debug)]
pub struct ResBlock {
    norm1: GroupNorm,
    conv1: CausalConv3d,
    norm2: GroupNorm,
    conv2: CausalConv3d,
    skip: Option<Conv3d>,
}

impl ResBlock {
    pub fn new(c_in: usize, c_out: usize, device: &Device) -> Self {
        Self {
            norm1: group_norm(c_in, device),
            conv1: CausalConv3d::new(c_in, c_out, 3, [1, 1, 1], device),
            norm2: group_norm(c_out, device),
            conv2: CausalConv3d::new(c_out, c_out, 3, [1, 1, 1], device),
            skip: (c_in != c_out).then(|| Conv3dConfig::new([c_in, c_out], [1, 1, 1]).init(device)),
        }
    }

    /// `[B, C_in, T, H, W]` -> `[B, C_out, T, H, W]`.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let h = self.conv1.forward(silu(frame_norm(&self.norm1, x.clone())));
        let h = self.conv2.forward(silu(frame_norm(&self.norm2, h)));
        let skip = match &self.skip {
            Some(s) => conv3d(s, x),
            None => x,
        };
        skip + h
    }
}

/// Nearest-neighbour upsampling by integer factors `[t, h, w]`:
/// `[B, C, T, H, W]` -> `[B, C, T*f_t, H*f_h, W*f_w]`.
pub fn upsample(x: Tensor<5>, f: [usize; 3]) -> Tensor<5> {
    let [b, c, t, h, w] = x.dims();
    let mut x = x;
    if f[0] > 1 {
        x = x.unsqueeze_dim::<6>(3).repeat_dim(3, f[0]).reshape([b, c, t * f[0], h, w]);
    }
    let t = t * f[0];
    if f[1] > 1 {
        x = x.unsqueeze_dim::<6>(4).repeat_dim(4, f[1]).reshape([b, c, t, h * f[1], w]);
    }
    let h = h * f[1];
    if f[2] > 1 {
        x = x.unsqueeze_dim::<6>(5).repeat_dim(5, f[2]).reshape([b, c, t, h, w * f[2]]);
    }
    x
}

/// SiLU after per-frame group norm, the usual head of a conv stack.
pub fn norm_act(norm: &GroupNorm, x: Tensor<5>) -> Tensor<5> {
    silu(frame_norm(norm, x))
}

/// Lossless space-to-depth: `[B, C, T, H, W]` -> `[B, C p_t p_s², T/p_t, H/p_s, W/p_s]`.
pub fn space_to_depth(x: Tensor<5>, pt: usize, ps: usize) -> Tensor<5> {
    if pt == 1 && ps == 1 {
        return x;
    }
    let [b, c, t, h, w] = x.dims();
    x.reshape([b, c, t / pt, pt, h / ps, ps, w / ps, ps]).permute([0, 1, 3, 5, 7, 2, 4, 6]).reshape([b, c * pt * ps * ps, t / pt, h / ps, w / ps])
}

/// The inverse of [`space_to_depth`]: `[B, C p_t p_s², T', H', W']` -> `[B, C, T' p_t, H' p_s, W' p_s]`.
pub fn depth_to_space(x: Tensor<5>, pt: usize, ps: usize) -> Tensor<5> {
    if pt == 1 && ps == 1 {
        return x;
    }
    let [b, cp, t, h, w] = x.dims();
    let c = cp / (pt * ps * ps);
    x.reshape([b, c, pt, ps, ps, t, h, w]).permute([0, 1, 5, 2, 6, 3, 7, 4]).reshape([b, c, t * pt, h * ps, w * ps])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_norm_equals_group_norm_on_frames_stacked_into_the_batch() {
        let device = Device::flex();
        let x = Tensor::<5>::random([2, 8, 3, 4, 5], burn::tensor::Distribution::Normal(0.5, 2.0), &device);
        let mut norm = group_norm(8, &device);
        norm.gamma = Some(burn::module::Param::from_tensor(Tensor::<1>::random([8], burn::tensor::Distribution::Normal(1.0, 0.3), &device)));
        norm.beta = Some(burn::module::Param::from_tensor(Tensor::<1>::random([8], burn::tensor::Distribution::Normal(0.0, 0.3), &device)));
        let [b, c, t, h, w] = x.dims();
        let stacked = norm.forward(x.clone().swap_dims(1, 2).reshape([b * t, c, h, w])).reshape([b, t, c, h, w]).swap_dims(1, 2);
        let ours = frame_norm(&norm, x);
        let (a, e) = (
            ours.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 values"),
            stacked.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 values"),
        );
        assert_eq!(a.len(), e.len());
        let worst = a.iter().zip(&e).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-4, "largest difference {worst}");
    }

    #[test]
    fn depth_to_space_inverts_space_to_depth() {
        let device = Device::flex();
        let x = Tensor::<5>::random([2, 3, 4, 8, 8], burn::tensor::Distribution::Default, &device);
        let y = space_to_depth(x.clone(), 2, 4);
        assert_eq!(y.dims(), [2, 96, 2, 2, 2]);
        let back = depth_to_space(y, 2, 4);
        let (a, b) = (
            x.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 values"),
            back.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 values"),
        );
        assert_eq!(a, b);
    }
}

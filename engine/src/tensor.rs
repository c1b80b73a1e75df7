//! Conversions between host-side clips and tensors, shared by every layer above (inference,
//! training, evaluation).

use burn::prelude::*;

use crate::video::Video;

/// Clips (`[T, H, W, 3]` u8 each) -> `[B, 3, T, H, W]` in `[-1, 1]`.
pub fn to_tensor(clips: &[Video], device: &Device) -> Tensor<5> {
    let (t, h, w) = (clips[0].len(), clips[0].height() as usize, clips[0].width() as usize);
    let data: Vec<f32> = clips.iter().flat_map(|c| c.as_bytes().iter().map(|&v| f32::from(v) / 127.5 - 1.0)).collect();
    Tensor::<5>::from_data(TensorData::new(data, [clips.len(), t, h, w, 3]), device).permute([0, 4, 1, 2, 3])
}

/// `[B, 3, T, H, W]` in `[-1, 1]` -> clips at `fps`.
pub fn to_videos(x: Tensor<5>, fps: f64) -> Vec<Video> {
    let [b, _, t, h, w] = x.dims();
    let data = x.permute([0, 2, 3, 4, 1]).add_scalar(1.0).mul_scalar(0.5).clamp(0.0, 1.0).into_data().try_to_vec::<f32>().unwrap_or_default();
    let per = t * h * w * 3;
    (0..b).filter_map(|i| data.get(i * per..(i + 1) * per)).filter_map(|d| Video::from_f32(w as u32, h as u32, fps, d).ok()).collect()
}

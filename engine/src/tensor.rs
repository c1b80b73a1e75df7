//! Conversions between host-side clips and tensors, and reading tensors back to the host,
//! shared by every layer above (inference, training, evaluation). A read converts to the
//! host type first (a half-precision tensor reads as f32), and a failed read is an error,
//! never an empty or default value.

use burn::prelude::*;

use crate::video::Video;

/// A tensor could not be read back to the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read {what} back from the device: {reason}")]
pub struct ReadError {
    /// What was read ("token ids", "decoded frames", ...).
    pub what: &'static str,
    pub reason: String,
}

/// The values of a float tensor as f32, row-major.
pub fn floats<const D: usize>(t: Tensor<D>, what: &'static str) -> Result<Vec<f32>, ReadError> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().map_err(|e| ReadError { what, reason: format!("{e:?}") })
}

/// The values of an integer tensor as i64, row-major.
pub fn ints<const D: usize>(t: Tensor<D, Int>, what: &'static str) -> Result<Vec<i64>, ReadError> {
    t.into_data().convert::<i64>().try_to_vec::<i64>().map_err(|e| ReadError { what, reason: format!("{e:?}") })
}

/// Token ids (`[B, t, h, w]` or any shape) as u32, row-major; an id outside u32 is an error.
pub fn ids<const D: usize>(t: Tensor<D, Int>, what: &'static str) -> Result<Vec<u32>, ReadError> {
    ints(t, what)?.into_iter().map(|v| u32::try_from(v).map_err(|_| ReadError { what, reason: format!("id {v} is outside 0..2^32") })).collect()
}

/// Clips (`[T, H, W, 3]` u8 each) -> `[B, 3, T, H, W]` in `[-1, 1]`.
pub fn to_tensor(clips: &[Video], device: &Device) -> Tensor<5> {
    let (t, h, w) = (clips[0].len(), clips[0].height() as usize, clips[0].width() as usize);
    let data: Vec<f32> = clips.iter().flat_map(|c| c.as_bytes().iter().map(|&v| f32::from(v) / 127.5 - 1.0)).collect();
    Tensor::<5>::from_data(TensorData::new(data, [clips.len(), t, h, w, 3]), device).permute([0, 4, 1, 2, 3])
}

/// `[B, 3, T, H, W]` in `[-1, 1]` -> `B` clips at `fps`.
pub fn to_videos(x: Tensor<5>, fps: f64) -> Result<Vec<Video>, ReadError> {
    let [b, _, t, h, w] = x.dims();
    let data = floats(x.permute([0, 2, 3, 4, 1]).add_scalar(1.0).mul_scalar(0.5).clamp(0.0, 1.0), "decoded frames")?;
    let per = t * h * w * 3;
    if data.len() != b * per {
        return Err(ReadError { what: "decoded frames", reason: format!("{} values for {b} clips of {t}x{h}x{w}x3", data.len()) });
    }
    data.chunks_exact(per.max(1))
        .take(b)
        .map(|d| Video::from_f32(w as u32, h as u32, fps, d).map_err(|e| ReadError { what: "decoded frames", reason: e.to_string() }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_round_trip_and_reads_convert() {
        let device = Device::flex();
        let v = Video::from_raw(4, 2, 8.0, (0..4 * 2 * 3 * 3).map(|i| (i * 7 % 256) as u8).collect()).expect("clip");
        let back = to_videos(to_tensor(&[v.clone(), v.clone()], &device), 8.0).expect("read");
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].as_bytes(), v.as_bytes());
        let half = Tensor::<1>::from_data(TensorData::new(vec![0.5f32, 2.0], [2]), &device).cast(burn::tensor::DType::F16);
        assert_eq!(floats(half, "a half tensor").expect("converted"), vec![0.5, 2.0]);
        let ints_t = Tensor::<1, Int>::from_data(TensorData::new(vec![3i64, -1], [2]), &device);
        assert_eq!(ints(ints_t.clone(), "ids").expect("ints"), vec![3, -1]);
        let err = ids(ints_t, "token ids").expect_err("negative id");
        assert!(err.to_string().contains("cannot read token ids") && err.reason.contains("-1"), "{err}");
    }
}

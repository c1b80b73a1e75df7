//! Batches of clips for training: rendered synthetic shapes (train split, validation on the
//! held-out splits) or windows of an imported dataset (decoded once, kept in memory).

use std::path::Path;

use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::dataset::index::{DatasetIndex, DatasetKind};
use crate::dataset::synth::{self, Split, SynthConfig};
use crate::video::{self, DecodeOptions, Video, WindowSpec};

/// A source of fixed-size clips.
pub enum ClipSource {
    Synthetic { config: SynthConfig, train: Vec<usize>, val: Vec<usize> },
    Windows { train: Vec<Video>, val: Vec<Video> },
}

/// Frames x pixels an imported dataset held in memory may have in all (3 GiB of RGB).
pub const DATASET_PIXELS: u64 = 1 << 30;

/// Errors preparing training data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Index(#[from] crate::dataset::index::IndexError),
    #[error(transparent)]
    Video(#[from] crate::video::VideoError),
    #[error("{0}")]
    Invalid(String),
}

impl ClipSource {
    /// Synthetic shapes at the tokenizer's geometry: `count` clips of dataset `seed`.
    pub fn synthetic(count: usize, seed: u64, frames: usize, size: usize, fps: f64) -> Self {
        let config = SynthConfig { count, seed, render: crate::dataset::shapes::RenderConfig { frames, size: size as u32, fps }, ..SynthConfig::default() };
        let (mut train, mut val) = (Vec::new(), Vec::new());
        for it in synth::items(&config) {
            match it.split {
                Split::Train => train.push(it.index),
                // Validation on clips never trained on, unseen combinations included.
                _ => val.push(it.index),
            }
        }
        Self::Synthetic { config, train, val }
    }

    /// Windows of `frames` frames of every clip of a dataset folder, cropped to `size`; every
    /// tenth window is kept for validation.
    pub fn dataset(dir: &Path, frames: usize, size: usize, fps: f64) -> Result<Self, DataError> {
        let index = DatasetIndex::read(dir)?;
        if let DatasetKind::Synthetic { config } = index.header.kind {
            return Ok(Self::synthetic(config.count, config.seed, frames, size, fps));
        }
        let mut all = Vec::new();
        // The whole dataset is held in memory: its frames x pixels are bounded as one operation.
        let mut pixels = 0u64;
        for item in &index.items {
            let Some(path) = &item.path else { continue };
            let opts = DecodeOptions {
                fps: Some(fps),
                size: Some((size as u32, size as u32)),
                start: item.start.unwrap_or(0.0),
                end: item.end,
                ..DecodeOptions::default()
            };
            let clip = video::decode(Path::new(path), &opts)?;
            pixels = pixels.saturating_add(clip.len() as u64 * (size * size) as u64);
            if pixels > DATASET_PIXELS {
                return Err(DataError::Invalid(format!(
                    "{}: the clips up to {path} hold more than {DATASET_PIXELS} pixels at {size}x{size}, the limit for a dataset held in memory; \
                     import fewer or shorter clips (or give start/end times in a manifest)",
                    dir.display()
                )));
            }
            all.extend(video::windows(&clip, WindowSpec { frames, stride: frames })?);
        }
        if all.len() < 2 {
            return Err(DataError::Invalid(format!("{}: fewer than 2 windows of {frames} frames; add longer clips", dir.display())));
        }
        let (mut train, mut val) = (Vec::new(), Vec::new());
        for (i, w) in all.into_iter().enumerate() {
            if i % 10 == 9 { val.push(w) } else { train.push(w) }
        }
        if val.is_empty() {
            val.push(train[train.len() - 1].clone());
        }
        Ok(Self::Windows { train, val })
    }

    pub fn train_len(&self) -> usize {
        match self {
            Self::Synthetic { train, .. } => train.len(),
            Self::Windows { train, .. } => train.len(),
        }
    }

    pub fn val_len(&self) -> usize {
        match self {
            Self::Synthetic { val, .. } => val.len(),
            Self::Windows { val, .. } => val.len(),
        }
    }

    fn clip(&self, i: usize, val: bool) -> Video {
        match self {
            Self::Synthetic { config, train, val: v } => {
                let list = if val { v } else { train };
                synth::item(config, list[i % list.len()]).render(&config.render)
            }
            Self::Windows { train, val: v } => {
                let list = if val { v } else { train };
                list[i % list.len()].clone()
            }
        }
    }

    /// The training batch of `step`: `batch` clips drawn with a generator seeded by
    /// `(seed, step)`, so a resumed run sees the same batches. `[B, 3, T, H, W]` in `[-1, 1]`.
    pub fn train_batch(&self, step: usize, batch: usize, seed: u64, device: &Device) -> Tensor<5> {
        to_tensor(&self.train_clips(step, batch, seed), device)
    }

    /// The clips of [`Self::train_batch`], host-side (what a prefetch thread prepares).
    pub fn train_clips(&self, step: usize, batch: usize, seed: u64) -> Vec<Video> {
        let mut rng = ChaCha8Rng::seed_from_u64(synth::item_seed(seed ^ 0x7472_6169_6e00, step));
        let n = self.train_len().max(1);
        (0..batch).map(|_| self.clip(rng.random_range(0..n), false)).collect()
    }

    /// Validation clips `range`, `[B, 3, T, H, W]` in `[-1, 1]`.
    pub fn val_batch(&self, range: std::ops::Range<usize>, device: &Device) -> Tensor<5> {
        let clips: Vec<Video> = range.map(|i| self.clip(i, true)).collect();
        to_tensor(&clips, device)
    }
}

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

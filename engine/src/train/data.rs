//! Batches of clips for training: rendered synthetic shapes (train split, validation on the
//! held-out splits), clips of the photo world (validation on held-out photographs), windows of
//! an imported dataset's videos (decoded on demand, split by clip), or a mix of these.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::dataset::index::{DatasetIndex, DatasetKind};
use crate::dataset::photos::{PhotoLibrary, PhotoWorld};
use crate::dataset::stream::{StreamError, StreamSource};
use crate::dataset::synth::{self, Split, SynthConfig};
use crate::tensor::to_tensor;
use crate::video::Video;

/// Validation clips of the photo world (drawn from the held-out photographs).
pub const PHOTO_VAL_CLIPS: usize = 64;

/// A source of fixed-size clips.
pub enum ClipSource {
    Synthetic {
        config: SynthConfig,
        train: Vec<usize>,
        val: Vec<usize>,
    },
    /// The photo world of `seed`.
    Photos {
        world: PhotoWorld,
        seed: u64,
    },
    /// An imported dataset's videos, decoded a window at a time.
    Stream(StreamSource),
    /// Each training clip from one of these, chosen at random in proportion to its weight;
    /// validation clips in turn.
    Mix(Vec<(ClipSource, f64)>),
}

/// Errors preparing training data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Index(#[from] crate::dataset::index::IndexError),
    #[error(transparent)]
    Video(#[from] crate::video::VideoError),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error(transparent)]
    Photos(#[from] crate::dataset::photos::PhotoError),
    #[error("{0}")]
    Invalid(String),
}

/// Where training clips come from, as the CLI and the studio name them: `shapes` (the
/// synthetic world), `photos` (the photo world) or a dataset folder.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum DataKind {
    Shapes { count: usize, seed: u64 },
    Photos { seed: u64 },
    Folder(PathBuf),
}

/// One source of a mix and its share of the training clips (relative to the others).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DataSpec {
    pub kind: DataKind,
    pub weight: f64,
}

impl DataSpec {
    /// Parses one `--data` value: `shapes`, `photos` or a folder, with an optional weight
    /// after `@` (`my_videos/@0.25`; 1 when absent).
    pub fn parse(text: &str, shapes_count: usize, seed: u64) -> Result<Self, DataError> {
        let (name, weight) = match text.rsplit_once('@') {
            Some((name, w)) => match w.parse::<f64>() {
                Ok(w) if w.is_finite() && w > 0.0 => (name, w),
                _ => return Err(DataError::Invalid(format!("'{text}': the weight after '@' must be a positive number (as in my_videos/@0.25)"))),
            },
            None => (text, 1.0),
        };
        let kind = match name {
            "shapes" => DataKind::Shapes { count: shapes_count, seed },
            "photos" => DataKind::Photos { seed },
            dir => DataKind::Folder(PathBuf::from(dir)),
        };
        Ok(Self { kind, weight })
    }
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

    /// The photo world of `seed` over the installed photographs (see
    /// [`crate::dataset::photos::default_dirs`]).
    pub fn photos(seed: u64, frames: usize, size: usize, fps: f64) -> Result<Self, DataError> {
        let lib = PhotoLibrary::load(&crate::dataset::photos::default_dirs())?;
        Ok(Self::Photos { world: PhotoWorld::new(Arc::new(lib), frames, size, fps), seed })
    }

    /// A dataset folder: a synthetic one renders its shapes, an imported one streams windows
    /// of its videos.
    pub fn dataset(dir: &Path, frames: usize, size: usize, fps: f64) -> Result<Self, DataError> {
        let index = DatasetIndex::read(dir)?;
        if let DatasetKind::Synthetic { config } = index.header.kind {
            return Ok(Self::synthetic(config.count, config.seed, frames, size, fps));
        }
        Ok(Self::Stream(StreamSource::from_index(dir, frames, size, fps)?))
    }

    /// The sources `specs` name, mixed when there are several.
    pub fn from_specs(specs: &[DataSpec], frames: usize, size: usize, fps: f64) -> Result<Self, DataError> {
        let mut parts = specs
            .iter()
            .map(|s| {
                let source = match &s.kind {
                    DataKind::Shapes { count, seed } => Self::synthetic(*count, *seed, frames, size, fps),
                    DataKind::Photos { seed } => Self::photos(*seed, frames, size, fps)?,
                    DataKind::Folder(dir) => Self::dataset(dir, frames, size, fps)?,
                };
                Ok((source, s.weight))
            })
            .collect::<Result<Vec<_>, DataError>>()?;
        match parts.len() {
            0 => Err(DataError::Invalid("no data source given".into())),
            1 => Ok(parts.remove(0).0),
            _ => Ok(Self::Mix(parts)),
        }
    }

    /// Sends the lines about clips that fail mid-training to `path` (the run's `errors.log`).
    pub fn set_error_log(&self, path: &Path) {
        match self {
            Self::Stream(s) => s.set_error_log(path.to_path_buf()),
            Self::Mix(parts) => parts.iter().for_each(|(p, _)| p.set_error_log(path)),
            _ => {}
        }
    }

    /// Distinct training clips (the photo world's are unbounded: `usize::MAX`).
    pub fn train_len(&self) -> usize {
        match self {
            Self::Synthetic { train, .. } => train.len(),
            Self::Photos { world, .. } => {
                if world.library.split(false).is_empty() {
                    0
                } else {
                    usize::MAX
                }
            }
            Self::Stream(s) => s.train.len(),
            Self::Mix(parts) => parts.iter().map(|(p, _)| p.train_len()).fold(0, usize::saturating_add),
        }
    }

    pub fn val_len(&self) -> usize {
        match self {
            Self::Synthetic { val, .. } => val.len(),
            Self::Photos { .. } => PHOTO_VAL_CLIPS,
            Self::Stream(s) => s.val_len(),
            Self::Mix(parts) => parts.iter().map(|(p, _)| p.val_len()).sum(),
        }
    }

    /// One line for logs: what the clips are.
    pub fn describe(&self) -> String {
        match self {
            Self::Synthetic { train, val, .. } => format!("shapes: {} training clips, {} validation clips", train.len(), val.len()),
            Self::Photos { world, seed } => format!(
                "photo world (seed {seed}): {} training and {} validation photographs, {PHOTO_VAL_CLIPS} validation clips",
                world.library.split(false).len(),
                world.library.split(true).len()
            ),
            Self::Stream(s) => format!("videos: {} training clips, {} validation clips ({} windows)", s.train.len(), s.val.len(), s.val_len()),
            Self::Mix(parts) => {
                let total: f64 = parts.iter().map(|(_, w)| w).sum();
                let each: Vec<String> = parts.iter().map(|(p, w)| format!("{:.0}% {}", 100.0 * w / total, p.describe())).collect();
                format!("a mix of {}", each.join("; "))
            }
        }
    }

    /// One training clip drawn with `rng`.
    fn train_clip(&self, rng: &mut ChaCha8Rng) -> Result<Video, DataError> {
        Ok(match self {
            Self::Synthetic { config, train, .. } => synth::item(config, train[rng.random_range(0..train.len())]).render(&config.render),
            Self::Photos { world, seed } => world.clip(*seed, rng.random(), false),
            Self::Stream(s) => s.train_windows(rng, 1)?.remove(0),
            Self::Mix(parts) => {
                let total: f64 = parts.iter().map(|(_, w)| w).sum();
                let mut pick = rng.random_range(0.0..total);
                let part = parts.iter().find(|(_, w)| {
                    pick -= w;
                    pick < 0.0
                });
                part.unwrap_or(&parts[parts.len() - 1]).0.train_clip(rng)?
            }
        })
    }

    /// Validation clip `i` (`i < val_len()`).
    fn val_clip(&self, i: usize) -> Result<Video, DataError> {
        Ok(match self {
            Self::Synthetic { config, val, .. } => {
                let Some(&index) = val.get(i % val.len().max(1)) else {
                    return Err(DataError::Invalid(format!("the synthetic set of {} clips keeps none for validation; use at least 10 clips", config.count)));
                };
                synth::item(config, index).render(&config.render)
            }
            Self::Photos { world, seed } => world.clip(*seed, i as u64, true),
            Self::Stream(s) => s.val_window(i)?,
            Self::Mix(parts) => {
                // In turn across the parts (round r takes clip r of every part that has one), so
                // the first clips of a short validation cover every part.
                let (mut i, mut round) = (i, 0);
                loop {
                    let with: Vec<&ClipSource> = parts.iter().map(|(p, _)| p).filter(|p| p.val_len() > round).collect();
                    if with.is_empty() {
                        return Err(DataError::Invalid(format!("validation clip {i} is past the mix's {} clips", self.val_len())));
                    }
                    if i < with.len() {
                        return with[i].val_clip(round);
                    }
                    i -= with.len();
                    round += 1;
                }
            }
        })
    }

    /// The training batch of `step`: `batch` clips drawn with a generator seeded by
    /// `(seed, step)`, so a resumed run sees the same batches. `[B, 3, T, H, W]` in `[-1, 1]`.
    pub fn train_batch(&self, step: usize, batch: usize, seed: u64, device: &Device) -> Result<Tensor<5>, DataError> {
        Ok(to_tensor(&self.train_clips(step, batch, seed)?, device))
    }

    /// The clips of [`Self::train_batch`], host-side (what a prefetch thread prepares).
    pub fn train_clips(&self, step: usize, batch: usize, seed: u64) -> Result<Vec<Video>, DataError> {
        let mut rng = ChaCha8Rng::seed_from_u64(synth::item_seed(seed ^ 0x7472_6169_6e00, step));
        (0..batch).map(|_| self.train_clip(&mut rng)).collect()
    }

    /// The training batches of steps `steps` (as [`Self::train_batch`] makes them), rendered or
    /// cut on a thread of `scope` up to `ahead` steps ahead while the caller computes (bounded:
    /// the queue holds at most `ahead` batches). The returned function gives step `s`'s batch;
    /// a step asked out of order is made on the caller's thread, so the batches are the same
    /// whoever makes them.
    pub fn prefetch<'scope>(
        &'scope self,
        scope: &'scope std::thread::Scope<'scope, '_>,
        steps: std::ops::Range<usize>,
        batch: usize,
        seed: u64,
        ahead: usize,
        device: Device,
    ) -> impl FnMut(usize) -> Result<Tensor<5>, DataError> + 'scope {
        let (tx, batches) = std::sync::mpsc::sync_channel(ahead.max(1));
        scope.spawn(move || {
            for s in steps {
                if tx.send((s, self.train_clips(s, batch, seed))).is_err() {
                    break;
                }
            }
        });
        move |step| match batches.recv() {
            Ok((s, clips)) if s == step => Ok(to_tensor(&clips?, &device)),
            _ => self.train_batch(step, batch, seed, &device),
        }
    }

    /// Validation clips `range`, host-side.
    pub fn val_clips(&self, range: std::ops::Range<usize>) -> Result<Vec<Video>, DataError> {
        range.map(|i| self.val_clip(i)).collect()
    }

    /// Validation clips `range`, `[B, 3, T, H, W]` in `[-1, 1]`.
    pub fn val_batch(&self, range: std::ops::Range<usize>, device: &Device) -> Result<Tensor<5>, DataError> {
        Ok(to_tensor(&self.val_clips(range)?, device))
    }
}

//! Large results that travel through latest-value slots (see [`super::slot::Slot`]).

use std::sync::Arc;

pub use hitvideo_engine::service::tokens::{LayerTokens, MaskView, Masks, TokenView};
use hitvideo_engine::video::Video;

use super::protocol::{GenerateRequest, JobId};
use super::slot::Slot;
use hitvideo_engine::eval::sweep::{AxisValues, SweepCell};

/// Two rows of clips at a training checkpoint: validation clips over their reconstructions
/// (tokenizer runs), or the tokenizer's reconstruction of validation items over clips sampled
/// from their captions (generator runs).
#[derive(Debug, Clone)]
pub struct TrainStrip {
    pub job: JobId,
    pub step: usize,
    /// What the strip shows, e.g. "reconstructions (top: validation clips, bottom: decoded)".
    pub title: String,
    /// One caption per column (empty when the clips have none).
    pub captions: Vec<String>,
    pub originals: Vec<Video>,
    pub recon: Vec<Video>,
}

/// A clip run through the tokenizer: the engine's [`TokenView`] (its fields read through
/// `Deref`), the job and the tokenizer's label.
#[derive(Debug, Clone)]
pub struct TokenPayload {
    pub job: JobId,
    /// The tokenizer, as the engine describes it.
    pub tokenizer: String,
    pub view: TokenView,
}

impl std::ops::Deref for TokenPayload {
    type Target = TokenView;
    fn deref(&self) -> &TokenView {
        &self.view
    }
}

/// Generated clips so far (coarse-to-fine: replaced after every finished layer).
#[derive(Debug, Clone)]
pub struct ClipPayload {
    pub job: JobId,
    pub request: GenerateRequest,
    /// One clip per seed, decoded from `layers_done` layers.
    pub videos: Vec<Arc<Video>>,
    /// Token ids per seed, sequence order (all layers done so far).
    pub tokens: Vec<Vec<u32>>,
    pub layers_done: usize,
    pub layers_total: usize,
    /// Model descriptions.
    pub models: Vec<(String, String)>,
    /// Per seed, the engine's export metadata (settings, model checksums, tokens); filled
    /// once every layer is done.
    pub metas: Vec<hitvideo_engine::video::ExportMetadata>,
}

/// A grid over two sampling parameters, filled cell by cell
/// (`cells[ri * columns.len() + ci]`).
#[derive(Debug, Clone)]
pub struct SweepPayload {
    pub job: JobId,
    pub prompt: String,
    pub rows: AxisValues,
    pub columns: AxisValues,
    pub cells: Vec<Option<SweepCell>>,
}

impl SweepPayload {
    /// The cell at row `ri`, column `ci` (`None` until it is done).
    pub fn cell(&self, ri: usize, ci: usize) -> Option<&SweepCell> {
        self.cells.get(ri * self.columns.len() + ci)?.as_ref()
    }
}

/// Which slot a payload went to (see [`Slots`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotName {
    TrainStrip,
    Tokens,
    Clip,
    Sweep,
}

/// The latest-value slots the engine writes and the UI reads.
#[derive(Clone, Default)]
pub struct Slots {
    pub train_strip: Slot<TrainStrip>,
    pub tokens: Slot<TokenPayload>,
    pub clip: Slot<ClipPayload>,
    pub sweep: Slot<SweepPayload>,
}

//! Opening an exported clip in the Generate view: its metadata is read on a short-lived thread
//! (probing an MP4 takes a moment, and the engine thread may be busy training), then the view
//! restores the settings and asks the engine thread to decode the file's tokens.

use crate::studio::error::FileError;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use eframe::egui;
use hitvideo_engine::generator::pipeline::tokens_from_metadata;
use hitvideo_engine::video::ExportMetadata;
use hitvideo_engine::video::meta::read_metadata;

use crate::studio::jobs::DecodeRequest;
use crate::studio::settings::GenerateSettings;

/// An exported file whose metadata is being read.
pub(super) struct Opening {
    pub path: PathBuf,
    rx: mpsc::Receiver<Result<ExportMetadata, FileError>>,
}

impl Opening {
    /// Starts reading `path`'s metadata (container tag or sidecar); `ctx` repaints when done.
    pub fn start(ctx: &egui::Context, path: PathBuf) -> Self {
        let (tx, rx) = mpsc::channel();
        let (file, ctx) = (path.clone(), ctx.clone());
        std::thread::spawn(move || {
            let _ = tx.send(read_metadata(&file).map(|(meta, _)| meta).map_err(FileError::from));
            ctx.request_repaint();
        });
        Self { path, rx }
    }

    /// The metadata once read, or why it could not be; `None` while reading.
    pub fn poll(&self) -> Option<Result<ExportMetadata, FileError>> {
        match self.rx.try_recv() {
            Ok(read) => Some(read),
            Err(mpsc::TryRecvError::Empty) => None,
            Err(mpsc::TryRecvError::Disconnected) => Some(Err(FileError::Lost(self.path.clone()))),
        }
    }
}

/// The decode of an opened file's tokens, made with the settings `s` restored from `meta`, or
/// why the file has no clip to decode.
pub(super) fn decode_request(path: &Path, meta: ExportMetadata, s: &GenerateSettings) -> Result<DecodeRequest, FileError> {
    let tokens = tokens_from_metadata(&meta).filter(|t| !t.is_empty()).ok_or_else(|| FileError::Unusable {
        path: path.to_path_buf(),
        reason: "it holds no generated tokens (clips made by the studio or `hitvideo generate` do), so there is no clip to re-roll",
    })?;
    let cfg = match &meta.cfg_schedule {
        Some(schedule) => schedule.clone(),
        None => s.schedule().map_err(|source| FileError::Settings { path: path.to_path_buf(), source })?,
    };
    let request = s.request_for(meta.prompt.clone().unwrap_or_else(|| s.prompt.clone()), meta.negative_prompt.clone(), vec![meta.seed.unwrap_or(s.seed)], cfg);
    Ok(DecodeRequest { source: path.to_path_buf(), request, tokens, meta: Box::new(meta) })
}

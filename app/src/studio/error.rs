//! Why a file the studio reads or writes (often on a helper thread) could not be used; every
//! message names the file and the way out. The views show `to_string()` of it.

use std::path::PathBuf;

use hitvideo_engine::video::VideoError;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Listing, reading or deleting failed; `what` says which, `hint` what to do.
    #[error("{}: cannot {what} ({source}){hint}", .path.display())]
    Io { path: PathBuf, what: &'static str, hint: &'static str, source: std::io::Error },
    /// A video or its metadata could not be decoded (the engine's message).
    #[error(transparent)]
    Video(#[from] VideoError),
    /// The helper thread ended without an answer.
    #[error("{}: the thread reading it stopped unexpectedly; open it again", .0.display())]
    Lost(PathBuf),
    /// The file was read but holds nothing the view can use.
    #[error("{}: {reason}", .path.display())]
    Unusable { path: PathBuf, reason: &'static str },
    /// The file's clip would be decoded with the current settings, which cannot be used (a
    /// per-layer CFG list being edited, say).
    #[error("{}: {source}", .path.display())]
    Settings { path: PathBuf, source: crate::studio::settings::SettingsError },
}

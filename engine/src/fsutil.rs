//! Durable file writes shared by every module that saves something.

use std::io::Write;
use std::path::{Path, PathBuf};

/// `dir/.name.partial.ext` for `dir/name.ext`: same folder (so the rename is atomic), same
/// extension (so FFmpeg picks the right muxer when it writes the temporary file itself).
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) => (s.to_string(), format!(".{e}")),
        None => (name.clone(), String::new()),
    };
    path.with_file_name(format!(".{stem}.partial{ext}"))
}

/// Writes `bytes` to `path` atomically: a temporary sibling, fsync, then rename, so a crash
/// never leaves a half-written file under the final name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_sibling(path);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

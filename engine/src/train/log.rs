//! Metrics as JSON lines: one object per record, appended and flushed, so a crash loses at most
//! the line being written and any tool can read the log while training runs.

use std::io::Write;
use std::path::{Path, PathBuf};

/// An append-only JSONL file.
pub struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsLog {
    /// Opens (creating or appending to) `path`.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self { path: path.to_path_buf(), file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record.
    pub fn write(&mut self, record: &impl serde::Serialize) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.flush()
    }
}

/// Reads every record of a metrics log (lines that do not parse, such as a torn last line, are
/// skipped).
pub fn read(path: &Path) -> std::io::Result<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
}

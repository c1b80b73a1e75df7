//! The dataset folder format shared by synthetic and imported datasets:
//! `dataset.json` (header), `index.jsonl` (one item a line) and `errors.jsonl` (items that
//! were rejected, with the reason). All three are written atomically.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::attributes::Attributes;
use super::synth::{Split, SynthConfig};

/// Bumped when the on-disk format changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;
pub const HEADER_FILE: &str = "dataset.json";
pub const INDEX_FILE: &str = "index.jsonl";
pub const ERRORS_FILE: &str = "errors.jsonl";

/// Where a dataset's clips come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum DatasetKind {
    /// Rendered on demand from the config: items carry their attributes and index.
    Synthetic { config: SynthConfig },
    /// User videos; `source` is the folder or manifest imported.
    Imported { source: String },
}

/// The `dataset.json` header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetHeader {
    pub format_version: u32,
    pub kind: DatasetKind,
    /// Frame rate clips are resampled to.
    pub fps: f64,
    /// Frame side clips are cropped and resized to.
    pub size: u32,
    /// Frames per training window.
    pub frames: usize,
    pub items: usize,
    pub errors: usize,
    pub created_by: String,
}

/// One clip of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexItem {
    /// Stable id: `synth-000042` or a path-derived name.
    pub id: String,
    pub caption: String,
    /// Video file (imported datasets), absolute or relative to the dataset folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<f64>,
    /// Frames available at the dataset's fps.
    pub frames: usize,
    /// Source frame size.
    pub width: u32,
    pub height: u32,
    /// SHA-256 of the source file (imported) — used to find duplicates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
    /// Ground truth (synthetic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Attributes>,
    /// Synthetic item number (render with `synth::item(config, index)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synth_index: Option<usize>,
}

/// A rejected item and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemError {
    /// The file (or manifest line) the error is about.
    pub source: String,
    /// A short class for summaries ("unreadable", "no caption", ...).
    pub kind: String,
    /// The full message, naming the file and the fix.
    pub message: String,
}

/// A dataset in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetIndex {
    pub header: DatasetHeader,
    pub items: Vec<IndexItem>,
    pub errors: Vec<ItemError>,
}

/// Errors reading or writing a dataset folder.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: not a HiTVideo dataset folder (no {HEADER_FILE}); create one with `hitvideo data synth` or `hitvideo data import`", .0.display())]
    NotADataset(PathBuf),
    #[error("{}:{line}: {reason}", .path.display())]
    Parse { path: PathBuf, line: usize, reason: String },
    #[error("{}: format version {found} is not supported (this build reads {FORMAT_VERSION})", .path.display())]
    Version { path: PathBuf, found: u32 },
}

fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<(), IndexError> {
    crate::fsutil::write_atomic(path, bytes).map_err(|source| IndexError::Io { path: path.to_path_buf(), source })
}

fn jsonl<T: Serialize>(rows: &[T]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in rows {
        if let Ok(line) = serde_json::to_string(r) {
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
    }
    out
}

fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, IndexError> {
    let text = match std::fs::read(path) {
        Ok(b) => String::from_utf8(b).map_err(|_| IndexError::Parse { path: path.to_path_buf(), line: 0, reason: "not valid UTF-8".into() })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(IndexError::Io { path: path.to_path_buf(), source }),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| IndexError::Parse { path: path.to_path_buf(), line: i + 1, reason: e.to_string() }))
        .collect()
}

impl DatasetIndex {
    /// Writes the three files into `dir` (created if needed).
    pub fn write(&self, dir: &Path) -> Result<(), IndexError> {
        std::fs::create_dir_all(dir).map_err(|source| IndexError::Io { path: dir.to_path_buf(), source })?;
        let mut header = self.header.clone();
        header.items = self.items.len();
        header.errors = self.errors.len();
        let head = serde_json::to_vec_pretty(&header).unwrap_or_default();
        write_file_atomic(&dir.join(INDEX_FILE), &jsonl(&self.items))?;
        write_file_atomic(&dir.join(ERRORS_FILE), &jsonl(&self.errors))?;
        // The header last: a folder with a header always has a complete index.
        write_file_atomic(&dir.join(HEADER_FILE), &head)
    }

    /// Reads a dataset folder written by [`write`](Self::write).
    pub fn read(dir: &Path) -> Result<Self, IndexError> {
        let head_path = dir.join(HEADER_FILE);
        let head = match std::fs::read(&head_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(IndexError::NotADataset(dir.to_path_buf())),
            Err(source) => return Err(IndexError::Io { path: head_path, source }),
        };
        let value: serde_json::Value =
            serde_json::from_slice(&head).map_err(|e| IndexError::Parse { path: head_path.clone(), line: e.line(), reason: e.to_string() })?;
        let found = value.get("format_version").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
        if found != FORMAT_VERSION {
            return Err(IndexError::Version { path: head_path, found });
        }
        let header: DatasetHeader = serde_json::from_value(value).map_err(|e| IndexError::Parse { path: head_path.clone(), line: 0, reason: e.to_string() })?;
        Ok(Self { header, items: read_jsonl(&dir.join(INDEX_FILE))?, errors: read_jsonl(&dir.join(ERRORS_FILE))? })
    }

    /// A synthetic dataset's index (items carry attributes, captions and splits).
    pub fn synthetic(config: SynthConfig) -> Self {
        let items = super::synth::items(&config)
            .into_iter()
            .map(|it| IndexItem {
                id: format!("synth-{:06}", it.index),
                caption: it.caption,
                path: None,
                start: None,
                end: None,
                frames: config.render.frames,
                width: config.render.size,
                height: config.render.size,
                sha256: None,
                split: Some(it.split),
                attributes: Some(it.attributes),
                synth_index: Some(it.index),
            })
            .collect();
        Self {
            header: DatasetHeader {
                format_version: FORMAT_VERSION,
                kind: DatasetKind::Synthetic { config },
                fps: config.render.fps,
                size: config.render.size,
                frames: config.render.frames,
                items: config.count,
                errors: 0,
                created_by: format!("hitvideo {}", crate::VERSION),
            },
            items,
            errors: Vec::new(),
        }
    }
}

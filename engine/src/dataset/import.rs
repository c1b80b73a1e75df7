//! Importing user videos with captions: a folder (a sidecar `.txt` caption per video, and/or a
//! manifest inside it) or a manifest file (JSONL or CSV of `{path, caption, start?, end?}`).
//! Every item is validated (readable, has video, long enough, sane size, caption present and
//! UTF-8, not a duplicate); failures are recorded per item and the rest of the import goes on.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::index::{DatasetHeader, DatasetIndex, DatasetKind, FORMAT_VERSION, IndexItem, ItemError};
use crate::video::{self, DecodeOptions, VideoError};

/// Extensions treated as videos when scanning a folder.
pub const VIDEO_EXTENSIONS: [&str; 12] = ["mp4", "m4v", "mov", "mkv", "webm", "avi", "gif", "mpg", "mpeg", "wmv", "flv", "ts"];
/// Manifest names picked up inside an imported folder.
pub const MANIFEST_NAMES: [&str; 3] = ["manifest.jsonl", "manifest.csv", "captions.jsonl"];
/// Captions longer than this are rejected (the text encoders truncate far earlier).
pub const MAX_CAPTION_CHARS: usize = 2000;

/// What the imported clips must satisfy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImportOptions {
    /// Frame rate clips are resampled to.
    pub fps: f64,
    /// Frame side clips are cropped and resized to.
    pub size: u32,
    /// Minimum frames at `fps` (one training window).
    pub min_frames: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self { fps: 8.0, size: 64, min_frames: 16 }
    }
}

/// One row of a manifest.
#[derive(Debug, Clone, Deserialize)]
struct ManifestRow {
    path: String,
    caption: Option<String>,
    start: Option<f64>,
    end: Option<f64>,
}

/// A candidate item before validation.
#[derive(Debug, Clone)]
struct Candidate {
    /// What to call it in messages (path, or manifest:line).
    label: String,
    path: PathBuf,
    caption: Result<String, ItemError>,
    start: Option<f64>,
    end: Option<f64>,
}

fn err(source: &str, kind: &str, message: String) -> ItemError {
    ItemError { source: source.to_string(), kind: kind.to_string(), message }
}

fn is_video_ext(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Reads the sidecar caption `path` of the video `label`; messages name both files.
fn read_caption(path: &Path, label: &str) -> Result<String, ItemError> {
    let origin = format!("{label} (caption file {})", path.display());
    let bytes = std::fs::read(path).map_err(|e| err(label, "no caption", format!("{origin}: cannot read caption: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        err(
            label,
            "caption not UTF-8",
            format!("{origin}: caption is not valid UTF-8 (bad byte at offset {}); save it as UTF-8", e.utf8_error().valid_up_to()),
        )
    })?;
    check_caption(text.trim(), label, &origin)
}

fn check_caption(text: &str, label: &str, origin: &str) -> Result<String, ItemError> {
    if text.trim().is_empty() {
        return Err(err(label, "empty caption", format!("{origin}: caption is empty; write a sentence describing the clip")));
    }
    if text.chars().count() > MAX_CAPTION_CHARS {
        return Err(err(label, "caption too long", format!("{origin}: caption has {} characters (at most {MAX_CAPTION_CHARS})", text.chars().count())));
    }
    if text.chars().any(|c| c.is_control() && !c.is_whitespace()) {
        return Err(err(label, "bad caption", format!("{origin}: caption contains control characters; remove them")));
    }
    Ok(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Reads a JSONL or CSV manifest; rows that cannot be parsed become errors.
fn read_manifest(path: &Path) -> Result<(Vec<Candidate>, Vec<ItemError>), ItemError> {
    let label = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| err(&label, "missing manifest", format!("{label}: cannot read manifest: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| err(&label, "manifest not UTF-8", format!("{label}: manifest is not valid UTF-8; save it as UTF-8")))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let is_csv = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let mut rows: Vec<(usize, Result<ManifestRow, String>)> = Vec::new();
    if is_csv {
        let mut rdr = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes());
        for (i, rec) in rdr.deserialize::<ManifestRow>().enumerate() {
            rows.push((i + 2, rec.map_err(|e| e.to_string())));
        }
    } else {
        for (i, line) in text.lines().enumerate() {
            if !line.trim().is_empty() {
                rows.push((i + 1, serde_json::from_str(line).map_err(|e| e.to_string())));
            }
        }
    }
    let mut cands = Vec::new();
    let mut errors = Vec::new();
    for (line, row) in rows {
        let at = format!("{label}:{line}");
        match row {
            Err(reason) => errors.push(err(&at, "bad manifest row", format!("{at}: cannot parse row ({reason}); expected path, caption, start?, end?"))),
            Ok(r) => {
                let p = PathBuf::from(&r.path);
                let path = if p.is_absolute() { p } else { base.join(p) };
                let caption = match r.caption {
                    Some(c) => check_caption(&c, &at, &at),
                    None => Err(err(&at, "no caption", format!("{at}: row has no caption"))),
                };
                cands.push(Candidate { label: at, path, caption, start: r.start, end: r.end });
            }
        }
    }
    Ok((cands, errors))
}

/// Walks `dir` (sorted, hidden files skipped) for videos with sidecar captions; other files
/// that are not captions or manifests are reported as unsupported.
fn scan_folder(dir: &Path) -> (Vec<Candidate>, Vec<ItemError>) {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut cands = Vec::new();
    let mut errors = Vec::new();
    for p in &files {
        let label = p.display().to_string();
        let name = p.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
        let ext = p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
        if MANIFEST_NAMES.contains(&name.as_str()) || ext == "txt" || ext == "json" {
            continue;
        }
        if !is_video_ext(p) {
            errors.push(err(
                &label,
                "unsupported file",
                format!("{label}: not a video file (extension '.{ext}'); supported: {}", VIDEO_EXTENSIONS.join(", ")),
            ));
            continue;
        }
        let txt = p.with_extension("txt");
        let caption = if txt.exists() {
            read_caption(&txt, &label)
        } else {
            Err(err(&label, "no caption", format!("{label}: no caption; add {} beside it or list it in a manifest", txt.display())))
        };
        cands.push(Candidate { label, path: p.clone(), caption, start: None, end: None });
    }
    (cands, errors)
}

/// Classifies a video-layer error for summaries.
fn video_error_kind(e: &VideoError) -> &'static str {
    match e {
        VideoError::NotFound { .. } => "missing file",
        VideoError::Unreadable { .. } => "unreadable",
        VideoError::NoVideoStream { .. } => "no video stream",
        VideoError::UnsupportedCodec { .. } => "unsupported codec",
        VideoError::NoFrames { .. } => "no frames",
        VideoError::TooSmall { .. } => "too small",
        VideoError::TooLarge { .. } => "too large",
        VideoError::TooShort { .. } => "too short",
        _ => "invalid",
    }
}

/// Still-image demuxers: a file FFmpeg opens with one of these is a picture, not a video.
fn is_image_container(name: &str) -> bool {
    name.ends_with("_pipe") || name == "image2"
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// Validates one candidate; returns the index item or the reason it was rejected.
fn validate(c: &Candidate, opts: &ImportOptions, seen: &mut HashMap<String, String>) -> Result<IndexItem, ItemError> {
    let label = c.label.as_str();
    let shown = c.path.display().to_string();
    // Stored absolute, so the dataset works from any working directory.
    let abs = std::path::absolute(&c.path).unwrap_or_else(|_| c.path.clone());
    let Some(path_str) = abs.to_str() else {
        return Err(err(label, "bad file name", format!("{shown}: file name is not valid UTF-8; rename the file")));
    };
    if !c.path.exists() {
        return Err(err(label, "missing file", format!("{shown}: file not found (listed at {label}); fix the path or remove the row")));
    }
    let caption = c.caption.clone()?;
    let sha = sha256_file(&c.path).map_err(|e| err(label, "unreadable", format!("{shown}: {e}")))?;
    if let Some(first) = seen.get(&sha) {
        return Err(err(label, "duplicate", format!("{shown}: duplicate of {first} (same content); remove one of them")));
    }
    let info = video::probe(&c.path).map_err(|e| err(label, video_error_kind(&e), e.to_string()))?;
    if is_image_container(&info.container) {
        return Err(err(
            label,
            "not a video",
            format!("{shown}: this is a still image ({}), not a video, despite its extension", info.container),
        ));
    }
    if let (Some(s), Some(e)) = (c.start, c.end) {
        if !(s >= 0.0 && e > s) {
            return Err(err(label, "bad time range", format!("{label}: start {s} s must be >= 0 and before end {e} s")));
        }
    }
    let opts_dec = DecodeOptions {
        fps: Some(opts.fps),
        size: Some((opts.size, opts.size)),
        start: c.start.unwrap_or(0.0),
        end: c.end,
        ..DecodeOptions::default()
    };
    let clip = video::decode(&c.path, &opts_dec).map_err(|e| err(label, video_error_kind(&e), e.to_string()))?;
    if clip.len() < opts.min_frames {
        let e = VideoError::TooShort { path: c.path.clone(), got: clip.len(), need: opts.min_frames, fps: opts.fps };
        return Err(err(label, "too short", e.to_string()));
    }
    seen.insert(sha.clone(), shown.clone());
    let id = c.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| label.to_string());
    Ok(IndexItem {
        id,
        caption,
        path: Some(path_str.to_string()),
        start: c.start,
        end: c.end,
        frames: clip.len(),
        width: info.width,
        height: info.height,
        sha256: Some(sha),
        split: None,
        attributes: None,
        synth_index: None,
    })
}

/// The outcome of an import.
#[derive(Debug, Clone)]
pub struct ImportReport {
    pub index: DatasetIndex,
    /// Rejected items per error class.
    pub by_kind: BTreeMap<String, usize>,
}

impl ImportReport {
    /// One line per error class plus totals, for the CLI and the studio.
    pub fn summary(&self) -> String {
        let mut s = format!("{} imported, {} rejected", self.index.items.len(), self.index.errors.len());
        for (k, n) in &self.by_kind {
            s.push_str(&format!("\n  {n:>4} {k}"));
        }
        s
    }
}

/// Imports a folder or a manifest file. `progress(done, total, item)` is called per item.
pub fn import(source: &Path, opts: &ImportOptions, progress: &mut dyn FnMut(usize, usize, &str)) -> Result<ImportReport, ItemError> {
    let label = source.display().to_string();
    if !source.exists() {
        return Err(err(&label, "missing source", format!("{label}: no such folder or manifest")));
    }
    let (mut cands, mut errors) = if source.is_dir() {
        let manifest = MANIFEST_NAMES.iter().map(|n| source.join(n)).find(|p| p.exists());
        match manifest {
            Some(m) => {
                let (c, e) = read_manifest(&m)?;
                (c, e)
            }
            None => scan_folder(source),
        }
    } else {
        read_manifest(source)?
    };
    // The same file listed twice.
    let mut listed: HashMap<PathBuf, String> = HashMap::new();
    cands.retain(|c| {
        let key = c.path.canonicalize().unwrap_or_else(|_| c.path.clone());
        match listed.get(&key) {
            Some(first) => {
                errors.push(err(&c.label, "duplicate", format!("{}: listed twice (first at {first})", c.label)));
                false
            }
            None => {
                listed.insert(key, c.label.clone());
                true
            }
        }
    });
    let total = cands.len();
    let mut seen = HashMap::new();
    let mut items = Vec::new();
    for (i, c) in cands.iter().enumerate() {
        progress(i, total, &c.label);
        match validate(c, opts, &mut seen) {
            Ok(item) => items.push(item),
            Err(e) => errors.push(e),
        }
    }
    progress(total, total, "");
    let mut by_kind = BTreeMap::new();
    for e in &errors {
        *by_kind.entry(e.kind.clone()).or_insert(0) += 1;
    }
    let header = DatasetHeader {
        format_version: FORMAT_VERSION,
        kind: DatasetKind::Imported { source: label },
        fps: opts.fps,
        size: opts.size,
        frames: opts.min_frames,
        items: items.len(),
        errors: errors.len(),
        created_by: format!("hitvideo {}", crate::VERSION),
    };
    Ok(ImportReport { index: DatasetIndex { header, items, errors }, by_kind })
}

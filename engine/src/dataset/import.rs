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
/// The largest manifest read (a million rows of a path and a caption fit).
pub const MAX_MANIFEST_BYTES: u64 = 256 << 20;
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
    /// Keep clips without a caption (with an empty one): enough for training a tokenizer,
    /// which never reads captions. The generator's token cache refuses such items.
    pub captions_optional: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self { fps: 8.0, size: 64, min_frames: 16, captions_optional: false }
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
        err(label, "caption not UTF-8", format!("{origin}: caption is not valid UTF-8 (bad byte at offset {}); save it as UTF-8", e.utf8_error().valid_up_to()))
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
    let meta = std::fs::metadata(path).map_err(|e| err(&label, "missing manifest", format!("{label}: cannot read manifest: {e}")))?;
    if !meta.is_file() || meta.len() > MAX_MANIFEST_BYTES {
        return Err(err(&label, "bad manifest", format!("{label}: a manifest must be a regular file of at most {MAX_MANIFEST_BYTES} bytes")));
    }
    let bytes = std::fs::read(path).map_err(|e| err(&label, "missing manifest", format!("{label}: cannot read manifest: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| err(&label, "manifest not UTF-8", format!("{label}: manifest is not valid UTF-8; save it as UTF-8")))?;
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
                // A relative row stays inside the manifest's folder; naming a video elsewhere
                // takes an absolute path (a deliberate choice, read only).
                if !p.is_absolute() && !crate::fsutil::is_inside_relative(&r.path) {
                    errors.push(err(
                        &at,
                        "bad manifest row",
                        format!(
                            "{at}: path '{}' leaves the manifest's folder; give an absolute path or move the video under the folder",
                            r.path.escape_debug()
                        ),
                    ));
                    continue;
                }
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

/// Folders below the imported one that a walk enters at most.
pub const MAX_DEPTH: usize = 32;
/// Entries a walk looks at at most (files and folders together).
pub const MAX_ENTRIES: usize = 200_000;

/// Walks `dir` (sorted, hidden files skipped) for videos with sidecar captions; other files
/// that are not captions or manifests are reported as unsupported. Symlinked folders are
/// entered once (by their real path, so a symlink loop ends), and devices, FIFOs and sockets
/// are reported and skipped, never opened.
fn scan_folder(dir: &Path) -> (Vec<Candidate>, Vec<ItemError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let mut visited = std::collections::HashSet::new();
    visited.insert(dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()));
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    let mut seen_entries = 0usize;
    while let Some((d, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            seen_entries += 1;
            if seen_entries > MAX_ENTRIES {
                let label = dir.display().to_string();
                errors.push(err(&label, "too many files", format!("{label}: more than {MAX_ENTRIES} entries; import a smaller folder or a manifest")));
                stack.clear();
                break;
            }
            let label = p.display().to_string();
            // `std::fs::metadata` follows a symlink to what it names; a dangling one fails.
            let meta = match std::fs::metadata(&p) {
                Ok(m) => m,
                Err(e) => {
                    errors.push(err(&label, "unreadable", format!("{label}: {e} (a broken symlink?)")));
                    continue;
                }
            };
            if meta.is_dir() {
                let real = p.canonicalize().unwrap_or_else(|_| p.clone());
                if depth < MAX_DEPTH && visited.insert(real) {
                    stack.push((p, depth + 1));
                }
            } else if meta.is_file() {
                files.push(p);
            } else {
                errors.push(err(&label, "not a regular file", format!("{label}: a device, FIFO or socket, not a video file; skipped")));
            }
        }
    }
    files.sort();
    let mut cands = Vec::new();
    for p in &files {
        let label = p.display().to_string();
        let name = p.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
        let ext = p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
        if MANIFEST_NAMES.contains(&name.as_str()) || ext == "txt" || ext == "json" {
            continue;
        }
        if !is_video_ext(p) {
            errors.push(err(&label, "unsupported file", format!("{label}: not a video file (extension '.{ext}'); supported: {}", VIDEO_EXTENSIONS.join(", "))));
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
    match std::fs::metadata(&c.path) {
        Err(_) => return Err(err(label, "missing file", format!("{shown}: file not found (listed at {label}); fix the path or remove the row"))),
        Ok(m) if !m.is_file() => {
            return Err(err(label, "not a regular file", format!("{shown}: not a regular file (a folder, device, FIFO or socket); list video files only")));
        }
        Ok(_) => {}
    }
    let caption = match c.caption.clone() {
        Err(e) if opts.captions_optional && e.kind == "no caption" => String::new(),
        other => other?,
    };
    let sha = sha256_file(&c.path).map_err(|e| err(label, "unreadable", format!("{shown}: {e}")))?;
    if let Some(first) = seen.get(&sha) {
        return Err(err(label, "duplicate", format!("{shown}: duplicate of {first} (same content); remove one of them")));
    }
    let info = video::probe(&c.path).map_err(|e| err(label, video_error_kind(&e), e.to_string()))?;
    if is_image_container(&info.container) {
        return Err(err(label, "not a video", format!("{shown}: this is a still image ({}), not a video, despite its extension", info.container)));
    }
    if let (Some(s), Some(e)) = (c.start, c.end)
        && !(s >= 0.0 && e > s)
    {
        return Err(err(label, "bad time range", format!("{label}: start {s} s must be >= 0 and before end {e} s")));
    }
    // The frames at the target rate come from the probed duration; only one window's worth
    // is decoded to check that the clip plays (a 10-minute clip is never held whole). A file
    // whose container reports no duration is counted by decoding it at 16x16.
    let start = c.start.unwrap_or(0.0);
    let prefix = DecodeOptions {
        fps: Some(opts.fps),
        size: Some((opts.size, opts.size)),
        start,
        end: c.end,
        max_frames: Some(opts.min_frames.max(1)),
        ..DecodeOptions::default()
    };
    let decoded = video::decode(&c.path, &prefix).map_err(|e| err(label, video_error_kind(&e), e.to_string()))?.len();
    let frames = if decoded < opts.min_frames {
        decoded
    } else if info.duration > 0.0 {
        let end = c.end.unwrap_or(info.duration).min(info.duration);
        (((end - start) * opts.fps).floor().max(0.0) as usize).max(decoded)
    } else {
        let count = DecodeOptions { fps: Some(opts.fps), size: Some((16, 16)), start, end: c.end, ..DecodeOptions::default() };
        video::decode(&c.path, &count).map_err(|e| err(label, video_error_kind(&e), e.to_string()))?.len()
    };
    if frames < opts.min_frames {
        let e = VideoError::TooShort { path: c.path.clone(), got: frames, need: opts.min_frames, fps: opts.fps };
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
        frames,
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

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_symlink_loop_and_a_fifo_end_the_walk_quickly() {
        let dir = tempfile::tempdir().expect("dir");
        let root = dir.path().join("videos");
        std::fs::create_dir_all(root.join("a/b")).expect("dirs");
        // Two loops that would multiply paths without bound: a self-link and a link to the root.
        std::os::unix::fs::symlink(&root, root.join("a/b/up")).expect("link");
        std::os::unix::fs::symlink(".", root.join("a/self")).expect("link");
        std::os::unix::fs::symlink(root.join("missing.mp4"), root.join("dangling.mp4")).expect("link");
        std::fs::write(root.join("a/b/clip.mp4"), b"not really a video").expect("file");
        let made = std::process::Command::new("mkfifo").arg(root.join("pipe.mp4")).status().map(|s| s.success()).unwrap_or(false);
        let t = Instant::now();
        let (cands, errors) = scan_folder(&root);
        assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
        let names: Vec<String> = cands.iter().map(|c| c.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()).collect();
        assert_eq!(names, vec!["clip.mp4"], "each real file once: {names:?}");
        let kinds: Vec<&str> = errors.iter().map(|e| e.kind.as_str()).collect();
        assert!(kinds.contains(&"unreadable"), "{kinds:?}");
        if made {
            assert!(kinds.contains(&"not a regular file"), "{kinds:?}");
            // A manifest that names the FIFO gets an error instead of a read that never returns.
            let manifest = root.join("list.jsonl");
            std::fs::write(&manifest, format!("{{\"path\": \"{}\", \"caption\": \"x\"}}\n", root.join("pipe.mp4").display())).expect("manifest");
            let report = import(&manifest, &ImportOptions::default(), &mut |_, _, _| {}).expect("report");
            assert_eq!(report.index.items.len(), 0);
            assert!(report.index.errors.iter().any(|e| e.kind == "not a regular file"), "{:?}", report.index.errors);
        }
    }
}

//! The gallery on disk: every finished generation is saved as an MP4 with its metadata (the
//! settings, the model checksums and the tokens) in the sidecar `<clip>.mp4.json`, in an outputs
//! folder the user can change (`<work dir>/outputs` by default). The gallery lists that folder
//! (read on a helper thread, newest first), so it survives restarts; an item restores its
//! settings and clip through the same path as an opened export, and can be deleted.

use super::error::FileError;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::SystemTime;

use hitvideo_engine::fsutil::safe_component;
use hitvideo_engine::video::ExportMetadata;
use hitvideo_engine::video::meta::sidecar_path;

/// One saved clip.
#[derive(Debug, Clone, PartialEq)]
pub struct GalleryItem {
    /// The MP4 (its sidecar is [`sidecar_path`] of it).
    pub path: PathBuf,
    pub meta: ExportMetadata,
    pub modified: SystemTime,
}

impl GalleryItem {
    /// A one-line description: prompt, seed and CFG.
    pub fn label(&self) -> String {
        let prompt = self.meta.prompt.as_deref().unwrap_or("(no prompt)");
        let seed = self.meta.seed.map(|s| format!(" · seed {s}")).unwrap_or_default();
        let cfg = self.meta.cfg_schedule.as_ref().map(|c| format!(" · CFG {c}")).unwrap_or_default();
        let kind = if self.meta.extra.contains_key("sweep_rows") { "sweep · " } else { "" };
        format!("{kind}{prompt}{seed}{cfg}")
    }

    /// Whether `filter` (case-insensitive, any part of the prompt) selects this item.
    pub fn matches(&self, filter: &str) -> bool {
        let f = filter.trim().to_lowercase();
        f.is_empty() || self.meta.prompt.as_deref().is_some_and(|p| p.to_lowercase().contains(&f))
    }
}

/// The largest sidecar read while listing (a generation's metadata with its tokens is a few KB).
const MAX_SIDECAR_BYTES: u64 = 16 << 20;
/// The most items listed.
pub const MAX_ITEMS: usize = 10_000;

/// Where a generation's row is saved: `<dir>/<unix ms>-<job>-<row>-<prompt>.mp4`, the prompt
/// made safe as a file name (never a path: `../` and separators become `-`).
pub fn output_path(dir: &Path, unix_ms: u128, job: u64, row: usize, prompt: &str) -> PathBuf {
    let name: String = safe_component(prompt).chars().take(48).collect();
    dir.join(format!("{unix_ms}-{job}-{row}-{name}.mp4"))
}

/// The saved clips of `dir`, newest first: every `*.mp4` with a readable sidecar written by
/// the studio (others are skipped). A missing folder is an empty gallery.
pub fn scan(dir: &Path) -> Result<Vec<GalleryItem>, FileError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(FileError::Io { path: dir.to_path_buf(), what: "list the outputs folder", hint: "; choose another one", source }),
    };
    let mut items = Vec::new();
    for e in rd.flatten().take(4 * MAX_ITEMS) {
        let path = e.path();
        let Ok(m) = e.metadata() else { continue };
        if !m.is_file() || path.extension().is_none_or(|x| !x.eq_ignore_ascii_case("mp4")) {
            continue;
        }
        let side = sidecar_path(&path);
        let Ok(sm) = std::fs::metadata(&side) else { continue };
        if !sm.is_file() || sm.len() > MAX_SIDECAR_BYTES {
            continue;
        }
        let Some(meta) = std::fs::read_to_string(&side).ok().and_then(|t| serde_json::from_str::<ExportMetadata>(&t).ok()) else { continue };
        items.push(GalleryItem { path, meta, modified: m.modified().unwrap_or(SystemTime::UNIX_EPOCH) });
    }
    items.sort_by(|a, b| b.modified.cmp(&a.modified).then_with(|| b.path.cmp(&a.path)));
    items.truncate(MAX_ITEMS);
    Ok(items)
}

/// Deletes a saved clip and its sidecar.
pub fn delete(item: &GalleryItem) -> Result<(), FileError> {
    for p in [item.path.clone(), sidecar_path(&item.path)] {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(FileError::Io { path: p, what: "delete it", hint: "", source }),
        }
    }
    Ok(())
}

/// A listing of a folder running on a helper thread.
pub struct Scan {
    pub dir: PathBuf,
    rx: mpsc::Receiver<Result<Vec<GalleryItem>, FileError>>,
}

impl Scan {
    /// Starts listing `dir`.
    pub fn start(dir: PathBuf) -> Self {
        let (tx, rx) = mpsc::channel();
        let d = dir.clone();
        let spawned = std::thread::Builder::new().name("gallery-scan".into()).spawn(move || {
            let _ = tx.send(scan(&d));
        });
        if let Err(e) = spawned {
            let (tx, rx2) = mpsc::channel();
            let _ = tx.send(Err(FileError::Io { path: dir.clone(), what: "list it", hint: "; the studio could not start a thread", source: e }));
            return Self { dir, rx: rx2 };
        }
        Self { dir, rx }
    }

    /// The listing once it is ready.
    pub fn poll(&self) -> Option<Result<Vec<GalleryItem>, FileError>> {
        match self.rx.try_recv() {
            Ok(r) => Some(r),
            Err(mpsc::TryRecvError::Empty) => None,
            Err(mpsc::TryRecvError::Disconnected) => Some(Err(FileError::Lost(self.dir.clone()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hitvideo_engine::video::Video;

    #[test]
    fn saved_clips_are_listed_newest_first_filtered_and_deleted() {
        let dir = tempfile::tempdir().expect("dir");
        assert!(scan(&dir.path().join("missing")).expect("a missing folder").is_empty());
        let video = Video::new(8, 8, 8.0);
        for (i, prompt) in ["a red circle moves left", "a blue square rises"].iter().enumerate() {
            let path = output_path(dir.path(), 1000 + i as u128, 7, i, prompt);
            std::fs::write(&path, b"mp4 bytes").expect("mp4");
            let mut meta = ExportMetadata::for_video(&video);
            meta.prompt = Some((*prompt).into());
            meta.seed = Some(i as u64);
            std::fs::write(sidecar_path(&path), serde_json::to_string(&meta).expect("json")).expect("sidecar");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::fs::write(dir.path().join("stray.mp4"), b"no sidecar").expect("stray");
        let items = scan(dir.path()).expect("scan");
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].meta.prompt.as_deref(), Some("a blue square rises"));
        assert!(items[0].label().contains("seed 1"));
        assert!(items[1].matches("RED") && !items[1].matches("square") && items[1].matches(" "));
        delete(&items[0]).expect("delete");
        assert!(!items[0].path.exists() && !sidecar_path(&items[0].path).exists());
        assert_eq!(scan(dir.path()).expect("scan").len(), 1);
    }

    #[test]
    fn output_names_stay_in_the_folder() {
        let p = output_path(Path::new("/out"), 5, 1, 0, "../../etc/passwd\0 a\\b");
        assert_eq!(p.parent(), Some(Path::new("/out")));
        assert!(p.extension().is_some_and(|e| e == "mp4"));
    }
}

//! Durable file writes shared by every module that saves something.
//!
//! Temporary files are created fresh (`create_new`, after removing whatever had the name, so a
//! symlink planted at the temporary name is replaced, never followed), fsynced, renamed over the
//! final name, and the folder is fsynced so the rename itself survives a crash.

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

/// Creates `path` as a new file (whatever had the name is removed first, a symlink included,
/// without following it), writes `bytes` and fsyncs the file.
pub fn write_new_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Fsyncs a folder so a rename inside it is durable (best effort: not every platform allows
/// opening a folder for this).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The folder `path` is in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to `path` atomically: a temporary sibling, fsync, rename, then an fsync of
/// the folder, so a crash never leaves a half-written file under the final name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_sibling(path);
    write_new_synced(&tmp, bytes)?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(parent_dir(path));
    Ok(())
}

/// Swaps two paths of the same file system in one atomic step (Linux `renameat2` with
/// `RENAME_EXCHANGE`); an error where the platform or file system cannot.
pub fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(std::io::Error::from)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (a, b);
        Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "atomic exchange is only used on Linux"))
    }
}

/// `rel` (read from a file: a checksum list, a manifest) is a relative path that stays inside
/// the folder it is joined to: only plain components (and `.`), no `..`, no root, no drive prefix.
pub fn is_inside_relative(rel: &str) -> bool {
    use std::path::Component;
    !rel.is_empty() && !rel.contains('\0') && Path::new(rel).components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// A name read from a file or typed by a person (a preset, a prompt) made safe as one path
/// component: letters, digits, `-`, `_` and `.` kept (at most 64 of them), everything else,
/// separators included, becomes `-`; leading dots are dropped so the result is never `..` or
/// hidden. A custom preset given as a path contributes its file stem.
pub fn safe_component(name: &str) -> String {
    let stem = Path::new(name).file_stem().and_then(|s| s.to_str()).filter(|_| name.ends_with(".json")).unwrap_or(name);
    let cleaned: String = stem.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' }).take(64).collect();
    let trimmed = cleaned.trim_start_matches('.');
    if trimmed.is_empty() { "unnamed".into() } else { trimmed.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_files_stay_inside_their_folder() {
        for bad in ["../x", "/etc/passwd", "a/../../b", "", "..", "a/./b/..", "a\0b"] {
            assert!(!is_inside_relative(bad), "{bad}");
        }
        for good in ["tokenizer/model.bpk", "bundle.json", "a/b/c", "./v.mp4"] {
            assert!(is_inside_relative(good), "{good}");
        }
        assert_eq!(safe_component("../../etc"), "-..-etc");
        assert_eq!(safe_component("/home/me/presets/wide.json"), "wide");
        assert_eq!(safe_component("tiny"), "tiny");
        assert_eq!(safe_component(".."), "unnamed");
        assert_eq!(safe_component("a\0b/c"), "a-b-c");
        for name in ["../../etc", "/abs/x.json", "..", "a/b", "x\0y"] {
            let c = safe_component(name);
            assert!(Path::new(&c).components().count() == 1 && is_inside_relative(&c), "{name} -> {c}");
        }
    }

    #[test]
    fn a_symlink_at_the_temporary_name_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, b"keep me").unwrap();
        let target = dir.path().join("out.json");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&victim, temp_sibling(&target)).unwrap();
        write_atomic(&target, b"new").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
        assert!(!temp_sibling(&target).exists());
    }

    #[test]
    fn exchange_swaps_two_folders() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        std::fs::write(a.join("x"), b"from a").unwrap();
        std::fs::write(b.join("x"), b"from b").unwrap();
        if cfg!(target_os = "linux") {
            exchange(&a, &b).unwrap();
            assert_eq!(std::fs::read(b.join("x")).unwrap(), b"from a");
            assert_eq!(std::fs::read(a.join("x")).unwrap(), b"from b");
        }
    }
}

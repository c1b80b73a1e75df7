//! Checkpoints: a run folder holds `step-NNNNNNN/` folders and a `latest` file naming the
//! newest complete one. A checkpoint is written into a hidden temporary folder (every file
//! fsynced), renamed into place, and only then is `latest` replaced (write, fsync, rename), so a
//! crash at any moment leaves the previous checkpoint loadable. `state.json` lists every file of
//! the checkpoint with its size and SHA-256, so a damaged step is recognised before its weights
//! are read, and a run whose `latest` names a missing or damaged step opens at the newest intact
//! one instead (with a warning). Parameters are checked for NaN and infinity before a save
//! ([`check_finite`]), so the newest checkpoint is also a usable one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Environment variable naming a failpoint, for tests: `checkpoint-write` aborts the process
/// after the first file of a checkpoint is written (the power cut the format must survive).
pub const FAILPOINT_ENV: &str = "HITVIDEO_FAILPOINT";

/// What `state.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Model kind: "tokenizer" or "generator".
    pub kind: String,
    /// Preset (config name) the weights belong to.
    pub preset: String,
    /// SHA-256 of the model config JSON.
    pub config_sha256: String,
    /// Optimizer steps done.
    pub step: usize,
    pub app_version: String,
    /// Last validation metrics, for listings.
    #[serde(default)]
    pub metrics: serde_json::Value,
    /// Every other file of the checkpoint but `train.json` with its size and SHA-256 ([`save`] fills it in;
    /// empty in checkpoints written before it existed, which are then not checked file by file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileEntry>,
}

/// One file of a checkpoint as [`save`] wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// The one checkpoint file not in the file list: training settings, validated when read.
const EDITABLE: &str = "train.json";

/// The largest `state.json` read (it holds a few fields and the file list).
const MAX_STATE_BYTES: u64 = 1 << 20;
/// The largest `latest` file read (it holds one folder name).
const MAX_LATEST_BYTES: u64 = 256;

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{}: no checkpoint here (expected a run folder with a `latest` file or a step-* folder with state.json)", .0.display())]
    NotFound(PathBuf),
    #[error("{}: this is a {found} checkpoint, not a {expected} one; pick a {expected} checkpoint", .path.display())]
    WrongKind { path: PathBuf, found: String, expected: String },
    #[error("{}: this checkpoint is for preset '{found}', not '{expected}'; pass --preset {found} or choose another checkpoint", .path.display())]
    WrongPreset { path: PathBuf, found: String, expected: String },
    #[error("{}: damaged or truncated checkpoint file ({reason}); use an earlier step-* folder of the run", .path.display())]
    Damaged { path: PathBuf, reason: String },
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: not saved: parameter '{param}' holds NaN or infinite values (the run diverged); lower the learning rate and resume from the last checkpoint", .path.display())]
    NotFinite { path: PathBuf, param: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io { path: path.to_path_buf(), source }
}

/// SHA-256 hex of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    crate::fsutil::write_new_synced(path, bytes).map_err(io(path))
}

fn sync_dir(dir: &Path) {
    crate::fsutil::sync_dir(dir);
}

/// `name` is a step folder name this module writes (`step-` and digits): anything else read
/// from a `latest` file (a path, `..`) is refused rather than joined to the run folder.
pub fn is_step_name(name: &str) -> bool {
    name.strip_prefix("step-").is_some_and(|d| !d.is_empty() && d.len() <= 20 && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Errors unless every float parameter of `m` is finite; names the first one that is not.
pub fn check_finite<M: burn::module::Module>(m: &M, run_dir: &Path) -> Result<(), CheckpointError> {
    struct Finite {
        path: Vec<String>,
        bad: Option<String>,
    }
    impl burn::module::ModuleVisitor for Finite {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<burn::tensor::Tensor<D>>) {
            if self.bad.is_some() {
                return;
            }
            // A read failure counts as not finite: saving weights that cannot be read is no better.
            let ok = param.val().is_finite().all().try_into_scalar::<bool>().unwrap_or(false);
            if !ok {
                self.bad = Some(if self.path.is_empty() { "(root)".into() } else { self.path.join(".") });
            }
        }
    }
    let mut v = Finite { path: Vec::new(), bad: None };
    m.visit(&mut v);
    match v.bad {
        None => Ok(()),
        Some(param) => Err(CheckpointError::NotFinite { path: run_dir.to_path_buf(), param }),
    }
}

/// The folder name of step `step`.
pub fn step_dir_name(step: usize) -> String {
    format!("step-{step:07}")
}

/// Writes `files` (name, bytes) and `state.json` as checkpoint `state.step` of `run_dir`,
/// points `latest` at it, and deletes all but the newest `keep` checkpoints.
pub fn save(run_dir: &Path, files: &[(&str, Vec<u8>)], state: &CheckpointState, keep: usize) -> Result<PathBuf, CheckpointError> {
    std::fs::create_dir_all(run_dir).map_err(io(run_dir))?;
    let name = step_dir_name(state.step);
    let tmp = run_dir.join(format!(".tmp-{name}"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    for (i, (file, bytes)) in files.iter().enumerate() {
        write_synced(&tmp.join(file), bytes)?;
        if i == 0 && std::env::var(FAILPOINT_ENV).is_ok_and(|v| v == "checkpoint-write") {
            eprintln!("failpoint checkpoint-write: aborting while writing {}", tmp.display());
            std::process::abort();
        }
    }
    let mut state = state.clone();
    // `train.json` holds settings a person may edit (it is checked field by field when read),
    // so it is not listed; every other file is.
    state.files =
        files.iter().filter(|(n, _)| *n != EDITABLE).map(|(n, b)| FileEntry { name: (*n).to_string(), bytes: b.len() as u64, sha256: sha256_hex(b) }).collect();
    let text = serde_json::to_vec_pretty(&state).map_err(|e| CheckpointError::Io { path: tmp.clone(), source: std::io::Error::other(e) })?;
    write_synced(&tmp.join("state.json"), &text)?;
    sync_dir(&tmp);
    let dest = run_dir.join(&name);
    if dest.exists() {
        // Re-saving a step: swap the folders in one step where the platform can, so `latest`
        // never names a missing folder; elsewhere the old one is moved aside first (a crash in
        // between leaves `latest` on a missing folder, which `resolve` falls back from).
        if crate::fsutil::exchange(&tmp, &dest).is_ok() {
            sync_dir(run_dir);
            let _ = std::fs::remove_dir_all(&tmp);
        } else {
            let aside = run_dir.join(format!(".old-{name}"));
            let _ = std::fs::remove_dir_all(&aside);
            std::fs::rename(&dest, &aside).map_err(io(&dest))?;
            std::fs::rename(&tmp, &dest).map_err(io(&dest))?;
            let _ = std::fs::remove_dir_all(&aside);
        }
    } else {
        std::fs::rename(&tmp, &dest).map_err(io(&dest))?;
    }
    sync_dir(run_dir);
    let latest_tmp = run_dir.join(".latest.tmp");
    let _ = std::fs::remove_file(&latest_tmp);
    write_synced(&latest_tmp, name.as_bytes())?;
    std::fs::rename(&latest_tmp, run_dir.join("latest")).map_err(io(run_dir))?;
    sync_dir(run_dir);
    prune(run_dir, keep.max(1));
    Ok(dest)
}

/// Complete checkpoints of a run, oldest first.
pub fn list(run_dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(run_dir)
        .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.is_dir() && p.join("state.json").exists()).collect())
        .unwrap_or_default();
    v.retain(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("step-")));
    v.sort();
    v
}

fn prune(run_dir: &Path, keep: usize) {
    let all = list(run_dir);
    let latest = std::fs::read_to_string(run_dir.join("latest")).unwrap_or_default();
    for old in all.iter().take(all.len().saturating_sub(keep)) {
        if old.file_name().is_some_and(|n| n.to_string_lossy() != latest.trim()) {
            let _ = std::fs::remove_dir_all(old);
        }
    }
}

/// Reads a small file whole, refusing one larger than `max` bytes.
fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::other(format!("larger than the {max} bytes such a file may have")));
    }
    Ok(bytes)
}

/// Why step folder `dir` cannot be loaded: `state.json` missing or unreadable, or a file it
/// lists missing, of another size or with another checksum. `None` when it is intact.
pub fn verify(dir: &Path) -> Option<String> {
    let path = dir.join("state.json");
    let bytes = match read_bounded(&path, MAX_STATE_BYTES) {
        Ok(b) => b,
        Err(e) => return Some(format!("{}: {e}", path.display())),
    };
    let state: CheckpointState = match serde_json::from_slice(&bytes) {
        Ok(s) => s,
        Err(e) => return Some(format!("{}: {e}", path.display())),
    };
    for f in &state.files {
        if !is_file_name(&f.name) {
            return Some(format!("{}: lists '{}', which is not a file name", path.display(), f.name));
        }
        let file = dir.join(&f.name);
        match std::fs::metadata(&file) {
            Ok(m) if m.is_file() && m.len() == f.bytes => {}
            Ok(m) => return Some(format!("{}: {} bytes where state.json lists {}", file.display(), m.len(), f.bytes)),
            Err(e) => return Some(format!("{}: {e}", file.display())),
        }
        match std::fs::read(&file) {
            Ok(b) if sha256_hex(&b) == f.sha256 => {}
            Ok(_) => return Some(format!("{}: its checksum differs from state.json's", file.display())),
            Err(e) => return Some(format!("{}: {e}", file.display())),
        }
    }
    None
}

/// A plain file name: no separators, not `.` or `..`, not empty.
fn is_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

/// A resolved checkpoint folder and, when `latest` could not be followed, why another one was
/// taken (for the user: the CLI logs it, the studio shows it).
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub dir: PathBuf,
    pub note: Option<String>,
}

/// A run folder (its `latest`) or a step folder -> the step folder, with a note when `latest`
/// names a missing or damaged step (or something that is not a step folder) and the newest
/// intact one was taken instead.
pub fn resolve_noted(path: &Path) -> Result<Resolved, CheckpointError> {
    if path.join("state.json").exists() {
        return Ok(Resolved { dir: path.to_path_buf(), note: None });
    }
    let latest = path.join("latest");
    let problem = match read_bounded(&latest, MAX_LATEST_BYTES) {
        Ok(bytes) => {
            let name = String::from_utf8_lossy(&bytes).trim().to_string();
            if !is_step_name(&name) {
                Some(format!("it names '{}', which is not a step folder", name.escape_debug()))
            } else {
                let dir = path.join(&name);
                if !dir.join("state.json").exists() {
                    Some(format!("it names '{name}', which is missing"))
                } else {
                    match verify(&dir) {
                        None => return Ok(Resolved { dir, note: None }),
                        Some(why) => Some(format!("it names '{name}', which is damaged ({why})")),
                    }
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => Some(e.to_string()),
    };
    let fallback = list(path).into_iter().rev().find(|d| verify(d).is_none());
    match (fallback, problem) {
        (Some(dir), problem) => {
            let why = problem.unwrap_or_else(|| "there is no `latest` file".into());
            let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let note = format!("{}: {why}; using {name}, the newest intact checkpoint", latest.display());
            tracing::warn!("{note}");
            Ok(Resolved { dir, note: Some(note) })
        }
        (None, Some(reason)) => Err(CheckpointError::Damaged { path: latest, reason: format!("{reason}, and no other step folder is intact") }),
        (None, None) => Err(CheckpointError::NotFound(path.to_path_buf())),
    }
}

/// A run folder (its `latest`) or a step folder -> the step folder; see [`resolve_noted`].
pub fn resolve(path: &Path) -> Result<PathBuf, CheckpointError> {
    resolve_noted(path).map(|r| r.dir)
}

/// Reads `state.json` of a step folder (bounded in size), whatever its kind.
pub fn read_state_any(dir: &Path) -> Result<CheckpointState, CheckpointError> {
    let path = dir.join("state.json");
    let bytes = read_bounded(&path, MAX_STATE_BYTES).map_err(io(&path))?;
    serde_json::from_slice(&bytes).map_err(|e| CheckpointError::Damaged { path, reason: e.to_string() })
}

/// Reads `state.json` and checks the kind (and, if given, the preset).
pub fn read_state(dir: &Path, kind: &str, preset: Option<&str>) -> Result<CheckpointState, CheckpointError> {
    let state = read_state_any(dir)?;
    if state.kind != kind {
        return Err(CheckpointError::WrongKind { path: dir.to_path_buf(), found: state.kind, expected: kind.to_string() });
    }
    if let Some(p) = preset
        && state.preset != p
    {
        return Err(CheckpointError::WrongPreset { path: dir.to_path_buf(), found: state.preset, expected: p.to_string() });
    }
    Ok(state)
}

/// Reads one file of a checkpoint folder.
pub fn read_file(dir: &Path, name: &str) -> Result<Vec<u8>, CheckpointError> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(io(&path))
}

/// The error for a checkpoint file that exists but cannot be used.
pub fn damaged(dir: &Path, file: &str, e: impl std::fmt::Display) -> CheckpointError {
    CheckpointError::Damaged { path: dir.join(file), reason: e.to_string() }
}

/// Loads the burnpack record `file` of checkpoint folder `dir` into `m`.
pub fn load_module<M: burn::module::Module>(m: M, dir: &Path, file: &str) -> Result<M, CheckpointError> {
    let bytes = read_file(dir, file)?;
    let rec = burn::store::ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes)).map_err(|e| damaged(dir, file, e))?;
    m.try_load_record(rec).map_err(|e| damaged(dir, file, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(step: usize) -> CheckpointState {
        CheckpointState {
            kind: "tokenizer".into(),
            preset: "tiny".into(),
            config_sha256: "x".into(),
            step,
            app_version: "t".into(),
            metrics: serde_json::Value::Null,
            files: Vec::new(),
        }
    }

    #[test]
    fn save_resolve_prune_and_check_kind() {
        let dir = tempfile::tempdir().unwrap();
        for s in [10, 20, 30, 40] {
            save(dir.path(), &[("model.bpk", vec![s as u8; 8])], &state(s), 2).unwrap();
        }
        let names: Vec<String> = list(dir.path()).iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, vec!["step-0000030", "step-0000040"]);
        let latest = resolve(dir.path()).unwrap();
        assert_eq!(read_state(&latest, "tokenizer", Some("tiny")).unwrap().step, 40);
        assert_eq!(read_file(&latest, "model.bpk").unwrap(), vec![40u8; 8]);
        let e = read_state(&latest, "generator", None).unwrap_err().to_string();
        assert!(e.contains("this is a tokenizer checkpoint, not a generator one"), "{e}");
        let e = read_state(&latest, "tokenizer", Some("paper")).unwrap_err().to_string();
        assert!(e.contains("preset 'tiny', not 'paper'"), "{e}");
        assert!(matches!(resolve(&dir.path().join("nope")), Err(CheckpointError::NotFound(_))));
    }

    fn run_with(steps: &[usize]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for &s in steps {
            save(dir.path(), &[("model.bpk", vec![s as u8; 64])], &state(s), 10).unwrap();
        }
        dir
    }

    #[test]
    fn latest_naming_a_missing_step_falls_back_to_the_newest_intact_one() {
        let dir = run_with(&[10, 20]);
        std::fs::remove_dir_all(dir.path().join("step-0000020")).unwrap();
        let r = resolve_noted(dir.path()).unwrap();
        assert!(r.dir.ends_with("step-0000010"), "{:?}", r.dir);
        let note = r.note.unwrap();
        assert!(note.contains("'step-0000020', which is missing") && note.contains("using step-0000010"), "{note}");
    }

    #[test]
    fn latest_naming_a_damaged_step_falls_back() {
        let dir = run_with(&[10, 20]);
        // Truncated weights, then a flipped byte: both are caught by the file list.
        let model = dir.path().join("step-0000020/model.bpk");
        std::fs::write(&model, [20u8; 10]).unwrap();
        let r = resolve_noted(dir.path()).unwrap();
        assert!(r.dir.ends_with("step-0000010") && r.note.as_deref().unwrap_or("").contains("damaged"), "{r:?}");
        std::fs::write(&model, [21u8; 64]).unwrap();
        let r = resolve_noted(dir.path()).unwrap();
        assert!(r.dir.ends_with("step-0000010") && r.note.as_deref().unwrap_or("").contains("checksum"), "{r:?}");
        // Nothing intact left: a clear error naming `latest`.
        std::fs::write(dir.path().join("step-0000010/state.json"), b"{").unwrap();
        let e = resolve(dir.path()).unwrap_err().to_string();
        assert!(e.contains("latest") && e.contains("no other step folder is intact"), "{e}");
    }

    #[test]
    fn latest_cannot_leave_the_run_folder() {
        let outer = tempfile::tempdir().unwrap();
        // A complete-looking checkpoint outside the run folder that `latest` tries to reach.
        let elsewhere = outer.path().join("elsewhere");
        save(&elsewhere, &[("model.bpk", vec![9u8; 8])], &state(99), 2).unwrap();
        let run = outer.path().join("run");
        save(&run, &[("model.bpk", vec![1u8; 8])], &state(1), 2).unwrap();
        for bad in ["../elsewhere/step-0000099", "/etc", "step-1/../../elsewhere/step-0000099", "step-"] {
            std::fs::write(run.join("latest"), bad).unwrap();
            let r = resolve_noted(&run).unwrap();
            assert!(r.dir.starts_with(&run) && r.dir.ends_with("step-0000001"), "{bad}: {r:?}");
            assert!(r.note.unwrap().contains("not a step folder"), "{bad}");
        }
        assert!(is_step_name("step-0000001") && !is_step_name("step-1/..") && !is_step_name("../step-1"));
    }

    #[test]
    fn resaving_a_step_keeps_latest_on_a_complete_folder() {
        let dir = run_with(&[5]);
        save(dir.path(), &[("model.bpk", vec![7u8; 64])], &state(5), 10).unwrap();
        let r = resolve_noted(dir.path()).unwrap();
        assert_eq!(r.note, None);
        assert_eq!(read_file(&r.dir, "model.bpk").unwrap(), vec![7u8; 64]);
        let leftovers: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).filter(|n| n.to_string_lossy().starts_with('.')).collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn oversized_state_files_are_refused() {
        let dir = run_with(&[3]);
        let big = vec![b' '; (MAX_STATE_BYTES + 10) as usize];
        std::fs::write(dir.path().join("step-0000003/state.json"), big).unwrap();
        let e = read_state(&dir.path().join("step-0000003"), "tokenizer", None).unwrap_err().to_string();
        assert!(e.contains("state.json") && e.contains("larger than"), "{e}");
    }

    #[test]
    fn parameters_with_nan_are_not_saved() {
        use burn::module::Param;
        use burn::tensor::{Device, Tensor};
        let device = Device::flex();
        let good = Param::from_tensor(Tensor::<1>::from_floats([1.0, 2.0], &device));
        check_finite(&good, Path::new("run")).unwrap();
        let bad = Param::from_tensor(Tensor::<1>::from_floats([1.0, f32::NAN], &device));
        let e = check_finite(&bad, Path::new("run")).unwrap_err().to_string();
        assert!(e.contains("NaN") && e.contains("lower the learning rate"), "{e}");
        let inf = Param::from_tensor(Tensor::<1>::from_floats([f32::INFINITY, 0.0], &device));
        assert!(check_finite(&inf, Path::new("run")).is_err());
    }
}

//! Checkpoints: a run folder holds `step-NNNNNNN/` folders and a `latest` file naming the
//! newest complete one. A checkpoint is written into a hidden temporary folder (every file
//! fsynced), renamed into place, and only then is `latest` replaced (write, fsync, rename), so a
//! crash at any moment leaves the previous checkpoint loadable.

use std::io::Write;
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
}

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
    let mut f = std::fs::File::create(path).map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

fn sync_dir(dir: &Path) {
    // Directory fsync makes the rename durable; not every platform allows it.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
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
    let text = serde_json::to_vec_pretty(state).map_err(|e| CheckpointError::Io { path: tmp.clone(), source: std::io::Error::other(e) })?;
    write_synced(&tmp.join("state.json"), &text)?;
    sync_dir(&tmp);
    let dest = run_dir.join(&name);
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::rename(&tmp, &dest).map_err(io(&dest))?;
    sync_dir(run_dir);
    let latest_tmp = run_dir.join(".latest.tmp");
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

/// A run folder (its `latest`) or a step folder -> the step folder.
pub fn resolve(path: &Path) -> Result<PathBuf, CheckpointError> {
    if path.join("state.json").exists() {
        return Ok(path.to_path_buf());
    }
    let latest = path.join("latest");
    if let Ok(name) = std::fs::read_to_string(&latest) {
        let dir = path.join(name.trim());
        if dir.join("state.json").exists() {
            return Ok(dir);
        }
        return Err(CheckpointError::Damaged { path: latest, reason: format!("it names '{}', which is missing", name.trim()) });
    }
    Err(CheckpointError::NotFound(path.to_path_buf()))
}

/// Reads `state.json` and checks the kind (and, if given, the preset).
pub fn read_state(dir: &Path, kind: &str, preset: Option<&str>) -> Result<CheckpointState, CheckpointError> {
    let path = dir.join("state.json");
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    let state: CheckpointState =
        serde_json::from_slice(&bytes).map_err(|e| CheckpointError::Damaged { path: path.clone(), reason: e.to_string() })?;
    if state.kind != kind {
        return Err(CheckpointError::WrongKind { path: dir.to_path_buf(), found: state.kind, expected: kind.to_string() });
    }
    if let Some(p) = preset {
        if state.preset != p {
            return Err(CheckpointError::WrongPreset { path: dir.to_path_buf(), found: state.preset, expected: p.to_string() });
        }
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
        CheckpointState { kind: "tokenizer".into(), preset: "tiny".into(), config_sha256: "x".into(), step, app_version: "t".into(), metrics: serde_json::Value::Null }
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
}

//! Model bundles: a tokenizer and a generator shipped together (the demo models in
//! `assets/models/`), and optionally the general tokenizer for real footage, checked against a
//! `SHA256SUMS` file before anything loads them.
//!
//! Layout of a bundle folder:
//! - `tokenizer/` and `generator/`: checkpoint folders holding `state.json`, `config.json` and
//!   `model.bpk` (weights only: no optimizer state, no discriminator): the shapes demo;
//! - `general/` (optional): the general 64x64 tokenizer trained on the photo world and real
//!   clips, the default for real videos ([`add_general`] puts it in);
//! - `SHA256SUMS`: `<hex>  <relative path>` per file, as `sha256sum` writes it;
//! - `bundle.json`: how the models were made (commands, steps, wall time, validation figures).
//!
//! [`pack`] writes a bundle from two training runs; [`verify`] checks one; [`locate`] finds the
//! demo bundle for the studio and the CLI.

use std::path::{Path, PathBuf};

use crate::checkpoint::{self, CheckpointError};

/// The files of a checkpoint that inference needs.
pub const CHECKPOINT_FILES: [&str; 3] = ["state.json", "config.json", "model.bpk"];

/// The checksum list of a bundle.
pub const SUMS: &str = "SHA256SUMS";

/// A verified bundle: the two checkpoint folders.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    pub root: PathBuf,
    pub tokenizer: PathBuf,
    pub generator: PathBuf,
    /// The general tokenizer, when the bundle has one.
    pub general: Option<PathBuf>,
}

/// The folder of the optional general tokenizer in a bundle.
pub const GENERAL: &str = "general";

/// Why a bundle cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{}: no {SUMS} here; this is not a model bundle (expected tokenizer/, generator/ and {SUMS})", .0.display())]
    NotABundle(PathBuf),
    #[error("{}: line {line} of {SUMS} is not `<sha256>  <path>`", .path.display())]
    BadSums { path: PathBuf, line: usize },
    #[error("{}: checksum mismatch (expected {expected:.12}…, found {found:.12}…); the file is damaged or was replaced: restore it with `git checkout -- {}` or rebuild the bundle with scripts/demo-models", .path.display(), .path.display())]
    Mismatch { path: PathBuf, expected: String, found: String },
    #[error("{}: listed in {SUMS} but unreadable ({source}); restore it with `git checkout` or rebuild the bundle with scripts/demo-models", .path.display())]
    Missing { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// The largest file a bundle may list (all of `assets/models` stays within 30 MB).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Checks every file listed in `root/SHA256SUMS` and that both checkpoint folders are listed.
pub fn verify(root: &Path) -> Result<Bundle, BundleError> {
    let sums_path = root.join(SUMS);
    let text = std::fs::read_to_string(&sums_path).map_err(|_| BundleError::NotABundle(root.to_path_buf()))?;
    let mut listed = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let (hex, rel) = line.split_once("  ").ok_or(BundleError::BadSums { path: sums_path.clone(), line: i + 1 })?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) || !crate::fsutil::is_inside_relative(rel) {
            return Err(BundleError::BadSums { path: sums_path.clone(), line: i + 1 });
        }
        let path = root.join(rel);
        // A regular file of a sane size (a symlink to a device would otherwise be read forever).
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() && m.len() <= MAX_FILE_BYTES => {}
            Ok(_) => {
                let source = std::io::Error::other(format!("not a regular file of at most {MAX_FILE_BYTES} bytes"));
                return Err(BundleError::Missing { path, source });
            }
            Err(source) => return Err(BundleError::Missing { path, source }),
        }
        let bytes = std::fs::read(&path).map_err(|source| BundleError::Missing { path: path.clone(), source })?;
        let found = checkpoint::sha256_hex(&bytes);
        if !found.eq_ignore_ascii_case(hex) {
            return Err(BundleError::Mismatch { path, expected: hex.to_string(), found });
        }
        listed.push(rel.to_string());
    }
    let has_general = listed.iter().any(|r| r.starts_with("general/"));
    let parts: &[&str] = if has_general { &["tokenizer", "generator", GENERAL] } else { &["tokenizer", "generator"] };
    for part in parts {
        for f in CHECKPOINT_FILES {
            let rel = format!("{part}/{f}");
            if !listed.contains(&rel) {
                let path = root.join(&rel);
                return Err(BundleError::Missing { path, source: std::io::Error::new(std::io::ErrorKind::NotFound, format!("not listed in {SUMS}")) });
            }
        }
    }
    Ok(Bundle {
        root: root.to_path_buf(),
        tokenizer: root.join("tokenizer"),
        generator: root.join("generator"),
        general: has_general.then(|| root.join(GENERAL)),
    })
}

/// Puts the inference files of a tokenizer checkpoint into bundle `root` as its general
/// tokenizer (replacing one there) and rewrites `SHA256SUMS`; the rest of the bundle is kept
/// as it is and must verify first.
pub fn add_general(root: &Path, tokenizer: &Path) -> Result<Bundle, BundleError> {
    verify(root)?;
    let dir = checkpoint::resolve(tokenizer)?;
    checkpoint::read_state(&dir, "tokenizer", None)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BundleError::Io { path, source }
    };
    let sums_path = root.join(SUMS);
    let old = std::fs::read_to_string(&sums_path).map_err(io(&sums_path))?;
    let mut sums: String = old.lines().filter(|l| !l.contains("  general/")).map(|l| format!("{l}\n")).collect();
    let target = root.join(GENERAL);
    std::fs::create_dir_all(&target).map_err(io(&target))?;
    for f in CHECKPOINT_FILES {
        let bytes = checkpoint::read_file(&dir, f)?;
        let dest = target.join(f);
        crate::fsutil::write_atomic(&dest, &bytes).map_err(io(&dest))?;
        sums.push_str(&format!("{}  {GENERAL}/{f}\n", checkpoint::sha256_hex(&bytes)));
    }
    crate::fsutil::write_atomic(&sums_path, sums.as_bytes()).map_err(io(&sums_path))?;
    verify(root)
}

/// Copies the inference files of the tokenizer and generator checkpoints (run or step folders)
/// into `out`, with `info` as `bundle.json`, and writes `SHA256SUMS`. The folder is built
/// beside `out` and renamed into place, so an interrupted pack leaves any earlier bundle whole.
pub fn pack(tokenizer: &Path, generator: &Path, info: &serde_json::Value, out: &Path) -> Result<Bundle, BundleError> {
    let parent = crate::fsutil::parent_dir(out);
    std::fs::create_dir_all(parent).map_err(|source| BundleError::Io { path: parent.to_path_buf(), source })?;
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "models".into());
    let tmp = parent.join(format!(".{name}.partial"));
    let _ = std::fs::remove_dir_all(&tmp);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BundleError::Io { path, source }
    };
    let mut sums = String::new();
    for (part, src, kind) in [("tokenizer", tokenizer, "tokenizer"), ("generator", generator, "generator")] {
        let dir = checkpoint::resolve(src)?;
        checkpoint::read_state(&dir, kind, None)?;
        std::fs::create_dir_all(tmp.join(part)).map_err(io(&tmp))?;
        for f in CHECKPOINT_FILES {
            let bytes = checkpoint::read_file(&dir, f)?;
            let dest = tmp.join(part).join(f);
            crate::fsutil::write_atomic(&dest, &bytes).map_err(io(&dest))?;
            sums.push_str(&format!("{}  {part}/{f}\n", checkpoint::sha256_hex(&bytes)));
        }
    }
    let info_bytes = serde_json::to_vec_pretty(info).unwrap_or_default();
    let dest = tmp.join("bundle.json");
    crate::fsutil::write_atomic(&dest, &info_bytes).map_err(io(&dest))?;
    sums.push_str(&format!("{}  bundle.json\n", checkpoint::sha256_hex(&info_bytes)));
    let dest = tmp.join(SUMS);
    crate::fsutil::write_atomic(&dest, sums.as_bytes()).map_err(io(&dest))?;
    if out.exists() {
        let old = parent.join(format!(".{name}.old"));
        let _ = std::fs::remove_dir_all(&old);
        std::fs::rename(out, &old).map_err(io(out))?;
        std::fs::rename(&tmp, out).map_err(io(out))?;
        let _ = std::fs::remove_dir_all(&old);
    } else {
        std::fs::rename(&tmp, out).map_err(io(out))?;
    }
    verify(out)
}

/// Where the demo bundle is looked for, in order: `$HITVIDEO_ASSETS/models`, `./assets/models`,
/// then the source tree's `assets/models`.
pub fn search_paths() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = std::env::var_os("HITVIDEO_ASSETS").filter(|v| !v.is_empty()).map(PathBuf::from).into_iter().collect();
    roots.push(PathBuf::from("assets"));
    roots.push(PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../assets")));
    roots.into_iter().map(|r| r.join("models")).collect()
}

/// The demo bundle: the first of `search_paths()` (or `assets/models` under `assets`) that holds
/// one. `None` when no folder has a bundle; an error when one has a damaged bundle.
pub fn locate(assets: Option<&Path>) -> Option<Result<Bundle, BundleError>> {
    let candidates = match assets {
        Some(a) => vec![a.join("models")],
        None => search_paths(),
    };
    candidates.into_iter().find(|c| c.join(SUMS).exists()).map(|c| verify(&c))
}

/// The message for "no model given and no demo bundle found".
pub fn missing_hint() -> String {
    format!(
        "no demo models found (looked in {}); run scripts/demo-models to train them (about an hour on 2 CPU cores), or train your own with `hitvideo tokenizer train` and `hitvideo lm train` and pass --generator",
        search_paths().iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_checkpoint(dir: &Path, kind: &str) {
        std::fs::create_dir_all(dir).unwrap();
        let state = serde_json::json!({"kind": kind, "preset": "tiny", "config_sha256": "x", "step": 1, "app_version": "0"});
        std::fs::write(dir.join("state.json"), state.to_string()).unwrap();
        std::fs::write(dir.join("config.json"), b"{}").unwrap();
        std::fs::write(dir.join("model.bpk"), format!("weights of {kind}")).unwrap();
    }

    #[test]
    fn pack_verify_and_damage() {
        let d = tempfile::tempdir().unwrap();
        fake_checkpoint(&d.path().join("t"), "tokenizer");
        fake_checkpoint(&d.path().join("g"), "generator");
        let out = d.path().join("assets/models");
        let b = pack(&d.path().join("t"), &d.path().join("g"), &serde_json::json!({"note": "test"}), &out).unwrap();
        assert_eq!(b.tokenizer, out.join("tokenizer"));
        assert_eq!(locate(Some(&d.path().join("assets"))).unwrap().unwrap(), b);
        // Packing again replaces the bundle whole.
        pack(&d.path().join("t"), &d.path().join("g"), &serde_json::json!({"note": "again"}), &out).unwrap();
        assert!(std::fs::read_to_string(out.join("bundle.json")).unwrap().contains("again"));

        // Kinds are checked when packing.
        let err = pack(&d.path().join("g"), &d.path().join("t"), &serde_json::json!({}), &d.path().join("x")).unwrap_err().to_string();
        assert!(err.contains("not a tokenizer one"), "{err}");

        std::fs::write(out.join("generator/model.bpk"), b"tampered").unwrap();
        let err = verify(&out).unwrap_err().to_string();
        assert!(err.contains("generator/model.bpk") && err.contains("checksum mismatch") && err.contains("scripts/demo-models"), "{err}");
        std::fs::remove_file(out.join("generator/model.bpk")).unwrap();
        assert!(verify(&out).unwrap_err().to_string().contains("unreadable"));
        std::fs::write(out.join(SUMS), "not a sum line\n").unwrap();
        assert!(verify(&out).unwrap_err().to_string().contains("line 1"));
        std::fs::write(out.join(SUMS), "").unwrap();
        assert!(verify(&out).unwrap_err().to_string().contains("not listed"));
        assert!(matches!(verify(d.path()), Err(BundleError::NotABundle(_))));
        assert!(locate(Some(d.path())).is_none());
    }

    #[test]
    fn a_general_tokenizer_joins_a_bundle_and_is_checked() {
        let d = tempfile::tempdir().unwrap();
        fake_checkpoint(&d.path().join("t"), "tokenizer");
        fake_checkpoint(&d.path().join("g"), "generator");
        fake_checkpoint(&d.path().join("general-run"), "tokenizer");
        let out = d.path().join("models");
        assert_eq!(pack(&d.path().join("t"), &d.path().join("g"), &serde_json::json!({}), &out).unwrap().general, None);
        // Only a tokenizer can be the general one.
        assert!(add_general(&out, &d.path().join("g")).is_err());
        let b = add_general(&out, &d.path().join("general-run")).unwrap();
        assert_eq!(b.general, Some(out.join("general")));
        // Adding again replaces it, with one set of lines in the sums.
        add_general(&out, &d.path().join("general-run")).unwrap();
        let sums = std::fs::read_to_string(out.join(SUMS)).unwrap();
        assert_eq!(sums.matches("general/model.bpk").count(), 1);
        std::fs::write(out.join("general/model.bpk"), b"tampered").unwrap();
        assert!(verify(&out).unwrap_err().to_string().contains("general/model.bpk"));
        // A listed general part must be whole.
        let partial: String = sums.lines().filter(|l| !l.ends_with("general/config.json")).map(|l| format!("{l}\n")).collect();
        std::fs::write(out.join(SUMS), partial).unwrap();
        std::fs::write(out.join("general/model.bpk"), b"weights of tokenizer").unwrap();
        assert!(verify(&out).unwrap_err().to_string().contains("general/config.json"));
    }
}

//! Opening a training run made earlier (in this session or another): what a chosen or dropped
//! folder is (a run, a dataset or neither), and what a run holds (kind, preset, checkpoints,
//! its planned steps). Only the small JSON files of the checkpoints are read — no weights, no
//! tensors — so this runs on the UI thread.

use std::path::{Path, PathBuf};

use hitvideo_engine::checkpoint::{self, CheckpointState};
use hitvideo_engine::dataset::index::HEADER_FILE;

use crate::studio::settings::TrainTarget;

/// What a folder given to the Train view is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderKind {
    /// A run folder (a `latest` file) or one of its checkpoints (`state.json`).
    Run,
    /// A dataset folder (`dataset.json`, as `hitvideo data import` writes).
    Dataset,
    /// Neither.
    Other,
}

/// Tells a run from a dataset by the files the engine writes into each.
pub fn folder_kind(dir: &Path) -> FolderKind {
    if dir.join("latest").is_file() || dir.join("state.json").is_file() {
        FolderKind::Run
    } else if dir.join(HEADER_FILE).is_file() {
        FolderKind::Dataset
    } else {
        FolderKind::Other
    }
}

/// A run found on disk, ready to be resumed.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    /// The run folder (the one holding `latest` and the step-* checkpoints).
    pub dir: PathBuf,
    pub target: TrainTarget,
    pub preset: String,
    /// Step of the newest checkpoint (the one `latest` names).
    pub step: usize,
    /// The checkpoint `latest` names.
    pub latest: PathBuf,
    /// Steps the run was set to reach (its `train.json`), when readable.
    pub steps: Option<usize>,
    /// Its batch size (its `train.json`), when readable.
    pub batch: Option<usize>,
    /// Its micro-batches per step (its `train.json`; 1 in runs from before accumulation).
    pub accumulate: Option<usize>,
    /// Its checkpoints, oldest first: (step, folder).
    pub checkpoints: Vec<(usize, PathBuf)>,
    /// Generator runs: the tokenizer checkpoint its token cache came from, if recorded.
    pub tokenizer: Option<PathBuf>,
}

impl RunInfo {
    /// What the view says once the run is open, `steps` being the steps a resume trains to.
    pub fn summary(&self, steps: usize) -> String {
        let kind = match self.target {
            TrainTarget::Tokenizer => "tokenizer",
            TrainTarget::Generator => "generator",
        };
        let next = if steps > self.step {
            "Resume continues it".to_string()
        } else {
            format!("it has done its {steps} steps; raise steps, then Resume to train further")
        };
        format!("opened the {kind} run {} ({}) at step {}; {next}", self.dir.display(), self.preset, self.step)
    }
}

/// The message for a folder dropped on the Train view that is neither a run nor a dataset.
pub fn neither_run_nor_dataset(path: &Path) -> String {
    format!(
        "{}: neither a training run (no `latest` file) nor a dataset (no dataset.json); drop a run folder to resume it, \
         or a folder made by `hitvideo data import` / `data synth` to train on it",
        path.display()
    )
}

fn read_state(step_dir: &Path) -> Result<CheckpointState, String> {
    checkpoint::read_state_any(step_dir).map_err(|e| e.to_string())
}

fn json_usize(v: &serde_json::Value, key: &str) -> Option<usize> {
    v.get(key).and_then(serde_json::Value::as_u64).and_then(|n| usize::try_from(n).ok())
}

/// Reads the run in `path` (a run folder, or one of its step-* folders: then its run folder).
/// Errors name the folder and say what to choose instead.
pub fn inspect_run(path: &Path) -> Result<RunInfo, String> {
    let not_a_run = || {
        format!(
            "{}: not a training run (no `latest` file and no step-*/state.json); open a run folder the Train view or \
             `hitvideo tokenizer train` / `lm train` made",
            path.display()
        )
    };
    let dir = if path.join("latest").is_file() {
        path.to_path_buf()
    } else if path.join("state.json").is_file() {
        match path.parent().filter(|p| p.join("latest").is_file()) {
            Some(parent) => parent.to_path_buf(),
            None => {
                return Err(format!(
                    "{}: a single checkpoint, not a run folder (no `latest` file beside it), so it cannot be resumed; \
                     load it with \"Open tokenizer…\" / \"Open generator…\" or start a new run",
                    path.display()
                ));
            }
        }
    } else {
        return Err(not_a_run());
    };
    let latest = checkpoint::resolve(&dir).map_err(|e| e.to_string())?;
    let state = read_state(&latest)?;
    let target = match state.kind.as_str() {
        "tokenizer" => TrainTarget::Tokenizer,
        "generator" => TrainTarget::Generator,
        other => {
            return Err(format!(
                "{}: a run of kind '{other}', which the Train view cannot continue (it trains tokenizers and generators); \
                 choose a tokenizer or generator run folder",
                dir.display()
            ));
        }
    };
    let mut checkpoints = Vec::new();
    for ck in checkpoint::list(&dir) {
        let s = read_state(&ck)?;
        if s.kind != state.kind {
            return Err(format!(
                "{}: holds a {} checkpoint beside {} ones ({}); the run folder is mixed up — move that checkpoint out",
                dir.display(),
                s.kind,
                state.kind,
                ck.display()
            ));
        }
        checkpoints.push((s.step, ck));
    }
    let train: serde_json::Value = checkpoint::read_file(&latest, "train.json").ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    let tokenizer = (target == TrainTarget::Generator)
        .then(|| std::fs::read(dir.join("cache").join("cache.json")).ok())
        .flatten()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("tokenizer_checkpoint").and_then(|t| t.as_str()).map(PathBuf::from));
    Ok(RunInfo {
        dir,
        target,
        preset: state.preset,
        step: state.step,
        latest,
        steps: json_usize(&train, "steps"),
        batch: json_usize(&train, "batch"),
        accumulate: json_usize(&train, "accumulate").or(train.is_object().then_some(1)),
        checkpoints,
        tokenizer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(kind: &str, step: usize) -> CheckpointState {
        CheckpointState {
            kind: kind.into(),
            preset: "tiny".into(),
            config_sha256: "x".into(),
            step,
            app_version: "t".into(),
            metrics: serde_json::Value::Null,
            files: Vec::new(),
        }
    }

    #[test]
    fn runs_datasets_and_other_folders_are_told_apart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let run = dir.path().join("run");
        for step in [3, 7] {
            checkpoint::save(&run, &[("train.json", br#"{"steps":50,"batch":2}"#.to_vec())], &state("tokenizer", step), 5).expect("save");
        }
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("dir");
        std::fs::write(data.join(HEADER_FILE), "{}").expect("write");
        assert_eq!(folder_kind(&run), FolderKind::Run);
        assert_eq!(folder_kind(&data), FolderKind::Dataset);
        assert_eq!(folder_kind(dir.path()), FolderKind::Other);
        let info = inspect_run(&run).expect("a run");
        assert_eq!((info.target, info.preset.as_str(), info.step, info.steps, info.batch), (TrainTarget::Tokenizer, "tiny", 7, Some(50), Some(2)));
        assert_eq!(info.checkpoints.iter().map(|c| c.0).collect::<Vec<_>>(), vec![3, 7]);
        assert!(info.summary(50).ends_with("(tiny) at step 7; Resume continues it"), "{}", info.summary(50));
        assert!(info.summary(7).contains("it has done its 7 steps; raise steps"), "{}", info.summary(7));
        // A step folder opens its run.
        assert_eq!(inspect_run(&info.checkpoints[0].1).expect("its run").dir, run);
        let e = inspect_run(&data).expect_err("not a run");
        assert!(e.contains("not a training run"), "{e}");
        let odd = dir.path().join("odd");
        checkpoint::save(&odd, &[], &state("bundle", 1), 1).expect("save");
        let e = inspect_run(&odd).expect_err("wrong kind");
        assert!(e.contains("a run of kind 'bundle'"), "{e}");
    }
}

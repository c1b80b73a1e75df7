//! Opening a training run made earlier (in this session or another): the engine describes the
//! folder (`service::runs::describe_run`, as `hitvideo models describe` does); this module
//! words it for the Train view. Only the small JSON files of the checkpoints are read — no
//! weights, no tensors — so this runs on the UI thread.

use std::path::{Path, PathBuf};

pub use hitvideo_engine::service::runs::{FolderKind, RunInfo, folder_kind};
use hitvideo_engine::service::runs::{RunInfoError, RunKind, describe_run};

use crate::studio::settings::TrainTarget;

/// The Train view's target for a run's kind.
pub fn target(kind: RunKind) -> TrainTarget {
    match kind {
        RunKind::Tokenizer => TrainTarget::Tokenizer,
        RunKind::Generator => TrainTarget::Generator,
    }
}

/// What the view says once the run is open, `steps` being the steps a resume trains to.
pub fn summary(run: &RunInfo, steps: usize) -> String {
    let next =
        if steps > run.step { "Resume continues it".to_string() } else { format!("it has done its {steps} steps; raise steps, then Resume to train further") };
    format!("opened the {} run {} ({}) at step {}; {next}", run.kind.name(), run.dir.display(), run.preset, run.step)
}

/// The message for a folder dropped on the Train view that is neither a run nor a dataset.
pub fn neither_run_nor_dataset(path: &Path) -> String {
    format!(
        "{}: neither a training run (no `latest` file) nor a dataset (no dataset.json); drop a run folder to resume it, \
         or a folder made by `hitvideo data import` / `data synth` to train on it",
        path.display()
    )
}

/// Why a folder cannot be opened as a run in the Train view; the engine's reasons, worded for
/// the view's buttons where they differ.
#[derive(Debug, thiserror::Error)]
pub enum OpenRunError {
    #[error("{}: a run is in progress; pause or stop it before opening another run", .0.display())]
    Busy(PathBuf),
    #[error(
        "{}: a single checkpoint, not a run folder (no `latest` file beside it), so it cannot be resumed; \
         load it with \"Open tokenizer…\" / \"Open generator…\" or start a new run",
        .0.display()
    )]
    SingleCheckpoint(PathBuf),
    #[error(transparent)]
    Run(RunInfoError),
}

/// Reads the run in `path` (a run folder, or one of its step-* folders: then its run folder);
/// errors name the folder and the studio's way out.
pub fn inspect_run(path: &Path) -> Result<RunInfo, OpenRunError> {
    describe_run(path).map_err(|e| match e {
        RunInfoError::SingleCheckpoint(p) => OpenRunError::SingleCheckpoint(p),
        other => OpenRunError::Run(other),
    })
}

#[cfg(test)]
mod tests {
    use hitvideo_engine::checkpoint::{self, CheckpointState};
    use hitvideo_engine::dataset::index::HEADER_FILE;

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
        assert_eq!((target(info.kind), info.preset.as_str(), info.step, info.steps, info.batch), (TrainTarget::Tokenizer, "tiny", 7, Some(50), Some(2)));
        assert_eq!(info.checkpoints.iter().map(|c| c.0).collect::<Vec<_>>(), vec![3, 7]);
        assert!(summary(&info, 50).ends_with("(tiny) at step 7; Resume continues it"), "{}", summary(&info, 50));
        assert!(summary(&info, 7).contains("it has done its 7 steps; raise steps"), "{}", summary(&info, 7));
        // A step folder opens its run; a lone checkpoint says how to use it in the studio.
        assert_eq!(inspect_run(&info.checkpoints[0].1).expect("its run").dir, run);
        let lone = dir.path().join("lone");
        checkpoint::save(&lone, &[], &state("tokenizer", 1), 1).expect("save");
        std::fs::remove_file(lone.join("latest")).expect("unlink latest");
        let step = checkpoint::list(&lone).into_iter().next().expect("a step folder");
        let e = inspect_run(&step).expect_err("a lone checkpoint").to_string();
        assert!(e.contains("Open tokenizer…"), "{e}");
        let e = inspect_run(&data).expect_err("not a run").to_string();
        assert!(e.contains("not a training run"), "{e}");
        let odd = dir.path().join("odd");
        checkpoint::save(&odd, &[], &state("bundle", 1), 1).expect("save");
        let e = inspect_run(&odd).expect_err("wrong kind").to_string();
        assert!(e.contains("a run of kind 'bundle'"), "{e}");
    }
}

//! The Train view across sessions (egui_kittest, no window, the CPU device): a tokenizer run
//! trained in one studio is opened in a fresh one ("Open run…"'s code path, a dropped folder,
//! or the last run reopened at start-up) and resumed past its step; folders that are not runs
//! get a clear message. Also the start-up demo-model load, cancelled from the status bar, and
//! a file dialog ("Import folder…") that keeps the UI running while it is open.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use egui_kittest::kittest::Queryable;
use hitvideo_app::studio::View;
use hitvideo_app::studio::dialogs::{DialogKind, Dialogs};
use hitvideo_app::studio::settings::TrainTarget;
use hitvideo_app::studio::views::train::RunState;

mod common;
use common::*;

/// Trains a tokenizer run for a couple of steps and stops it: (run folder, step reached).
fn trained_run(work: &Path) -> (PathBuf, usize) {
    let mut h = harness(work, |s| short_run(s, 200));
    h.step();
    h.get_by_label("Start").click();
    wait_until(&mut h, "two training steps", 120, |h| h.state().train.step >= 2);
    h.get_by_label("Stop").click();
    wait_until(&mut h, "the run to stop", 60, |h| h.state().engine_idle() && has_label(h, "stopped at step"));
    let (step, ckpt) = h.state().train.checkpoints.last().cloned().expect("stopping writes a checkpoint");
    let run = ckpt.parent().expect("a run folder").to_path_buf();
    assert_eq!(h.state().settings().train.last_run.as_deref(), Some(run.as_path()), "a started run is remembered");
    (run, step)
}

#[test]
fn a_run_from_an_earlier_session_opens_paused_and_resumes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (run, stopped_at) = trained_run(dir.path());

    // A fresh studio: the run opens as "Open run…" opens it; its settings come along.
    let mut h = harness(dir.path(), |s| {
        short_run(s, 7);
        s.train.target = TrainTarget::Generator;
        s.train.preset = "paper".into();
    });
    h.step();
    assert_eq!(h.state().train.state, RunState::Idle);
    h.state_mut().open_train_run(&run).expect("the run opens");
    h.step();
    let t = &h.state().settings().train;
    assert_eq!((t.target, t.preset.as_str(), t.steps), (TrainTarget::Tokenizer, "tiny", 200));
    assert_eq!(t.last_run.as_deref(), Some(run.as_path()));
    assert_eq!(h.state().train.state, RunState::Paused);
    assert_eq!(h.state().train.step, stopped_at);
    assert_eq!(h.state().train.checkpoints.last().map(|c| c.0), Some(stopped_at));
    assert!(has_label(&h, "opened the tokenizer run"), "no message about the opened run");
    assert!(has_label(&h, &format!("step {stopped_at}: ")), "checkpoints not listed");
    h.get_by_label("Resume").click();
    wait_until(&mut h, "steps after resuming", 120, |h| h.state().train.state == RunState::Running && h.state().train.step > stopped_at);
    h.get_by_label("Stop").click();
    wait_until(&mut h, "the resumed run to stop", 60, |h| h.state().engine_idle() && has_label(h, "stopped at step"));
    let (last, ckpt) = h.state().train.checkpoints.last().cloned().expect("a checkpoint after resuming");
    assert!(last > stopped_at && ckpt.starts_with(&run), "step {last} in {}", ckpt.display());
    let saved = h.state().settings().clone();
    drop(h);

    // The next session reopens the last run, paused.
    let h = harness(dir.path(), |s| *s = saved);
    assert_eq!(h.state().train.state, RunState::Paused);
    assert_eq!(h.state().train.step, last);
}

#[test]
fn folders_that_are_not_runs_get_a_clear_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path(), |s| short_run(s, 10));
    h.step();
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).expect("dir");
    let e = h.state_mut().open_train_run(&empty).expect_err("not a run").to_string();
    assert!(e.contains("not a training run") && e.contains("empty"), "{e}");
    h.step();
    assert!(has_label(&h, "not a training run"));
    assert_eq!(h.state().train.state, RunState::Idle);

    // A run of another kind (not a tokenizer or generator run).
    let odd = dir.path().join("odd");
    std::fs::create_dir_all(odd.join("step-0000001")).expect("dir");
    let state = r#"{"kind":"bundle","preset":"tiny","config_sha256":"x","step":1,"app_version":"0","metrics":null}"#;
    std::fs::write(odd.join("step-0000001").join("state.json"), state).expect("write");
    std::fs::write(odd.join("latest"), "step-0000001").expect("write");
    let e = h.state_mut().open_train_run(&odd).expect_err("wrong kind").to_string();
    assert!(e.contains("a run of kind 'bundle'"), "{e}");

    // Dropped folders: neither a run nor a dataset, then a dataset, then the odd run.
    drop_file(&mut h, empty);
    h.step();
    h.step();
    assert!(has_label(&h, "neither a training run"), "no message for a folder that is neither");
    assert_eq!(h.state().settings().train.folder, None);
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("dir");
    std::fs::write(data.join("dataset.json"), "{}").expect("write");
    drop_file(&mut h, data.clone());
    h.step();
    h.step();
    assert_eq!(h.state().settings().train.folder.as_deref(), Some(data.as_path()));
    drop_file(&mut h, odd);
    h.step();
    h.step();
    assert!(has_label(&h, "a run of kind 'bundle'"));
    assert_eq!(h.state().train.state, RunState::Idle);
}

#[test]
fn the_start_up_demo_model_load_can_be_cancelled() {
    let dir = tempfile::tempdir().expect("temp dir");
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets");
    let mut h = harness_with_assets(dir.path(), &assets, |_| {});
    h.step();
    // The demo models are queued at start-up; cancelling drops the job (or, if it has begun
    // reading, the weights it read).
    h.get_by_label("Cancel load generator").click();
    wait_until(&mut h, "the cancelled load", 120, |h| h.state().engine_idle());
    let notices = h.state().notices();
    assert!(notices.iter().any(|(err, n)| !err && n.contains("cancelled")), "{notices:?}");
    assert_eq!(h.state().models().generator, None, "a cancelled load installs nothing");
    assert!(h.query_by_label_contains("Cancel load generator").is_none(), "the button goes with the job");
}

#[test]
fn a_load_queued_behind_training_can_be_cancelled() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path(), |s| short_run(s, 100_000));
    h.step();
    h.get_by_label("Start").click();
    wait_until(&mut h, "the first training step", 120, |h| h.state().train.step >= 1);
    // A tokenizer folder dropped on the Tokens view queues a load behind the running training.
    h.state_mut().settings_mut().view = View::Tokens;
    h.step();
    drop_file(&mut h, Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/models/tokenizer"));
    h.step();
    h.step();
    h.get_by_label("Cancel load tokenizer").click();
    h.step();
    assert_eq!(h.state().train.state, RunState::Running, "training goes on");
    // The queued job is dropped when its turn comes, after the training.
    h.state_mut().settings_mut().view = View::Train;
    h.step();
    h.get_by_label("Stop").click();
    wait_until(&mut h, "the run to stop and the load to be dropped", 60, |h| h.state().engine_idle());
    let notices = h.state().notices();
    assert!(notices.iter().any(|(err, n)| !err && n.contains("cancelled before it started")), "{notices:?}");
    assert_eq!(h.state().models().tokenizer, None, "the cancelled load installed nothing");
}

#[test]
fn a_file_dialog_does_not_block_the_ui() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("dataset");
    std::fs::create_dir_all(&data).expect("dir");
    let mut h = harness(dir.path(), |s| s.view = View::Train);
    // A user who takes their time: the dialog answers only when the test lets it (at most a
    // minute: a UI that waited for it would fail below, not hang).
    let (release, gate) = mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    let asked = Arc::new(Mutex::new(Vec::new()));
    let (seen, answer) = (Arc::clone(&asked), data.clone());
    h.state_mut().set_dialogs(Dialogs::with_opener(move |spec| {
        seen.lock().expect("lock").push(spec);
        let _ = gate.lock().expect("lock").recv_timeout(Duration::from_secs(60));
        Some(answer.clone())
    }));
    h.step();
    h.get_by_label("Import folder…").click();
    for _ in 0..10 {
        h.step();
    }
    assert!(h.state().dialog_open(), "the frames waited for the dialog");
    assert!(has_label(&h, "a file dialog is open"));
    assert_eq!(h.state().settings().train.folder, None, "a folder before the user chose one");
    // A second click while the dialog is open does not stack another one.
    h.get_by_label("Import folder…").click();
    h.step();
    h.step();
    release.send(()).expect("the dialog waits for its answer");
    wait_until(&mut h, "the dialog's answer", 30, |h| h.state().settings().train.folder.as_deref() == Some(data.as_path()));
    assert!(!h.state().dialog_open());
    assert!(has_label(&h, &data.display().to_string()), "the chosen folder is not shown");
    assert!(!has_label(&h, "a file dialog is open"));
    let asked = asked.lock().expect("lock").clone();
    assert_eq!(asked.len(), 1, "dialogs shown: {asked:?}");
    assert_eq!(asked[0].kind, DialogKind::PickFolder);
    assert_eq!(asked[0].title.as_deref(), Some("Dataset folder (from `hitvideo data import`)"));
}

//! Shared helpers of the studio's kittest suites (`studio.rs`, `studio_train.rs`): a studio
//! on the CPU in a harness, dropped files, waiting for a condition, labels, short runs.
#![allow(dead_code)] // each suite uses a different subset

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use hitvideo_app::studio::{Settings, StudioApp, StudioOptions, View};
use hitvideo_engine::device::DeviceChoice;

pub type H = Harness<'static, StudioApp>;

/// A file dropped on the window.
#[derive(Debug)]
pub struct Dropped(pub PathBuf);

impl eframe::egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

/// A clip of `../shared/data` (beside the repository).
pub fn workspace_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data").join(name)
}

pub fn drop_file(h: &mut H, path: PathBuf) {
    h.input_mut().dropped_files.push(std::sync::Arc::new(Dropped(path)));
}

/// A studio on the CPU without demo models (an empty assets folder).
pub fn harness(work: &Path, setup: impl FnOnce(&mut Settings)) -> H {
    harness_with_assets(work, &work.join("no-assets"), setup)
}

/// The demo models of the repository's `assets/` (as `hitvideo generate` uses by default).
pub fn repo_assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets")
}

pub fn harness_with_assets(work: &Path, assets: &Path, setup: impl FnOnce(&mut Settings)) -> H {
    let mut settings = Settings { device: DeviceChoice::Cpu, ..Default::default() };
    setup(&mut settings);
    let opts = StudioOptions { screenshot: None, work_dir: work.to_path_buf(), assets: Some(assets.to_path_buf()), prompt: None };
    Harness::builder().with_size(eframe::egui::vec2(1400.0, 1100.0)).build_eframe(move |cc| StudioApp::new(&cc.egui_ctx, None, settings, opts))
}

/// Steps the UI (as a real event loop would, ~50 fps) until `cond` holds.
pub fn wait_until(h: &mut H, what: &str, secs: u64, mut cond: impl FnMut(&H) -> bool) {
    let t0 = Instant::now();
    while !cond(h) {
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "timed out after {secs} s waiting for {what}; notices: {:?}; train view: {:?} at step {} ({:?}); engine idle: {}",
            h.state().notices(),
            h.state().train.state,
            h.state().train.step,
            h.state().train.message(),
            h.state().engine_idle()
        );
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    h.step();
}

pub fn has_label(h: &H, text: &str) -> bool {
    h.query_by_label_contains(text).is_some()
}

/// Settings for a short tokenizer run on a small synthetic set.
pub fn short_run(s: &mut Settings, steps: usize) {
    s.view = View::Train;
    let t = &mut s.train;
    (t.steps, t.batch, t.synthetic_count, t.val_every, t.val_clips, t.checkpoint_every, t.warmup) = (steps, 1, 64, 1000, 1, 1000, 1);
}

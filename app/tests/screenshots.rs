//! Not a check: `scripts/screenshots` runs this (ignored) test to render every view of the
//! studio with the wgpu renderer (the real one, on Mesa's software Vulkan where there is no GPU)
//! into `docs/images/` (or `$HITVIDEO_SCREENSHOTS`): the Generate view with the demo models and
//! a generated clip, the Tokens view with a tokenized clip, a finished sweep, a comparison, a
//! training run and the Data view. It fails when a view cannot be drawn or saved.

mod common;

use std::path::PathBuf;

use common::*;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use hitvideo_app::studio::settings::SeedMode;
use hitvideo_app::studio::{Settings, StudioApp, StudioOptions, View};
use hitvideo_engine::device::DeviceChoice;

fn save(h: &mut H, dir: &std::path::Path, name: &str) {
    for _ in 0..3 {
        h.step();
    }
    let img = h.render().expect("render the window with wgpu");
    let path = dir.join(format!("studio-{name}.png"));
    img.save(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    println!("wrote {}", path.display());
}

#[test]
#[ignore = "run by scripts/screenshots"]
fn render_every_view() {
    let out =
        std::env::var_os("HITVIDEO_SCREENSHOTS").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/images")));
    std::fs::create_dir_all(&out).expect("the screenshot folder");
    let work = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings { device: DeviceChoice::Cpu, view: View::Generate, ..Default::default() };
    settings.generate.prompt = "a red circle moves right".into();
    settings.generate.seed_mode = SeedMode::Range;
    settings.generate.seed_range = "0-1".into();
    settings.sweep.cfgs = "1,2.5,5".into();
    settings.sweep.seeds = "0-2".into();
    short_run(&mut settings, 400);
    (settings.train.val_every, settings.train.val_clips) = (10, 4);
    settings.view = View::Generate;
    let opts = StudioOptions { screenshot: None, work_dir: work.path().to_path_buf(), assets: Some(repo_assets()), prompt: None };
    let mut h: H = Harness::builder()
        .with_size(eframe::egui::vec2(1280.0, 800.0))
        .with_render_cursor(false)
        .wgpu()
        .build_eframe(move |cc| StudioApp::new(&cc.egui_ctx, cc.wgpu_render_state.clone(), settings, opts));
    wait_until(&mut h, "the demo models", 120, |h| h.state().models().generator.is_some() && h.state().engine_idle());
    h.get_all_by_label("Generate").last().expect("the Generate button").click();
    wait_until(&mut h, "a generated clip", 120, |h| has_label(h, "preview: 4 of 4 layers decoded") && h.state().engine_idle());
    save(&mut h, &out, "generate");
    h.get_by_label("Compare seeds").click();
    save(&mut h, &out, "compare");
    h.get_all_by_label("Tokens").next().expect("Tokens tab").click();
    h.step();
    h.get_by_label("Tokenize synthetic clip").click();
    wait_until(&mut h, "token maps", 120, |h| h.state().tokens.payload().is_some() && h.state().engine_idle());
    save(&mut h, &out, "tokens");
    // A real video through the bundle's general tokenizer (64x64, 1232 tokens).
    drop_file(&mut h, workspace_data("bikes.mp4"));
    h.step();
    wait_until(&mut h, "bikes.mp4's tokens", 120, |h| h.state().tokens.payload().is_some_and(|p| p.label.contains("bikes.mp4")) && h.state().engine_idle());
    save(&mut h, &out, "tokens-real");
    h.get_all_by_label("Sweep").next().expect("Sweep tab").click();
    h.step();
    h.get_by_label("Run sweep").click();
    wait_until(&mut h, "the sweep", 240, |h| has_label(h, "9 of 9 cells") && h.state().engine_idle());
    save(&mut h, &out, "sweep");
    h.get_all_by_label("Train").next().expect("Train tab").click();
    h.step();
    h.get_by_label("Start").click();
    wait_until(&mut h, "a few training steps", 240, |h| h.state().train.step >= 30);
    save(&mut h, &out, "train");
    h.get_by_label("Stop").click();
    wait_until(&mut h, "the run to stop", 120, |h| h.state().engine_idle());
    h.get_all_by_label("Data").next().expect("Data tab").click();
    save(&mut h, &out, "data");
    for name in ["generate", "compare", "tokens", "tokens-real", "sweep", "train", "data"] {
        assert!(out.join(format!("studio-{name}.png")).is_file(), "{name}");
    }
}

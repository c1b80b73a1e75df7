//! The studio driven through its UI (egui_kittest, no window, the CPU device): training start
//! and stop, the UI producing frames while training runs, the tokens view, generation, a 2x2
//! sweep, bad input, settings persistence; and one real window under Xvfb.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use eframe::egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use hitvideo_app::studio::settings::ColorMode;
use hitvideo_app::studio::views::train::RunState;
use hitvideo_app::studio::{Settings, StudioApp, StudioOptions, View, tokenmap};
use hitvideo_engine::device::DeviceChoice;
use hitvideo_engine::tokenizer::FillStrategy;

mod common;
use common::*;

#[test]
fn train_view_starts_and_stops_a_tokenizer_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path(), |s| short_run(s, 200));
    h.step();
    wait_until(&mut h, "the memory estimate", 60, |h| has_label(h, "estimated training memory at batch 1"));
    // Beside it, what the machine has (the CPU's available memory, read from /proc/meminfo).
    let available = if cfg!(target_os = "linux") { "MiB available now" } else { "available memory not checked" };
    assert!(has_label(&h, available), "no available-memory text beside the estimate");
    h.get_by_label("Start").click();
    wait_until(&mut h, "two training steps", 120, |h| h.state().train.step >= 2);
    assert!(has_label(&h, "run folder:"));
    // Pause writes a checkpoint and ends the job; Resume continues the same run from it.
    h.get_by_label("Pause").click();
    wait_until(&mut h, "the run to pause", 60, |h| h.state().train.state == RunState::Paused && h.state().engine_idle());
    let paused_at = h.state().train.step;
    let (ckpt_step, _) = h.state().train.checkpoints.last().cloned().expect("pausing writes a checkpoint");
    assert_eq!(ckpt_step, paused_at);
    h.get_by_label("Resume").click();
    wait_until(&mut h, "steps after resuming", 120, |h| h.state().train.state == RunState::Running && h.state().train.step > paused_at);
    h.get_by_label("Stop").click();
    wait_until(&mut h, "the run to stop", 60, |h| has_label(h, "stopped at step"));
    let t = &h.state().train;
    assert!(t.step >= 2 && t.step < 200, "stopped early: step {}", t.step);
    let (ckpt_step, ckpt) = t.checkpoints.last().cloned().expect("stopping writes a checkpoint");
    assert!(ckpt.join("model.bpk").is_file(), "{}", ckpt.display());
    assert_eq!(ckpt_step, t.step);
    assert!(h.state().engine_idle());
    // Pause/resume shares the mechanism; resume continues from the checkpoint.
    assert!(h.query_by_label("Resume").is_some());
}

#[test]
fn train_view_trains_a_generator_on_its_tokenizer_and_generates_with_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path(), |s| {
        short_run(s, 200);
        s.train.text_encoder = "small".into();
    });
    h.step();
    h.get_by_label("Start").click();
    wait_until(&mut h, "tokenizer steps", 120, |h| h.state().train.step >= 2);
    h.get_by_label("Stop").click();
    wait_until(&mut h, "the tokenizer run to stop", 60, |h| h.state().engine_idle() && h.state().train.last_tokenizer.is_some());
    h.get_by_label("generator").click();
    h.step();
    h.get_by_label("Use the last tokenizer checkpoint").click();
    h.state_mut().settings_mut().train.checkpoint_every = 2;
    h.step();
    // The memory estimate follows the target: the generator preset over the chosen tokenizer.
    wait_until(&mut h, "the generator's memory estimate", 60, |h| has_label(h, "generator tiny:") && has_label(h, "estimated training memory at batch 1"));
    h.get_by_label("Start").click();
    wait_until(&mut h, "generator steps (after the token cache)", 240, |h| h.state().train.state == RunState::Running && h.state().train.step >= 2);
    // After a checkpoint the strip samples validation captions with the weights just saved.
    wait_until(&mut h, "the sample strip", 120, |h| has_label(h, "bottom: sampled from their captions"));
    h.get_by_label("Stop").click();
    wait_until(&mut h, "the generator run to stop", 60, |h| has_label(h, "stopped at step"));
    let run = h.state().train.checkpoints.last().expect("generator checkpoint").1.clone();
    assert!(run.join("model.bpk").is_file());
    h.get_all_by_label("Load for generation").next().expect("checkpoint row").click();
    wait_until(&mut h, "the trained generator", 120, |h| h.state().models().generator.as_deref().is_some_and(|g| !g.contains("untrained")));
    assert!(h.state().models().tokenizer.as_deref().is_some_and(|t| t.contains("the generator's")), "{:?}", h.state().models());
    h.get_all_by_label("Generate").next().expect("tab").click();
    h.step();
    generate_button(&h).click();
    wait_until(&mut h, "a clip from the trained generator", 120, |h| has_label(h, "preview: 4 of 4 layers decoded") && h.state().engine_idle());
    drop(h);
    // First run with a demo bundle in `assets/models/` (packed as scripts/demo-models does): the
    // studio checks its SHA256SUMS, loads it and generates at once.
    let assets = dir.path().join("assets/models");
    let tok = dir
        .path()
        .join("runs")
        .read_dir()
        .expect("runs")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("tokenizer-"))
        .expect("tokenizer run");
    hitvideo_engine::bundle::pack(&tok, run.parent().expect("run folder"), &serde_json::json!({"test": true}), &assets).expect("pack the bundle");
    let work = dir.path().to_path_buf();
    let opts = StudioOptions { screenshot: None, work_dir: work.clone(), assets: Some(work.join("assets")), prompt: None };
    let mut h: H = Harness::builder()
        .with_size(eframe::egui::vec2(1400.0, 1100.0))
        .build_eframe(move |cc| StudioApp::new(&cc.egui_ctx, None, Settings { device: DeviceChoice::Cpu, ..Default::default() }, opts));
    wait_until(&mut h, "the demo models", 120, |h| h.state().models().generator.is_some());
    generate_button(&h).click();
    wait_until(&mut h, "a clip from the demo models", 120, |h| has_label(h, "preview: 4 of 4 layers decoded") && h.state().engine_idle());
    drop(h);
    // A damaged bundle is refused with a message naming the file and the fix; the studio runs on.
    std::fs::write(assets.join("generator/model.bpk"), b"not weights").expect("damage the bundle");
    let opts = StudioOptions { screenshot: None, work_dir: work.clone(), assets: Some(work.join("assets")), prompt: None };
    let mut h: H = Harness::builder()
        .with_size(eframe::egui::vec2(1400.0, 1100.0))
        .build_eframe(move |cc| StudioApp::new(&cc.egui_ctx, None, Settings { device: DeviceChoice::Cpu, ..Default::default() }, opts));
    h.step();
    let notice = h.state().notices().iter().find(|(err, _)| *err).map(|(_, t)| t.clone()).expect("an error notice");
    assert!(notice.contains("generator/model.bpk") && notice.contains("checksum mismatch") && notice.contains("scripts/demo-models"), "{notice}");
    assert!(h.state().models().generator.is_none());
    h.get_all_by_label("Tokens").next().expect("tab").click();
    h.step();
}

/// Steps the UI for `secs` while sending input (a pointer move every frame, a view switch every
/// 10 frames, ending on the view it started from); returns each frame's time in ms.
fn frames_under_input(h: &mut H, secs: Duration) -> Vec<f64> {
    let views = ["Generate", "Tokens", "Sweep", "Data", "Train"];
    let start_view = h.state().settings().view.label().to_string();
    let mut times = Vec::new();
    let t0 = Instant::now();
    let mut i = 0usize;
    while t0.elapsed() < secs {
        let x = 100.0 + (i % 50) as f32 * 10.0;
        h.event(eframe::egui::Event::PointerMoved(eframe::egui::pos2(x, 300.0)));
        if i.is_multiple_of(10) {
            h.get_all_by_label(views[(i / 10) % views.len()]).next().expect("view tab").click();
        }
        let f = Instant::now();
        h.step();
        times.push(f.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(16));
        i += 1;
    }
    h.get_all_by_label(start_view.as_str()).next().expect("the first view's tab").click();
    h.step();
    times
}

#[test]
fn ui_keeps_producing_frames_while_training() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path(), |s| short_run(s, 1000));
    h.step();
    h.get_by_label("Start").click();
    wait_until(&mut h, "the first training step", 120, |h| h.state().train.step >= 1);
    let first = h.state().train.step;
    let mut times = frames_under_input(&mut h, Duration::from_secs(8));
    let trained = h.state().train.step - first;
    times.sort_by(f64::total_cmp);
    let pct = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    let stats = h.state().frame_stats();
    println!(
        "frames while training: {} in 8 s; frame time p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms; UI time mean {:.2} ms, p95 {:.2} ms; \
         training steps meanwhile: {trained}",
        times.len(),
        pct(50),
        pct(95),
        pct(100),
        stats.ui_mean,
        stats.ui_p95
    );
    assert!(times.len() > 100, "only {} frames in 8 s", times.len());
    assert!(pct(95) < 100.0, "p95 frame time {:.1} ms: the UI waits for the engine", pct(95));
    assert!(trained >= 1, "training made no progress while the UI ran");
    // The debug panel (F12) reports frame times and the engine's state.
    h.key_press(eframe::egui::Key::F12);
    h.step();
    h.step();
    assert!(has_label(&h, "frame interval mean"), "debug panel missing");
    assert!(has_label(&h, "train tokenizer (running)"), "engine state missing from the debug panel");
    h.get_all_by_label("Train").next().expect("Train tab").click();
    h.step();
    h.get_by_label("Stop").click();
    wait_until(&mut h, "the run to stop", 60, |h| h.state().engine_idle());
}

/// The Generate button (the view's tab has the same label and comes first).
fn generate_button(h: &H) -> egui_kittest::Node<'_> {
    h.get_all_by_label("Generate").last().expect("the Generate button")
}

fn untrained_models(h: &mut H) {
    h.get_by_label("Use untrained tiny models").click();
    // Idle too: the job's notice appears above the views and moves them down; clicks made
    // before it would land where a button was.
    wait_until(h, "untrained models", 120, |h| h.state().models().generator.is_some() && h.state().engine_idle());
    h.step();
}

#[test]
fn tokens_view_switches_layers_hovers_and_reports_a_corrupt_video() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path(), |s| s.view = View::Tokens);
    h.step();
    untrained_models(&mut h);
    h.get_by_label("Tokenize synthetic clip").click();
    wait_until(&mut h, "token maps", 120, |h| h.state().tokens.payload().is_some());
    assert!(has_label(&h, "token map: layer 1, latent frame 0 (2×2)"));
    h.get_by_label("layer 4 · 4×8×8 · 10 bits").click();
    h.step();
    assert!(has_label(&h, "token map: layer 4, latent frame 0 (8×8)"));
    let map = h.state().tokens.map_rect.expect("the map was drawn");
    h.hover_at(map.min + (map.max - map.min) * 0.55);
    h.step();
    h.step();
    assert!(has_label(&h, "layer 4 · t 0 · h 4 · w 4 · token "), "hover details missing");
    let p = h.state().tokens.payload().expect("payload");
    assert_eq!(p.layers.iter().map(|l| l.ids.len()).sum::<usize>(), 308);
    assert_eq!(p.recon.len(), 4);
    assert!(has_label(&h, "PSNR with 4 of 4 layers"));
    assert!(has_label(&h, "codebook usage, layer 4"));
    // The redundancy-mask overlay: realized ratio against the cap, and the fill strategy.
    h.get_by_label("redundancy mask").click();
    h.step();
    assert!(has_label(&h, "layer 4: realized mask ratio"), "mask ratio label missing");
    assert!(has_label(&h, "(cap 85%)"));
    assert!(has_label(&h, "decoded with fill 'repeat'"));
    // Hovering a token of a later latent frame shows its entry of the difference matrix.
    h.state_mut().tokens.t = 2;
    h.hover_at(map.min + (map.max - map.min) * 0.3);
    h.step();
    h.step();
    assert!(has_label(&h, "layer 4 · t 2 ·"), "hover details missing");
    assert!(has_label(&h, "difference to the previous latent frame:") && has_label(&h, "of 10 bits (layer mean"), "difference entry missing");
    // Pointer off the map again, so the details lines (and the widgets below them) stay put.
    h.hover_at(eframe::egui::pos2(5.0, 5.0));
    h.step();
    h.state_mut().settings_mut().tokens.fill = FillStrategy::Zero;
    h.get_by_label("Apply").click();
    wait_until(&mut h, "the zero-fill decode", 120, |h| has_label(h, "decoded with fill 'zero'"));
    // A corrupt file dropped on the view: a clear message, and the view keeps working.
    let bad = dir.path().join("broken.mp4");
    std::fs::write(&bad, b"this is not a video at all").expect("write");
    drop_file(&mut h, bad);
    wait_until(&mut h, "the decode error", 60, |h| has_label(h, "cannot open this video"));
    h.get_by_label("Tokenize synthetic clip").click();
    wait_until(&mut h, "a second tokenization", 120, |h| has_label(h, "PSNR from all layers"));
}

/// A real video file dropped on the Tokens view is fitted to the tokenizer, tokenized and shown
/// beside its reconstruction; a Cancel button stands beside the spinner while it works.
#[test]
fn tokens_view_tokenizes_a_real_video_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path(), |s| s.view = View::Tokens);
    h.step();
    untrained_models(&mut h);
    drop_file(&mut h, workspace_data("bikes.mp4"));
    h.step();
    assert!(has_label(&h, "tokenizing…") && h.query_by_label("Cancel").is_some(), "no progress or Cancel while tokenizing");
    wait_until(&mut h, "the file's tokens", 120, |h| h.state().tokens.payload().is_some() && h.state().engine_idle());
    let p = h.state().tokens.payload().expect("payload");
    assert!(p.label.contains("bikes.mp4"), "{}", p.label);
    assert_eq!(p.layers.iter().map(|l| l.ids.len()).sum::<usize>(), 308);
    assert!(has_label(&h, "PSNR from all layers"));
    // bikes.mp4 is 10 s: 80 frames at 8 fps, five windows of 16; every one is reachable.
    assert_eq!((p.window, p.windows), (0, Some(5)));
    assert!(p.label.contains("window 1 of 5"), "{}", p.label);
    let first = p.original.frame(0).to_vec();
    h.state_mut().tokens.window_choice = Some(3);
    h.step();
    h.get_by_label("Show window").click();
    wait_until(&mut h, "window 4's tokens", 120, |h| h.state().tokens.payload().is_some_and(|p| p.window == 3) && h.state().engine_idle());
    let p = h.state().tokens.payload().expect("payload");
    assert!(p.label.contains("window 4 of 5"), "{}", p.label);
    assert_ne!(p.original.frame(0), &first[..], "another part of the clip");
}

/// With the shipped bundle, which holds a general tokenizer, a real video dropped on the Tokens
/// view goes through it (its 1232 tokens at 64x64, not the shapes tokenizer's 308) and gets
/// token maps and redundancy masks; "the loaded tokenizer" sends the next one through the shapes
/// tokenizer; the Train view fine-tunes the general tokenizer.
#[test]
fn tokens_view_shows_a_real_video_through_the_general_tokenizer() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The repository's bundle: the shapes models and the shipped general tokenizer.
    let mut h = harness_with_assets(dir.path(), &repo_assets(), |s| {
        short_run(s, 2);
        s.view = View::Tokens;
    });
    wait_until(&mut h, "the bundle's models", 120, |h| h.state().models().general.is_some() && h.state().engine_idle());
    h.step();
    assert!(has_label(&h, "the general tokenizer"), "the choice is offered when the bundle has one");
    drop_file(&mut h, workspace_data("bikes.mp4"));
    h.step();
    wait_until(&mut h, "the general tokenizer's tokens", 120, |h| h.state().tokens.payload().is_some() && h.state().engine_idle());
    let p = h.state().tokens.payload().expect("payload");
    assert!(p.tokenizer.contains("general64"), "{}", p.tokenizer);
    assert_eq!(p.layers.iter().map(|l| l.ids.len()).sum::<usize>(), 1232);
    assert_eq!((p.original.width(), p.original.height()), (64, 64));
    match &p.masks {
        hitvideo_app::studio::jobs::Masks::Ready { layers, .. } => {
            assert!(layers.iter().flatten().count() >= 2, "masks of the layers with several latent frames")
        }
        other => panic!("no masks: {other:?}"),
    }
    h.get_by_label("the loaded tokenizer").click();
    h.step();
    h.step();
    drop_file(&mut h, workspace_data("bikes.mp4"));
    h.step();
    wait_until(&mut h, "the shapes tokenizer's tokens", 120, |h| {
        h.state().tokens.payload().is_some_and(|p| !p.tokenizer.contains("general64")) && h.state().engine_idle()
    });
    let p = h.state().tokens.payload().expect("payload");
    assert_eq!(p.layers.iter().map(|l| l.ids.len()).sum::<usize>(), 308);

    // The Train view fine-tunes the general tokenizer, here on the photo world.
    h.get_all_by_label("Train").next().expect("Train tab").click();
    h.step();
    h.step();
    h.get_by_label("the general tokenizer (fine-tune)").click();
    h.get_by_label("photo world").click();
    h.step();
    h.step();
    h.get_by_label("Start").click();
    wait_until(&mut h, "the fine-tune to finish", 180, |h| h.state().train.step >= 2 && h.state().engine_idle());
    let (_, ckpt) = h.state().train.checkpoints.last().cloned().expect("a checkpoint");
    let cfg = std::fs::read_to_string(ckpt.join("config.json")).expect("config.json");
    assert!(cfg.contains("\"general64\""), "the run fine-tunes the general tokenizer: {cfg}");
}

/// The wgpu renderer draws token maps with `shaders/token_map.wgsl`; its pixels must match
/// the CPU colouring (`tokenmap.rs`) cell by cell, in both colour modes.
#[test]
fn token_maps_drawn_by_the_wgsl_shader_match_the_cpu_colours() {
    if hitvideo_engine::device::list_adapters().is_empty() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "a wgpu adapter (e.g. lavapipe) is required on CI");
        eprintln!("skipped: no wgpu adapter (apt-get install mesa-vulkan-drivers)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = Settings { device: DeviceChoice::Cpu, view: View::Tokens, ..Default::default() };
    let opts = StudioOptions { screenshot: None, work_dir: dir.path().to_path_buf(), assets: Some(dir.path().join("no-assets")), prompt: None };
    let mut h: H = Harness::builder().with_size(eframe::egui::vec2(1400.0, 1100.0)).with_render_cursor(false).wgpu().build_eframe(move |cc| {
        assert!(cc.wgpu_render_state.is_some(), "the wgpu test renderer gives the app its render state");
        StudioApp::new(&cc.egui_ctx, cc.wgpu_render_state.clone(), settings, opts)
    });
    h.step();
    untrained_models(&mut h);
    h.get_by_label("Tokenize synthetic clip").click();
    wait_until(&mut h, "token maps", 120, |h| h.state().tokens.payload().is_some());
    h.get_by_label("layer 4 · 4×8×8 · 10 bits").click();
    for (mode_label, mode) in [("colour by id", ColorMode::Id), ("by code similarity", ColorMode::Similarity)] {
        h.get_by_label(mode_label).click();
        h.step();
        h.step();
        let img = h.render().expect("render a frame with wgpu");
        let rect = h.state().tokens.map_rect.expect("map drawn");
        let layer = h.state().tokens.payload().expect("payload").layers[3].clone();
        let (cw, ch) = (rect.width() / 8.0, rect.height() / 8.0);
        let mut worst = 0i32;
        for y in 0..8 {
            for x in 0..8 {
                let px = img.get_pixel((rect.left() + (x as f32 + 0.5) * cw) as u32, (rect.top() + (y as f32 + 0.5) * ch) as u32);
                let want = tokenmap::token_rgb(layer.ids[y * 8 + x], 10, mode).map(|c| (c * 255.0).round() as i32);
                for c in 0..3 {
                    worst = worst.max((i32::from(px[c]) - want[c]).abs());
                }
            }
        }
        println!("{mode_label}: largest channel difference GPU vs CPU over 64 cells: {worst}/255");
        assert!(worst <= 3, "{mode_label}: the shader's colours differ from the CPU path by {worst}/255");
    }
}

#[test]
fn generate_shows_frames_arriving_coarse_to_fine() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path(), |s| s.view = View::Generate);
    h.step();
    untrained_models(&mut h);
    let prompt = h.get_by_role(Role::MultilineTextInput);
    prompt.focus();
    h.step();
    h.get_by_role(Role::MultilineTextInput).type_text(" quickly");
    h.step();
    assert_eq!(h.state().settings().generate.prompt, "a red circle moves left quickly");
    generate_button(&h).click();
    // A preview arrives after every layer (on a fast machine the UI may only draw the last).
    wait_until(&mut h, "the first preview", 120, |h| h.state().generate.clip.as_ref().is_some_and(|c| c.layers_done >= 1));
    wait_until(&mut h, "the full clip", 120, |h| has_label(h, "preview: 4 of 4 layers decoded") && h.state().engine_idle());
    assert_eq!(h.state().generate.previews.1, 4, "one preview per layer, coarse to fine");
    let clip = h.state().generate.clip.clone().expect("clip");
    assert_eq!((clip.videos[0].len(), clip.videos[0].width()), (16, 32));
    assert_eq!(clip.tokens[0].len(), 308);
    // The player's controls: pause, step a frame either way, zoom.
    h.get_by_label("Pause").click();
    h.step();
    h.step();
    assert!(!h.state().generate.player.is_playing() && h.query_by_label("Play").is_some(), "Pause did not stop the player");
    let f = h.state().generate.player.frame();
    h.get_by_label("Next").click();
    h.step();
    assert_eq!(h.state().generate.player.frame(), (f + 1) % 16);
    h.get_by_label("Prev").click();
    h.step();
    h.get_by_label("Prev").click();
    h.step();
    assert_eq!(h.state().generate.player.frame(), (f + 15) % 16);
    // By default the 32x32 frame fills the space by a whole multiple (nearest-neighbour).
    let fitted = h.state().generate.player.frame_rect.expect("the frame was drawn");
    let scale = h.state().generate.player.scale();
    assert!(h.state().generate.player.fits() && scale >= 8, "a 32-pixel clip fits at x{scale} in a 1400x1100 window");
    assert!((fitted.width() - 32.0 * scale as f32).abs() < 0.5 && (fitted.height() - fitted.width()).abs() < 0.5, "{fitted:?} at x{scale}");
    assert!(fitted.max.y <= 1100.0, "the frame stays in the window: {fitted:?}");
    // The keyboard: Space pauses and plays, the arrows step a frame.
    let f = h.state().generate.player.frame();
    h.key_press(eframe::egui::Key::ArrowRight);
    h.step();
    assert_eq!(h.state().generate.player.frame(), (f + 1) % 16);
    h.key_press(eframe::egui::Key::ArrowLeft);
    h.step();
    h.key_press(eframe::egui::Key::ArrowLeft);
    h.step();
    assert_eq!(h.state().generate.player.frame(), (f + 15) % 16);
    h.key_press(eframe::egui::Key::Space);
    h.step();
    assert!(h.state().generate.player.is_playing(), "Space plays");
    h.key_press(eframe::egui::Key::Space);
    h.step();
    assert!(!h.state().generate.player.is_playing(), "Space pauses");
    // F1 lists every shortcut.
    h.key_press(eframe::egui::Key::F1);
    h.step();
    h.step();
    assert!(h.state().show_help);
    for (keys, _) in hitvideo_app::studio::SHORTCUTS {
        assert!(h.query_by_label(keys).is_some(), "the F1 overlay lists {keys}");
    }
    h.key_press(eframe::egui::Key::F1);
    h.step();
    assert!(!h.state().show_help && h.query_by_label("Left / Right").is_none());
    // A chosen zoom is a whole multiple and replaces the fit.
    h.get_by_role_and_label(Role::Slider, "zoom").set_value_accesskit(3.0);
    h.step();
    h.step();
    assert!(!h.state().generate.player.fits(), "moving the zoom replaces the fit");
    let before = h.state().generate.player.frame_rect.expect("the frame was drawn");
    h.get_by_role_and_label(Role::Slider, "zoom").set_value_accesskit(6.0);
    h.step();
    h.step();
    let after = h.state().generate.player.frame_rect.expect("the frame was drawn");
    assert_eq!((h.state().generate.player.zoom(), h.state().generate.player.scale()), (6.0, 6));
    assert!(
        (after.width() - 2.0 * before.width()).abs() < 1.0 && (before.width() - 96.0).abs() < 0.5,
        "zoom 3 -> 6 doubles the frame: {before:?} -> {after:?}"
    );
    h.get_by_label("Play").click();
    h.step();
    assert!(h.state().generate.player.is_playing());
    // Re-roll keeps the coarse layers exactly.
    h.get_by_label("Re-roll details").click();
    wait_until(&mut h, "the re-roll", 120, |h| {
        h.state().generate.clip.as_ref().is_some_and(|c| c.job != clip.job && c.layers_done == 4) && h.state().engine_idle()
    });
    let again = h.state().generate.clip.clone().expect("re-rolled clip");
    let keep: usize = 4 + 16; // layers 1x2x2 and 1x4x4
    assert_eq!(again.tokens[0][..keep], clip.tokens[0][..keep]);
    // A second re-roll draws a fresh seed and uses the current sampling settings: the same
    // coarse tokens, different finest-layer tokens.
    h.state_mut().settings_mut().generate.temperature = 1.3;
    h.step();
    h.get_by_label("Re-roll details").click();
    wait_until(&mut h, "the second re-roll", 120, |h| {
        h.state().generate.clip.as_ref().is_some_and(|c| c.job != again.job && c.layers_done == 4) && h.state().engine_idle()
    });
    let third = h.state().generate.clip.clone().expect("re-rolled again");
    assert_eq!(third.tokens[0][..keep], clip.tokens[0][..keep]);
    let finest = 308 - 4 * 8 * 8;
    assert_ne!(third.tokens[0][finest..], again.tokens[0][finest..], "two re-rolls gave the same details");
    assert_ne!(third.request.seeds, again.request.seeds);
    assert_eq!(third.request.temperature, 1.3);
    // A click on the history gallery brings back a clip and the settings it was made with.
    h.state_mut().settings_mut().generate.prompt = "something else".into();
    h.step();
    h.get_by_label(&format!("history #{}: a red circle moves left quickly", clip.job)).click();
    h.step();
    assert_eq!(h.state().generate.clip.as_ref().map(|c| c.job), Some(clip.job));
    let g = &h.state().settings().generate;
    assert_eq!((g.prompt.as_str(), g.temperature), ("a red circle moves left quickly", 1.0));
    // Ctrl+Enter queues another generation.
    h.key_press_modifiers(eframe::egui::Modifiers::COMMAND, eframe::egui::Key::Enter);
    h.step();
    assert!(!h.state().engine_idle(), "Ctrl+Enter did not queue a generation");
    wait_until(&mut h, "the shortcut's generation", 120, |h| h.state().engine_idle());
    // The tokens view shows a generated clip's own tokens.
    let shown = h.state().generate.clip.clone().expect("clip");
    h.get_by_label("Show tokens").click();
    wait_until(&mut h, "the generated clip's tokens", 120, |h| h.state().tokens.payload().is_some_and(|p| p.label.starts_with("generated:")));
    assert_eq!(h.state().settings().view, View::Tokens);
    let p = h.state().tokens.payload().expect("payload");
    let ids: Vec<u32> = p.layers.iter().flat_map(|l| l.ids.iter().copied()).collect();
    assert_eq!(ids, shown.tokens[0]);
    assert!(p.psnr[3] > 60.0, "all layers reproduce the generated clip: {:?}", p.psnr);
}

#[test]
fn ui_keeps_producing_frames_while_generating() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path(), |s| s.view = View::Generate);
    h.step();
    untrained_models(&mut h);
    // 64 clips: the engine generates for longer than the input below lasts.
    h.state_mut().settings_mut().generate.seed_mode = hitvideo_app::studio::settings::SeedMode::Range;
    h.state_mut().settings_mut().generate.seed_range = "0-63".into();
    h.step();
    generate_button(&h).click();
    wait_until(&mut h, "the generation to start", 60, |h| has_label(h, "(running)"));
    // The progress line reports the rate and the time left.
    wait_until(&mut h, "the progress line", 60, |h| has_label(h, "tokens/s · ETA"));
    let mut times = frames_under_input(&mut h, Duration::from_secs(4));
    let still_running = has_label(&h, "(running)");
    times.sort_by(f64::total_cmp);
    let pct = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    println!("frames while generating: {} in 4 s; frame time p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms", times.len(), pct(50), pct(95), pct(100));
    assert!(still_running, "the generation ended before the measurement did");
    assert!(times.len() > 50, "only {} frames in 4 s", times.len());
    assert!(pct(95) < 100.0, "p95 frame time {:.1} ms: the UI waits for the engine", pct(95));
    h.get_all_by_label("Cancel").next().expect("Cancel").click();
    wait_until(&mut h, "the cancellation", 60, |h| h.state().engine_idle());
}

#[test]
fn a_queued_and_a_running_generation_can_be_cancelled() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path(), |s| s.view = View::Generate);
    h.step();
    untrained_models(&mut h);
    // 64 clips a request: long enough to be cancelled while it runs.
    h.state_mut().settings_mut().generate.seed_mode = hitvideo_app::studio::settings::SeedMode::Range;
    h.state_mut().settings_mut().generate.seed_range = "0-63".into();
    h.step();
    generate_button(&h).click();
    h.step();
    generate_button(&h).click();
    wait_until(&mut h, "the first job to run and the second to wait", 60, |h| has_label(h, "(running)") && has_label(h, "(queued)"));
    // Each queue row keeps its Cancel button in the window, however long its seed list.
    assert!(h.get_all_by_label("Cancel").all(|n| n.rect().max.x <= 1400.0), "a Cancel button is out of the window");
    // Cancel the running one: it reports where it stopped, and the queued one starts.
    h.get_all_by_label("Cancel").next().expect("the running job's Cancel").click();
    wait_until(&mut h, "the running job to stop", 60, |h| has_label(h, "stopped after"));
    wait_until(&mut h, "the queued job to start", 60, |h| has_label(h, "(running)") && !has_label(h, "(queued)"));
    h.get_all_by_label("Cancel").next().expect("the second job's Cancel").click();
    wait_until(&mut h, "the second job to stop", 60, |h| h.state().engine_idle() && !has_label(h, "(running)"));
    // A job cancelled while it waits never runs; it ends once the one before it ends.
    generate_button(&h).click();
    h.step();
    generate_button(&h).click();
    wait_until(&mut h, "a running and a queued job", 60, |h| has_label(h, "(running)") && has_label(h, "(queued)"));
    h.get_all_by_label("Cancel").nth(1).expect("the queued job's Cancel").click();
    h.step();
    h.get_all_by_label("Cancel").next().expect("the running job's Cancel").click();
    wait_until(&mut h, "both to end", 60, |h| h.state().engine_idle() && !has_label(h, "(running)") && !has_label(h, "(queued)"));
    assert!(has_label(&h, "cancelled before it started"), "the queued job ends without running");
    // The studio goes on: a small request completes.
    h.state_mut().settings_mut().generate.seed_range = "0-0".into();
    h.step();
    generate_button(&h).click();
    wait_until(&mut h, "a clip after the cancellations", 120, |h| has_label(h, "preview: 4 of 4 layers decoded") && h.state().engine_idle());
}

/// A clip exported by the CLI (with the demo models) and dropped on the Generate view brings
/// back every setting it was made with, and its clip: decoded from the file's tokens, it plays
/// and "Re-roll details" keeps the file's coarse tokens. A file made by another generator is
/// decoded with a warning.
#[test]
fn dropping_an_exported_clip_restores_its_settings() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clip = dir.path().join("shared.mp4");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hitvideo"))
        .args(["--device", "cpu", "generate", "--prompt", "a blue square moving up", "--negative-prompt", "a red circle"])
        .args(["--cfg", "3.5", "--seed", "7", "--temperature", "0.8", "--top-k", "12", "--top-p", "0.9", "--out"])
        .arg(&clip)
        .output()
        .expect("run hitvideo generate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (meta, _) = hitvideo_engine::video::meta::read_metadata(&clip).expect("the export's metadata");
    let file_tokens = hitvideo_engine::generator::pipeline::tokens_from_metadata(&meta).expect("the export records its tokens");
    let mut h = harness_with_assets(dir.path(), &repo_assets(), |s| s.view = View::Generate);
    wait_until(&mut h, "the demo models", 120, |h| h.state().models().generator.is_some() && h.state().engine_idle());
    drop_file(&mut h, clip.clone());
    wait_until(&mut h, "the restored settings", 30, |h| has_label(h, "settings restored from"));
    let g = &h.state().settings().generate;
    assert_eq!((g.prompt.as_str(), g.negative.as_str()), ("a blue square moving up", "a red circle"));
    assert_eq!((g.seed, g.seed_mode, g.cfg), (7, hitvideo_app::studio::settings::SeedMode::Locked, 3.5));
    assert_eq!((g.temperature, g.top_k, g.top_p), (0.8, 12, 0.9));
    // The file's clip is decoded from its tokens and plays.
    wait_until(&mut h, "the file's clip", 120, |h| h.state().generate.clip.is_some() && h.state().engine_idle());
    let opened = h.state().generate.clip.clone().expect("the opened clip");
    assert_eq!(opened.tokens, vec![file_tokens.clone()]);
    assert_eq!((opened.layers_done, opened.layers_total, opened.request.seeds.as_slice()), (4, 4, &[7][..]));
    assert!(h.state().generate.player.video().is_some_and(|v| v.len() == 16), "the player shows the file's clip");
    assert!(has_label(&h, "its clip is decoded from its 308 tokens"));
    assert!(!h.state().notices().iter().any(|(_, t)| t.contains("another generator")), "same generator: no warning: {:?}", h.state().notices());
    // Re-roll keeps the file's coarse layers (keep 2: 1x2x2 + 1x4x4 tokens).
    h.get_by_label("Re-roll details").click();
    wait_until(&mut h, "the re-roll of the file", 120, |h| {
        h.state().generate.clip.as_ref().is_some_and(|c| c.job != opened.job && c.layers_done == 4) && h.state().engine_idle()
    });
    let again = h.state().generate.clip.clone().expect("re-rolled clip");
    assert_eq!(again.tokens[0][..20], file_tokens[..20]);
    assert_eq!(again.request.prompt, "a blue square moving up");
    // Another generator (untrained, same layers): decoded anyway, with a warning notice.
    h.get_by_label("Use untrained tiny models").click();
    wait_until(&mut h, "the untrained models", 120, |h| {
        h.state().models().generator.as_deref().is_some_and(|g| g.contains("untrained")) && h.state().engine_idle()
    });
    drop_file(&mut h, clip.clone());
    wait_until(&mut h, "the warning", 120, |h| h.state().notices().iter().any(|(err, t)| *err && t.contains("was made by another generator")));
    wait_until(&mut h, "the clip with other models", 120, |h| h.state().engine_idle() && h.state().generate.clip.as_ref().is_some_and(|c| c.job != again.job));
    assert_eq!(h.state().generate.clip.as_ref().expect("clip").tokens, vec![file_tokens]);
    // Tokens that do not fit the loaded layers are refused with a message naming the file.
    let short = dir.path().join("short.mp4");
    std::fs::copy(workspace_data("bikes.mp4"), &short).expect("copy a plain video");
    let mut cut = meta.clone();
    cut.extra.insert("tokens".into(), serde_json::json!([1, 2, 3]));
    std::fs::write(hitvideo_engine::video::meta::sidecar_path(&short), cut.to_json()).expect("write the sidecar");
    drop_file(&mut h, short);
    wait_until(&mut h, "the refusal of short tokens", 120, |h| has_label(h, "short.mp4: it holds 3 tokens, but the loaded generator's 4 layers take 308"));
    // A file without the metadata is refused with a message, and the settings stay.
    let plain = dir.path().join("plain.mp4");
    std::fs::copy(workspace_data("bikes.mp4"), &plain).expect("copy a plain video");
    drop_file(&mut h, plain);
    wait_until(&mut h, "the refusal", 30, |h| has_label(h, "cannot restore settings"));
    assert_eq!(h.state().settings().generate.seed, 7);
}

#[test]
fn a_two_by_two_sweep_fills_in() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path(), |s| {
        s.view = View::Sweep;
        s.sweep.cfgs = "1,5".into();
        s.sweep.seeds = "0-1".into();
    });
    h.step();
    untrained_models(&mut h);
    h.get_by_label("Run sweep").click();
    wait_until(&mut h, "the first cell", 120, |h| h.state().sweep.grid.as_ref().is_some_and(|g| g.cells.iter().any(Option::is_some)));
    wait_until(&mut h, "all cells", 240, |h| has_label(h, "4 of 4 cells") && h.state().engine_idle());
    let grid = h.state().sweep.grid.clone().expect("grid");
    assert!(grid.cells.iter().all(|c| c.as_ref().is_some_and(|c| c.fraction.is_some())), "every cell has a score");
    assert!(has_label(&h, "analyzer score against CFG"));
    // The exported grid is the cells at twice their size plus labelled margins.
    let tiled = hitvideo_app::studio::views::sweep::tile(&grid).expect("every cell is done");
    let cell = grid.cells[0].as_ref().expect("cell").video.clone();
    assert!(tiled.width() > 2 * 2 * cell.width() && tiled.height() > 2 * 2 * cell.height(), "{}x{}", tiled.width(), tiled.height());
    assert_eq!(tiled.len(), cell.len());
    // Cells fill the window by a whole multiple of the clip's side.
    let side = h.state().sweep.cell_side;
    assert!(side >= 96.0 && (side / 32.0).fract() == 0.0, "cell side {side}");
    // Two cells side by side in the Compare view.
    h.get_all_by_label("Compare").nth(1).expect("the first cell's Compare").click();
    h.step();
    h.get_all_by_label("Sweep").next().expect("the Sweep tab").click();
    h.step();
    h.get_all_by_label("Compare").last().expect("the last cell's Compare").click();
    h.step();
    h.step();
    assert_eq!(h.state().settings().view, View::Compare);
    let labels: Vec<String> = h.state().compare.items.iter().map(|i| i.label.clone()).collect();
    assert_eq!(labels, ["CFG 1 · seed 0", "CFG 5 · seed 1"]);
    h.get_all_by_label("Sweep").next().expect("the Sweep tab").click();
    h.step();
    h.step();
    // A cell opens in the Generate view with its settings (row 2 is CFG 5, column 2 seed 1).
    let prompt = h.state().settings().generate.prompt.clone();
    h.state_mut().settings_mut().generate.cfg = 9.0;
    h.get_all_by_label("Open").last().expect("the last cell's Open").click();
    h.step();
    h.step();
    let g = &h.state().settings().generate;
    assert_eq!((h.state().settings().view, g.seed, g.cfg, g.prompt.clone()), (View::Generate, 1, 5.0, prompt));
    assert!(has_label(&h, "a sweep cell: seed 1, CFG 5"));
    assert!(h.state().generate.player.video().is_some_and(|v| v.len() == cell.len()));
    // The finished sweep was saved to the gallery as one tiled clip.
    wait_until(&mut h, "the sweep in the gallery", 60, |h| {
        h.state().engine_idle() && h.state().generate.gallery.iter().any(|i| i.label().starts_with("sweep · "))
    });
    let item = h.state().generate.gallery.iter().find(|i| i.label().starts_with("sweep · ")).cloned().expect("sweep item");
    assert!(item.path.is_file() && item.meta.extra.contains_key("sweep_scores"), "{}", item.path.display());
}

/// A sweep over two sampling parameters other than CFG and seed; an unfinished seed range in
/// the Generate view does not block it.
#[test]
fn a_temperature_by_top_k_sweep_fills_in() {
    use hitvideo_app::studio::jobs::{AxisValues, SweepAxis};
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path(), |s| {
        s.view = View::Sweep;
        s.sweep.temperatures = "0.7,1.3".into();
        s.sweep.top_ks = "4,0".into();
        s.generate.seed_mode = hitvideo_app::studio::settings::SeedMode::Range;
        s.generate.seed_range = "9-2".into();
        s.generate.seed = 3;
    });
    h.step();
    untrained_models(&mut h);
    // The axes are chosen in their drop-downs (CFG x seed by default).
    for (axis, value) in [("rows", "temperature"), ("columns", "top-k")] {
        h.get_by_role_and_label(Role::ComboBox, axis).click();
        h.step();
        h.step();
        h.get_by_label(value).click();
        h.step();
        h.step();
    }
    assert_eq!((h.state().settings().sweep.rows, h.state().settings().sweep.columns), (SweepAxis::Temperature, SweepAxis::TopK));
    h.get_by_label("Run sweep").click();
    wait_until(&mut h, "all cells", 240, |h| has_label(h, "4 of 4 cells") && h.state().engine_idle());
    let grid = h.state().sweep.grid.clone().expect("grid");
    assert_eq!((&grid.rows, &grid.columns), (&AxisValues::Temperature(vec![0.7, 1.3]), &AxisValues::TopK(vec![Some(4), None])));
    assert!(grid.cells.iter().all(|c| c.as_ref().is_some_and(|c| c.fraction.is_some())), "every cell has a score");
    // Each cell holds the settings the engine's sweep gave it (the same sweep `hitvideo sweep` runs).
    let cells: Vec<(f32, Option<usize>)> = grid.cells.iter().flatten().map(|c| (c.temperature, c.top_k)).collect();
    assert_eq!(cells, vec![(0.7, Some(4)), (0.7, None), (1.3, Some(4)), (1.3, None)]);
    assert!(has_label(&h, "temperature \\ top-k") && has_label(&h, "top-k all"), "axis labels missing");
    assert!(has_label(&h, "analyzer score against temperature"));
    let tiled = hitvideo_app::studio::views::sweep::tile(&grid).expect("every cell is done");
    assert_eq!(tiled.len(), grid.cells[0].as_ref().expect("cell").video.len());
    // Choosing the same parameter twice is refused with a message.
    h.state_mut().settings_mut().sweep.columns = SweepAxis::Temperature;
    h.step();
    h.get_by_label("Run sweep").click();
    h.step();
    h.step();
    assert!(has_label(&h, "choose two different parameters"));
}

#[test]
fn bad_input_gets_a_clear_message_and_the_app_keeps_working() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A checkpoint of the wrong kind dropped on the tokens view.
    let ckpt = dir.path().join("gen-run");
    std::fs::create_dir_all(&ckpt).expect("dir");
    let state = r#"{"kind":"generator","preset":"tiny","config_sha256":"x","step":3,"app_version":"0","metrics":null}"#;
    std::fs::write(ckpt.join("state.json"), state).expect("write");
    let mut h = harness(dir.path(), |s| s.view = View::Tokens);
    h.step();
    drop_file(&mut h, ckpt);
    wait_until(&mut h, "the wrong-kind message", 60, |h| has_label(h, "this is a generator checkpoint, not a tokenizer one"));
    // Impossible settings: an empty seed range and a bad CFG list.
    h.get_all_by_label("Generate").next().expect("the Generate tab").click();
    h.step();
    h.state_mut().settings_mut().generate.seed_mode = hitvideo_app::studio::settings::SeedMode::Range;
    h.state_mut().settings_mut().generate.seed_range = "9-2".into();
    h.step();
    generate_button(&h).click();
    h.step();
    h.step();
    assert!(has_label(&h, "seed range 9-2 is empty"));
    // Generating without models explains how to get them.
    h.state_mut().settings_mut().generate.seed_range = "0-1".into();
    generate_button(&h).click();
    wait_until(&mut h, "the no-model message", 60, |h| has_label(h, "no generator loaded: train one"));
    // The app still works: models load and a clip tokenizes.
    h.get_all_by_label("Tokens").next().expect("Tokens tab").click();
    h.step();
    untrained_models(&mut h);
    h.get_by_label("Tokenize synthetic clip").click();
    wait_until(&mut h, "tokenization after the errors", 120, |h| h.state().tokens.payload().is_some());
}

#[derive(Default)]
struct MemoryStorage(std::collections::HashMap<String, String>);

impl eframe::Storage for MemoryStorage {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }
    fn flush(&mut self) {}
}

#[test]
fn settings_persist_between_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path(), |_| {});
    h.step();
    h.get_all_by_label("Train").next().expect("Train tab").click();
    h.step();
    h.state_mut().settings_mut().generate.prompt = "a blue square rises".into();
    let mut storage = MemoryStorage::default();
    eframe::App::save(h.state_mut(), &mut storage);
    let saved: Settings = eframe::get_value(&storage, hitvideo_app::studio::SETTINGS_KEY).expect("saved settings");
    assert_eq!(saved.view, View::Train);
    assert_eq!(saved.generate.prompt, "a blue square rises");
    let h2 = harness(dir.path(), |s| *s = saved.clone());
    assert_eq!(h2.state().settings(), &saved);
}

/// The real binary in a real (virtual) window under Xvfb: `hitvideo studio --prompt ..
/// --screenshot` generates a clip with the demo models, photographs the Generate view once the
/// clip is complete, and the player's area of the picture must show a video, not a blank.
#[test]
fn real_window_under_xvfb_generates_and_shows_a_clip() {
    let have_xvfb = std::process::Command::new("xvfb-run").arg("--help").output().is_ok();
    if !have_xvfb {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "xvfb-run is required on CI");
        eprintln!("skipped: xvfb-run not found (apt-get install xvfb)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // The glow renderer always; wgpu where an adapter exists (lavapipe is enough).
    let mut renderers = vec![("glow", vec!["--glow"])];
    if !hitvideo_engine::device::list_adapters().is_empty() {
        renderers.push(("wgpu", vec![]));
    }
    for (name, flags) in renderers {
        let shot: PathBuf = dir.path().join(format!("studio-{name}.png"));
        let out = std::process::Command::new("timeout")
            .args(["400", "xvfb-run", "-a", "-s", "-screen 0 1280x800x24", env!("CARGO_BIN_EXE_hitvideo"), "--device", "cpu", "studio"])
            .args(flags)
            .args(["--prompt", "a red circle moving right", "--screenshot"])
            .arg(&shot)
            .env("HITVIDEO_HOME", dir.path())
            .env("HOME", dir.path())
            .env("HITVIDEO_ASSETS", concat!(env!("CARGO_MANIFEST_DIR"), "/../assets"))
            // HOME moves (fresh settings), the installed text encoder stays where it is.
            .env("HITVIDEO_MODELS", hitvideo_engine::text::models_dir())
            .output()
            .expect("run xvfb-run");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "studio ({name}) failed: {stdout}\n{stderr}");
        assert!(!stderr.contains("no clip after"), "{name}: the clip did not finish: {stderr}");
        let area: Vec<u32> = stdout
            .lines()
            .find_map(|l| l.strip_prefix("video area: "))
            .unwrap_or_else(|| panic!("{name}: no video area printed: {stdout}\n{stderr}"))
            .split_whitespace()
            .filter_map(|v| v.parse::<f32>().ok().map(|f| f.max(0.0) as u32))
            .collect();
        let img = image::open(&shot).expect("the screenshot was written").to_rgb8();
        let [x, y, w, h] = [area[0], area[1], area[2], area[3]];
        assert!(w >= 32 && h >= 32 && x + w <= img.width() && y + h <= img.height(), "{name}: area {area:?} in {}x{}", img.width(), img.height());
        let pixels: Vec<[u8; 3]> = (y..y + h).flat_map(|yy| (x..x + w).map(move |xx| (xx, yy))).map(|(xx, yy)| img.get_pixel(xx, yy).0).collect();
        let mean: Vec<f64> = (0..3).map(|c| pixels.iter().map(|p| f64::from(p[c])).sum::<f64>() / pixels.len() as f64).collect();
        let spread = (0..3).map(|c| (pixels.iter().map(|p| (f64::from(p[c]) - mean[c]).powi(2)).sum::<f64>() / pixels.len() as f64).sqrt()).fold(0.0, f64::max);
        let colors: std::collections::HashSet<[u8; 3]> = pixels.iter().copied().collect();
        let saturated = pixels.iter().filter(|p| p.iter().max().unwrap_or(&0) - p.iter().min().unwrap_or(&0) > 60).count();
        println!("{name}: area {area:?}, {} colors, channel spread {spread:.1}, {saturated} saturated pixels", colors.len());
        // A blank or single-color area has no spread; a generated clip on its background has
        // many colors and a clearly varying picture.
        assert!(colors.len() >= 16 && spread >= 8.0, "{name}: the video area looks blank ({} colors, spread {spread:.1})", colors.len());
    }
}

#[test]
fn generated_clips_are_saved_listed_after_a_restart_restored_and_deleted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let outputs = dir.path().join("outputs");
    let sidecars =
        |d: &Path| std::fs::read_dir(d).map(|rd| rd.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".mp4.json")).count()).unwrap_or(0);
    {
        let mut h = harness(dir.path(), |s| {
            s.view = View::Generate;
            s.generate.prompt = "a blue square rises".into();
        });
        h.step();
        untrained_models(&mut h);
        generate_button(&h).click();
        wait_until(&mut h, "the clip saved in the outputs folder", 120, |h| h.state().engine_idle() && sidecars(&outputs) == 1);
        assert_eq!(h.state().generate.gallery.len(), 1, "the new clip is listed at once");
    }
    // A restart: a new studio on the same work folder, with another prompt in the box.
    let mut h = harness(dir.path(), |s| {
        s.view = View::Generate;
        s.generate.prompt = "something else".into();
    });
    wait_until(&mut h, "the gallery listing", 60, |h| h.state().generate.gallery.len() == 1);
    let item = h.state().generate.gallery[0].clone();
    assert_eq!(item.meta.prompt.as_deref(), Some("a blue square rises"));
    assert!(item.path.exists() && item.path.starts_with(&outputs), "{}", item.path.display());
    // The filter, by any part of the prompt.
    h.state_mut().generate.gallery_filter = "circle".into();
    h.step();
    assert!(h.query_by_label(&item.label()).is_none(), "filtered out");
    h.state_mut().generate.gallery_filter = "BLUE".into();
    h.step();
    h.get_by_label(&item.label()).click();
    wait_until(&mut h, "the settings restored from the gallery", 60, |h| h.state().settings().generate.prompt == "a blue square rises");
    // Delete asks first; Keep keeps the file.
    h.get_by_label("Delete…").click();
    h.step();
    h.get_by_label("Keep").click();
    h.step();
    assert!(item.path.exists() && h.state().generate.gallery.len() == 1);
    h.get_by_label("Delete…").click();
    h.step();
    h.get_by_label("Delete").click();
    h.step();
    assert!(!item.path.exists() && sidecars(&outputs) == 0, "the clip and its sidecar are gone");
    assert!(h.state().generate.gallery.is_empty());
}

#[test]
fn the_queue_pauses_reorders_duplicates_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path(), |s| s.view = View::Generate);
    h.step();
    // No generator yet: every request waits in the queue.
    for prompt in ["red", "blue", "green"] {
        h.state_mut().settings_mut().generate.prompt = format!("a {prompt} circle moves left");
        h.step();
        generate_button(&h).click();
        h.step();
        h.step();
    }
    // Ctrl+Enter queues the current settings too.
    h.key_press_modifiers(eframe::egui::Modifiers::COMMAND, eframe::egui::Key::Enter);
    h.step();
    let colors =
        |h: &H| -> Vec<String> { h.state().settings().generate.queue.iter().map(|q| q.request.prompt.split(' ').nth(1).unwrap_or("").to_string()).collect() };
    assert_eq!(colors(&h), ["red", "blue", "green", "green"]);
    assert!(has_label(&h, "waits in the queue until one is loaded"));
    h.get_all_by_label("Down").next().expect("Down").click();
    h.step();
    h.step();
    assert_eq!(colors(&h), ["blue", "red", "green", "green"]);
    h.get_all_by_label("Up").last().expect("Up").click();
    h.step();
    h.step();
    h.get_all_by_label("Duplicate").next().expect("Duplicate").click();
    h.step();
    h.step();
    assert_eq!(colors(&h), ["blue", "blue", "red", "green", "green"]);
    h.get_all_by_label("Cancel").last().expect("Cancel").click();
    h.step();
    h.step();
    assert!(has_label(&h, "cancelled before it started"));
    // Pause the first two.
    h.get_all_by_label("Pause").next().expect("Pause").click();
    h.step();
    h.step();
    h.get_all_by_label("Pause").next().expect("Pause").click();
    h.step();
    h.step();
    let paused: Vec<bool> = h.state().settings().generate.queue.iter().map(|q| q.paused).collect();
    assert_eq!(paused, [true, true, false, false]);
    assert!(h.get_all_by_label("Resume").count() == 2 && h.get_all_by_label("Pause").count() == 2);
    // The queue is saved with the settings and comes back after a restart.
    let mut storage = MemoryStorage::default();
    eframe::App::save(h.state_mut(), &mut storage);
    let saved: Settings = eframe::get_value(&storage, hitvideo_app::studio::SETTINGS_KEY).expect("saved settings");
    assert_eq!(saved.generate.queue.len(), 4);
    drop(h);
    let mut h = harness(dir.path(), |s| *s = saved.clone());
    h.step();
    assert_eq!(colors(&h), ["blue", "blue", "red", "green"]);
    // Once models load, what is not paused runs, one at a time; the paused rows wait.
    untrained_models(&mut h);
    wait_until(&mut h, "the unpaused rows to run", 120, |h| h.state().engine_idle() && h.state().settings().generate.queue.iter().all(|q| q.paused));
    assert_eq!(colors(&h), ["blue", "blue"]);
    assert_eq!(h.state().generate.gallery.len(), 2, "both clips were saved");
    h.get_all_by_label("Resume").next().expect("Resume").click();
    wait_until(&mut h, "the resumed row to run", 120, |h| h.state().engine_idle() && h.state().settings().generate.queue.len() == 1);
}

#[test]
fn clips_compare_side_by_side_in_step() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path(), |s| {
        s.view = View::Generate;
        s.generate.seed_mode = hitvideo_app::studio::settings::SeedMode::Range;
        s.generate.seed_range = "3-4".into();
    });
    h.step();
    untrained_models(&mut h);
    generate_button(&h).click();
    wait_until(&mut h, "a two-seed clip, saved", 120, |h| {
        has_label(h, "preview: 4 of 4 layers decoded") && h.state().engine_idle() && h.state().generate.gallery.len() == 2
    });
    h.get_by_label("Compare seeds").click();
    h.step();
    h.step();
    assert_eq!(h.state().settings().view, View::Compare);
    assert_eq!(h.state().compare.items.len(), 2);
    // One frame index drives both clips.
    assert_eq!(h.state().compare.frame(), 0);
    h.get_by_label("Next frame").click();
    h.step();
    h.step();
    h.key_press(eframe::egui::Key::ArrowRight);
    h.step();
    assert_eq!(h.state().compare.frame(), 2);
    let rects: Vec<_> = h.state().compare.items.iter().map(|i| i.rect.expect("drawn")).collect();
    assert!((rects[0].size() - rects[1].size()).length() < 0.5, "the same scale: {rects:?}");
    assert!(rects[0].width() >= 64.0 && (rects[0].width() / 32.0).fract().abs() < 0.01, "a whole multiple of 32: {rects:?}");
    assert!(rects[1].min.x >= rects[0].max.x, "side by side: {rects:?}");
    // A saved clip from the gallery joins them (read from its MP4).
    h.get_all_by_label("Generate").next().expect("the Generate tab").click();
    h.step();
    h.get_all_by_label("Add to compare").next().expect("a gallery item").click();
    wait_until(&mut h, "the saved clip in the comparison", 60, |h| h.state().compare.items.len() == 3);
    assert_eq!(h.state().settings().view, View::Compare);
    assert_eq!(h.state().compare.items[2].video.len(), 16);
    h.get_all_by_label("Remove").next().expect("Remove").click();
    h.step();
    h.step();
    assert_eq!(h.state().compare.items.len(), 2);
}

#[test]
fn the_tokens_view_shows_every_layer_under_one_video_frame_scrubber() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(dir.path(), |s| s.view = View::Tokens);
    h.step();
    untrained_models(&mut h);
    h.get_by_label("Tokenize synthetic clip").click();
    wait_until(&mut h, "token maps", 120, |h| h.state().tokens.payload().is_some());
    h.step();
    // All four layers at once, aligned at one size.
    let rects = h.state().tokens.strip_rects.clone();
    assert_eq!(rects.len(), 4, "{rects:?}");
    assert!(rects.windows(2).all(|w| (w[0].size() - w[1].size()).length() < 0.5 && (w[0].min.y - w[1].min.y).abs() < 0.5), "{rects:?}");
    assert_eq!(h.state().tokens.strip_frames, [0, 0, 0, 0]);
    // The panels above fill the width by a whole multiple of the 32-pixel clip.
    let side = h.state().tokens.panel_side;
    assert!(side >= 192.0 && (side / 32.0).fract() == 0.0, "panel side {side}");
    assert!((h.state().tokens.map_rect.expect("map").width() - side).abs() < 0.5);
    // Video frame 12 of 16 lies in latent frame 0, 0, 1 and 3 of the 1-, 1-, 2- and 4-frame layers.
    h.get_by_label("layer 4 · 4×8×8 · 10 bits").click();
    h.step();
    h.get_by_role_and_label(Role::Slider, "video frame").set_value_accesskit(12.0);
    h.step();
    h.step();
    assert_eq!(h.state().tokens.video_frame, 12);
    assert_eq!(h.state().tokens.strip_frames, [0, 0, 1, 3]);
    // The selected layer's map above follows the scrubber.
    assert_eq!(h.state().tokens.t, 3);
    assert!(has_label(&h, "token map: layer 4, latent frame 3 (8×8)"));
}

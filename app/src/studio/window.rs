//! Opening the studio in a native window, and where it finds its files: the work folder for
//! runs, the demo models, screenshots.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use eframe::egui;
use hitvideo_engine::device::DeviceChoice;

use super::{StudioApp, StudioOptions};
use crate::cli::StudioArgs;

/// The demo models, when present: the model bundle (checked against its SHA256SUMS) in
/// `assets/models`, or by default in `$HITVIDEO_ASSETS/models`, `./assets/models` or the source
/// tree's `assets/models` (see `hitvideo_engine::bundle`).
pub fn demo_models(assets: Option<&Path>) -> Option<Result<hitvideo_engine::bundle::Bundle, hitvideo_engine::bundle::BundleError>> {
    hitvideo_engine::bundle::locate(assets)
}

/// The default folder for runs: `$HITVIDEO_HOME`, else `~/.local/share/hitvideo`.
pub fn default_work_dir() -> PathBuf {
    let var = |n: &str| std::env::var_os(n).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("HITVIDEO_HOME").unwrap_or_else(|| var("HOME").unwrap_or_else(std::env::temp_dir).join(".local/share/hitvideo"))
}

pub(super) fn save_png(img: &egui::ColorImage, path: &Path) -> Result<()> {
    let [w, h] = img.size;
    let rgb: Vec<u8> = img.pixels.iter().flat_map(|c| [c.r(), c.g(), c.b()]).collect();
    let bytes = hitvideo_engine::video::png::encode_png(&rgb, w as u32, h as u32, None).map_err(|e| anyhow!(e))?;
    std::fs::write(path, bytes)?;
    Ok(())
}

/// Opens the studio window (blocks until it is closed).
pub fn run(args: StudioArgs, device: DeviceChoice) -> Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default().with_title("HiTVideo Studio").with_inner_size([1100.0, 720.0]).with_drag_and_drop(true),
        renderer: if args.glow { eframe::Renderer::Glow } else { eframe::Renderer::Wgpu },
        persist_window: args.screenshot.is_none(),
        ..Default::default()
    };
    let opts = StudioOptions { screenshot: args.screenshot.clone(), work_dir: default_work_dir(), assets: None, prompt: args.prompt.clone() };
    let device = (device != DeviceChoice::Auto).then_some(device);
    eframe::run_native("HiTVideo Studio", options, Box::new(move |cc| Ok(Box::new(StudioApp::from_creation(cc, device, opts))))).map_err(|e| {
        anyhow!(
            "cannot open the studio window: {e}. Is a display available (DISPLAY or WAYLAND_DISPLAY)? \
                               On a headless machine run it under Xvfb: xvfb-run -a hitvideo studio"
        )
    })
}

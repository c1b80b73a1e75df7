//! The desktop studio (eframe/egui). This is the app's frame — navigation between the views,
//! a status bar with the compute device, and a dataset/video preview player; the generation,
//! token, sweep and training views land with the engine parts they drive.

mod player;

use std::path::PathBuf;
use std::sync::mpsc;

use anyhow::{Result, anyhow};
use eframe::egui;
use hitvideo_engine::dataset::shapes::RenderConfig;
use hitvideo_engine::dataset::synth::{self, SynthConfig};
use hitvideo_engine::device::DeviceChoice;
use hitvideo_engine::video::{self, DecodeOptions, Video};

use crate::cli::StudioArgs;
use player::Player;

/// The studio's views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
pub enum View {
    #[default]
    Generate,
    Tokens,
    Sweep,
    Train,
    Data,
}

impl View {
    const ALL: [View; 5] = [View::Generate, View::Tokens, View::Sweep, View::Train, View::Data];
    fn label(self) -> &'static str {
        match self {
            View::Generate => "Generate",
            View::Tokens => "Tokens",
            View::Sweep => "Sweep",
            View::Train => "Train",
            View::Data => "Data",
        }
    }
}

/// Settings kept between runs.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, Default)]
pub struct Settings {
    pub view: View,
    pub synth_seed: u64,
    pub last_video: Option<PathBuf>,
}

const SETTINGS_KEY: &str = "hitvideo-settings";

/// The studio application state.
pub struct StudioApp {
    settings: Settings,
    /// The device the engine will use, as `device::select` described it.
    device: String,
    player: Player,
    caption: String,
    status: String,
    error: Option<String>,
    loading: Option<mpsc::Receiver<Result<Video, String>>>,
    screenshot: Option<PathBuf>,
    frames_drawn: u64,
}

impl StudioApp {
    pub fn new(settings: Settings, device: String, screenshot: Option<PathBuf>) -> Self {
        let mut app = Self {
            settings,
            device,
            player: Player::default(),
            caption: String::new(),
            status: String::new(),
            error: None,
            loading: None,
            screenshot,
            frames_drawn: 0,
        };
        app.show_synthetic(app.settings.synth_seed);
        app
    }

    /// Shows synthetic clip `seed` of the shapes domain.
    fn show_synthetic(&mut self, seed: u64) {
        let cfg = SynthConfig { render: RenderConfig { frames: 16, size: 128, fps: 8.0 }, seed, ..SynthConfig::default() };
        let item = synth::item(&cfg, 0);
        self.caption = item.caption.clone();
        self.player.set_video(item.render(&cfg.render));
        self.settings.synth_seed = seed;
    }

    /// Decodes a video file on a worker thread (the UI keeps drawing meanwhile).
    fn open_video(&mut self, path: PathBuf) {
        let (tx, rx) = mpsc::channel();
        self.status = format!("decoding {} ...", path.display());
        self.error = None;
        self.settings.last_video = Some(path.clone());
        let opts = DecodeOptions { fps: Some(8.0), size: Some((256, 256)), max_frames: Some(256), ..DecodeOptions::default() };
        std::thread::spawn(move || {
            let _ = tx.send(video::decode(&path, &opts).map_err(|e| e.to_string()));
        });
        self.loading = Some(rx);
        self.caption = String::new();
    }

    fn poll_loading(&mut self) {
        let Some(rx) = &self.loading else { return };
        match rx.try_recv() {
            Ok(Ok(v)) => {
                self.status = format!("{} frames, {}x{} at {} fps", v.len(), v.width(), v.height(), v.fps());
                self.player.set_video(v);
                self.loading = None;
            }
            Ok(Err(e)) => {
                self.error = Some(e);
                self.status.clear();
                self.loading = None;
            }
            Err(mpsc::TryRecvError::Empty) => {}
            Err(mpsc::TryRecvError::Disconnected) => {
                self.error = Some("the decoder thread stopped unexpectedly".into());
                self.loading = None;
            }
        }
    }

    fn top_bar(&mut self, ui: &mut egui::Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("Open video…").clicked() {
                    if let Some(path) = rfd::FileDialog::new().add_filter("video", &["mp4", "mov", "mkv", "webm", "avi", "gif"]).pick_file() {
                        self.settings.view = View::Data;
                        self.open_video(path);
                    }
                    ui.close();
                }
                if ui.button("Quit").clicked() {
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
            ui.separator();
            for v in View::ALL {
                ui.selectable_value(&mut self.settings.view, v, v.label());
            }
        });
    }

    fn central(&mut self, ui: &mut egui::Ui) {
        ui.heading(self.settings.view.label());
        match self.settings.view {
            View::Data => {
                ui.horizontal(|ui| {
                    if ui.button("Next synthetic clip").clicked() {
                        self.show_synthetic(self.settings.synth_seed.wrapping_add(1));
                    }
                    if ui.button("Open video…").clicked() {
                        if let Some(path) = rfd::FileDialog::new().pick_file() {
                            self.open_video(path);
                        }
                    }
                });
            }
            other => {
                ui.label(format!(
                    "The {} view arrives with its engine part. Meanwhile the CLI has the data layer: \
                     `hitvideo data synth|import|inspect|preview|analyze` and `hitvideo video info|convert|windows`.",
                    other.label()
                ));
            }
        }
        if let Some(e) = &self.error {
            ui.colored_label(egui::Color32::from_rgb(220, 80, 80), e);
        }
        if !self.caption.is_empty() {
            ui.label(format!("caption: {}", self.caption));
        }
        self.player.ui(ui);
    }
}

impl eframe::App for StudioApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.poll_loading();
        if self.loading.is_some() {
            ctx.request_repaint();
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.frames_drawn += 1;
        egui::Panel::top("top").show(ui, |ui| self.top_bar(ui));
        egui::Panel::bottom("status").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label(format!("device: {}", self.device));
                ui.separator();
                ui.label(&self.status);
            });
        });
        egui::CentralPanel::default().show(ui, |ui| self.central(ui));
        if self.frames_drawn == 10 {
            if let Some(path) = self.screenshot.clone() {
                let ctx = ui.ctx().clone();
                ui.ctx().request_screenshot(move |img| {
                    if let Err(e) = save_png(&img, &path) {
                        eprintln!("screenshot: {e}");
                    }
                    ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                });
            }
        }
        if self.screenshot.is_some() {
            ui.ctx().request_repaint();
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, SETTINGS_KEY, &self.settings);
    }
}

fn save_png(img: &egui::ColorImage, path: &std::path::Path) -> Result<()> {
    let [w, h] = img.size;
    let rgb: Vec<u8> = img.pixels.iter().flat_map(|c| [c.r(), c.g(), c.b()]).collect();
    let bytes = hitvideo_engine::video::png::encode_png(&rgb, w as u32, h as u32, None).map_err(|e| anyhow!(e))?;
    std::fs::write(path, bytes)?;
    Ok(())
}

/// Opens the studio window (blocks until it is closed).
pub fn run(args: StudioArgs, device: DeviceChoice) -> Result<()> {
    let device = hitvideo_engine::device::select(device)?.description;
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default().with_title("HiTVideo Studio").with_inner_size([1100.0, 720.0]),
        renderer: if args.glow { eframe::Renderer::Glow } else { eframe::Renderer::Wgpu },
        persist_window: args.screenshot.is_none(),
        ..Default::default()
    };
    let screenshot = args.screenshot.clone();
    eframe::run_native(
        "HiTVideo Studio",
        options,
        Box::new(move |cc| {
            let settings = if screenshot.is_some() {
                Settings::default()
            } else {
                cc.storage.and_then(|s| eframe::get_value(s, SETTINGS_KEY)).unwrap_or_default()
            };
            Ok(Box::new(StudioApp::new(settings, device, screenshot)))
        }),
    )
    .map_err(|e| anyhow!("cannot open the studio window: {e}. Is a display available (DISPLAY or WAYLAND_DISPLAY)? \
                           On a headless machine run it under Xvfb: xvfb-run -a hitvideo studio"))
}

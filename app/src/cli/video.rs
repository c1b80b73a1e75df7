//! `hitvideo video ...`: probe files, convert them, cut windows and read export metadata.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use hitvideo_engine::video::{self, DecodeOptions, ExportMetadata, WindowSpec, meta};

#[derive(Debug, Subcommand)]
pub enum VideoCommand {
    /// Print a file's stream information and any HiTVideo export metadata.
    Info {
        /// The video (or PNG-frame folder) to inspect.
        file: PathBuf,
    },
    /// Decode, resample, center-crop/resize and export to MP4, GIF or PNG frames.
    Convert(ConvertArgs),
    /// Cut a video into T-frame windows and export each one.
    Windows(WindowArgs),
}

#[derive(Debug, Clone, Args)]
pub struct Shape {
    /// Resample to this frame rate by timestamps (default: keep every frame).
    #[arg(long)]
    pub fps: Option<f64>,
    /// Center-crop to a square and resize to SIZE x SIZE.
    #[arg(long)]
    pub size: Option<u32>,
    /// Start time in seconds.
    #[arg(long, default_value_t = 0.0)]
    pub start: f64,
    /// End time in seconds.
    #[arg(long)]
    pub end: Option<f64>,
}

impl Shape {
    fn options(&self) -> DecodeOptions {
        DecodeOptions { fps: self.fps, size: self.size.map(|s| (s, s)), start: self.start, end: self.end, ..DecodeOptions::default() }
    }
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Any video FFmpeg reads.
    pub input: PathBuf,
    /// .mp4, .gif, or a folder for PNG frames.
    pub output: PathBuf,
    #[command(flatten)]
    pub shape: Shape,
}

#[derive(Debug, Args)]
pub struct WindowArgs {
    /// Any video FFmpeg reads.
    pub input: PathBuf,
    /// Output folder (one file per window).
    pub out: PathBuf,
    /// Frames per window.
    #[arg(long, default_value_t = 16)]
    pub frames: usize,
    /// Frames between window starts.
    #[arg(long, default_value_t = 16)]
    pub stride: usize,
    /// Format of each window: mp4 or gif.
    #[arg(long, default_value = "mp4")]
    pub format: String,
    #[command(flatten)]
    pub shape: Shape,
}

pub fn run(cmd: VideoCommand) -> Result<()> {
    match cmd {
        VideoCommand::Info { file } => {
            if file.is_file() && video::ExportFormat::from_path(&file) != video::ExportFormat::Png {
                let info = video::probe(&file)?;
                println!(
                    "{}: {} / {}, {}x{}, {:.3} fps, {:.2} s",
                    file.display(),
                    info.container,
                    info.codec,
                    info.width,
                    info.height,
                    info.fps,
                    info.duration
                );
            }
            match meta::read_metadata(&file) {
                Ok((m, src)) => println!("HiTVideo metadata ({src:?}):\n{}", serde_json::to_string_pretty(&m)?),
                Err(e) => println!("{e}"),
            }
            Ok(())
        }
        VideoCommand::Convert(a) => {
            let clip = video::decode(&a.input, &a.shape.options())?;
            let mut m = ExportMetadata::for_video(&clip);
            m.source = Some(a.input.display().to_string());
            video::export(&clip, &a.output, &m)?;
            println!("{} frames {}x{} at {} fps -> {}", clip.len(), clip.width(), clip.height(), clip.fps(), a.output.display());
            Ok(())
        }
        VideoCommand::Windows(a) => {
            if a.format != "mp4" && a.format != "gif" {
                bail!("--format takes mp4 or gif, not '{}'", a.format);
            }
            let clip = video::decode(&a.input, &a.shape.options())?;
            let spec = WindowSpec { frames: a.frames, stride: a.stride };
            let wins = video::windows(&clip, spec)?;
            let count = wins.len();
            if count == 0 {
                bail!("{}: {} frames is shorter than one window of {}", a.input.display(), clip.len(), a.frames);
            }
            std::fs::create_dir_all(&a.out)?;
            for (i, w) in wins.enumerate() {
                let mut m = ExportMetadata::for_video(&w);
                m.source = Some(format!("{} window {i} (frames {}..{})", a.input.display(), i * a.stride, i * a.stride + a.frames));
                video::export(&w, &a.out.join(format!("window_{i:04}.{}", a.format)), &m)?;
            }
            println!("{count} windows of {} frames -> {}", a.frames, a.out.display());
            Ok(())
        }
    }
}

//! Command-line interface: every operation of the studio is also a subcommand here.

mod bench;
mod data;
mod generate;
mod lm;
mod models;
mod scale;
mod sweep;
mod tokenizer;
mod video;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use hitvideo_engine::device::{self, DeviceChoice};

/// HiTVideo Studio: text-to-video research with hierarchical video tokens.
///
/// Run `hitvideo studio` for the desktop app; every other subcommand works headless.
#[derive(Debug, Parser)]
#[command(name = "hitvideo", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Compute device: `auto` takes a CUDA GPU (builds with the `cuda` feature), else a real GPU
    /// (WGPU) when there is one, else the CPU; `cpu` is Burn's Flex backend; `gpu` is WGPU on
    /// any adapter, software ones included; `cuda` is Burn's CUDA backend.
    #[arg(long, global = true, default_value = "auto")]
    pub device: DeviceChoice,

    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the desktop studio.
    Studio(StudioArgs),
    /// Datasets: synthesize, import, inspect and preview.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Video files: probe, convert (resample, crop, resize, export) and read export metadata.
    #[command(subcommand)]
    Video(video::VideoCommand),
    /// The hierarchical LFQ tokenizer: presets, training, evaluation, token files (encode/decode).
    #[command(subcommand)]
    Tokenizer(tokenizer::TokenizerCommand),
    /// The generator's token cache and training: `lm cache`, `lm train`.
    #[command(subcommand)]
    Lm(lm::LmCommand),
    /// Text to video with a trained generator: batches of prompts and seeds, negative prompt,
    /// CFG schedules, coarse previews, re-roll of the finer layers.
    Generate(generate::GenerateArgs),
    /// A CFG x seed grid over a file of prompts: grid video and image with labelled axes, and a
    /// CSV/JSON of every cell's analyzer scores and timings.
    Sweep(sweep::SweepArgs),
    /// Model bundles (the demo models in assets/models): pack two runs with checksums, verify.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Show the compute devices found and the one `--device` selects.
    Device,
    /// Measure throughput (decode, synthetic data, ...) and print one JSON document.
    Bench(bench::BenchArgs),
}

/// Options of `hitvideo studio`.
#[derive(Debug, Clone, Args, Default)]
pub struct StudioArgs {
    /// Save a PNG screenshot of the window after it has drawn a few frames, then exit
    /// (for tests and bug reports).
    #[arg(long, value_name = "PNG")]
    pub screenshot: Option<PathBuf>,
    /// Generate this prompt as soon as the models are loaded (with --screenshot: the picture
    /// is taken once the clip is complete, and the player's frame area is printed).
    #[arg(long)]
    pub prompt: Option<String>,
    /// Use the OpenGL (glow) renderer instead of wgpu.
    #[arg(long)]
    pub glow: bool,
}

/// Sets up `tracing` output on stderr.
pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,wgpu=warn,cubecl=warn",
        _ => "debug,wgpu=info,naga=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Studio(args) => crate::studio::run(args, cli.device),
        Command::Data(cmd) => data::run(cmd),
        Command::Video(cmd) => video::run(cmd),
        Command::Tokenizer(cmd) => tokenizer::run(cmd, cli.device),
        Command::Lm(cmd) => lm::run(cmd, cli.device),
        Command::Generate(args) => generate::run_generate(args, cli.device),
        Command::Sweep(args) => sweep::run_sweep(args, cli.device),
        Command::Models(cmd) => models::run(cmd),
        Command::Bench(args) => {
            let all = device::select_many(cli.device, args.devices.unwrap_or(1).max(1))?;
            let others: Vec<device::Device> = all[1..].iter().map(|d| d.device.clone()).collect();
            bench::run(args, &all[0].description, &all[0].device, &others)
        }
        Command::Device => {
            let adapters = device::list_adapters();
            if adapters.is_empty() {
                println!("wgpu adapters: none");
            }
            for a in &adapters {
                println!("wgpu adapter: {} ({}, {:?})", a.name, a.backend, a.kind);
            }
            let cuda = device::cuda_devices();
            println!("CUDA devices: {cuda}{}", if cfg!(feature = "cuda") { "" } else { " (this build has no CUDA backend)" });
            let chosen = device::select_with(cli.device, &adapters, cuda)?;
            println!("--device {} -> {}", cli.device, chosen.description);
            Ok(())
        }
    }
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub(crate) fn progress_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    let style = indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

/// An engine service error phrased for the command line (its flags).
pub(crate) fn run_error(e: hitvideo_engine::service::ServiceError) -> anyhow::Error {
    use hitvideo_engine::service::ServiceError;
    match e {
        ServiceError::NothingToResume(p) => anyhow::anyhow!("{}: nothing to resume (no checkpoint); drop --resume to start a run", p.display()),
        ServiceError::RunExists(p) => anyhow::anyhow!("{}: already holds a run; pass --resume to continue it or choose another --out", p.display()),
        other => other.into(),
    }
}

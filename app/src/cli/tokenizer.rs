//! `hitvideo tokenizer ...`: presets and model information.

use anyhow::Result;
use clap::Subcommand;
use hitvideo_engine::tokenizer::{TokenizerConfig, config::PRESETS, info};

#[derive(Debug, Subcommand)]
pub enum TokenizerCommand {
    /// Per-layer latent shape, tokens, bits, bpp, compression ratio, parameters and an estimate
    /// of training memory for a preset (or for every preset with --all).
    Info {
        /// Preset name: paper, paper-single, tiny or tiny-single.
        #[arg(long, default_value = "tiny")]
        preset: String,
        /// Describe every preset.
        #[arg(long)]
        all: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: TokenizerCommand) -> Result<()> {
    match cmd {
        TokenizerCommand::Info { preset, all, json } => {
            let names: Vec<String> = if all { PRESETS.iter().map(|s| s.to_string()).collect() } else { vec![preset] };
            for name in names {
                let report = info::info(&TokenizerConfig::preset(&name)?);
                if json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    println!("{report}\n");
                }
            }
            Ok(())
        }
    }
}

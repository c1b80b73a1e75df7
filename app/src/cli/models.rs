//! `hitvideo models`: model bundles (the demo models in assets/models): pack two training runs
//! into a bundle with checksums, verify a bundle, show where the demo bundle is looked for.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use hitvideo_engine::bundle;
use hitvideo_engine::service::runs::describe_run;

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Copy the inference files of a tokenizer and a generator checkpoint into a bundle folder
    /// and write its SHA256SUMS (how scripts/demo-models fills assets/models).
    Pack(PackArgs),
    /// Check a bundle's files against its SHA256SUMS (default: the demo bundle).
    Verify {
        /// Bundle folder (holding SHA256SUMS).
        dir: Option<PathBuf>,
    },
    /// Put a tokenizer checkpoint into a bundle as its general tokenizer (the default for real
    /// videos), updating SHA256SUMS; the bundle's shapes models are kept.
    AddGeneral {
        /// Tokenizer run or step folder (the `general64` preset trained by scripts/general-tokenizer).
        #[arg(long)]
        checkpoint: PathBuf,
        /// Bundle folder (default: the demo bundle).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Describe a training run folder (or one of its step folders): kind, preset, step, planned
    /// steps and batch, checkpoints and, for a generator, the tokenizer its tokens came from.
    Describe {
        /// Run folder (holding `latest` and step-* checkpoints) or a step folder.
        dir: PathBuf,
    },
}

/// Options of `models pack`.
#[derive(Debug, Args)]
pub struct PackArgs {
    /// Tokenizer run or step folder.
    #[arg(long)]
    pub tokenizer: PathBuf,
    /// Generator run or step folder (trained on that tokenizer's tokens).
    #[arg(long)]
    pub generator: PathBuf,
    /// Bundle folder to write (replaced whole).
    #[arg(long)]
    pub out: PathBuf,
    /// A JSON file describing how the models were made; stored as bundle.json.
    #[arg(long)]
    pub info: Option<PathBuf>,
}

pub fn run(cmd: ModelsCommand) -> Result<()> {
    match cmd {
        ModelsCommand::Pack(a) => {
            let info = match &a.info {
                Some(p) => {
                    let text = std::fs::read_to_string(p).with_context(|| format!("{}: cannot read the info file", p.display()))?;
                    serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", p.display()))?
                }
                None => serde_json::json!({}),
            };
            let b = bundle::pack(&a.tokenizer, &a.generator, &info, &a.out)?;
            let size: u64 = walk_size(&b.root);
            println!("bundle {} ({:.1} MB), checksums in {}", b.root.display(), size as f64 / 1e6, b.root.join(bundle::SUMS).display());
        }
        ModelsCommand::Verify { dir } => {
            let b = match dir {
                Some(d) => bundle::verify(&d)?,
                None => bundle::locate(None).ok_or_else(|| anyhow::anyhow!(bundle::missing_hint()))??,
            };
            let general = b.general.as_ref().map(|g| format!(", general tokenizer {}", g.display())).unwrap_or_default();
            println!("ok: {} (tokenizer {}, generator {}{general})", b.root.display(), b.tokenizer.display(), b.generator.display());
        }
        ModelsCommand::AddGeneral { checkpoint, dir } => {
            let root = match dir {
                Some(d) => d,
                None => bundle::locate(None).ok_or_else(|| anyhow::anyhow!(bundle::missing_hint()))??.root,
            };
            let b = bundle::add_general(&root, &checkpoint)?;
            println!("bundle {} ({:.1} MB) now holds the general tokenizer from {}", b.root.display(), walk_size(&b.root) as f64 / 1e6, checkpoint.display());
        }
        ModelsCommand::Describe { dir } => {
            let run = describe_run(&dir)?;
            println!("{} run {} (preset {})", run.kind.name(), run.dir.display(), run.preset);
            let planned = run.steps.map(|s| format!(" of {s}")).unwrap_or_default();
            let batch = run.batch.map(|b| format!("; batch {b} in {} micro-batch(es)", run.accumulate.unwrap_or(1))).unwrap_or_default();
            println!("step {}{planned}{batch}", run.step);
            println!("latest: {}", run.latest.display());
            let steps: Vec<String> = run.checkpoints.iter().map(|(s, _)| s.to_string()).collect();
            println!("checkpoints at steps: {}", steps.join(", "));
            if let Some(t) = &run.tokenizer {
                println!("tokenizer (from its token cache): {}", t.display());
            }
        }
    }
    Ok(())
}

fn walk_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => walk_size(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// A file of `../shared/data/` (beside the project root). Under `CI=true` a missing file is a
/// failure; elsewhere the test is skipped with a message.
pub fn shared_data(name: &str) -> Option<PathBuf> {
    let candidates = [workspace_root().join("../shared/data").join(name), workspace_root().join("shared/data").join(name)];
    if let Some(p) = candidates.iter().find(|p| p.exists()) {
        return Some(p.clone());
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{name} is missing from ../shared/data; CI must have it");
    }
    eprintln!("skipping: ../shared/data/{name} is not present in this checkout");
    None
}

/// Runs the `hitvideo` command line in-process with `args` (without the program name).
pub fn hitvideo(args: &[&str]) -> anyhow::Result<()> {
    use clap::Parser;
    let mut argv = vec!["hitvideo"];
    argv.extend_from_slice(args);
    let cli = hitvideo_app::cli::Cli::try_parse_from(argv)?;
    hitvideo_app::cli::run(cli)
}

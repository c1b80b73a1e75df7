//! `hitvideo`: HiTVideo Studio and its command line.

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Before any thread starts: the allocator keeps tensor buffers for reuse (issue 22).
    let alloc = hitvideo_engine::alloc::tune_for_tensors();
    let cli = hitvideo_app::cli::Cli::parse();
    hitvideo_app::cli::init_tracing(cli.verbose);
    tracing::debug!(?alloc, "allocator settings");
    match hitvideo_app::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

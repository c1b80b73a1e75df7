//! `hitvideo`: HiTVideo Studio and its command line.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = hitvideo_app::cli::Cli::parse();
    hitvideo_app::cli::init_tracing(cli.verbose);
    match hitvideo_app::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

//! `hitvideo --help` and every subcommand's `--help` explain every option.

use clap::CommandFactory;
use hitvideo_app::cli::Cli;

fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
    if cmd.get_about().is_none() && !path.is_empty() {
        missing.push(format!("command '{path}' has no description"));
    }
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        if arg.get_help().is_none() && arg.get_long_help().is_none() {
            missing.push(format!("'{path} --{id}' has no help text"));
        }
    }
    for sub in cmd.get_subcommands() {
        walk(sub, &format!("{path} {}", sub.get_name()).trim().to_string(), missing);
    }
}

#[test]
fn every_option_is_explained() {
    let cmd = Cli::command();
    cmd.clone().debug_assert();
    let mut missing = Vec::new();
    walk(&cmd, "", &mut missing);
    assert!(missing.is_empty(), "{missing:#?}");
}

#[test]
fn the_binary_prints_help_for_each_command() {
    let bin = env!("CARGO_BIN_EXE_hitvideo");
    for args in [&["--help"][..], &["data", "--help"], &["data", "import", "--help"], &["video", "convert", "--help"], &["studio", "--help"], &["bench", "--help"]] {
        let out = std::process::Command::new(bin).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage:"), "{args:?}: {text}");
        assert!(text.contains("--device"), "{args:?} does not show --device: {text}");
    }
    let out = std::process::Command::new(bin).args(["data", "inspect", "/nonexistent/folder"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/folder") && err.contains("not a HiTVideo dataset folder"), "{err}");
}

#[test]
fn tokenizer_info_prints_the_paper_figures() {
    let bin = env!("CARGO_BIN_EXE_hitvideo");
    let out = std::process::Command::new(bin).args(["tokenizer", "info", "--preset", "paper"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("total tokens 2448; 1713.4 pixels per token"), "{text}");
    for row in ["1x4x4      16    12", "2x8x8     128    14", "4x8x8     256    16", "8x16x16    2048    18"] {
        assert!(text.contains(row), "missing layer row '{row}' in {text}");
    }
    assert!(text.contains("training memory (estimate)"), "{text}");
    let out = std::process::Command::new(bin).args(["tokenizer", "info", "--preset", "giant"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown tokenizer preset 'giant'"));
}

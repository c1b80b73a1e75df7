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
        walk(sub, format!("{path} {}", sub.get_name()).trim(), missing);
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
    for args in [
        &["--help"][..],
        &["data", "--help"],
        &["data", "import", "--help"],
        &["video", "convert", "--help"],
        &["studio", "--help"],
        &["bench", "--help"],
        &["tokenizer", "eval", "--help"],
        &["tokenizer", "encode", "--help"],
        &["tokenizer", "decode", "--help"],
    ] {
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

/// Kills training while it writes a checkpoint (a failpoint aborts the process after the first
/// file) and shows that the previous checkpoint still loads and the run resumes from it.
#[test]
fn killed_during_checkpoint_keeps_the_previous_one() {
    let bin = env!("CARGO_BIN_EXE_hitvideo");
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap().to_string();
    let args = |steps: &'static str| -> Vec<String> {
        [
            "tokenizer",
            "train",
            "--out",
            run_s.as_str(),
            "--steps",
            steps,
            "--batch",
            "1",
            "--checkpoint-every",
            "1",
            "--val-every",
            "100",
            "--val-clips",
            "1",
            "--synthetic-count",
            "40",
            "--device",
            "cpu",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let ok = std::process::Command::new(bin).args(args("1")).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let mut resume = args("2");
    resume.push("--resume".to_string());
    let crashed = std::process::Command::new(bin).args(&resume).env("HITVIDEO_FAILPOINT", "checkpoint-write").output().unwrap();
    assert!(!crashed.status.success(), "the failpoint must kill the process");
    assert!(String::from_utf8_lossy(&crashed.stderr).contains("failpoint checkpoint-write"));
    assert!(run.join(".tmp-step-0000002").exists(), "the interrupted write is left in its temporary folder");
    assert_eq!(std::fs::read_to_string(run.join("latest")).unwrap().trim(), "step-0000001");
    // The surviving checkpoint loads and the run continues from it.
    let again = std::process::Command::new(bin).args(&resume).output().unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(std::fs::read_to_string(run.join("latest")).unwrap().trim(), "step-0000002");
    // Starting a new run over an existing one is refused.
    let refused = std::process::Command::new(bin).args(args("2")).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already holds a run; pass --resume"));
    // `models describe` reads the run folder as the studio's Train view does.
    let described = std::process::Command::new(bin).args(["models", "describe"]).arg(&run).output().unwrap();
    assert!(described.status.success(), "{}", String::from_utf8_lossy(&described.stderr));
    let text = String::from_utf8_lossy(&described.stdout);
    assert!(text.contains("tokenizer run") && text.contains("step 2 of 2") && text.contains("checkpoints at steps: 1, 2"), "{text}");
    let not_a_run = std::process::Command::new(bin).args(["models", "describe"]).arg(dir.path()).output().unwrap();
    assert!(!not_a_run.status.success() && String::from_utf8_lossy(&not_a_run.stderr).contains("not a training run"));
}

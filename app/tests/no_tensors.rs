//! The app holds no tensor code (issue 26): it has no Burn dependency of its own, and no
//! source file names Burn or a tensor type. Everything that touches tensors is an engine
//! function both front ends call (`hitvideo_engine::service` and the layers below it).

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read app/src") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Lines of `text` naming Burn or a tensor type.
fn tensor_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .filter(|code| ["burn::", "Tensor<", "TensorData", "use burn"].iter().any(|w| code.contains(w)))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_app_has_no_burn_dependency_and_no_tensor_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("app/Cargo.toml");
    let deps: Vec<&str> = manifest.lines().filter(|l| l.trim_start().starts_with("burn")).collect();
    assert!(deps.is_empty(), "app/Cargo.toml depends on Burn: {deps:?}; add an engine function instead");
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    assert!(files.len() > 20, "app/src has {} source files", files.len());
    let found: Vec<String> = files
        .iter()
        .flat_map(|p| tensor_lines(&std::fs::read_to_string(p).expect("read")).into_iter().map(move |l| format!("{}: {}", p.display(), l.trim())))
        .collect();
    assert!(found.is_empty(), "tensor code in the app:\n{}", found.join("\n"));
}

#[test]
fn the_scan_finds_tensor_code() {
    assert_eq!(tensor_lines("use burn::prelude::*;\nlet x: Tensor<5> = y; // Tensor<3>\nlet z = 1;").len(), 2);
    assert!(tensor_lines("// burn:: in a comment\nlet video = decode();").is_empty());
}

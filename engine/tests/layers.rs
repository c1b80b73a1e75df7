//! The engine's layers depend one way (issue 26): shared pieces, then models, then inference,
//! then training, then evaluation, then the service layer the front ends call. This test reads
//! every source file under `engine/src`, finds each path it names through `crate::` or
//! `super::` (in `use` trees and inline), resolves it to
//! the file that defines it (following `pub use` re-exports in `mod.rs` files) and fails on any
//! reference to a higher layer. Test modules (`tests.rs`, `#[cfg(test)] mod tests`) are exempt.
//! A new file must be given a layer in `LAYERS` (the longest matching prefix wins).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    /// Files, pixels, devices, tensor conversion, custom tensor ops, checkpoints, bundles, datasets.
    Shared,
    /// Networks and their file formats (text encoders, tokenizer, generator), and loading them.
    Models,
    /// Codecs, sampling, generation, the text-to-clip pipeline.
    Inference,
    Training,
    /// Metrics over models, the analyzer, baselines, sweeps, grids, benchmarks.
    Evaluation,
    /// The operations both front ends call (start a run, build a token cache, ...).
    Service,
}

const LAYERS: &[(&str, Layer)] = &[
    ("lib.rs", Layer::Shared),
    ("alloc.rs", Layer::Shared),
    ("fsutil.rs", Layer::Shared),
    ("device.rs", Layer::Shared),
    ("cores.rs", Layer::Shared),
    ("guidance.rs", Layer::Shared),
    ("tensor.rs", Layer::Shared),
    ("checkpoint.rs", Layer::Shared),
    ("metrics.rs", Layer::Shared),
    ("bundle.rs", Layer::Shared),
    ("ops/", Layer::Shared),
    ("video/", Layer::Shared),
    ("dataset/", Layer::Shared),
    ("text/", Layer::Models),
    ("tokenizer/", Layer::Models),
    ("generator/", Layer::Models),
    ("tokenizer/codec.rs", Layer::Inference),
    ("tokenizer/masked_codec.rs", Layer::Inference),
    ("generator/sample.rs", Layer::Inference),
    ("generator/generate.rs", Layer::Inference),
    ("generator/pipeline.rs", Layer::Inference),
    ("train/", Layer::Training),
    ("eval/", Layer::Evaluation),
    ("service/", Layer::Service),
];

fn layer_of(rel: &str) -> Option<Layer> {
    LAYERS.iter().filter(|(p, _)| rel == *p || (p.ends_with('/') && rel.starts_with(p))).max_by_key(|(p, _)| p.len()).map(|(_, l)| *l)
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read engine/src") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a file: `tokenizer/model.rs` -> `["tokenizer", "model"]`.
fn module_of(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel.trim_end_matches(".rs").split('/').map(String::from).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The source without comments, string contents and test modules.
fn code_of(text: &str) -> String {
    let cut = text.find("#[cfg(test)]\nmod tests").unwrap_or(text.len());
    text[..cut].lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// Expands a `use` tree (`a::{b, c::{d, e}}`) into full paths.
fn expand(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head = format!("{prefix}{}", tree[..open].trim());
        let inner = &tree[open + 1..tree.rfind('}').expect("balanced use tree")];
        let (mut depth, mut start) = (0, 0);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&inner[start..i], &head, out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&inner[start..], &head, out);
    } else if !tree.is_empty() {
        let item = tree.split(" as ").next().unwrap_or(tree).trim();
        out.push(format!("{prefix}{item}").trim_end_matches("::self").to_string());
    }
}

/// Every `crate::` / `super::` path named in `code`, absolute (segments after `crate`).
fn references(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let stmt = &rest[i + 4..];
        let end = stmt.find(';').unwrap_or(stmt.len());
        let body = stmt[..end].trim();
        if body.starts_with("crate::") || body.starts_with("super::") {
            expand(body, "", &mut paths);
        }
        rest = &stmt[end..];
    }
    let bytes = code.as_bytes();
    for start in ["crate::", "super::"] {
        for (i, _) in code.match_indices(start) {
            if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b':') {
                continue;
            }
            let len = code[i..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(code.len() - i);
            paths.push(code[i..i + len].trim_end_matches(':').to_string());
        }
    }
    // `super` of `a/b.rs` (module `a::b`) and of `a/mod.rs` (module `a`) is the parent module.
    let parent: Vec<String> = module[..module.len().saturating_sub(1)].to_vec();
    paths
        .into_iter()
        .filter_map(|p| {
            let segs: Vec<&str> = p.split("::").filter(|s| !s.is_empty()).collect();
            let mut abs: Vec<String> = Vec::new();
            let mut it = segs.iter().peekable();
            match it.next() {
                Some(&"crate") => {}
                Some(&"super") => {
                    abs = parent.clone();
                    while it.peek() == Some(&&"super") {
                        it.next();
                        abs.pop();
                    }
                }
                _ => return None,
            }
            abs.extend(it.map(|s| s.to_string()));
            Some(abs)
        })
        .collect()
}

/// The file defining `path` (a module, or an item re-exported by a `mod.rs` through
/// `pub use sub::{..}`), relative to `engine/src`.
fn target_file(root: &Path, path: &[String], reexports: &BTreeMap<String, BTreeMap<String, String>>) -> Option<String> {
    let mut best = None;
    for n in 1..=path.len() {
        let dir = path[..n].join("/");
        if root.join(format!("{dir}.rs")).is_file() {
            best = Some(format!("{dir}.rs"));
        } else if root.join(&dir).join("mod.rs").is_file() {
            best = Some(format!("{dir}/mod.rs"));
            let is_module = |item: &String| root.join(&dir).join(format!("{item}.rs")).is_file() || root.join(&dir).join(item).join("mod.rs").is_file();
            if let Some(item) = path.get(n).filter(|item| !is_module(item))
                && let Some(sub) = reexports.get(&format!("{dir}/mod.rs")).and_then(|m| m.get(item))
            {
                return target_file(root, &[&path[..n], std::slice::from_ref(sub)].concat(), reexports);
            }
        } else {
            break;
        }
    }
    best.or_else(|| path.first().map(|_| "lib.rs".to_string()))
}

#[test]
fn engine_layers_depend_one_way() {
    let root = src();
    let mut all = Vec::new();
    files(&root, &mut all);
    let rel = |p: &Path| p.strip_prefix(&root).expect("under src").to_string_lossy().replace('\\', "/");
    // `pub use sub::{A, B}` in each mod.rs: item -> submodule.
    let mut reexports: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for p in all.iter().filter(|p| p.ends_with("mod.rs")) {
        let code = code_of(&std::fs::read_to_string(p).expect("read"));
        for line in code.lines().filter_map(|l| l.trim().strip_prefix("pub use ")) {
            let mut items = Vec::new();
            expand(line.trim_end_matches(';'), "", &mut items);
            for item in items {
                let segs: Vec<&str> = item.split("::").collect();
                if segs.len() == 2 {
                    reexports.entry(rel(p)).or_default().insert(segs[1].to_string(), segs[0].to_string());
                }
            }
        }
    }
    let mut unlisted = Vec::new();
    let mut violations = Vec::new();
    for p in &all {
        let r = rel(p);
        if r.ends_with("/tests.rs") || r.contains("/tests/") {
            continue;
        }
        let Some(own) = layer_of(&r) else {
            unlisted.push(r);
            continue;
        };
        let code = code_of(&std::fs::read_to_string(p).expect("read"));
        for path in references(&code, &module_of(&r)) {
            let Some(target) = target_file(&root, &path, &reexports) else { continue };
            if let Some(theirs) = layer_of(&target)
                && theirs > own
            {
                violations.push(format!("{r} ({own:?}) uses crate::{} in {target} ({theirs:?})", path.join("::")));
            }
        }
    }
    violations.sort();
    violations.dedup();
    assert!(unlisted.is_empty(), "files with no layer in tests/layers.rs LAYERS: {unlisted:?}");
    assert!(violations.is_empty(), "{} references to a higher layer:\n{}", violations.len(), violations.join("\n"));
}

#[test]
fn the_checker_sees_a_violation() {
    let root = src();
    let code = code_of("use crate::train::data::{ClipSource, DataSpec};\nfn f() { super::pipeline::Pipeline::load(); }\n");
    let refs = references(&code, &module_of("generator/model.rs"));
    let mut targets: Vec<String> = refs.iter().filter_map(|p| target_file(&root, p, &BTreeMap::new())).collect();
    targets.sort();
    targets.dedup();
    assert_eq!(targets, ["generator/pipeline.rs", "train/data.rs"]);
    assert!(layer_of("train/data.rs") > layer_of("generator/model.rs"));
    assert_eq!(layer_of("generator/pipeline.rs"), Some(Layer::Inference));
    assert_eq!(layer_of("generator/model.rs"), Some(Layer::Models));
}

//! A seeded fuzz suite over every file format the program reads from a user: token files,
//! token caches, checkpoint `config.json` / `state.json` / `train.json`, custom preset files,
//! import manifests, model bundles' checksum lists and short videos.
//!
//! Each case mutates a valid file (bit flips, truncation, byte runs set to extremes, inserted
//! bytes, and for JSON a field set to an extreme value: 0, -1, 2^40, u64::MAX, 1e308, a path
//! with `../`, a string with a NUL, the wrong type) and reads it back. Every case must end,
//! within a bounded time, in either a value or an error that names the file; a panic fails the
//! test, and an abort (an allocation sized from the file) kills the test binary. The seeds and
//! case counts are fixed, so a failure reproduces; `docs/reliability.md` lists them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::tensor::Device;
use hitvideo_engine::checkpoint;
use hitvideo_engine::dataset::import::{ImportOptions, import};
use hitvideo_engine::generator::token_cache::{CacheHeader, CacheItem, FORMAT_VERSION, TokenCache};
use hitvideo_engine::tokenizer::load_tokenizer;
use hitvideo_engine::tokenizer::tokens::{TokenFile, TokenLayer, TokenWindow};
use hitvideo_engine::tokenizer::{LayerConfig, TokenizerConfig, config_sha256};
use hitvideo_engine::train::tokenizer::{TokenizerTrainConfig, TokenizerTrainer};
use hitvideo_engine::video::{self, DecodeOptions, ExportMetadata, Video};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

/// The longest one case may take (a generous bound for a loaded 2-core CI machine; cases
/// take milliseconds).
const CASE_LIMIT: Duration = Duration::from_secs(20);

/// One of the byte-level mutations.
fn mutate_bytes(bytes: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut b = bytes.to_vec();
    if b.is_empty() {
        return vec![0xff; 8];
    }
    match rng.random_range(0..6) {
        0 => {
            // Bit flips.
            for _ in 0..rng.random_range(1..8) {
                let i = rng.random_range(0..b.len());
                b[i] ^= 1 << rng.random_range(0..8);
            }
        }
        1 => b.truncate(rng.random_range(0..b.len())),
        2 => {
            // A run of extreme bytes (little-endian counts become 0 or huge).
            let i = rng.random_range(0..b.len());
            let v = [0x00, 0xff, 0x7f, 0x80][rng.random_range(0..4)];
            let end = (i + rng.random_range(1..9)).min(b.len());
            b[i..end].fill(v);
        }
        3 => {
            let i = rng.random_range(0..=b.len());
            let extra: Vec<u8> = (0..rng.random_range(1..64)).map(|_| rng.random()).collect();
            b.splice(i..i, extra);
        }
        4 => {
            let i = rng.random_range(0..b.len());
            let end = (i + rng.random_range(1..32)).min(b.len());
            b.drain(i..end);
        }
        _ => {
            // The first 4-byte word after the magic set to an extreme count.
            let i = rng.random_range(0..b.len().saturating_sub(4).max(1));
            let v: u32 = [0, 1, u32::MAX, 1 << 31, 1 << 24][rng.random_range(0..5)];
            for (k, byte) in v.to_le_bytes().iter().enumerate() {
                if let Some(x) = b.get_mut(i + k) {
                    *x = *byte;
                }
            }
        }
    }
    b
}

/// An extreme JSON value.
fn extreme(rng: &mut ChaCha8Rng) -> Value {
    let choices = [
        json!(0),
        json!(-1),
        json!(1u64 << 40),
        json!(u64::MAX),
        json!(1e308),
        json!(-1e308),
        json!(0.5),
        json!(2),
        json!(""),
        json!("../../outside"),
        json!("a\u{0}b"),
        json!(null),
        json!(true),
        json!([]),
        json!({}),
        json!([1u64 << 20, 1u64 << 10, 1u64 << 10]),
    ];
    choices[rng.random_range(0..choices.len())].clone()
}

/// Paths to every leaf of `v` (object keys and array indices).
fn leaves(v: &Value, at: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                at.push(json!(k));
                leaves(x, at, out);
                at.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                at.push(json!(i));
                leaves(x, at, out);
                at.pop();
            }
            if a.is_empty() {
                out.push(at.clone());
            }
        }
        _ => out.push(at.clone()),
    }
}

fn get_mut<'a>(v: &'a mut Value, path: &[Value]) -> Option<&'a mut Value> {
    let mut cur = v;
    for p in path {
        cur = match p {
            Value::String(k) => cur.get_mut(k.as_str())?,
            Value::Number(i) => cur.get_mut(i.as_u64()? as usize)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// A JSON document with one or two fields set to extreme values, or removed.
fn mutate_json(doc: &Value, rng: &mut ChaCha8Rng) -> Value {
    let mut v = doc.clone();
    let mut all = Vec::new();
    leaves(doc, &mut Vec::new(), &mut all);
    for _ in 0..rng.random_range(1..3) {
        if all.is_empty() {
            break;
        }
        let path = &all[rng.random_range(0..all.len())];
        if rng.random_range(0..8) == 0
            && path.len() == 1
            && let (Some(obj), Value::String(k)) = (v.as_object_mut(), &path[0])
        {
            obj.remove(k);
            continue;
        }
        if let Some(slot) = get_mut(&mut v, path) {
            *slot = extreme(rng);
        }
    }
    v
}

/// Runs `case` and checks that it ended in time, and that an error names `name`.
fn check<T, E: std::fmt::Display>(format: &str, i: usize, name: &str, case: impl FnOnce() -> Result<T, E>) -> bool {
    let t = Instant::now();
    let r = case();
    let took = t.elapsed();
    assert!(took < CASE_LIMIT, "{format} case {i}: took {took:?}");
    match r {
        Ok(_) => true,
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(name), "{format} case {i}: the error does not name {name}: {msg}");
            false
        }
    }
}

fn tiny_tokens() -> TokenFile {
    let cfg = TokenizerConfig::preset("tiny").expect("tiny");
    let windows = (0..2u32)
        .map(|w| TokenWindow {
            layers: cfg
                .layers
                .iter()
                .enumerate()
                .map(|(j, l)| {
                    let n = l.tokens();
                    let ids = (0..n as u32).map(|i| (i * 7 + w) % (1 << l.bits)).collect();
                    let mask = (j > 0).then(|| (0..n).map(|i| i % 3 == 0 && i >= l.h * l.w).collect());
                    TokenLayer { shape: [l.t, l.h, l.w], bits: l.bits, ids, mask }
                })
                .collect(),
        })
        .collect();
    TokenFile {
        preset: cfg.name.clone(),
        config_sha256: config_sha256(&cfg),
        weights_sha256: None,
        fps: 8.0,
        window_frames: cfg.frames,
        height: cfg.height,
        width: cfg.width,
        frames: 20,
        source: Some("clip.mp4".into()),
        fill: Some(hitvideo_engine::tokenizer::FillStrategy::Repeat),
        windows,
    }
}

/// The header JSON of a token file, and the bytes around it.
fn split_token_file(bytes: &[u8]) -> (Vec<u8>, Value, Vec<u8>) {
    let n = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) as usize;
    let header = serde_json::from_slice(&bytes[16..16 + n]).expect("header");
    (bytes[..12].to_vec(), header, bytes[16 + n..].to_vec())
}

#[test]
fn token_files_survive_mutation() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("clip.tokens");
    let valid = tiny_tokens().to_bytes(&path).expect("bytes");
    let (prefix, header, payload) = split_token_file(&valid);
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    let (mut ok, cases) = (0, 400);
    for i in 0..cases {
        let bytes = if i % 2 == 0 {
            mutate_bytes(&valid, &mut rng)
        } else {
            let h = serde_json::to_vec(&mutate_json(&header, &mut rng)).expect("json");
            let mut b = prefix.clone();
            b.extend_from_slice(&(h.len() as u32).to_le_bytes());
            b.extend_from_slice(&h);
            b.extend_from_slice(&payload);
            b
        };
        std::fs::write(&path, &bytes).expect("write");
        ok += usize::from(check("token file", i, "clip.tokens", || TokenFile::read(&path)));
    }
    // Almost every mutation breaks the checksum or a check; none may be taken silently when
    // the header lies about sizes (those cases are errors above).
    assert!(ok < cases / 4, "{ok} of {cases} mutated token files were accepted");
}

fn tiny_cache() -> TokenCache {
    let layers = vec![LayerConfig::new(1, 2, 2, 5), LayerConfig::new(2, 4, 4, 8)];
    let per: usize = layers.iter().map(LayerConfig::tokens).sum();
    let items: Vec<CacheItem> = (0..6)
        .map(|i| CacheItem {
            caption: format!("a red circle {i}"),
            split: if i < 4 { "train" } else { "val" }.into(),
            index: Some(i),
            source: None,
            start_frame: None,
        })
        .collect();
    let ids = (0..items.len() * per).map(|i| (i % 31) as u32).collect();
    let header = CacheHeader {
        format_version: FORMAT_VERSION,
        tokenizer: "tiny".into(),
        tokenizer_sha256: "0".repeat(64),
        layers,
        synthetic: None,
        tokenizer_checkpoint: Some("runs/tok".into()),
        dataset: None,
        items,
    };
    TokenCache { header, ids }
}

#[test]
fn token_caches_survive_mutation() {
    let dir = tempfile::tempdir().expect("dir");
    let cache_dir = dir.path().join("the-cache");
    let valid = tiny_cache();
    valid.write(&cache_dir).expect("write");
    let header: Value = serde_json::from_slice(&std::fs::read(cache_dir.join("cache.json")).expect("read")).expect("json");
    let ids = std::fs::read(cache_dir.join("ids.bin")).expect("ids");
    let mut rng = ChaCha8Rng::seed_from_u64(24);
    for i in 0..300 {
        let (h, b) = if i % 2 == 0 {
            (serde_json::to_vec_pretty(&mutate_json(&header, &mut rng)).expect("json"), ids.clone())
        } else {
            (serde_json::to_vec_pretty(&header).expect("json"), mutate_bytes(&ids, &mut rng))
        };
        std::fs::write(cache_dir.join("cache.json"), h).expect("write");
        std::fs::write(cache_dir.join("ids.bin"), b).expect("write");
        check("token cache", i, "the-cache", || TokenCache::read(&cache_dir));
    }
}

/// A tiny tokenizer's run folder with one checkpoint.
fn tiny_run(dir: &Path) -> PathBuf {
    let device = Device::flex();
    let cfg = TokenizerConfig::preset("tiny").expect("tiny");
    let trainer = TokenizerTrainer::new(cfg, TokenizerTrainConfig::new().with_steps(10).with_batch(1), &device);
    let run = dir.join("the-run");
    trainer.save(&run, json!({})).expect("save");
    run
}

#[test]
fn checkpoint_files_survive_mutation() {
    let dir = tempfile::tempdir().expect("dir");
    let run = tiny_run(dir.path());
    let step = checkpoint::resolve(&run).expect("step");
    let device = Device::flex();
    let originals: Vec<(&str, Vec<u8>)> =
        ["config.json", "state.json", "train.json"].iter().map(|f| (*f, std::fs::read(step.join(f)).expect("read"))).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(25);
    let mut reasons = Vec::new();
    for i in 0..150 {
        let (file, bytes) = &originals[i % originals.len()];
        // Every third case of each file is a byte mutation, the others change fields.
        let mutated = if (i / originals.len()).is_multiple_of(3) {
            mutate_bytes(bytes, &mut rng)
        } else {
            let doc: Value = serde_json::from_slice(bytes).expect("json");
            serde_json::to_vec_pretty(&mutate_json(&doc, &mut rng)).expect("json")
        };
        std::fs::write(step.join(file), &mutated).expect("write");
        if *file == "config.json" && (i / originals.len()).is_multiple_of(2) {
            // A consistent forgery: the checksum in state.json follows the edited config, so
            // the config's own checks are what must refuse it.
            let mut state: Value = serde_json::from_slice(&originals[1].1).expect("state");
            state["config_sha256"] = json!(checkpoint::sha256_hex(&mutated));
            state["files"] = json!([]);
            std::fs::write(step.join("state.json"), serde_json::to_vec(&state).expect("json")).expect("write");
        }
        check("checkpoint", i, "the-run", || load_tokenizer(&run, None, &device));
        check("checkpoint resume", i, "the-run", || TokenizerTrainer::resume(&run, None, &device));
        if let Err(e) = TokenizerTrainer::resume(&run, None, &device) {
            reasons.push(e.to_string());
        }
        for (f, b) in &originals {
            std::fs::write(step.join(f), b).expect("restore");
        }
    }
    // Every layer of checks is reached: the file list, the JSON parser, and the field checks of
    // configs whose checksum was forged to match.
    let count = |needle: &str| reasons.iter().filter(|r| r.contains(needle)).count();
    let (listed, fields) = (count("no other step folder is intact"), count("tokenizer config '") + count("field `"));
    eprintln!("checkpoint cases refused: {} ({listed} by the file list, {fields} by a field check)", reasons.len());
    assert!(listed > 10 && fields > 5, "{listed} by the file list, {fields} by field checks: {reasons:#?}");
}

#[test]
fn custom_preset_files_survive_mutation() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("my-preset.json");
    let cfg = TokenizerConfig::preset("tiny").expect("tiny");
    let doc = serde_json::to_value(&cfg).expect("json");
    let mut rng = ChaCha8Rng::seed_from_u64(26);
    for i in 0..200 {
        let bytes = if i % 4 == 0 {
            mutate_bytes(&serde_json::to_vec(&doc).expect("json"), &mut rng)
        } else {
            serde_json::to_vec(&mutate_json(&doc, &mut rng)).expect("json")
        };
        std::fs::write(&path, bytes).expect("write");
        let name = path.to_str().expect("utf-8 temp path");
        let accepted = check("preset", i, "my-preset.json", || TokenizerConfig::preset_or_file(name));
        if accepted {
            // An accepted custom config must also build: no absurd sizes got through.
            let c = TokenizerConfig::preset_or_file(name).expect("accepted");
            assert!(c.channels.iter().all(|&ch| ch <= 4096) && c.frames <= 1024, "case {i}: {c:?}");
        }
    }
}

fn short_clip(frames: usize) -> Video {
    let mut v = Video::new(32, 32, 8.0);
    for t in 0..frames {
        let f: Vec<u8> = (0..32 * 32 * 3).map(|i| ((i * 7 + t * 40) % 251) as u8).collect();
        v.push_frame(&f);
    }
    v
}

#[test]
fn short_videos_survive_mutation() {
    let dir = tempfile::tempdir().expect("dir");
    let good = dir.path().join("good.mp4");
    let clip = short_clip(8);
    let opts = video::mp4::Mp4Options { crf: 23, preset: "ultrafast".into() };
    video::mp4::write_mp4(&clip, &good, &ExportMetadata::for_video(&clip), &opts).expect("mp4");
    let valid = std::fs::read(&good).expect("read");
    let path = dir.path().join("mutated.mp4");
    let mut rng = ChaCha8Rng::seed_from_u64(27);
    for i in 0..120 {
        std::fs::write(&path, mutate_bytes(&valid, &mut rng)).expect("write");
        let accepted = check("video", i, "mutated.mp4", || video::decode(&path, &DecodeOptions::at(8.0, 32)));
        if accepted {
            let v = video::decode(&path, &DecodeOptions::at(8.0, 32)).expect("accepted");
            assert!(v.len() <= DecodeOptions::default().budget.frames, "case {i}");
        }
        check("video probe", i, "mutated.mp4", || video::probe(&path));
    }
}

#[test]
fn manifests_survive_mutation() {
    let dir = tempfile::tempdir().expect("dir");
    let clip = short_clip(20);
    let opts = video::mp4::Mp4Options { crf: 23, preset: "ultrafast".into() };
    let vid = dir.path().join("v.mp4");
    video::mp4::write_mp4(&clip, &vid, &ExportMetadata::for_video(&clip), &opts).expect("mp4");
    let rows = [json!({"path": "v.mp4", "caption": "a red circle", "start": 0.0, "end": 2.0}), json!({"path": "missing.mp4", "caption": "x"})];
    let manifest = dir.path().join("list.jsonl");
    let import_opts = ImportOptions { fps: 8.0, size: 32, min_frames: 8, ..ImportOptions::default() };
    let mut rng = ChaCha8Rng::seed_from_u64(28);
    for i in 0..60 {
        let text: String = rows.iter().map(|r| format!("{}\n", mutate_json(r, &mut rng))).collect();
        let bytes = if i % 3 == 0 { mutate_bytes(text.as_bytes(), &mut rng) } else { text.into_bytes() };
        std::fs::write(&manifest, bytes).expect("write");
        let accepted = check("manifest", i, "list.jsonl", || import(&manifest, &import_opts, &mut |_, _, _| {}).map_err(|e| e.message));
        if accepted {
            // Rejected rows are reported by the manifest line that named them.
            let report = import(&manifest, &import_opts, &mut |_, _, _| {}).expect("accepted");
            for e in &report.index.errors {
                assert!(e.message.contains("list.jsonl") || e.message.contains(dir.path().to_str().unwrap_or("")), "case {i}: {}", e.message);
            }
        }
    }
}

#[test]
fn bundle_checksum_lists_survive_mutation() {
    let dir = tempfile::tempdir().expect("dir");
    let root = dir.path().join("bundle");
    std::fs::create_dir_all(&root).expect("dir");
    std::fs::write(root.join("bundle.json"), b"{}").expect("write");
    std::fs::write(dir.path().join("outside.txt"), b"secret").expect("write");
    let sum = checkpoint::sha256_hex(b"{}");
    let outside = checkpoint::sha256_hex(b"secret");
    let lines = [format!("{sum}  bundle.json"), format!("{outside}  ../outside.txt"), format!("{outside}  {}", dir.path().join("outside.txt").display())];
    for (i, line) in lines.iter().enumerate() {
        std::fs::write(root.join("SHA256SUMS"), format!("{line}\n")).expect("write");
        let e = hitvideo_engine::bundle::verify(&root).expect_err("incomplete or escaping bundle").to_string();
        assert!(e.contains("SHA256SUMS") || e.contains("bundle"), "line {i}: {e}");
        if i > 0 {
            assert!(e.contains("SHA256SUMS") && !e.contains("secret"), "line {i} must be refused as a bad line: {e}");
        }
    }
}

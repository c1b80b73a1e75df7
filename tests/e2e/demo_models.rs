//! The shipped demo models (`assets/models`), as a new user meets them: the bundle verifies
//! against its checksums, `generate` without `--generator` finds it and writes a clip, and
//! `lm eval` runs on held-out prompts, where the attribute analyzer must find the asked-for
//! color and motion in the shipped tokenizer's reconstructions.

use hitvideo_e2e::{hitvideo, workspace_root};

fn s(p: &std::path::Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

#[test]
fn demo_bundle_verifies_generates_and_evaluates() {
    let bundle = workspace_root().join("assets/models");
    assert!(bundle.join("SHA256SUMS").exists(), "{}: the demo bundle is missing; scripts/demo-models makes it", bundle.display());
    hitvideo(&["models", "verify", s(&bundle)]).expect("the shipped bundle verifies");

    let dir = tempfile::tempdir().expect("tempdir");
    let clip = dir.path().join("clip.mp4");
    hitvideo(&["--device", "cpu", "generate", "--prompt", "a red circle moving right", "--cfg", "5", "--seed", "0", "--out", s(&clip)])
        .expect("generate with the demo bundle");
    let video = hitvideo_engine::video::decode(&clip, &hitvideo_engine::video::DecodeOptions::default()).expect("the clip decodes");
    assert_eq!((video.len(), video.width(), video.height()), (16, 32, 32));

    // Held-out prompts (unseen attribute combinations and unseen caption templates) at CFG 5.
    // The analyzer must find the asked-for color and motion in the shipped tokenizer's own
    // reconstructions of those clips (the ceiling rows); the generator's rows must be there.
    let json = dir.path().join("eval.json");
    hitvideo(&["--device", "cpu", "lm", "eval", "--cfg", "5", "--per-split", "8", "--out", s(&json)]).expect("lm eval");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).expect("report")).expect("JSON");
    let rows = report["report"]["rows"].as_array().expect("rows");
    for split in ["heldout-combo", "heldout-template"] {
        let ceiling = rows.iter().find(|r| r["split"] == split && r["cfg"].is_null()).expect("a ceiling row per split");
        let (color, motion) = (ceiling["color"].as_f64().unwrap_or(0.0), ceiling["motion"].as_f64().unwrap_or(0.0));
        assert!(color >= FLOOR && motion >= FLOOR, "{split}: the tokenizer's reconstructions show color {color}, motion {motion}, below {FLOOR}");
        let generated = rows.iter().find(|r| r["split"] == split && r["cfg"].as_f64() == Some(5.0)).expect("a CFG 5 row per split");
        assert_eq!(generated["clips"], 8, "{generated}");
    }
}

/// What the shipped tokenizer's reconstructions must keep of held-out clips (docs/results.md:
/// 96-100% color, 100% motion on 24 clips per split).
const FLOOR: f64 = 0.75;

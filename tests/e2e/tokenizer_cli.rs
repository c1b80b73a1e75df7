//! The tokenizer's command line end to end: train `tiny` for 2 steps, encode a clip with
//! dynamic encoding (masks stored with a default fill), decode it with another fill, evaluate
//! with every fill, fine-tune the decoder with masked inputs (encoder frozen), refuse bad
//! masking settings with a clear message, and time it with `hitvideo bench`.

use hitvideo_e2e::hitvideo;
use hitvideo_engine::tokenizer::tokens::TokenFile;
use hitvideo_engine::tokenizer::{FillStrategy, codec};

fn s(p: &std::path::Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

#[test]
fn train_encode_decode_eval_with_masks_and_bench() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    hitvideo(&[
        "--device",
        "cpu",
        "tokenizer",
        "train",
        "--preset",
        "tiny",
        "--out",
        s(&run),
        "--steps",
        "2",
        "--batch",
        "2",
        "--synthetic-count",
        "200",
        "--val-clips",
        "2",
        "--val-every",
        "2",
        "--checkpoint-every",
        "2",
    ])
    .expect("train");
    let clip = dir.path().join("clip.gif");
    hitvideo(&["data", "synth", "--out", s(&dir.path().join("ds")), "--count", "4", "--frames", "20", "--size", "32"]).expect("synth");
    hitvideo(&["data", "preview", s(&dir.path().join("ds")), "--item", "1", "--out", s(&clip)]).expect("preview");

    // Encode with masks: the file carries them and the default fill.
    let tokens = dir.path().join("clip.tokens");
    hitvideo(&["--device", "cpu", "tokenizer", "encode", "--checkpoint", s(&run), s(&clip), "--out", s(&tokens), "--mask", "zero", "--mask-cap", "0.5"])
        .expect("encode");
    let file = TokenFile::read(&tokens).expect("read tokens");
    assert_eq!(file.fill, Some(FillStrategy::Zero));
    assert_eq!(file.windows.len(), 2, "20 frames are 2 windows of 16");
    for l in file.windows.iter().flat_map(|w| &w.layers) {
        let m = l.mask.as_ref().expect("every layer carries a mask");
        let plane = l.shape[1] * l.shape[2];
        assert!(m[..plane].iter().all(|&b| !b), "first latent frame masked");
        let maskable = (l.shape[0] - 1) * plane;
        assert!(m.iter().filter(|&&b| b).count() * 2 <= maskable, "cap 0.5 exceeded");
    }
    // The masked file is the compact stream: mask bits plus the kept ids only. Against the same
    // clip encoded without masks it grows by the mask bits and shrinks by the masked ids (the
    // header differs by a few bytes per layer).
    let plain = dir.path().join("plain.tokens");
    hitvideo(&["--device", "cpu", "tokenizer", "encode", "--checkpoint", s(&run), s(&clip), "--out", s(&plain)]).expect("encode");
    let layers = file.windows.iter().flat_map(|w| &w.layers);
    let mask_bytes: i64 = layers.clone().map(|l| l.len().div_ceil(8) as i64).sum();
    let dropped_bits: i64 = layers.map(|l| (l.mask.as_ref().map_or(0, |m| m.iter().filter(|&&b| b).count()) * l.bits) as i64).sum();
    let size = |p: &std::path::Path| std::fs::metadata(p).expect("size").len() as i64;
    let grew = size(&tokens) - size(&plain);
    eprintln!("masked file {} bytes, plain {} bytes; {mask_bytes} mask bytes, {dropped_bits} id bits dropped", size(&tokens), size(&plain));
    assert!(grew <= mask_bytes - dropped_bits / 8 + 200 && grew >= mask_bytes - dropped_bits / 8 - 8, "grew by {grew} bytes");
    // Decode with the file's fill and with another one.
    hitvideo(&["--device", "cpu", "tokenizer", "decode", "--checkpoint", s(&run), s(&tokens), "--out", s(&dir.path().join("a.mp4"))]).expect("decode");
    hitvideo(&["--device", "cpu", "tokenizer", "decode", "--checkpoint", s(&run), s(&tokens), "--out", s(&dir.path().join("b.mp4")), "--mask", "learned"])
        .expect("decode with learned fill");
    // Eval with every fill writes the dynamic-encoding report.
    let json = dir.path().join("eval.json");
    hitvideo(&[
        "--device",
        "cpu",
        "tokenizer",
        "eval",
        "--checkpoint",
        s(&run),
        "--synthetic",
        "2",
        "--synthetic-count",
        "200",
        "--mask",
        "all",
        "--json",
        s(&json),
    ])
    .expect("eval");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).expect("report")).expect("JSON");
    let fills: Vec<&str> = report["dynamic"]["fills"].as_array().expect("fills").iter().filter_map(|f| f["fill"].as_str()).collect();
    assert_eq!(fills, ["repeat", "zero", "learned"]);
    assert!(report["dynamic"]["mask_ratio"].as_f64().is_some_and(|r| (0.0..=0.85 + 1e-12).contains(&r)));

    // Masked fine-tuning of the decoder with the encoder frozen: the ids stay the same.
    let ft = dir.path().join("ft");
    hitvideo(&[
        "--device",
        "cpu",
        "tokenizer",
        "train",
        "--finetune-from",
        s(&run),
        "--out",
        s(&ft),
        "--steps",
        "2",
        "--batch",
        "2",
        "--synthetic-count",
        "200",
        "--val-clips",
        "2",
        "--val-every",
        "2",
        "--checkpoint-every",
        "2",
        "--mask-prob",
        "1",
        "--mask-fill",
        "learned",
        "--freeze-encoder",
    ])
    .expect("masked fine-tuning");
    let log = std::fs::read_to_string(ft.join("metrics.jsonl")).expect("metrics");
    assert!(log.lines().filter(|l| l.contains("\"step\"")).all(|l| l.contains("\"fill\":\"learned\"")), "{log}");
    let ft_tokens = dir.path().join("ft.tokens");
    hitvideo(&["--device", "cpu", "tokenizer", "encode", "--checkpoint", s(&ft), s(&clip), "--out", s(&ft_tokens)]).expect("encode after fine-tuning");
    let after = TokenFile::read(&ft_tokens).expect("read");
    for (a, b) in after.windows.iter().flat_map(|w| &w.layers).zip(file.windows.iter().flat_map(|w| &w.layers)) {
        assert_eq!(a.ids, b.ids, "a frozen encoder gives the same ids");
    }
    // The file records the weights that wrote it: the fine-tune's decoder shares the run's
    // config, but decoding its tokens with the run's weights is refused, naming the fix.
    assert_eq!(after.weights_sha256.as_deref(), Some(codec::weights_sha256(&ft).expect("weights").as_str()));
    let err = hitvideo(&["--device", "cpu", "tokenizer", "decode", "--checkpoint", s(&run), s(&ft_tokens), "--out", s(&dir.path().join("x.mp4"))])
        .expect_err("other weights");
    assert!(format!("{err:#}").contains("other weights") && format!("{err:#}").contains("ft.tokens"), "{err:#}");
    hitvideo(&["--device", "cpu", "tokenizer", "decode", "--checkpoint", s(&ft), s(&ft_tokens), "--out", s(&dir.path().join("ft.mp4"))])
        .expect("decode with its own weights");
    let err = hitvideo(&["tokenizer", "train", "--out", s(&dir.path().join("bad")), "--steps", "1", "--mask-fill", "blur"]).expect_err("fill");
    assert!(format!("{err:#}").contains("unknown fill strategy 'blur'"), "{err:#}");

    // Bad settings: clear errors naming the flag.
    let err =
        hitvideo(&["tokenizer", "encode", "--checkpoint", s(&run), s(&clip), "--out", s(&tokens), "--mask", "repeat", "--mask-cap", "1.5"]).expect_err("cap");
    assert!(format!("{err:#}").contains("--mask-cap 1.5"), "{err:#}");
    let err = hitvideo(&["tokenizer", "eval", "--checkpoint", s(&run), "--mask", "blur"]).expect_err("fill");
    assert!(format!("{err:#}").contains("unknown fill strategy 'blur'"), "{err:#}");
    let err =
        hitvideo(&["tokenizer", "decode", "--checkpoint", s(&run), s(&tokens), "--out", s(&dir.path().join("c.mp4")), "--mask", "all"]).expect_err("list");
    assert!(format!("{err:#}").contains("one fill strategy"), "{err:#}");
    assert_eq!(TokenFile::read(&tokens).expect("still readable").fill, Some(FillStrategy::Zero), "a refused command leaves the file alone");

    // bench: the tokenizer section on the CPU.
    let bench = dir.path().join("bench.json");
    let bikes = hitvideo_e2e::shared_data("bikes.mp4");
    let video = bikes.as_deref().unwrap_or(clip.as_path());
    hitvideo(&["--device", "cpu", "bench", "--video", s(video), "--repeat", "1", "--batch", "2", "--train-steps", "1", "--out", s(&bench)]).expect("bench");
    let b: serde_json::Value = serde_json::from_slice(&std::fs::read(&bench).expect("bench json")).expect("JSON");
    assert_eq!(b["tokenizer"]["preset"], "tiny");
    assert!(b["tokenizer"]["inference"][1]["encode_clips_per_s"].as_f64().is_some_and(|x| x > 0.0), "{b}");
    assert!(b["peak_rss_mib"].as_f64().is_some_and(|x| x > 0.0));
    assert_eq!(b["generator"]["decode_tokens_per_s"]["same_tokens"], true, "{b}");
    assert!(b["generator"]["train_step_s"]["seconds"].as_f64().is_some_and(|x| x > 0.0));
}

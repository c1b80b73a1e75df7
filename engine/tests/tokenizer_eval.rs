//! Token files and evaluation end to end on a `tiny` tokenizer trained for 2 steps: encode a
//! one-window and a two-window clip, round-trip the token file, decode (all and fewer layers,
//! to MP4 with metadata), refuse another tokenizer's tokens, and evaluate 4 synthetic clips
//! with the H.264 baseline; then a real file (`../shared/data/bikes.mp4`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use burn::prelude::*;
use hitvideo_engine::dataset::Shape;
use hitvideo_engine::eval::tokenizer::{self as eval, EvalOptions};
use hitvideo_engine::metrics;
use hitvideo_engine::tokenizer::load_tokenizer;
use hitvideo_engine::tokenizer::{FillStrategy, MaskConfig, Tokenizer, TokenizerConfig, codec, tokens::TokenFile};
use hitvideo_engine::train::data::ClipSource;
use hitvideo_engine::train::tokenizer::{self as train, TokenizerTrainConfig, TokenizerTrainer};
use hitvideo_engine::video::{self, Video};

/// Trains `tiny` for 2 steps into `run` and loads it back for inference.
fn trained_tiny(run: &Path) -> (Tokenizer, TokenizerConfig) {
    let cfg = TokenizerConfig::preset("tiny").expect("tiny preset");
    let data = ClipSource::synthetic(60, 0, cfg.frames, cfg.height, cfg.fps);
    let t = TokenizerTrainConfig::new().with_steps(2).with_batch(1).with_warmup(1).with_val_clips(1).with_checkpoint_every(2).with_stage_fraction(0.0);
    let mut trainer = TokenizerTrainer::new(cfg, t, &Device::flex());
    train::run(&mut trainer, &data, run, Arc::new(AtomicBool::new(false)), &mut |_| {}).expect("2 training steps");
    let (model, cfg, state) = load_tokenizer(run, Some("tiny"), &Device::flex()).expect("load the checkpoint");
    assert_eq!(state.step, 2);
    (model, cfg)
}

fn concat(a: &Video, b: &Video, frames_of_b: usize) -> Video {
    let mut out = a.clone();
    for t in 0..frames_of_b {
        out.push_frame(b.frame(t));
    }
    out
}

#[test]
fn encode_decode_token_files_and_evaluate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    let (model, cfg) = trained_tiny(&run);
    let clips = eval::synthetic_clips(&cfg, 400, 0, 4);
    assert_eq!(clips.len(), 4);

    // One window.
    let one = codec::encode_video(&model, &cfg, &clips[0].1, Some(clips[0].0.clone())).expect("encode one window");
    assert_eq!((one.windows.len(), one.frames), (1, 16));
    assert_eq!(one.id_bits(), cfg.total_bits());
    let one_path = dir.path().join("one.tokens");
    one.write(&one_path).expect("write");
    let back = TokenFile::read(&one_path).expect("read");
    assert_eq!(back, one);
    let recon = codec::decode_tokens(&model, &cfg, &back, &one_path, None).expect("decode");
    assert_eq!((recon.len(), recon.width(), recon.height()), (16, 32, 32));
    assert!(metrics::psnr(&clips[0].1, &recon).expect("same shape").is_finite());

    // Two windows: 16 + 9 frames, the second padded; window 0 gets the same ids as above.
    let long = concat(&clips[0].1, &clips[1].1, 9);
    let two = codec::encode_video(&model, &cfg, &long, None).expect("encode two windows");
    assert_eq!((two.windows.len(), two.frames), (2, 25));
    assert_eq!(two.windows[0], one.windows[0], "encoding is deterministic and windows are independent");
    let two_path = dir.path().join("two.tokens");
    two.write(&two_path).expect("write");
    let back = TokenFile::read(&two_path).expect("read");
    assert_eq!(back, two);
    let full = codec::decode_tokens(&model, &cfg, &back, &two_path, None).expect("decode all layers");
    assert_eq!(full.len(), 25, "padding is dropped");
    // Same ids as the one-window file; batching may move a pixel by a rounding step at most.
    assert!(metrics::psnr(&full.slice(0..16), &recon).expect("same shape") > 45.0);
    let coarse = codec::decode_tokens(&model, &cfg, &back, &two_path, Some(1)).expect("decode the coarsest layer");
    assert_eq!(coarse.len(), 25);
    assert_ne!(coarse, full, "one layer decodes differently from four");
    let err = codec::decode_tokens(&model, &cfg, &back, &two_path, Some(5)).expect_err("5 layers").to_string();
    assert!(err.contains("layers 1..=4"), "{err}");

    // Another tokenizer refuses these tokens, naming the file.
    let other = TokenizerConfig::preset("tiny-single").expect("tiny-single");
    let other_model = other.init(&Device::flex());
    let err = codec::decode_tokens(&other_model, &other, &back, &two_path, None).expect_err("wrong tokenizer").to_string();
    assert!(err.contains("two.tokens") && err.contains("checkpoint that encoded them"), "{err}");

    // Dynamic encoding in the token file: masks and the default fill survive the round trip,
    // and decoding fills the masked positions (the file's fill, or one given).
    let mut masked = two.clone();
    let sum = hitvideo_engine::tokenizer::masked_codec::mask_windows(&mut masked.windows, &MaskConfig::new(), 16 * 32 * 32).expect("mask");
    assert!(sum.ratio() <= 0.85 + 1e-12 && sum.windows == 2, "{sum:?}");
    masked.fill = Some(FillStrategy::Zero);
    let masked_path = dir.path().join("masked.tokens");
    masked.write(&masked_path).expect("write masked");
    let back_masked = TokenFile::read(&masked_path).expect("read masked");
    assert_eq!(back_masked, masked);
    let filled = codec::decode_tokens(&model, &cfg, &back_masked, &masked_path, None).expect("decode masked");
    assert_eq!(filled.len(), 25);
    let repeat = codec::decode_tokens_filled(&model, &cfg, &back_masked, &masked_path, None, Some(FillStrategy::Repeat)).expect("repeat");
    assert_eq!(repeat.len(), 25);
    if sum.masked == 0 {
        assert_eq!(filled, full, "nothing masked decodes as the plain tokens");
    }

    // To MP4 through the export path, with metadata.
    let mp4 = dir.path().join("two.mp4");
    let weights = codec::weights_sha256(&run).expect("weights checksum");
    let written = codec::export_decoded(&full, &mp4, &back, &two_path, 4, Some(weights.clone())).expect("export");
    assert_eq!(written.len(), 2, "{written:?}");
    let (meta, _) = video::meta::read_metadata(&mp4).expect("metadata");
    assert_eq!(meta.frames, 25);
    assert_eq!(meta.model_checksums.get("tokenizer"), Some(&weights));
    assert_eq!(meta.extra.get("layers_used").and_then(|v| v.as_u64()), Some(4));
    assert_eq!(video::decode(&mp4, &video::DecodeOptions::default()).expect("decode mp4").len(), 25);

    // Evaluation of 4 synthetic clips with the H.264 baseline.
    let opts = EvalOptions { batch: 2, h264_preset: Some("ultrafast".into()), mask: Some((MaskConfig::new().with_cap(0.5), FillStrategy::ALL.to_vec())) };
    let report = eval::evaluate(&model, &cfg, &clips, &opts).expect("evaluate");
    assert_eq!((report.clips, report.windows, report.frames), (4, 4, 64));
    assert!((report.bpp - cfg.bpp()).abs() < 1e-12, "{} vs {}", report.bpp, cfg.bpp());
    assert!((report.compression_ratio - cfg.compression_ratio()).abs() < 1e-9);
    assert_eq!(report.mean_by_layers.len(), 4);
    for q in report.mean_by_layers.iter().chain(report.per_clip.iter().flat_map(|c| &c.by_layers)) {
        assert!(q.psnr.is_finite() && q.psnr > 0.0 && q.ssim.is_finite() && q.ssim <= 1.0, "{q:?}");
        assert!(q.ms_ssim.is_none(), "32x32 frames are too small for MS-SSIM");
    }
    assert!(report.ms_ssim_note.as_deref().is_some_and(|n| n.contains("176x176")));
    assert_eq!(report.layers.len(), 4);
    for (l, c) in report.layers.iter().zip(&cfg.layers) {
        assert_eq!(l.bits, c.bits);
        assert!(l.usage > 0.0 && l.usage <= 1.0 && l.perplexity >= 1.0 && l.perplexity <= (1u64 << c.bits) as f64, "{l:?}");
    }
    assert!(report.encode_seconds > 0.0 && report.decode_seconds > 0.0);
    let h = report.h264.as_ref().expect("H.264 summary");
    assert!(h.bpp > 0.0 && h.bpp <= h.stream_bpp && h.stream_bpp <= h.file_bpp, "{h:?}");
    assert!(h.quality.psnr.is_finite() && h.quality.ssim.is_finite());
    for c in &report.per_clip {
        let h = c.h264.as_ref().expect("per-clip H.264");
        assert!((h.target_bpp - c.bpp).abs() < 1e-12);
        assert_eq!(h.matched, h.bpp <= h.target_bpp, "{h:?}");
        assert_eq!(h.semantics.is_some(), c.semantics_by_layers.is_some(), "the H.264 decode is read where the original has a shape");
    }
    // The codec's shape ceiling at the same bits: its per-clip readings averaged.
    let hs = h.semantics.expect("synthetic clips have shapes");
    let flags: Vec<[bool; 3]> = report.per_clip.iter().filter_map(|c| c.h264.as_ref().and_then(|h| h.semantics)).collect();
    assert_eq!(hs.clips, flags.len());
    assert_eq!(hs.shape, flags.iter().filter(|f| f[1]).count() as f64 / flags.len() as f64);
    assert!(report.to_string().contains("from the H.264 decodes as from the originals"));
    // The analyzer finds the shape in every synthetic original; per k, the agreement rates
    // are the per-clip flags averaged.
    let sem = report.semantics_by_layers.as_ref().expect("synthetic clips have shapes");
    assert_eq!(sem.len(), 4);
    for (k, a) in sem.iter().enumerate() {
        let flags: Vec<[bool; 3]> = report.per_clip.iter().filter_map(|c| c.semantics_by_layers.as_ref().map(|v| v[k])).collect();
        assert_eq!(a.clips, flags.len());
        assert_eq!(a.color, flags.iter().filter(|f| f[0]).count() as f64 / flags.len() as f64);
        assert_eq!(a.motion, flags.iter().filter(|f| f[2]).count() as f64 / flags.len() as f64);
    }
    assert!(report.to_string().contains("attributes the analyzer reads as in the original"));
    // The confusion rows count every clip's shape reading once, and its diagonal is the
    // all-layers shape agreement.
    let readings: Vec<_> = report.per_clip.iter().filter_map(|c| c.shape_reading).collect();
    assert_eq!(readings.len(), 4);
    let rows = &report.shape_confusion;
    assert_eq!(rows.iter().map(|r| r.clips).sum::<usize>(), 4);
    for r in rows {
        assert_eq!(r.as_circle + r.as_square + r.as_triangle + r.as_none, r.clips, "{r:?}");
    }
    let diagonal: usize = rows
        .iter()
        .map(|r| match r.original {
            Shape::Circle => r.as_circle,
            Shape::Square => r.as_square,
            Shape::Triangle => r.as_triangle,
        })
        .sum();
    assert_eq!(diagonal as f64 / 4.0, sem[3].shape);
    assert!(report.to_string().contains("shapes read from the decodes"));
    let gray = vec![("gray".to_string(), Video::from_raw(32, 32, 8.0, vec![128; 32 * 32 * 3 * 16]).expect("clip"))];
    let plain = EvalOptions { batch: 1, h264_preset: None, mask: None };
    let g = eval::evaluate(&model, &cfg, &gray, &plain).expect("evaluate gray");
    assert!(g.semantics_by_layers.is_none() && g.per_clip[0].semantics_by_layers.is_none(), "no shape, no agreement");
    assert!(g.shape_confusion.is_empty() && g.per_clip[0].shape_reading.is_none(), "no shape, no confusion rows");
    let json = serde_json::to_value(&report).expect("json");
    for key in ["bpp", "compression_ratio", "mean_by_layers", "shape_confusion", "layers", "per_clip", "h264", "encode_seconds", "decode_seconds"] {
        assert!(json.get(key).is_some(), "JSON lacks {key}");
    }
    // Dynamic encoding: the cap holds over all windows, the bits add up, every fill is measured.
    let d = report.dynamic.as_ref().expect("dynamic encoding report");
    let s = &d.summary;
    let maskable_per_window: usize = cfg.layers.iter().map(|l| (l.t - 1) * l.h * l.w).sum();
    assert_eq!((s.windows, s.tokens, s.maskable), (4, 4 * cfg.total_tokens(), 4 * maskable_per_window));
    assert!(s.masked <= s.maskable / 2 && d.mask_ratio <= 0.5 + 1e-12, "{s:?}");
    assert_eq!(s.dense_bits, 4 * cfg.layers.iter().map(|l| l.tokens() * l.bits).sum::<usize>());
    assert!(d.bpp <= d.dense_bpp + maskable_per_window as f64 / (16.0 * 32.0 * 32.0) + 1e-12, "{d:?}");
    assert_eq!(d.fills.iter().map(|f| f.fill.as_str()).collect::<Vec<_>>(), ["repeat", "zero", "learned"]);
    assert_eq!(d.unmasked, *report.mean_by_layers.last().expect("k = 4"));
    for f in &d.fills {
        assert!(f.quality.psnr.is_finite() && f.quality.psnr > 0.0, "{f:?}");
    }
    let table = report.to_string();
    assert!(table.contains("quality from the k coarsest layers") && table.contains("H.264 (libx264 ultrafast)"), "{table}");
    assert!(table.contains("dynamic encoding (cap 0.50") && table.contains("learned"), "{table}");

    // Clips at another size are refused with their name.
    let small = vec![("odd".to_string(), Video::from_raw(16, 16, 8.0, vec![0; 16 * 16 * 3 * 16]).expect("clip"))];
    let err = eval::evaluate(&model, &cfg, &small, &EvalOptions::default()).expect_err("wrong size").to_string();
    assert!(err.contains("odd") && err.contains("32x32"), "{err}");
}

/// `../shared/data/<name>`: skipped with a message when missing, except under `CI=true`.
fn shared_data(name: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let p = root.join("../shared/data").join(name);
    if p.exists() {
        return Some(p);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{name} is missing from ../shared/data; CI must have it");
    }
    eprintln!("skipping: ../shared/data/{name} is not present in this checkout");
    None
}

#[test]
fn a_real_video_encodes_in_windows_and_decodes_to_mp4() {
    let Some(bikes) = shared_data("bikes.mp4") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = TokenizerConfig::preset("tiny").expect("tiny");
    let model = cfg.init(&Device::flex());
    // 10 s at 8 fps: 80 frames, 5 windows of 16.
    let tokens = codec::encode_file(&model, &cfg, &bikes).expect("encode bikes.mp4");
    assert_eq!((tokens.frames, tokens.windows.len()), (80, 5));
    assert_eq!(tokens.source.as_deref(), Some(bikes.display().to_string().as_str()));
    let path = dir.path().join("bikes.tokens");
    tokens.write(&path).expect("write");
    let back = TokenFile::read(&path).expect("read");
    let clip = codec::decode_tokens(&model, &cfg, &back, &path, Some(2)).expect("decode");
    let out = dir.path().join("bikes.mp4");
    codec::export_decoded(&clip, &out, &back, &path, 2, None).expect("export");
    let info = video::probe(&out).expect("probe");
    assert_eq!((info.width, info.height), (32, 32));
    assert_eq!(video::decode(&out, &video::DecodeOptions::default()).expect("decode").len(), 80);
    let (meta, _) = video::meta::read_metadata(&out).expect("metadata");
    assert_eq!(meta.extra.get("encoded_from").and_then(|v| v.as_str()), Some(bikes.display().to_string().as_str()));
}

//! Real footage as a training source: imports that probe instead of decoding whole clips,
//! windows decoded on demand (seeking, random crops, flips), the split by clip, a clip that
//! breaks mid-training, and a fine-tune through the CLI (bounded memory over many clips is in
//! `stream_memory.rs`, a process of its own).

use std::path::Path;

use hitvideo_e2e::{hitvideo, imported_clips, shared_data};
use hitvideo_engine::dataset::stream::StreamSource;
use hitvideo_engine::video::{self, DecodeOptions};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn import_probes_lengths_and_the_split_is_by_clip() {
    let dir = tempfile::tempdir().unwrap();
    let data = imported_clips(dir.path(), 12, 40, 48, 32);
    let index = hitvideo_engine::dataset::index::DatasetIndex::read(&data).unwrap();
    // 40 frames at 8 fps: the length comes from the probe, not from decoding the clip whole.
    assert!(index.items.iter().all(|it| it.frames == 40 && it.caption.is_empty()), "{:?}", index.items[0]);
    let s = StreamSource::from_index(&data, 16, 32, 8.0).unwrap();
    assert_eq!((s.train.len(), s.val.len()), (11, 1));
    let train: Vec<&Path> = s.train.iter().map(|c| c.path.as_path()).collect();
    assert!(s.val.iter().all(|c| !train.contains(&c.path.as_path())), "a validation clip is never a training clip");
    // Validation windows are centred, fixed and come from the validation clip only.
    assert_eq!(s.val_window(0).unwrap(), s.val_window(0).unwrap());
    // Training windows: the preset's geometry, random starts, crops and flips, reproducible by seed.
    let mut a = ChaCha8Rng::seed_from_u64(3);
    let mut b = ChaCha8Rng::seed_from_u64(3);
    let wa = s.train_windows(&mut a, 6).unwrap();
    assert_eq!(wa, s.train_windows(&mut b, 6).unwrap());
    assert!(wa.iter().all(|v| (v.len(), v.width(), v.height()) == (16, 32, 32)));
    assert!(wa.windows(2).any(|p| p[0] != p[1]));
}

#[test]
fn portrait_clips_are_cropped_to_the_square_and_flips_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let data = imported_clips(dir.path(), 2, 24, 32, 64);
    let s = StreamSource::from_index(&data, 16, 32, 8.0).unwrap();
    let clip = &s.train[0];
    let top = s.window(clip, 0.0, [0.5, 0.0], false).unwrap();
    let bottom = s.window(clip, 0.0, [0.5, 1.0], false).unwrap();
    assert_eq!((top.width(), top.height(), top.len()), (32, 32, 16));
    assert_ne!(top, bottom, "a crop position picks another part of a portrait frame");
    let mut flipped = s.window(clip, 0.0, [0.5, 0.0], true).unwrap();
    hitvideo_engine::dataset::stream::flip_horizontal(&mut flipped);
    assert_eq!(flipped, top, "a flip is a mirror image");
}

#[test]
fn seeking_gives_the_frames_of_a_whole_decode() {
    let Some(bikes) = shared_data("bikes.mp4") else { return };
    let whole = video::decode(&bikes, &DecodeOptions::at(8.0, 32)).unwrap();
    // 6 s is past the seek threshold: the decoder seeks to the keyframe before it.
    let part = video::decode(&bikes, &DecodeOptions { start: 6.0, max_frames: Some(16), ..DecodeOptions::at(8.0, 32) }).unwrap();
    assert_eq!(part.len(), 16);
    for t in 0..16 {
        let (a, b) = (whole.frame(48 + t), part.frame(t));
        let diff = a.iter().zip(b).map(|(x, y)| (i32::from(*x) - i32::from(*y)).unsigned_abs()).max().unwrap();
        assert!(diff <= 2, "frame {t}: max difference {diff}");
    }
}

#[test]
fn a_clip_broken_mid_training_is_skipped_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let data = imported_clips(dir.path(), 4, 40, 32, 32);
    // After the import: the first training clip is cut short (its index is stale now).
    let broken = dir.path().join("videos/clip0000.mp4");
    let bytes = std::fs::read(&broken).unwrap();
    std::fs::write(&broken, &bytes[..bytes.len() / 8]).unwrap();
    let run = dir.path().join("run");
    hitvideo(&[
        "--device",
        "cpu",
        "tokenizer",
        "train",
        "--preset",
        "tiny",
        "--data",
        data.to_str().unwrap(),
        "--steps",
        "3",
        "--batch",
        "4",
        "--val-every",
        "3",
        "--val-clips",
        "2",
        "--out",
        run.to_str().unwrap(),
    ])
    .unwrap();
    let log = std::fs::read_to_string(run.join("errors.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 1, "one line for the one broken clip: {log}");
    assert!(lines[0].contains("clip0000.mp4"), "{log}");
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(metrics.contains("\"step\":3"), "training went on to the last step: {metrics}");
}

/// The shipped general tokenizer (`--finetune-from general`, the model bundle's) fine-tunes on
/// an imported real clip through the CLI: the run keeps its preset and starts from its weights,
/// so after two steps it reconstructs the held-out part of the clip far better than the same two
/// steps from scratch.
#[test]
fn the_general_tokenizer_fine_tunes_on_imported_real_clips() {
    let Some(bikes) = shared_data("bikes.mp4") else { return };
    let dir = tempfile::tempdir().unwrap();
    let videos = dir.path().join("videos");
    std::fs::create_dir_all(&videos).unwrap();
    std::fs::copy(&bikes, videos.join("bikes.mp4")).unwrap();
    let data = dir.path().join("data");
    hitvideo(&["data", "import", videos.to_str().unwrap(), "--out", data.to_str().unwrap(), "--captions-optional"]).unwrap();
    // One clip: its first 8 s train, its last 2 s validate.
    let train = |from: &[&str], run: &Path| -> f64 {
        let common = ["--device", "cpu", "tokenizer", "train", "--data", data.to_str().unwrap(), "--steps", "2", "--batch", "2", "--lr", "1e-4"];
        let tail = ["--warmup", "1", "--val-every", "2", "--val-clips", "2", "--out", run.to_str().unwrap()];
        hitvideo(&[&common[..], from, &tail[..]].concat()).unwrap();
        let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
        let last: serde_json::Value = serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
        last["val"]["psnr"].as_f64().unwrap()
    };
    let (tuned, scratch) = (dir.path().join("tuned"), dir.path().join("scratch"));
    let tuned_psnr = train(&["--finetune-from", "general"], &tuned);
    let scratch_psnr = train(&["--preset", "general64"], &scratch);
    let ckpt = hitvideo_engine::checkpoint::resolve(&tuned).unwrap();
    let cfg = std::fs::read_to_string(ckpt.join("config.json")).unwrap();
    assert!(cfg.contains("\"general64\""), "{cfg}");
    assert!(tuned_psnr > scratch_psnr + 3.0, "validation PSNR: {tuned_psnr:.2} dB fine-tuned from the shipped weights, {scratch_psnr:.2} dB from scratch");
}

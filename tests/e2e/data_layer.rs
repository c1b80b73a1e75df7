//! The data layer end to end: the real clip, export round trips with metadata, synthetic
//! datasets through the CLI, and importing a folder full of bad input.

use std::path::Path;

use hitvideo_e2e::{hitvideo, shared_data};
use hitvideo_engine::dataset::import::{self, ImportOptions};
use hitvideo_engine::dataset::index::DatasetIndex;
use hitvideo_engine::dataset::shapes::RenderConfig;
use hitvideo_engine::dataset::synth::{self, SynthConfig};
use hitvideo_engine::guidance::CfgSchedule;
use hitvideo_engine::metrics::psnr;
use hitvideo_engine::video::meta::{MetadataSource, read_metadata, sidecar_path};
use hitvideo_engine::video::mp4::{Mp4Options, write_mp4};
use hitvideo_engine::video::{self, DecodeOptions, ExportMetadata, Video};

fn meta_for(v: &Video) -> ExportMetadata {
    let mut m = ExportMetadata::for_video(v);
    m.prompt = Some("a red circle moving left".into());
    m.negative_prompt = Some("blurry".into());
    m.seed = Some(42);
    m.cfg = Some(7.5);
    m.cfg_schedule = Some(CfgSchedule::parse("linear:1:7.5").expect("schedule"));
    m.sampler.temperature = Some(0.9);
    m.sampler.top_k = Some(64);
    m.sampler.top_p = Some(0.95);
    m.model_checksums.insert("tokenizer".into(), "ab".repeat(32));
    m
}

#[test]
fn bikes_decodes_to_80_frames_at_8_fps() {
    let Some(bikes) = shared_data("bikes.mp4") else { return };
    let info = video::probe(&bikes).unwrap();
    assert_eq!((info.width, info.height), (640, 272));
    assert!((info.fps - 25.0).abs() < 1e-6, "{info:?}");
    let clip = video::decode(&bikes, &DecodeOptions::at(8.0, 64)).unwrap();
    assert_eq!(clip.len(), 80);
    assert_eq!((clip.width(), clip.height(), clip.fps()), (64, 64, 8.0));
    // Native rate keeps all 250 frames.
    let native = video::decode(&bikes, &DecodeOptions { size: Some((32, 32)), ..DecodeOptions::default() }).unwrap();
    assert_eq!(native.len(), 250);
    assert!((native.fps() - 25.0).abs() < 1e-6);
    // A time range: 2 s .. 4 s at 8 fps is 16 frames.
    let part = video::decode(&bikes, &DecodeOptions { start: 2.0, end: Some(4.0), ..DecodeOptions::at(8.0, 32) }).unwrap();
    assert_eq!(part.len(), 16);
    // Windows of 16 with stride 8 over 80 frames.
    let w = video::windows(&clip, video::WindowSpec { frames: 16, stride: 8 }).unwrap();
    assert_eq!(w.len(), 9);
}

#[test]
fn mp4_round_trip_keeps_psnr_and_metadata() {
    let Some(bikes) = shared_data("bikes.mp4") else { return };
    let clip = video::decode(&bikes, &DecodeOptions::at(8.0, 64)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bikes64.mp4");
    let meta = meta_for(&clip);
    write_mp4(&clip, &out, &meta, &Mp4Options { crf: 4, preset: "slow".into() }).unwrap();
    let back = video::decode(&out, &DecodeOptions::default()).unwrap();
    assert_eq!(back.len(), clip.len(), "the last frame must not be dropped");
    assert!((back.fps() - 8.0).abs() < 1e-6, "fps {}", back.fps());
    let p = psnr(&clip, &back).unwrap();
    eprintln!("bikes 64x64 MP4 round trip (crf 4): PSNR {p:.2} dB");
    assert!(p >= 35.0, "MP4 round trip PSNR {p:.2} dB < 35 dB");
    let (read, src) = read_metadata(&out).unwrap();
    assert_eq!(src, MetadataSource::Container);
    assert_eq!(read, meta);
    // No temporary file left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    // The GIF of real footage: one palette for the clip, frame count and rate kept.
    let gif = dir.path().join("bikes64.gif");
    video::export(&clip, &gif, &meta).unwrap();
    let back = video::decode(&gif, &DecodeOptions::default()).unwrap();
    assert_eq!(back.len(), 80);
    assert!((back.fps() - 8.0).abs() < 1e-6, "GIF fps {}", back.fps());
    let p = psnr(&clip, &back).unwrap();
    eprintln!("bikes 64x64 GIF round trip: PSNR {p:.2} dB");
    assert!(p >= 35.0, "GIF palette quality {p:.2} dB < 35 dB");
}

#[test]
fn gif_and_png_round_trips_keep_frames_rate_and_metadata() {
    let cfg = RenderConfig { frames: 20, size: 48, fps: 8.0 };
    let item = synth::item(&SynthConfig { render: cfg, ..SynthConfig::default() }, 3);
    let clip = item.render(&cfg);
    let dir = tempfile::tempdir().unwrap();
    let meta = meta_for(&clip);

    let gif = dir.path().join("clip.gif");
    let files = video::export(&clip, &gif, &meta).unwrap();
    assert_eq!(files, vec![gif.clone(), sidecar_path(&gif)]);
    let back = video::decode(&gif, &DecodeOptions::default()).unwrap();
    assert_eq!(back.len(), 20);
    assert!((back.fps() - 8.0).abs() < 1e-6, "GIF fps {}", back.fps());
    let p = psnr(&clip, &back).unwrap();
    eprintln!("synthetic 48x48 GIF round trip: PSNR {p:.2} dB");
    assert!(p >= 30.0, "GIF palette quality too low: {p:.2} dB");
    assert_eq!(read_metadata(&gif).unwrap(), (meta.clone(), MetadataSource::Container));

    let png_dir = dir.path().join("frames");
    let files = video::export(&clip, &png_dir, &meta).unwrap();
    assert_eq!(files.len(), 21);
    let first = image::open(png_dir.join("frame_00000.png")).unwrap().to_rgb8();
    assert_eq!(first.as_raw().as_slice(), clip.frame(0));
    assert_eq!(read_metadata(&png_dir).unwrap().0, meta);

    // The sidecar alone is enough when the container lost its tags.
    std::fs::write(&gif, b"GIF89a").unwrap();
    assert_eq!(read_metadata(&gif).unwrap(), (meta, MetadataSource::Sidecar));
}

#[test]
fn cli_synth_inspect_preview_analyze() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dir.path().join("shapes");
    let ds_s = ds.to_str().unwrap();
    hitvideo(&["data", "synth", "--out", ds_s, "--count", "40", "--seed", "7", "--frames", "12", "--size", "48"]).unwrap();
    let index = DatasetIndex::read(&ds).unwrap();
    assert_eq!(index.items.len(), 40);
    assert_eq!(index.header.frames, 12);
    hitvideo(&["data", "inspect", ds_s]).unwrap();
    let gif = dir.path().join("item.gif");
    hitvideo(&["data", "preview", ds_s, "--item", "synth-000005", "--out", gif.to_str().unwrap()]).unwrap();
    let back = video::decode(&gif, &DecodeOptions::default()).unwrap();
    assert_eq!((back.len(), back.width()), (12, 48));
    let (m, _) = read_metadata(&gif).unwrap();
    assert_eq!(m.prompt.as_deref(), Some(index.items[5].caption.as_str()));
    hitvideo(&["data", "analyze", ds_s, "--item", "3"]).unwrap();
    // Errors are errors, not panics.
    let err = hitvideo(&["data", "preview", ds_s, "--item", "nope", "--out", gif.to_str().unwrap()]).unwrap_err();
    assert!(err.to_string().contains("no item 'nope'"), "{err}");
    let err = hitvideo(&["data", "inspect", dir.path().to_str().unwrap()]).unwrap_err();
    assert!(err.to_string().contains("not a HiTVideo dataset folder"), "{err}");
    assert!(hitvideo(&["data", "synth", "--out", ds_s, "--device", "tpu"]).is_err());
}

/// Writes a synthetic clip as MP4 with `frames` frames of `w x h`.
fn write_clip(path: &Path, frames: usize, w: u32, h: u32, seed: u64) {
    let cfg = RenderConfig { frames, size: w.max(h), fps: 8.0 };
    let clip = synth::item(&SynthConfig { render: cfg, seed, ..SynthConfig::default() }, 0).render(&cfg);
    let clip = if (w, h) == (clip.width(), clip.height()) {
        clip
    } else {
        let mut v = Video::new(w, h, 8.0);
        for t in 0..frames {
            v.push_frame(&vec![(t * 10 % 255) as u8; (w * h * 3) as usize]);
        }
        v
    };
    write_mp4(&clip, path, &ExportMetadata::for_video(&clip), &Mp4Options { crf: 23, preset: "ultrafast".into() }).expect("write the test clip");
}

fn wav_bytes() -> Vec<u8> {
    let samples = 8000u32;
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + samples * 2).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&8000u32.to_le_bytes());
    b.extend_from_slice(&16000u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(samples * 2).to_le_bytes());
    for i in 0..samples {
        b.extend_from_slice(&(((i as f32 * 0.1).sin() * 8000.0) as i16).to_le_bytes());
    }
    b
}

#[test]
fn import_reports_every_bad_item_and_keeps_the_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("videos");
    std::fs::create_dir_all(&src).unwrap();
    let cap = |name: &str, text: &[u8]| std::fs::write(src.join(name), text).unwrap();

    write_clip(&src.join("good1.mp4"), 24, 64, 64, 1);
    cap("good1.txt", b"a red circle moving left\n");
    write_clip(&src.join("good2.mp4"), 20, 64, 48, 2);
    cap("good2.txt", "un cercle rouge qui glisse — vers la gauche".as_bytes());
    std::fs::copy(src.join("good1.mp4"), src.join("good1_again.mp4")).unwrap();
    cap("good1_again.txt", b"same clip again");
    write_clip(&src.join("short.mp4"), 5, 64, 64, 3);
    cap("short.txt", b"too short");
    write_clip(&src.join("tiny.mp4"), 20, 8, 8, 4);
    cap("tiny.txt", b"tiny frames");
    write_clip(&src.join("huge.mp4"), 2, 8200, 16, 5);
    cap("huge.txt", b"very wide");
    std::fs::write(src.join("corrupt.mp4"), (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect::<Vec<u8>>()).unwrap();
    cap("corrupt.txt", b"garbage bytes");
    let good = std::fs::read(src.join("good1.mp4")).unwrap();
    std::fs::write(src.join("truncated.mp4"), &good[..good.len() / 3]).unwrap();
    cap("truncated.txt", b"cut off");
    std::fs::write(src.join("empty.mp4"), b"").unwrap();
    cap("empty.txt", b"zero bytes");
    std::fs::write(src.join("song.mkv"), wav_bytes()).unwrap();
    cap("song.txt", b"audio only");
    let png = hitvideo_engine::video::png::encode_png(&[200u8; 32 * 32 * 3], 32, 32, None).unwrap();
    std::fs::write(src.join("photo.mp4"), png).unwrap();
    cap("photo.txt", b"a picture");
    write_clip(&src.join("nocaption.mp4"), 20, 64, 64, 6);
    write_clip(&src.join("blank.mp4"), 20, 64, 64, 7);
    cap("blank.txt", b"   \n\t ");
    write_clip(&src.join("latin1.mp4"), 20, 64, 64, 8);
    cap("latin1.txt", b"caf\xe9 au lait");
    std::fs::write(src.join("notes.docx"), b"PK not a video").unwrap();

    let report = import::import(&src, &ImportOptions::default(), &mut |_, _, _| {}).unwrap();
    let ok: Vec<&str> = report.index.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ok, vec!["good1", "good2"], "{}", report.summary());

    let expect = [
        ("good1_again.mp4", "duplicate of"),
        ("short.mp4", "too short: 5 frames"),
        ("tiny.mp4", "8x8 is too small"),
        ("huge.mp4", "8200x16 is too large"),
        ("corrupt.mp4", "FFmpeg cannot read this file"),
        ("truncated.mp4", "truncated"),
        ("empty.mp4", "FFmpeg cannot read this file"),
        ("song.mkv", "no video stream"),
        ("photo.mp4", "still image"),
        ("nocaption.mp4", "no caption; add"),
        ("blank.mp4", "caption is empty"),
        ("latin1.mp4", "not valid UTF-8 (bad byte at offset 3)"),
        ("notes.docx", "not a video file"),
    ];
    for (file, needle) in expect {
        let e = report.index.errors.iter().find(|e| e.source.ends_with(file)).unwrap_or_else(|| panic!("no error for {file}: {:#?}", report.index.errors));
        assert!(e.message.contains(file), "message does not name the file: {}", e.message);
        assert!(e.message.contains(needle), "{file}: expected '{needle}' in: {}", e.message);
    }
    assert_eq!(report.index.errors.len(), expect.len(), "{:#?}", report.index.errors);
    assert!(report.summary().starts_with("2 imported, 13 rejected"), "{}", report.summary());

    // The CLI writes the index and the rejects, and reads them back.
    let out = dir.path().join("ds");
    hitvideo(&["data", "import", src.to_str().unwrap(), "--out", out.to_str().unwrap()]).unwrap();
    let ds = DatasetIndex::read(&out).unwrap();
    assert_eq!((ds.items.len(), ds.errors.len()), (2, 13));
    hitvideo(&["data", "preview", out.to_str().unwrap(), "--item", "good2", "--out", dir.path().join("p.mp4").to_str().unwrap()]).unwrap();
}

#[test]
fn manifests_in_jsonl_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    write_clip(&dir.path().join("a.mp4"), 40, 64, 64, 1);
    write_clip(&dir.path().join("b.mp4"), 24, 64, 64, 2);
    let jsonl = dir.path().join("list.jsonl");
    std::fs::write(
        &jsonl,
        concat!(
            "{\"path\": \"a.mp4\", \"caption\": \"first part\", \"start\": 0.0, \"end\": 2.5}\n",
            "{\"path\": \"a.mp4\", \"caption\": \"again\"}\n",
            "{\"path\": \"b.mp4\", \"caption\": \"\"}\n",
            "{\"path\": \"missing.mp4\", \"caption\": \"gone\"}\n",
            "not json at all\n",
        ),
    )
    .unwrap();
    let r = import::import(&jsonl, &ImportOptions::default(), &mut |_, _, _| {}).unwrap();
    assert_eq!(r.index.items.len(), 1);
    assert_eq!(r.index.items[0].frames, 20, "2.5 s at 8 fps");
    let msgs: Vec<&str> = r.index.errors.iter().map(|e| e.message.as_str()).collect();
    assert!(msgs.iter().any(|m| m.contains("list.jsonl:2") && m.contains("listed twice")), "{msgs:#?}");
    assert!(msgs.iter().any(|m| m.contains("list.jsonl:3") && m.contains("caption is empty")), "{msgs:#?}");
    assert!(msgs.iter().any(|m| m.contains("missing.mp4") && m.contains("file not found")), "{msgs:#?}");
    assert!(msgs.iter().any(|m| m.contains("list.jsonl:5") && m.contains("cannot parse row")), "{msgs:#?}");

    let csv = dir.path().join("list.csv");
    std::fs::write(&csv, "path,caption,start,end\nb.mp4,\"a clip, with a comma\",,\nnope.mp4,gone,,\n").unwrap();
    let r = import::import(&csv, &ImportOptions::default(), &mut |_, _, _| {}).unwrap();
    assert_eq!(r.index.items.len(), 1);
    assert_eq!(r.index.items[0].caption, "a clip, with a comma");
    assert_eq!(r.index.errors.len(), 1);
    assert!(import::import(&dir.path().join("nothing.csv"), &ImportOptions::default(), &mut |_, _, _| {}).is_err());
}

#[test]
fn imported_clip_paths_are_stored_absolute() {
    // A source folder given by a relative path (the tests run in the package folder).
    let dir = tempfile::tempdir_in(".").unwrap();
    let cwd = std::env::current_dir().unwrap();
    let src = dir.path().join("videos").strip_prefix(&cwd).unwrap().to_path_buf();
    assert!(src.is_relative(), "{}", src.display());
    std::fs::create_dir_all(&src).unwrap();
    write_clip(&src.join("clip.mp4"), 24, 64, 64, 1);
    std::fs::write(src.join("clip.txt"), b"a blue square moving up").unwrap();
    let out = dir.path().join("ds");
    hitvideo(&["data", "import", src.to_str().unwrap(), "--out", out.to_str().unwrap()]).unwrap();
    let ds = DatasetIndex::read(&out).unwrap();
    assert_eq!(ds.items.len(), 1);
    let stored = ds.items[0].path.clone().unwrap_or_default();
    assert!(Path::new(&stored).is_absolute(), "stored path {stored} depends on the working directory");
    assert!(Path::new(&stored).exists());
}

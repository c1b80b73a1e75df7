//! Decoding hostile files: bounded frames and memory, only local files of known containers.

use std::path::Path;
use std::time::{Duration, Instant};

use super::*;
use crate::video::decode::keep;
use crate::video::mp4::{Mp4Options, write_with_pts};
use crate::video::{ExportMetadata, Video};

fn gray_clip(frames: usize) -> Video {
    let mut v = Video::new(32, 32, 8.0);
    for t in 0..frames {
        v.push_frame(&vec![(40 * t % 255) as u8; 32 * 32 * 3]);
    }
    v
}

fn fast() -> Mp4Options {
    Mp4Options { crf: 23, preset: "ultrafast".into() }
}

#[test]
fn a_timestamp_gap_of_a_million_seconds_is_refused_in_bounded_time() {
    let dir = tempfile::tempdir().expect("dir");
    // Matroska keeps 64-bit millisecond timestamps (an MP4 track would overflow its 32-bit deltas).
    let path = dir.path().join("gap.mkv");
    let clip = gray_clip(3);
    // Frames at 0 s, 0.125 s and 1,000,000 s (8 fps time base).
    write_with_pts(&clip, &path, &ExportMetadata::for_video(&clip), &fast(), Some(&[0, 1, 8_000_000])).expect("write");
    let t = Instant::now();
    let e = decode(&path, &DecodeOptions::at(8.0, 32)).expect_err("over budget").to_string();
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
    assert!(e.contains("gap.mkv") && e.contains("past the limit") && e.contains("--start/--end"), "{e}");
    // A request within the budget still gets its frames.
    let opts = DecodeOptions { max_frames: Some(20), ..DecodeOptions::at(8.0, 32) };
    assert_eq!(decode(&path, &opts).expect("first 20 frames").len(), 20);
}

#[test]
fn the_pixel_budget_is_checked_too() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("short.mp4");
    let clip = gray_clip(6);
    write_with_pts(&clip, &path, &ExportMetadata::for_video(&clip), &fast(), None).expect("write");
    let opts = DecodeOptions { budget: FrameBudget { frames: 100, pixels: 4 * 32 * 32 }, ..DecodeOptions::default() };
    let e = decode(&path, &opts).expect_err("pixels").to_string();
    assert!(e.contains("5 frames of 32x32"), "{e}");
    let opts = DecodeOptions { budget: FrameBudget { frames: 6, pixels: 6 * 32 * 32 }, ..DecodeOptions::default() };
    assert_eq!(decode(&path, &opts).expect("fits exactly").len(), 6);
}

#[test]
fn only_local_files_of_known_containers_are_opened() {
    let dir = tempfile::tempdir().expect("dir");
    // An HLS playlist that points at the network, and one that points at a local file.
    let m3u8 = dir.path().join("list.m3u8");
    std::fs::write(&m3u8, "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nhttp://127.0.0.1:9/x.ts\n#EXT-X-ENDLIST\n").expect("write");
    let t = Instant::now();
    let e = probe(&m3u8).expect_err("playlist refused").to_string();
    assert!(e.contains("list.m3u8") && e.contains("local files of these containers"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));
    // A name FFmpeg would read as a protocol stays a (missing) local file.
    let e = probe(Path::new("concat:a.mp4|b.mp4")).expect_err("no such file").to_string();
    assert!(e.contains("file not found"), "{e}");
}

#[cfg(unix)]
#[test]
fn non_utf8_paths_and_fifos_get_errors_not_panics() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().expect("dir");
    let odd = dir.path().join(std::ffi::OsStr::from_bytes(b"clip-\xff.mp4"));
    let clip = gray_clip(2);
    let ok = dir.path().join("ok.mp4");
    write_with_pts(&clip, &ok, &ExportMetadata::for_video(&clip), &fast(), None).expect("write");
    std::fs::copy(&ok, &odd).expect("copy");
    let e = decode(&odd, &DecodeOptions::default()).expect_err("non-UTF-8").to_string();
    assert!(e.contains("not valid UTF-8") && e.contains("rename"), "{e}");
    let out = dir.path().join(std::ffi::OsStr::from_bytes(b"out-\xfe.mp4"));
    let e = write_with_pts(&clip, &out, &ExportMetadata::for_video(&clip), &fast(), None).expect_err("non-UTF-8 output").to_string();
    assert!(e.contains("not valid UTF-8"), "{e}");
    let fifo = dir.path().join("pipe.mp4");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().map(|s| s.success()).unwrap_or(false);
    if made {
        let e = probe(&fifo).expect_err("fifo").to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }
}

#[test]
fn a_nul_in_the_prompt_is_exported_without_a_panic() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("nul.mp4");
    let clip = gray_clip(2);
    let mut meta = ExportMetadata::for_video(&clip);
    meta.prompt = Some("a red\0circle\u{7}moving\nright".into());
    write_with_pts(&clip, &path, &meta, &fast(), None).expect("write with a NUL in the prompt");
    let info = probe(&path).expect("probe");
    assert_eq!(info.metadata.get("title").map(String::as_str), Some("a red circle moving right"));
    let back = crate::video::meta::read_metadata(&path).expect("metadata").0;
    assert_eq!(back.prompt.as_deref(), Some("a red\0circle\u{7}moving\nright"));
}

/// A 48x32 clip at 24 fps whose frames all differ (a moving gradient), so a wrong frame
/// choice or a wrong crop shows.
fn moving_clip(frames: usize) -> Video {
    let mut v = Video::new(48, 32, 24.0);
    for t in 0..frames {
        let mut f = Vec::with_capacity(48 * 32 * 3);
        for y in 0..32 {
            for x in 0..48 {
                f.extend([((x * 5 + t * 7) % 256) as u8, ((y * 7 + t * 3) % 256) as u8, ((x + y + t * 11) % 256) as u8]);
            }
        }
        v.push_frame(&f);
    }
    v
}

#[test]
fn a_kept_clip_gives_the_windows_a_decode_gives() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("moving.mp4");
    let clip = moving_clip(96);
    crate::video::mp4::write_mp4(&clip, &path, &ExportMetadata::for_video(&clip), &fast()).expect("write");
    let kept = keep(&path, (32, 32), 1 << 20).expect("decodes").expect("small enough to keep");
    assert_eq!(kept.bytes(), 96 * 48 * 32 * 3, "every frame, scaled to cover 32x32 (already 48x32)");
    // Starts before and past the seek threshold, crops across the free room, spans cut by
    // `end` and by `max_frames`.
    for (start, crop_at, end, max_frames) in
        [(0.0, [0.5, 0.5], None, Some(16)), (0.4, [0.0, 0.5], Some(2.9), Some(16)), (2.6, [1.0, 0.5], None, Some(8)), (3.1, [0.3, 0.5], Some(3.9), None)]
    {
        let opts = DecodeOptions { start, crop_at, end, max_frames, threads: 1, ..DecodeOptions::at(8.0, 32) };
        let (a, b) = (decode(&path, &opts).expect("decode"), kept.window(&opts).expect("window"));
        assert_eq!((a.len(), a.width(), a.height()), (b.len(), b.width(), b.height()), "start {start}");
        assert!(a == b, "start {start}, crop {crop_at:?}: the kept frames differ from a decode");
    }
    // Too big to keep within the limit, and a size it was not kept for.
    assert!(keep(&path, (32, 32), 96 * 48 * 32 * 3 - 1).expect("decodes").is_none());
    assert!(kept.window(&DecodeOptions::at(8.0, 16)).is_err());
}

//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// A file of `../shared/data/` (beside the project root). Under `CI=true` a missing file is a
/// failure; elsewhere the test is skipped with a message.
pub fn shared_data(name: &str) -> Option<PathBuf> {
    let candidates = [workspace_root().join("../shared/data").join(name), workspace_root().join("shared/data").join(name)];
    if let Some(p) = candidates.iter().find(|p| p.exists()) {
        return Some(p.clone());
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{name} is missing from ../shared/data; CI must have it");
    }
    eprintln!("skipping: ../shared/data/{name} is not present in this checkout");
    None
}

/// Runs the `hitvideo` command line in-process with `args` (without the program name).
pub fn hitvideo(args: &[&str]) -> anyhow::Result<()> {
    use clap::Parser;
    let mut argv = vec!["hitvideo"];
    argv.extend_from_slice(args);
    let cli = hitvideo_app::cli::Cli::try_parse_from(argv)?;
    hitvideo_app::cli::run(cli)
}

/// A clip of `frames` frames of `w x h` at 8 fps: a diagonal gradient moving right, its
/// colours set by `seed` (so no two clips share content).
pub fn moving_clip(seed: u32, frames: usize, w: u32, h: u32) -> hitvideo_engine::video::Video {
    let mut v = hitvideo_engine::video::Video::new(w, h, 8.0);
    for t in 0..frames as u32 {
        let mut f = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                f.push(((x + 3 * t) * 255 / w.max(1)).min(255) as u8);
                f.push(((y * 255 / h.max(1)) as u8).wrapping_add((seed * 40) as u8));
                f.push(((seed * 61 + t * 5) % 256) as u8);
            }
        }
        v.push_frame(&f);
    }
    v
}

/// Writes `n` clips as MP4 into `dir/videos` and imports them (no captions) into `dir/data`.
pub fn imported_clips(dir: &Path, n: usize, frames: usize, w: u32, h: u32) -> PathBuf {
    let videos = dir.join("videos");
    std::fs::create_dir_all(&videos).expect("a temporary folder");
    for i in 0..n {
        let clip = moving_clip(i as u32, frames, w, h);
        hitvideo_engine::video::export(&clip, &videos.join(format!("clip{i:04}.mp4")), &hitvideo_engine::video::ExportMetadata::for_video(&clip))
            .expect("the MP4 writer");
    }
    let opts = hitvideo_engine::dataset::import::ImportOptions { fps: 8.0, size: 32, min_frames: 16, captions_optional: true };
    let report = hitvideo_engine::dataset::import::import(&videos, &opts, &mut |_, _, _| {}).expect("the import");
    assert_eq!(report.index.items.len(), n, "{}", report.summary());
    let out = dir.join("data");
    report.index.write(&out).expect("the index");
    out
}

/// Resident memory of this process, bytes (Linux).
pub fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let kb: u64 =
        status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).expect("a VmRSS line");
    kb * 1024
}

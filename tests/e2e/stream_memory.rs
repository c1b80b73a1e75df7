//! Streaming many clips holds none of them whole beyond the bounded cache of short clips
//! (`KEEP_TOTAL_BYTES`): the resident set of this process (its own test binary, so no other
//! test allocates beside it) while windows are drawn from 60 clips.

use hitvideo_e2e::{imported_clips, rss};
use hitvideo_engine::dataset::stream::{KEEP_TOTAL_BYTES, StreamSource};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn many_clips_are_streamed_without_holding_them() {
    // 60 clips of 40 s: decoded whole at 32x32 they would take 60 x 320 x 3 KiB = 56 MiB; a
    // stream holds a window at a time, and keeps the least recently used short clips within
    // KEEP_TOTAL_BYTES (16 MiB).
    let dir = tempfile::tempdir().unwrap();
    let data = imported_clips(dir.path(), 60, 320, 32, 32);
    let before = rss();
    let s = StreamSource::from_index(&data, 16, 32, 8.0).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for _ in 0..20 {
        let batch = s.train_windows(&mut rng, 4).unwrap();
        assert_eq!(batch.len(), 4);
    }
    let grown = rss().saturating_sub(before);
    eprintln!("resident memory grew by {:.1} MiB", grown as f64 / (1 << 20) as f64);
    assert!(s.kept_bytes() <= KEEP_TOTAL_BYTES && s.kept_bytes() > KEEP_TOTAL_BYTES / 2, "kept {} bytes", s.kept_bytes());
    assert!(grown < (24 << 20) + KEEP_TOTAL_BYTES as u64, "resident memory grew by {} MiB streaming 80 windows", grown >> 20);
}

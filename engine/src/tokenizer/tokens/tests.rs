//! Unit tests of the token file format.

use super::*;

fn sample(mask: bool) -> TokenFile {
    let cfg = TokenizerConfig::preset("tiny").expect("tiny preset");
    let windows = (0..2u32)
        .map(|w| TokenWindow {
            layers: cfg
                .layers
                .iter()
                .map(|l| {
                    let n = l.tokens();
                    let ids = (0..n as u32).map(|i| i.wrapping_mul(2_654_435_761u32.wrapping_add(w)) >> (32 - l.bits)).collect();
                    let mask = mask.then(|| (0..n).map(|i| !(i + w as usize).is_multiple_of(3)).collect());
                    TokenLayer { shape: [l.t, l.h, l.w], bits: l.bits, ids, mask }
                })
                .collect(),
        })
        .collect();
    TokenFile {
        preset: cfg.name.clone(),
        config_sha256: crate::tokenizer::config_sha256(&cfg),
        weights_sha256: mask.then(|| "ab".repeat(32)),
        fps: cfg.fps,
        window_frames: cfg.frames,
        height: cfg.height,
        width: cfg.width,
        frames: 21,
        source: Some("clip.mp4".into()),
        fill: mask.then_some(FillStrategy::Learned),
        windows,
    }
}

#[test]
fn bit_packing_round_trips_every_width() {
    for bits in 1..=24usize {
        let vals: Vec<u32> = (0..37u32).map(|i| (i.wrapping_mul(0x9e37_79b9) >> 7) & ((1u32 << bits) - 1)).collect();
        let mut out = Vec::new();
        pack(vals.iter().copied(), bits, &mut out);
        assert_eq!(out.len(), packed_len(vals.len(), bits).expect("small"));
        assert_eq!(unpack(&out, vals.len(), bits), vals, "{bits} bits");
    }
}

#[test]
fn write_read_round_trip_with_and_without_masks() {
    let dir = tempfile::tempdir().expect("tempdir");
    for mask in [false, true] {
        let path = dir.path().join(format!("clip-{mask}.tokens"));
        let file = sample(mask);
        file.write(&path).expect("write");
        let back = TokenFile::read(&path).expect("read");
        // A masked position's id is not stored: it reads back as the previous latent frame's
        // id at that position (0 in the first frame). Everything else round-trips.
        let mut expected = file.clone();
        for l in expected.windows.iter_mut().flat_map(|w| &mut w.layers) {
            l.ids = l.masked_ids_repeated();
        }
        assert_eq!(back, expected);
        if mask {
            assert_ne!(back, file, "the sample masks positions whose ids differ from the previous frame's");
            let l = &back.windows[0].layers[3];
            let plane = l.shape[1] * l.shape[2];
            let m = l.mask.as_ref().expect("mask");
            assert!((plane..l.len()).filter(|&i| m[i]).all(|i| l.ids[i] == l.ids[i - plane]));
            assert!((0..l.len()).filter(|&i| !m[i]).all(|i| l.ids[i] == file.windows[0].layers[3].ids[i]));
        }
        // 2932 id bits a window: the tiny preset's bits per clip.
        assert_eq!(back.id_bits(), 2 * TokenizerConfig::preset("tiny").expect("tiny").total_bits());
        // The file holds the stored bits (mask bits and kept ids), the header and the checksum.
        let size = std::fs::metadata(&path).expect("size").len() as usize;
        assert!(size < back.stored_bits() / 8 + 64 + 1200, "{size} bytes");
        if mask {
            assert!(back.stored_bits() < back.id_bits(), "a mask marking 2 of 3 positions saves bits");
        }
    }
    // Version 1 files (every id, then the mask bits) still read, ids and all.
    let file = sample(true);
    let mut v1 = file.to_bytes(&dir.path().join("v1")).expect("bytes");
    let header_end = 16 + u32::from_le_bytes([v1[12], v1[13], v1[14], v1[15]]) as usize;
    v1.truncate(header_end);
    v1[8..12].copy_from_slice(&1u32.to_le_bytes());
    for l in file.windows.iter().flat_map(|w| &w.layers) {
        pack(l.ids.iter().copied(), l.bits, &mut v1);
        if let Some(m) = &l.mask {
            pack(m.iter().map(|&b| u32::from(b)), 1, &mut v1);
        }
    }
    let digest = hex::decode(sha256_hex(&v1)).expect("hex");
    v1.extend_from_slice(&digest);
    assert_eq!(TokenFile::from_bytes(&v1, Path::new("v1.tokens")).expect("version 1"), file);
    let no_tmp = std::fs::read_dir(dir.path()).expect("dir").filter_map(Result::ok).all(|e| !e.file_name().to_string_lossy().contains("partial"));
    assert!(no_tmp, "no temporary file is left behind");
}

#[test]
fn truncated_wrong_magic_damaged_and_wrong_version_are_named_errors() {
    let path = Path::new("/data/clip.tokens");
    let bytes = sample(true).to_bytes(path).expect("bytes");
    for cut in [0, 5, 12, 40, bytes.len() / 2, bytes.len() - 1] {
        let err = TokenFile::from_bytes(&bytes[..cut], path).expect_err("truncated");
        assert!(matches!(err, TokenFileError::Truncated { .. }), "cut at {cut}: {err}");
        assert!(err.to_string().contains("/data/clip.tokens") && err.to_string().contains("truncated"), "{err}");
    }
    let mut bad = bytes.clone();
    bad[0] = b'X';
    let err = TokenFile::from_bytes(&bad, path).expect_err("magic");
    assert!(err.to_string().contains("/data/clip.tokens: not a HiTVideo token file"), "{err}");
    let err = TokenFile::from_bytes(b"{\"json\": true}", path).expect_err("magic");
    assert!(matches!(err, TokenFileError::BadMagic { .. }), "{err}");
    let mut bad = bytes.clone();
    bad[8] = 9;
    assert!(TokenFile::from_bytes(&bad, path).expect_err("version").to_string().contains("version 9 is not supported"));
    let mut bad = bytes.clone();
    let last_payload = bad.len() - CHECKSUM - 1;
    bad[last_payload] ^= 0x10;
    assert!(TokenFile::from_bytes(&bad, path).expect_err("flip").to_string().contains("checksum mismatch"));
    let mut long = bytes.clone();
    long.push(0);
    assert!(TokenFile::from_bytes(&long, path).expect_err("extra").to_string().contains("unexpected bytes"));
    let err = TokenFile::read(Path::new("/nonexistent/x.tokens")).expect_err("missing");
    assert!(err.to_string().contains("/nonexistent/x.tokens"), "{err}");
}

#[test]
fn checksum_mismatch_names_both_tokenizers() {
    let file = sample(false);
    let tiny = TokenizerConfig::preset("tiny").expect("tiny");
    file.check_config(&tiny, Path::new("a.tokens")).expect("same config");
    let other = TokenizerConfig::preset("tiny-single").expect("tiny-single");
    let err = file.check_config(&other, Path::new("a.tokens")).expect_err("mismatch").to_string();
    assert!(err.contains("a.tokens") && err.contains("'tiny'") && err.contains("'tiny-single'"), "{err}");
    // Same preset name, different geometry: the checksum still tells them apart.
    let mut changed = tiny.clone();
    changed.latent_channels = 16;
    assert!(file.check_config(&changed, Path::new("a.tokens")).is_err());
}

#[test]
fn invalid_contents_are_refused_on_write() {
    let path = Path::new("bad.tokens");
    let mut f = sample(false);
    f.windows[0].layers[0].ids[0] = 1 << 5;
    assert!(f.to_bytes(path).expect_err("range").to_string().contains("does not fit in 5 bits"));
    let mut f = sample(false);
    f.frames = 40;
    assert!(f.to_bytes(path).is_err(), "40 frames cannot fit 2 windows of 16");
    f.frames = 16;
    assert!(f.to_bytes(path).is_err(), "16 frames leave the second window empty");
    let mut f = sample(true);
    f.windows[1].layers[2].mask = Some(vec![true; 3]);
    assert!(f.to_bytes(path).expect_err("mask").to_string().contains("mask length"));
}

/// `bytes` with its header JSON replaced by `edit(header)` (the checksum is left stale: the
/// header checks come first).
fn with_header(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let n = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[16..16 + n]).expect("header");
    edit(&mut header);
    let json = serde_json::to_vec(&header).expect("json");
    let mut out = bytes[..12].to_vec();
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[16 + n..]);
    out
}

#[test]
fn a_layer_claiming_two_to_the_forty_tokens_is_refused_before_allocating() {
    let path = Path::new("hostile.tokens");
    let bytes = sample(false).to_bytes(path).expect("bytes");
    for bits in [1, 0] {
        let hostile = with_header(&bytes, |h| {
            h["layers"][0][0]["shape"] = serde_json::json!([1u64 << 20, 1u64 << 10, 1u64 << 10]);
            h["layers"][0][0]["bits"] = serde_json::json!(bits);
        });
        let t = std::time::Instant::now();
        let e = TokenFile::from_bytes(&hostile, path).expect_err("refused").to_string();
        assert!(e.contains("hostile.tokens") && e.contains("window 0 layer 0"), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(2), "took {:?}", t.elapsed());
    }
}

#[test]
fn zero_bits_and_zero_length_layers_are_named() {
    let path = Path::new("z.tokens");
    let bytes = sample(true).to_bytes(path).expect("bytes");
    let e = TokenFile::from_bytes(&with_header(&bytes, |h| h["layers"][1][2]["bits"] = 0.into()), path).expect_err("zero bits").to_string();
    assert!(e.contains("window 1 layer 2") && e.contains("`bits` is 0"), "{e}");
    let e =
        TokenFile::from_bytes(&with_header(&bytes, |h| h["layers"][0][1]["shape"] = serde_json::json!([0, 4, 4])), path).expect_err("zero tokens").to_string();
    assert!(e.contains("`shape`"), "{e}");
    let e = TokenFile::from_bytes(&with_header(&bytes, |h| h["layers"][0][1]["shape"] = serde_json::json!([u64::MAX, 2, 2])), path)
        .expect_err("overflow")
        .to_string();
    assert!(e.contains("`shape`"), "{e}");
}

#[test]
fn tokens_from_other_weights_of_the_same_config_are_refused() {
    let path = Path::new("clip.hvt");
    let recorded = sample(true);
    assert!(recorded.check_weights(&"ab".repeat(32), path).is_ok());
    let err = recorded.check_weights(&"cd".repeat(32), path).expect_err("other weights").to_string();
    assert!(err.contains("clip.hvt") && err.contains("other weights") && err.contains("step folder that encoded them"), "{err}");
    // A file written before weights were recorded cannot tell, and passes.
    assert!(sample(false).check_weights(&"cd".repeat(32), path).is_ok());
}

//! Round trips and bit accounting of masked streams.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::tokenizer::dynamic::{MaskConfig, layer_masks};

/// The `tiny` preset's grids with ids that mostly repeat their previous frame.
fn tiny_clip(seed: u64) -> Vec<LayerIds> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    [[1usize, 2, 2, 5], [1, 4, 4, 6], [2, 4, 4, 8], [4, 8, 8, 10]]
        .iter()
        .map(|&[t, h, w, bits]| {
            let mut ids: Vec<u32> = Vec::new();
            for i in 0..t * h * w {
                let id = if i >= h * w && rng.random_bool(0.7) { ids[i - h * w] } else { rng.random_range(0..1u32 << bits) };
                ids.push(id);
            }
            LayerIds { shape: [t, h, w], bits, ids }
        })
        .collect()
}

#[test]
fn pack_unpack_round_trip_and_bit_accounting() {
    for seed in 0..20 {
        let clip = tiny_clip(seed);
        let masks = layer_masks(&clip, &MaskConfig::new().with_seed(seed)).expect("valid ids");
        let stream = MaskedStream::new(&clip, &masks).expect("masks fit");
        let bytes = stream.pack();
        let back = MaskedStream::unpack(&bytes).expect("own output");
        assert_eq!(back, stream);

        // Kept ids are exactly the unmasked ones; masked positions come back as placeholders.
        let (ids, bools) = back.to_ids_and_masks();
        for ((l, m), (orig, mask)) in ids.iter().zip(&bools).zip(clip.iter().zip(&masks)) {
            assert_eq!(m, &mask.mask);
            for ((&id, &masked), &o) in l.ids.iter().zip(m).zip(&orig.ids) {
                assert_eq!(id, if masked { 0 } else { o });
            }
        }

        let s = stream.stats(16 * 32 * 32);
        let masked: usize = masks.iter().map(|m| m.masked).sum();
        assert_eq!((s.tokens, s.masked, s.kept), (308, masked, 308 - masked));
        // Mask bits: frames 1.. of the two multi-frame layers, (2-1)*16 + (4-1)*64 = 208.
        assert_eq!(s.maskable, 208);
        assert_eq!(s.mask_bits, 208);
        let id_bits: usize = clip.iter().zip(&masks).map(|(l, m)| (l.ids.len() - m.masked) * l.bits).sum();
        assert_eq!(s.id_bits, id_bits);
        assert_eq!(s.total_bits, 208 + id_bits);
        assert_eq!(s.dense_bits, 4 * 5 + 16 * 6 + 32 * 8 + 256 * 10);
        assert_eq!(bytes.len(), s.packed_bytes);
        assert_eq!(s.packed_bytes, 6 + 4 * 7 + s.total_bits.div_ceil(8));
        assert!((s.bpp - s.total_bits as f64 / 16384.0).abs() < 1e-12);
        assert!((s.ratio - masked as f64 / 208.0).abs() < 1e-12);
        assert_eq!(s.layers[0].mask_bits, 0, "single-frame layers send no mask bits");
        if masked > 208 / 8 {
            assert!(s.total_bits < s.dense_bits, "masking a lot saves bits");
        }
    }
}

#[test]
fn damaged_streams_are_rejected() {
    let clip = tiny_clip(1);
    let masks = layer_masks(&clip, &MaskConfig::new()).expect("valid ids");
    let bytes = MaskedStream::new(&clip, &masks).expect("masks fit").pack();
    let err = |b: &[u8]| MaskedStream::unpack(b).expect_err("damaged").to_string();
    assert!(err(&bytes[..bytes.len() - 1]).contains("truncated"));
    assert!(err(&bytes[..10]).contains("truncated header"));
    assert!(err(b"GIF89a").contains("no HTMS header"));
    let mut v2 = bytes.clone();
    v2[4] = 2;
    assert!(err(&v2).contains("format version 2"));
    let mut long = bytes.clone();
    long.push(0);
    assert!(err(&long).contains("expected"));
}

#[test]
fn inconsistent_masks_are_rejected() {
    let clip = tiny_clip(2);
    let mut masks = layer_masks(&clip, &MaskConfig::new()).expect("valid ids");
    masks[3].mask[0] = true;
    let e = MaskedStream::new(&clip, &masks).expect_err("frame 0 masked").to_string();
    assert!(e.contains("layer 3: the first latent frame is masked"), "{e}");
    assert!(MaskedStream::new(&clip[..3], &masks).is_err());
}

#[test]
fn huge_claimed_layers_are_refused_before_allocating_and_mutations_never_panic() {
    let clip = tiny_clip(3);
    let masks = layer_masks(&clip, &MaskConfig::new()).expect("valid ids");
    let bytes = MaskedStream::new(&clip, &masks).expect("masks fit").pack();
    // Layer 0's shape set to 65535 x 65535 x 65535 (u16 little-endian at bytes 6..12).
    let mut huge = bytes.clone();
    huge[6..12].fill(0xff);
    let e = MaskedStream::unpack(&huge).expect_err("huge").to_string();
    assert!(e.contains("layer 0 claims"), "{e}");
    // A seeded sweep of byte mutations: every one is an error or a stream, never a panic.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..500 {
        let mut b = bytes.clone();
        let i = (next() as usize) % b.len();
        b[i] = next() as u8;
        if next() % 4 == 0 {
            b.truncate((next() as usize) % b.len());
        }
        let _ = MaskedStream::unpack(&b);
    }
}

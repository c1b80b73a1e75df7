//! Unit tests of the small trainable text encoder (tiny geometry, CPU, fast).

use super::*;

fn cfg() -> SmallTextEncoderConfig {
    SmallTextEncoderConfig::new().with_vocab(64).with_dim(16).with_layers(1).with_heads(2).with_max_len(12)
}

#[test]
fn tokenization_is_deterministic_and_case_insensitive() {
    let c = cfg();
    let a = c.tokenize("A red circle moves left.");
    assert_eq!(a, c.tokenize("a  RED\tcircle moves left ."));
    assert_eq!(a.len(), 7, "BOS + 5 words + '.': {a:?}");
    assert_eq!(a[0], BOS_ID);
    assert!(a.iter().skip(1).all(|&id| id >= RESERVED && (id as usize) < c.vocab));
    // Pinned values: the hash must not change between versions (it would silently break
    // trained checkpoints).
    assert_eq!(fnv1a(b"red"), 0x89e9_be19_60f4_c21c, "FNV-1a of 'red' changed");
    assert_eq!(c.tokenize("red"), vec![BOS_ID, 20]);
}

#[test]
fn any_utf8_tokenizes() {
    let c = cfg();
    let noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let lossy = String::from_utf8_lossy(&noise).into_owned();
    let long = "word ".repeat(2000);
    for p in ["", "   ", "\u{0}\u{1b}[31m", "🎥🐱👩\u{200D}👩\u{200D}👧", "一只红色的猫", "Ça va? naïve", lossy.as_str(), long.as_str()] {
        let ids = c.tokenize(p);
        assert_eq!(ids[0], BOS_ID, "{p:?}");
        assert!(ids.iter().all(|&id| (id as usize) < c.vocab), "{p:?}");
    }
    assert_eq!(c.tokenize(""), vec![BOS_ID]);
    assert_eq!(c.tokenize("🎥🐱").len(), 3, "each emoji is a token");
}

#[test]
fn forward_shapes_padding_and_truncation() {
    let device = Device::flex();
    let enc = cfg().init(&device);
    let long = "many words ".repeat(20);
    let f = enc.encode(&["a red circle", "x", long.as_str()], 12, &device).expect("encode");
    assert_eq!(f.features.dims(), [3, 12, 16]);
    assert_eq!(f.lengths, vec![4, 2, 12]);
    assert_eq!(f.truncated, vec![false, false, true]);
    // Padded rows are zero; a row's valid outputs do not depend on the batch's padding.
    let pad = f.features.clone().slice(s![1..2, 2..12, ..]).abs().max().into_scalar::<f32>();
    assert_eq!(pad, 0.0);
    let alone = enc.encode(&["x"], 12, &device).expect("encode");
    assert_eq!(alone.features.dims(), [1, 2, 16]);
    let diff = (alone.features - f.features.slice(s![1..2, 0..2, ..])).abs().max().into_scalar::<f32>();
    assert!(diff < 1e-5, "padding leaked: {diff}");
    assert_eq!(enc.dim(), 16);
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let device = Device::flex();
    let enc = cfg().init(&device);
    let e = enc.encode(&["ok", " \n "], 12, &device).expect_err("blank prompt");
    assert!(e.to_string().starts_with("prompt 1:"), "{e}");
    assert!(matches!(enc.encode(&[], 12, &device), Err(TextError::NoPrompts { .. })));
    assert!(matches!(enc.encode(&["ok"], 13, &device), Err(TextError::MaxLen { .. })));
    assert!(matches!(enc.encode(&["ok"], 1, &device), Err(TextError::MaxLen { .. })));
    let ten_k = "é".repeat(10_000);
    let f = enc.encode(&[ten_k.as_str()], 12, &device).expect("clamped, not refused");
    assert_eq!(f.truncated, vec![true]);
    assert!(cfg().with_heads(3).validate().is_err());
    assert!(cfg().with_vocab(2).validate().is_err());
}

#[test]
fn it_trains() {
    let device = Device::flex().autodiff();
    let enc = cfg().init(&device);
    let batch = enc.prepare(&["a red circle", "a blue square"], 12, &device).expect("prepare");
    let loss = enc.forward(batch.ids, &batch.lengths).square().mean();
    let grads = loss.backward();
    let g = enc.tokens.weight.val().grad(&grads).expect("token embedding gets a gradient");
    assert!(g.abs().sum().into_scalar::<f32>() > 0.0);
}

//! Unit tests of the masking rule, the cap, the fills and the batch helpers (host-side ids; the
//! tests that encode real pixels with a tokenizer are in `engine/tests/dynamic_tokens.rs`).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

/// Random ids where each token repeats its previous frame's id with probability `p_repeat`
/// (otherwise it is uniform), so both the capped and the uncapped cases occur.
fn random_layer(rng: &mut ChaCha8Rng) -> LayerIds {
    let shape = [rng.random_range(1..6), rng.random_range(1..7), rng.random_range(1..7)];
    let bits = rng.random_range(1..13);
    let p_repeat: f64 = rng.random();
    let plane = shape[1] * shape[2];
    let mut ids: Vec<u32> = Vec::new();
    for i in 0..shape.iter().product::<usize>() {
        let id = if i >= plane && rng.random_bool(p_repeat) { ids[i - plane] } else { rng.random_range(0..1u32 << bits) };
        ids.push(id);
    }
    LayerIds { shape, bits, ids }
}

#[test]
fn cap_holds_first_frame_is_kept_and_seeds_are_deterministic() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (mut capped, mut differ) = (0, 0);
    for case in 0..400 {
        let ids = random_layer(&mut rng);
        let cfg = MaskConfig::new().with_cap(rng.random_range(0.0..1.0)).with_tolerance(rng.random_range(0.0..0.5)).with_seed(case);
        let m = layer_mask(2, &ids, &cfg).expect("valid ids");
        let [t, h, w] = ids.shape;
        let maskable = (t - 1) * h * w;
        assert_eq!(m.maskable, t > 1);
        assert_eq!(m.maskable_tokens(), maskable);
        assert!(m.mask[..h * w].iter().all(|&b| !b), "case {case}: first frame masked");
        let masked = m.mask.iter().filter(|&&b| b).count();
        assert_eq!(masked, m.masked);
        assert!(masked as f64 <= cfg.cap * maskable as f64 + 1e-9, "case {case}: {masked} of {maskable} over cap {}", cfg.cap);
        assert_eq!(masked, m.redundant.min(cap_limit(cfg.cap, maskable)), "case {case}: the cap unmasks only what it must");
        if maskable > 0 {
            assert!((m.ratio - masked as f64 / maskable as f64).abs() < 1e-12);
            assert!((m.ratio_all - masked as f64 / (t * h * w) as f64).abs() < 1e-12);
        }
        // Every masked token satisfies the rule.
        let floor = cfg.tolerance * ids.bits as f64;
        for (i, &b) in m.mask.iter().enumerate() {
            let d = f64::from(m.diff[i]);
            let want = if i < h * w { 0 } else { (ids.ids[i] ^ ids.ids[i - h * w]).count_ones() };
            assert_eq!(d, f64::from(want), "case {case}: diff of token {i}");
            assert!(!b || (d <= m.mean_diff + 1e-9 && d <= floor + 1e-9), "case {case}: token {i} masked against the rule");
        }
        assert_eq!(layer_mask(2, &ids, &cfg).expect("valid ids"), m, "same seed, same mask");
        let limit = cap_limit(cfg.cap, maskable);
        if m.redundant > limit + 1 && limit > 1 {
            capped += 1;
            let other = layer_mask(2, &ids, &cfg.clone().with_seed(case + 1000)).expect("valid ids");
            assert_eq!(other.masked, m.masked);
            differ += usize::from(other.mask != m.mask);
        }
    }
    assert!(capped > 30, "only {capped} capped cases");
    assert!(differ * 10 >= capped * 8, "a different seed changed the mask in only {differ} of {capped} capped cases");
}

#[test]
fn static_ids_get_exactly_the_capped_maximum() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for &[t, h, w, bits] in &[[1usize, 2, 2, 5], [2, 4, 4, 8], [4, 8, 8, 10], [8, 16, 16, 18]] {
        let frame: Vec<u32> = (0..h * w).map(|_| rng.random_range(0..1u32 << bits)).collect();
        let ids = LayerIds { shape: [t, h, w], bits, ids: frame.repeat(t) };
        for cap in [0.85, 0.5, 1.0, 0.0] {
            let m = layer_mask(0, &ids, &MaskConfig::new().with_cap(cap)).expect("valid ids");
            let maskable = (t - 1) * h * w;
            assert_eq!(m.redundant, maskable, "every later-frame token repeats");
            assert_eq!(m.masked, cap_limit(cap, maskable), "{t}x{h}x{w} cap {cap}");
            assert!(m.diff.iter().all(|&d| d == 0.0));
        }
    }
    assert_eq!(cap_limit(0.85, 192), 163);
    assert_eq!(cap_limit(0.85, 100), 85);
}

#[test]
fn random_noise_ids_are_almost_never_masked() {
    // Uniform ids: a token repeats the previous frame's with probability 2^-bits, and the
    // default tolerance masks only exact repeats: 3% at 5 bits, 0.4% at 8, 0.1% at 10.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for bits in [5usize, 8, 10, 12, 18] {
        let shape = [8, 16, 16];
        let ids = LayerIds { shape, bits, ids: (0..8 * 16 * 16).map(|_| rng.random_range(0..1u32 << bits)).collect() };
        let m = layer_mask(0, &ids, &MaskConfig::new()).expect("valid ids");
        assert!(m.ratio < 0.05, "{bits} bits: {:.3} masked", m.ratio);
        // A tolerance of 0.2 bits lets noise through: P(Binomial(bits, 1/2) <= 0.2 bits).
        let tol = layer_mask(0, &ids, &MaskConfig::new().with_tolerance(0.2)).expect("valid ids");
        assert!(tol.ratio >= m.ratio, "{bits} bits: a looser floor masks no fewer");
        // Without the floor, the mean rule alone would mask a large share of noise.
        let loose = layer_mask(0, &ids, &MaskConfig::new().with_tolerance(1.0).with_cap(1.0)).expect("valid ids");
        assert!(loose.ratio > 0.3, "{bits} bits: mean rule alone masks {:.3}", loose.ratio);
    }
}

#[test]
fn bad_ids_are_rejected() {
    let ids = LayerIds { shape: [2, 2, 2], bits: 3, ids: vec![0; 7] };
    assert!(layer_mask(1, &ids, &MaskConfig::new()).expect_err("short").to_string().contains("7 ids for a 2x2x2 grid"));
    let ids = LayerIds { shape: [2, 1, 1], bits: 3, ids: vec![0, 8] };
    assert!(layer_mask(1, &ids, &MaskConfig::new()).expect_err("too wide").to_string().contains("does not fit in 3 bits"));
}

#[test]
fn fill_strategies_parse_and_print() {
    for f in FillStrategy::ALL {
        assert_eq!(f.to_string().parse::<FillStrategy>().expect("round trip"), f);
    }
    assert_eq!("all".parse::<Fills>().expect("all").as_slice(), FillStrategy::ALL);
    assert_eq!("learned, zero".parse::<Fills>().expect("list").as_slice(), [FillStrategy::Learned, FillStrategy::Zero]);
    assert!("repeat,blur".parse::<Fills>().expect_err("unknown").to_string().contains("unknown fill strategy 'blur'"));
    assert_eq!(serde_json::to_string(&FillStrategy::Learned).expect("json"), "\"learned\"");
    assert_eq!(serde_json::to_string(&Fills::all()).expect("json"), "\"all\"");
    assert!(serde_json::from_str::<FillStrategy>("\"blur\"").is_err());
}

fn values(t: Tensor<5>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("f32 data")
}

#[test]
fn fills_replace_exactly_the_masked_codes() {
    let device = Device::flex();
    // One clip, 2 bits, 3 frames of 1x2: frame f position p has codes (f+1, -(p+1)) (not ±1, so
    // every copy is visible). Masked: frame 1 pos 0, frame 2 pos 0 and 1.
    let mut data = vec![0f32; 2 * 3 * 2];
    for f in 0..3 {
        for p in 0..2 {
            data[f * 2 + p] = (f + 1) as f32;
            data[6 + f * 2 + p] = -((p + 1) as f32);
        }
    }
    let codes = Tensor::<5>::from_data(TensorData::new(data, [1, 2, 3, 1, 2]), &device);
    let mask = Tensor::<4, Bool>::from_data(TensorData::new(vec![false, false, true, false, true, true], [1, 3, 1, 2]), &device);
    let embed = Tensor::<1>::from_data(TensorData::new(vec![0.5f32, -0.25], [2]), &device);
    let zero = values(fill_codes(codes.clone(), mask.clone(), FillStrategy::Zero, embed.clone()));
    assert_eq!(zero, vec![1., 1., 0., 2., 0., 0., -1., -2., 0., -2., 0., 0.]);
    let learned = values(fill_codes(codes.clone(), mask.clone(), FillStrategy::Learned, embed.clone()));
    assert_eq!(learned, vec![1., 1., 0.5, 2., 0.5, 0.5, -1., -2., -0.25, -2., -0.25, -0.25]);
    // Repeat chains: frame 2 pos 0 takes frame 1's filled token, which is frame 0's.
    let repeat = values(fill_codes(codes, mask, FillStrategy::Repeat, embed));
    assert_eq!(repeat, vec![1., 1., 1., 2., 1., 2., -1., -2., -1., -2., -1., -2.]);
}

#[test]
fn batch_helpers_match_per_clip_masks() {
    let device = Device::flex();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let shapes = [[1usize, 2, 2], [3, 4, 4]];
    let bits = [4usize, 8];
    let clips: Vec<Vec<LayerIds>> = (0..3)
        .map(|_| {
            shapes
                .iter()
                .zip(bits)
                .map(|(&s, b)| {
                    let plane = s[1] * s[2];
                    let mut ids: Vec<u32> = Vec::new();
                    for i in 0..s.iter().product::<usize>() {
                        let id = if i >= plane && rng.random_bool(0.9) { ids[i - plane] } else { rng.random_range(0..1u32 << b) };
                        ids.push(id);
                    }
                    LayerIds { shape: s, bits: b, ids }
                })
                .collect()
        })
        .collect();
    let tensors = id_tensors(&clips, &device);
    assert_eq!(clip_ids(&tensors, &bits), Ok(clips.clone()), "ids survive the tensor round trip");
    let cfg = MaskConfig::new().with_seed(11).with_cap(0.5);
    let batch = batch_masks(&tensors, &bits, &cfg).expect("valid ids");
    for (i, clip) in clips.iter().enumerate() {
        let alone = layer_masks(clip, &cfg.clone().with_seed(item_seed(11, i))).expect("valid ids");
        assert_eq!(batch[i], alone);
        assert!(!alone[0].maskable && alone[1].maskable);
    }
    let bools: Vec<Vec<Vec<bool>>> = batch.iter().map(|c| c.iter().map(|l| l.mask.clone()).collect()).collect();
    let mt = mask_tensors(&bools, &shapes, &device);
    assert_eq!(mt[1].dims(), [3, 3, 4, 4]);
    let flat = mt[1].clone().into_data().try_to_vec::<bool>().expect("bool data");
    assert_eq!(flat, bools.iter().flat_map(|c| c[1].clone()).collect::<Vec<bool>>());
    let f = masked_fraction(&batch);
    assert!(f > 0.0 && f <= 0.5 + 1e-9, "{f}");
}

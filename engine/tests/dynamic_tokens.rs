//! Dynamic encoding with a real (untrained) `tiny` tokenizer on real pixels: a static clip gets
//! exactly the capped maximum; every fill decodes; masked streams decode like the in-memory
//! masks; masked training moves the learned mask embedding; fine-tuning loads old weights with
//! fresh optimizers, and a frozen encoder keeps its token ids.
//!
//! Noise: "random noise gets almost none" is checked on uniform ids in the unit tests
//! (`tokenizer::dynamic::tests`), not here. An untrained `tiny` encoder maps independent noise
//! frames to nearly constant codes (mean Hamming distance between consecutive latent frames
//! 0.8-1.1 of 8 bits and 1.8-1.9 of 10, so 31-69% of the tokens pass the rule), and after 40
//! training steps on shapes the codes of noise collapse completely (distance 0). Only a trained
//! tokenizer makes the check meaningful on pixels; here the noise clip checks the rule's
//! invariants on real encoder ids.

use burn::prelude::*;
use hitvideo_engine::checkpoint;
use hitvideo_engine::dataset::synth::item_seed;
use hitvideo_engine::tokenizer::dynamic::{self, FillStrategy, Fills, MaskConfig, cap_limit, clip_ids, decode_masked_batch, decode_masked_ids, layer_masks};
use hitvideo_engine::tokenizer::{MaskedStream, Tokenizer, TokenizerConfig};
use hitvideo_engine::train::tokenizer::{TokenizerTrainConfig, TokenizerTrainer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `[1, 3, 16, 32, 32]` in `[-1, 1]`: one random frame repeated (`static_clip`) or a fresh
/// random frame each time.
fn clip(static_clip: bool, seed: u64, device: &Device) -> Tensor<5> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let frame = |rng: &mut ChaCha8Rng| (0..3 * 32 * 32).map(|_| rng.random_range(-1.0f32..1.0)).collect::<Vec<f32>>();
    let first = frame(&mut rng);
    // [frame][c][y][x], then to [c][frame][y][x].
    let frames: Vec<Vec<f32>> = (0..16).map(|_| if static_clip { first.clone() } else { frame(&mut rng) }).collect();
    let mut data = vec![0f32; 3 * 16 * 1024];
    for (f, fr) in frames.iter().enumerate() {
        for c in 0..3 {
            data[(c * 16 + f) * 1024..(c * 16 + f + 1) * 1024].copy_from_slice(&fr[c * 1024..(c + 1) * 1024]);
        }
    }
    Tensor::from_data(TensorData::new(data, [1, 3, 16, 32, 32]), device)
}

/// Seeding the device and initialising must not interleave with another test's.
static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn tiny_seeded(device: &Device, seed: u64) -> (Tokenizer, TokenizerConfig) {
    let cfg = TokenizerConfig::preset("tiny").expect("preset");
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    (cfg.init(device), cfg)
}

fn tiny(device: &Device) -> (Tokenizer, TokenizerConfig) {
    tiny_seeded(device, 3)
}

fn trainer(train: TokenizerTrainConfig, device: &Device) -> TokenizerTrainer {
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    TokenizerTrainer::new(TokenizerConfig::preset("tiny").expect("preset"), train, device)
}

fn bits(cfg: &TokenizerConfig) -> Vec<usize> {
    cfg.layers.iter().map(|l| l.bits).collect()
}

fn max_abs_diff(a: Tensor<5>, b: Tensor<5>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

#[test]
fn static_clip_gets_the_capped_maximum_and_noise_follows_the_rule() {
    let device = Device::flex();
    let (model, cfg) = tiny(&device);
    let encode = |x| {
        let enc = model.encode(x, 1.0);
        let idx: Vec<_> = enc.layers.iter().map(|o| o.indices.clone()).collect();
        clip_ids(&idx, &bits(&cfg)).expect("ids read").remove(0)
    };
    let mcfg = MaskConfig::new();
    for seed in 0..3 {
        let masks = layer_masks(&encode(clip(true, seed, &device)), &mcfg).expect("own ids");
        for (m, l) in masks.iter().zip(&cfg.layers) {
            assert_eq!(m.maskable, l.t > 1);
            assert_eq!(m.masked, cap_limit(0.85, (l.t - 1) * l.h * l.w), "static clip, layer {l:?}");
            assert!(m.diff.iter().all(|&d| d == 0.0));
        }
        let ids = encode(clip(false, seed, &device));
        let noise = layer_masks(&ids, &mcfg).expect("own ids");
        for ((m, l), li) in noise.iter().zip(&cfg.layers).zip(&ids).filter(|((m, _), _)| m.maskable) {
            eprintln!("untrained encoder, noise seed {seed}, layer {}x{}x{}/{}: mean diff {:.2}, masked {:.3}", l.t, l.h, l.w, l.bits, m.mean_diff, m.ratio);
            let plane = l.h * l.w;
            assert!(m.masked <= cap_limit(0.85, (l.t - 1) * plane));
            for i in plane..li.ids.len() {
                assert_eq!(m.diff[i], (li.ids[i] ^ li.ids[i - plane]).count_ones() as f32);
                assert!(!m.mask[i] || (f64::from(m.diff[i]) <= m.mean_diff + 1e-9 && f64::from(m.diff[i]) <= mcfg.tolerance * l.bits as f64));
            }
        }
    }
}

#[test]
fn every_fill_decodes_and_repeat_is_exact_on_a_static_clip() {
    let device = Device::flex();
    let (model, cfg) = tiny(&device);
    let x = clip(true, 9, &device);
    let enc = model.encode(x, 1.0);
    let codes: Vec<Tensor<5>> = enc.layers.iter().map(|o| o.codes.clone()).collect();
    let idx: Vec<_> = enc.layers.iter().map(|o| o.indices.clone()).collect();
    let full = model.decode(&codes);
    let mcfg = MaskConfig::new().with_seed(4);
    let mut outs = Vec::new();
    for fill in FillStrategy::ALL {
        let (video, masks) = decode_masked_batch(&model, &codes, &idx, &mcfg, fill).expect("own ids");
        assert_eq!(video.dims(), [1, 3, 16, 32, 32]);
        assert!(video.clone().is_finite().all().into_scalar::<bool>(), "{fill}");
        assert!(dynamic::masked_fraction(&masks) > 0.8);
        outs.push(video);
    }
    // Masked tokens of a static clip equal their previous frame's: `repeat` is lossless.
    assert!(max_abs_diff(outs[0].clone(), full.clone()) < 1e-5);
    // The learned embedding starts at zero, so `learned` starts equal to `zero`, and dropping
    // 85% of the tokens of the two finest layers changes the output.
    assert!(max_abs_diff(outs[1].clone(), outs[2].clone()) < 1e-6);
    assert!(max_abs_diff(outs[1].clone(), full) > 1e-3);

    // The same clip through a packed stream decodes exactly as the in-memory masks.
    let ids = clip_ids(&idx, &bits(&cfg)).expect("ids read").remove(0);
    let masks = layer_masks(&ids, &mcfg.clone().with_seed(item_seed(4, 0))).expect("own ids");
    let stream = MaskedStream::unpack(&MaskedStream::new(&ids, &masks).expect("fits").pack()).expect("round trip");
    let (sids, smasks) = stream.to_ids_and_masks();
    for (i, fill) in FillStrategy::ALL.into_iter().enumerate() {
        let video = decode_masked_ids(&model, std::slice::from_ref(&sids), std::slice::from_ref(&smasks), fill, &device).expect("valid ids");
        assert!(max_abs_diff(video, outs[i].clone()) < 1e-5, "{fill}");
    }
    let stats = stream.stats(16 * 32 * 32);
    assert!(stats.bpp < stats.dense_bpp && stats.ratio > 0.8, "{stats:?}");
}

fn masked_run(fill: &str) -> TokenizerTrainConfig {
    TokenizerTrainConfig::new()
        .with_steps(2)
        .with_batch(1)
        .with_warmup(0)
        .with_stage_fraction(0.0)
        .with_partial_decode_prob(0.0)
        .with_adversarial_weight(0.0)
        .with_mask_prob(1.0)
        .with_mask_fill(fill.parse().expect("fills"))
}

#[test]
fn masked_training_moves_the_learned_embedding() {
    let device = Device::flex();
    let mut t = trainer(masked_run("learned"), &device);
    let before = t.model.mask_embedding(3).into_data().try_to_vec::<f32>().expect("f32");
    let x = clip(true, 5, &device.clone().autodiff());
    for _ in 0..2 {
        let rec = t.train_step(x.clone());
        assert_eq!(rec.fill, Some(FillStrategy::Learned));
        assert!(rec.mask_ratio.expect("masked step") > 0.8, "{rec:?}");
    }
    let after = t.model.mask_embedding(3).into_data().try_to_vec::<f32>().expect("f32");
    assert_eq!(before, vec![0.0; 10]);
    // Adam moves the stored parameter by about the learning rate per step; the gain makes the
    // embedding move many times that, so a short fine-tune can reach codes of ±1.
    let moved = after.iter().zip(&before).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    let lr = masked_run("learned").lr as f32;
    assert!(moved > 8.0 * lr, "moved {moved} at lr {lr}: {after:?}");
    // The trained embedding is saved and loaded with the weights.
    let dir = tempfile::tempdir().expect("tempdir");
    t.save(dir.path(), serde_json::Value::Null).expect("save");
    let (loaded, _, _) = hitvideo_engine::tokenizer::load_tokenizer(dir.path(), Some("tiny"), &device).expect("load");
    assert_eq!(loaded.mask_embedding(3).into_data().try_to_vec::<f32>().expect("f32"), after);
    assert!("blur".parse::<Fills>().is_err());
    assert!("repeat,".parse::<Fills>().is_err());
    assert_eq!("learned, repeat".parse::<Fills>().expect("a list").to_string(), "learned,repeat");
    assert_eq!("all".parse::<Fills>().expect("all").as_slice().len(), 3);
    assert!(TokenizerTrainConfig::new().with_mask_prob(1.5).check_masking().is_err());
    // Saved as text in train.json and read back checked.
    let json = serde_json::to_value(masked_run("repeat,learned")).expect("json");
    assert_eq!(json["mask_fill"], "repeat,learned");
    let mut bad = json.clone();
    bad["mask_fill"] = "blur".into();
    assert!(serde_json::from_value::<TokenizerTrainConfig>(bad).is_err());
}

#[test]
fn finetune_from_a_checkpoint_with_a_frozen_encoder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    let device = Device::flex();
    let base = trainer(masked_run("all").with_mask_prob(0.0), &device);
    let saved = base.save(&run, serde_json::Value::Null).expect("save");

    // Old runs: train.json without the masking fields still resumes.
    let train_json = saved.join("train.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&train_json).expect("read")).expect("json");
    for k in ["mask_prob", "mask_cap", "mask_tolerance", "mask_fill", "freeze_encoder"] {
        v.as_object_mut().expect("object").remove(k);
    }
    std::fs::write(&train_json, serde_json::to_vec(&v).expect("json")).expect("write");
    let resumed = TokenizerTrainer::resume(&run, None, &device).expect("resume an older train.json");
    assert_eq!(resumed.train.mask_prob, 0.0);

    let mut ft = {
        let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
        TokenizerTrainer::finetune_from(&run, masked_run("repeat,zero,learned").with_freeze_encoder(true), &device).expect("finetune")
    };
    assert_eq!(ft.step, 0);
    let x = clip(false, 2, &device.clone().autodiff()).mul_scalar(0.1) + clip(true, 2, &device.clone().autodiff()).mul_scalar(0.9);
    let ids = |m: &Tokenizer| -> Vec<i64> {
        m.encode(x.clone(), 1.0).layers.iter().flat_map(|o| o.indices.clone().into_data().convert::<i64>().try_to_vec::<i64>().expect("ids")).collect()
    };
    let ids_before = ids(&base.model);
    assert_eq!(ids(&ft.model), ids_before, "fine-tuning starts from the saved weights");
    let dec_before = ft.model.decode(&ft.model.encode(x.clone(), 1.0).layers.iter().map(|o| o.codes.clone()).collect::<Vec<_>>());
    for _ in 0..2 {
        ft.train_step(x.clone());
    }
    assert_eq!(ft.step, 2);
    assert_eq!(ids(&ft.model), ids_before, "a frozen encoder keeps its token ids");
    let dec_after = ft.model.decode(&ft.model.encode(x.clone(), 1.0).layers.iter().map(|o| o.codes.clone()).collect::<Vec<_>>());
    assert!(max_abs_diff(dec_before, dec_after) > 1e-4, "the decoder trained");
    assert!(checkpoint::resolve(&run).is_ok());

    // A packed model bundle holds the weights without the discriminator and optimizers: a
    // fine-tune from it starts a fresh discriminator, with the same tokenizer weights.
    std::fs::remove_file(saved.join("disc.bpk")).expect("remove the discriminator");
    let from_bundle = {
        let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
        TokenizerTrainer::finetune_from(&saved, masked_run("zero"), &device).expect("finetune from a folder without disc.bpk")
    };
    assert_eq!(ids(&from_bundle.model), ids_before);
    std::fs::write(saved.join("disc.bpk"), b"not a record").expect("write");
    let err = TokenizerTrainer::finetune_from(&saved, masked_run("zero"), &device).err().expect("a damaged discriminator is an error").to_string();
    assert!(err.contains("disc.bpk") && err.contains("damaged"), "{err}");
}

#[test]
fn weights_from_before_the_mask_embeddings_still_load() {
    use burn::module::ParamGroup;
    let device = Device::flex();
    let (model, _) = tiny(&device);
    let old = model.clone().into_record_group(ParamGroup::all().exclude(ParamGroup::from_predicate("mask_embed")));
    let bytes = old.into_bytes().expect("bytes").to_vec();
    let loaded = tiny_seeded(&device, 4).0.load_weights(bytes).expect("legacy weights load");
    assert_eq!(loaded.mask_embedding(2).into_data().try_to_vec::<f32>().expect("f32"), vec![0.0; 8]);
    let x = clip(false, 1, &device);
    let codes = |m: &Tokenizer| m.encode(x.clone(), 1.0).layers.iter().map(|o| o.codes.clone()).collect::<Vec<_>>();
    assert!(max_abs_diff(model.decode(&codes(&model)), loaded.decode(&codes(&loaded))) < 1e-6);
    let other = tiny_seeded(&device, 4).0;
    assert!(max_abs_diff(model.decode(&codes(&model)), other.decode(&codes(&other))) > 1e-3, "the seeds give different weights");
    // Any other missing tensor is still an error.
    let broken = model.into_record_group(ParamGroup::all().exclude(ParamGroup::from_predicate("dec_in")));
    let err = tiny_seeded(&device, 4).0.load_weights(broken.into_bytes().expect("bytes").to_vec()).expect_err("must fail");
    assert!(err.to_string().contains("dec_in"), "{err}");
}

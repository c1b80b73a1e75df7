//! The attribute analyzer against ground truth on synthetic clips, clean and noisy.

use hitvideo_engine::dataset::shapes::add_noise;
use hitvideo_engine::dataset::synth::{self, SynthConfig};
use hitvideo_engine::eval::analyze::{PromptAttributes, analyze, score};
use rand::SeedableRng;

#[test]
fn analyzer_is_exact_on_1000_clean_clips_and_robust_to_noise() {
    let cfg = SynthConfig { count: 1000, seed: 2026, ..SynthConfig::default() };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let (mut clean_ok, mut noisy_ok) = (0, 0);
    let mut failures = Vec::new();
    // Margins of the shape features per class: (min, max) of fill and taper.
    let mut margins = std::collections::BTreeMap::new();
    for item in synth::items(&cfg) {
        let clip = item.render(&cfg.render);
        let a = analyze(&clip);
        let (f, t) = (a.fill.unwrap_or(f32::NAN), a.taper.unwrap_or(f32::NAN));
        let m = margins.entry(format!("{:?}", item.attributes.shape)).or_insert((f32::MAX, f32::MIN, f32::MAX, f32::MIN));
        *m = (m.0.min(f), m.1.max(f), m.2.min(t), m.3.max(t));
        if a.attributes() == Some(item.attributes) {
            clean_ok += 1;
        } else if failures.len() < 5 {
            failures.push(format!("{:?} -> {:?}", item.attributes, a));
        }
        let noisy = add_noise(&clip, 0.05, &mut rng);
        if analyze(&noisy).attributes() == Some(item.attributes) {
            noisy_ok += 1;
        }
        // The caption names exactly the ground truth, so a correct analysis scores 1.
        let s = score(&a, &PromptAttributes::parse(&item.caption));
        if a.attributes() == Some(item.attributes) {
            assert_eq!(s.fraction(), Some(1.0), "caption '{}'", item.caption);
        }
    }
    println!("analyzer: clean {clean_ok}/1000, noisy (sigma 0.05) {noisy_ok}/1000");
    println!("fill and taper ranges (fill min, max, taper min, max): {margins:?}");
    assert_eq!(clean_ok, 1000, "failures: {failures:#?}");
    assert!(noisy_ok >= 950, "noisy accuracy {noisy_ok}/1000");
}

#[test]
fn every_caption_parses_to_its_attributes() {
    let cfg = SynthConfig { count: 2000, seed: 9, ..SynthConfig::default() };
    for item in synth::items(&cfg) {
        let p = PromptAttributes::parse(&item.caption);
        assert_eq!(p.shape, Some(item.attributes.shape), "{}", item.caption);
        assert_eq!(p.color, Some(item.attributes.color), "{}", item.caption);
        assert_eq!(p.motion, Some(item.attributes.motion), "{}", item.caption);
    }
}

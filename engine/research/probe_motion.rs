//! Does a trained generator know what a prompt's motion (or color) word means? For held-out
//! items of a token cache, the teacher-forced negative log-likelihood of the item's tokens is
//! computed under its attributes' canonical caption and under the same caption with the motion
//! (or color) word swapped; the generator "knows" the attribute on an item when the true caption
//! gives the lowest NLL. Independent of sampling, so it separates "the model ignores the word"
//! from "sampling loses it".
//!
//! `cargo run -p hitvideo-engine --example probe_motion -- <generator run> <token cache> [items]`

use std::path::Path;

use burn::prelude::*;
use hitvideo_engine::dataset::attributes::{Attributes, Color, Motion};
use hitvideo_engine::dataset::captions::canonical;
use hitvideo_engine::dataset::synth;
use hitvideo_engine::generator::config::layer_offsets;
use hitvideo_engine::generator::load_generator;
use hitvideo_engine::generator::loss::split_groups;
use hitvideo_engine::generator::token_cache::TokenCache;
use hitvideo_engine::text::MiniLm;
use hitvideo_engine::train::generator_data::{TextSource, layer_ids, to_tensors};

/// Per-item NLL over `ranges` of video positions (summed), one value per caption.
#[allow(clippy::too_many_arguments)] // a one-off probe's plumbing
fn nll_of(
    g: &hitvideo_engine::generator::Generator,
    cfg: &hitvideo_engine::generator::GeneratorConfig,
    text: &mut TextSource,
    cache: &TokenCache,
    item: usize,
    captions: &[String],
    ranges: &[std::ops::Range<usize>],
    device: &Device,
) -> Vec<Vec<f64>> {
    let rows: Vec<usize> = vec![item; captions.len()];
    let caps: Vec<&str> = captions.iter().map(String::as_str).collect();
    let Ok(input) = text.input(g, cfg, &caps, vec![false; caps.len()], device) else { return Vec::new() };
    let ids = to_tensors(&layer_ids(cache, cfg, &rows), cfg, rows.len(), device);
    let h = g.forward_train(cfg, &input, &ids);
    let off = layer_offsets(&cfg.layers);
    // [B, N] per-token NLL over all layers.
    let mut parts = Vec::new();
    for (j, target) in ids.iter().enumerate() {
        let hj = h.clone().slice(s![.., off[j]..off[j + 1], ..]);
        let mut nll: Option<Tensor<2>> = None;
        for (logits, t) in g.logits(j, hj).into_iter().zip(split_groups(target.clone(), &g.groups(j))) {
            let lp = burn::tensor::activation::log_softmax(logits, 2).gather(2, t.unsqueeze_dim::<3>(2)).squeeze_dim::<2>(2).neg();
            nll = Some(match nll {
                Some(c) => c + lp,
                None => lp,
            });
        }
        parts.extend(nll);
    }
    let all = Tensor::cat(parts, 1);
    let n = all.dims()[1];
    let v = all.into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default();
    (0..captions.len()).map(|r| ranges.iter().map(|rg| v[r * n + rg.start..r * n + rg.end].iter().map(|&x| f64::from(x)).sum()).collect()).collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (gen_dir, cache_dir) = (args.get(1).ok_or("generator run")?, args.get(2).ok_or("token cache")?);
    let count: usize = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(48);
    let device = Device::flex();
    let g = load_generator(Path::new(gen_dir), None, &device)?;
    let cache = TokenCache::read(Path::new(cache_dir))?;
    let synth_cfg = cache.header.synthetic.ok_or("the probe needs a synthetic token cache")?;
    let minilm = if g.cfg.text.is_small() { None } else { Some(MiniLm::load(&hitvideo_engine::text::default_model_dir(), &device)?) };
    let mut text = TextSource::for_config(&g.cfg, minilm)?;
    let cfg = &g.cfg;
    let off = layer_offsets(&cfg.layers);
    let last = cfg.layers.len() - 1;
    let fl = &cfg.layers[last];
    let frame = fl.h * fl.w;
    // Ranges: all tokens; the finest layer's latent frame 0; its frames 1.. .
    let ranges = [0..cfg.video_tokens(), off[last]..off[last] + frame, off[last] + frame..off[last + 1]];
    let names = ["all tokens", "finest frame 0", "finest frames 1.."];
    let items: Vec<usize> = cache.validation_items().into_iter().take(count).collect();
    for (attr, alts) in [("motion", Motion::ALL.len()), ("color", Color::ALL.len())] {
        let mut hits = vec![0usize; ranges.len()];
        let mut gap = vec![0f64; ranges.len()];
        let mut n = 0usize;
        for &it in &items {
            let Some(index) = cache.header.items[it].index else { continue };
            let truth = synth::item(&synth_cfg, index).attributes;
            let variants: Vec<Attributes> = (0..alts)
                .map(|k| match attr {
                    "motion" => Attributes { motion: Motion::ALL[k], ..truth },
                    _ => Attributes { color: Color::ALL[k], ..truth },
                })
                .collect();
            let want = variants.iter().position(|a| *a == truth).unwrap_or(0);
            let captions: Vec<String> = variants.iter().map(|a| canonical(*a)).collect();
            let nll = nll_of(&g.model, cfg, &mut text, &cache, it, &captions, &ranges, &device);
            if nll.len() != captions.len() {
                continue;
            }
            n += 1;
            for r in 0..ranges.len() {
                let best = (0..captions.len()).min_by(|&a, &b| nll[a][r].total_cmp(&nll[b][r])).unwrap_or(0);
                hits[r] += usize::from(best == want);
                let others = (0..captions.len()).filter(|&k| k != want).map(|k| nll[k][r]).fold(f64::INFINITY, f64::min);
                gap[r] += others - nll[want][r];
            }
        }
        println!("{attr}: {n} held-out items, chance {:.0}%", 100.0 / alts as f64);
        for r in 0..ranges.len() {
            println!(
                "  {:<18} true caption most likely: {:5.1}%   mean NLL margin over the best wrong caption: {:+.2} nats",
                names[r],
                100.0 * hits[r] as f64 / n.max(1) as f64,
                gap[r] / n.max(1) as f64
            );
        }
    }
    Ok(())
}

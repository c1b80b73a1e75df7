//! How the dynamic-encoding rule's tolerance separates redundant tokens from changing ones on
//! a trained tokenizer: the histogram of Hamming distances to the previous latent frame in each
//! maskable layer, for held-out synthetic clips and for clips of random noise (uniform bytes,
//! new every frame), and the masked fraction for several tolerances.
//! `cargo run -p hitvideo-engine --example probe_masks -- <tokenizer run> [clips]`

use std::path::Path;

use burn::prelude::*;
use hitvideo_engine::tensor::to_tensor;
use hitvideo_engine::tokenizer::dynamic::{LayerIds, MaskConfig, clip_ids, layer_masks};
use hitvideo_engine::tokenizer::load_tokenizer;
use hitvideo_engine::train::data::ClipSource;
use hitvideo_engine::video::Video;

fn noise_clip(frames: usize, size: usize, seed: u64) -> Video {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let data: Vec<u8> = (0..frames * size * size * 3)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect();
    Video::from_raw(size as u32, size as u32, 8.0, data).unwrap_or_else(|_| Video::new(size as u32, size as u32, 8.0))
}

/// Random gray blocks at every scale (1, 2, 4, 8 and 16 pixels), new every frame: noise that
/// every layer of a hierarchical tokenizer resolves, not only the finest.
fn multiscale_noise(frames: usize, size: usize, seed: u64) -> Video {
    let mut state = seed.wrapping_mul(2862933555777941757).wrapping_add(3037000493);
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let mut data = Vec::with_capacity(frames * size * size * 3);
    for _ in 0..frames {
        let scales = [1usize, 2, 4, 8, 16];
        let grids: Vec<Vec<f32>> = scales.iter().map(|&c| (0..(size / c).max(1).pow(2)).map(|_| next() - 0.5).collect()).collect();
        for y in 0..size {
            for x in 0..size {
                let v: f32 = scales.iter().zip(&grids).map(|(&c, g)| g[(y / c) * (size / c).max(1) + x / c]).sum::<f32>() / 2.5 + 0.5;
                let b = (v.clamp(0.0, 1.0) * 255.0) as u8;
                data.extend([b, b, b]);
            }
        }
    }
    Video::from_raw(size as u32, size as u32, 8.0, data).unwrap_or_else(|_| Video::new(size as u32, size as u32, 8.0))
}

fn report(name: &str, clips: &[Vec<LayerIds>]) {
    let layers = clips.first().map(Vec::len).unwrap_or(0);
    for j in 0..layers {
        let l = &clips[0][j];
        if l.shape[0] < 2 {
            continue;
        }
        let mut hist = vec![0usize; l.bits + 1];
        for c in clips {
            let masks = layer_masks(std::slice::from_ref(&c[j]), &MaskConfig::new().with_cap(1.0).with_tolerance(1.0));
            if let Ok(m) = masks {
                let plane = l.shape[1] * l.shape[2];
                for &d in &m[0].diff[plane..] {
                    hist[d as usize] += 1;
                }
            }
        }
        let total: usize = hist.iter().sum();
        let pct: Vec<String> = hist.iter().map(|&h| format!("{:.1}", 100.0 * h as f64 / total.max(1) as f64)).collect();
        let ratios: Vec<String> = [1.0, 0.3, 0.2, 0.1, 0.0]
            .iter()
            .map(|&tol| {
                let cfg = MaskConfig::new().with_tolerance(tol);
                let r: f64 =
                    clips.iter().filter_map(|c| layer_masks(std::slice::from_ref(&c[j]), &cfg).ok()).map(|m| m[0].ratio).sum::<f64>() / clips.len() as f64;
                format!("tol {tol}: {:.1}%", 100.0 * r)
            })
            .collect();
        println!("{name} layer {j} {:?} {} bits: distance histogram % (0..=bits) [{}]", l.shape, l.bits, pct.join(", "));
        println!("    masked (cap 0.85): {}", ratios.join(", "));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).ok_or("tokenizer run")?;
    let n: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(32);
    let device = Device::flex();
    let (model, cfg, _) = load_tokenizer(Path::new(dir), None, &device)?;
    let bits: Vec<usize> = cfg.layers.iter().map(|l| l.bits).collect();
    let encode = |x: Tensor<5>| clip_ids(&model.encode(x, 1.0).layers.into_iter().map(|o| o.indices).collect::<Vec<_>>(), &bits).expect("token ids read back");
    let data = ClipSource::synthetic(4000, 0, cfg.frames, cfg.width, cfg.fps);
    let mut synth = Vec::new();
    for start in (0..n).step_by(8) {
        synth.extend(encode(data.val_batch(start..(start + 8).min(n), &device).expect("synthetic clips render")));
    }
    report("synthetic", &synth);
    let noise: Vec<Video> = (0..n as u64).map(|s| noise_clip(cfg.frames, cfg.width, s)).collect();
    let mut ids = Vec::new();
    for chunk in noise.chunks(8) {
        ids.extend(encode(to_tensor(chunk, &device)));
    }
    report("noise", &ids);
    let ms: Vec<Video> = (0..n as u64).map(|s| multiscale_noise(cfg.frames, cfg.width, s)).collect();
    let mut ids = Vec::new();
    for chunk in ms.chunks(8) {
        ids.extend(encode(to_tensor(chunk, &device)));
    }
    report("multi-scale noise", &ids);
    if let Some(video) = args.get(3) {
        let clip = hitvideo_engine::tokenizer::codec::read_video(&cfg, Path::new(video))?;
        let wins = hitvideo_engine::tokenizer::codec::padded_windows(&clip, cfg.frames);
        let mut ids = Vec::new();
        for chunk in wins.chunks(8) {
            ids.extend(encode(to_tensor(chunk, &device)));
        }
        report(video, &ids);
    }
    Ok(())
}

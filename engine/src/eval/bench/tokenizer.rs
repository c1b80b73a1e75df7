//! Tokenizer throughput on a device: encode and decode clips/s (one clip and a batch), the
//! real-time factor of a clip, and training steps/s. Speed does not depend on the weights, so
//! a freshly initialised network of the preset is timed.

use std::time::Instant;

use burn::prelude::*;
use serde_json::{Value, json};

use crate::tokenizer::{TokenizerConfig, config::ConfigError};
use crate::train::data::ClipSource;
use crate::train::tokenizer::{PREFETCH, TokenizerTrainConfig, TokenizerTrainer};

/// The median of `repeat` timings of `f` (seconds), after one untimed warm-up call.
pub fn median_secs(repeat: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut v: Vec<f64> = (0..repeat.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times `preset` on `device`: encode, decode (all layers) and encode + decode of 1 and of
/// `batch` clips, and `train_steps` training steps at `batch` (no discriminator).
pub fn bench_tokenizer(preset: &str, device: &Device, others: &[Device], batch: usize, repeat: usize, train_steps: usize) -> Result<Value, ConfigError> {
    let cfg = TokenizerConfig::preset(preset)?;
    device.seed(0);
    let model = cfg.init(device);
    let clip_seconds = cfg.frames as f64 / cfg.fps;
    let mut per_batch = Vec::new();
    for b in [1, batch.max(1)] {
        let x = Tensor::<5>::random([b, 3, cfg.frames, cfg.height, cfg.width], burn::tensor::Distribution::Uniform(-1.0, 1.0), device);
        let sync = |t: Tensor<5>| t.sum().into_scalar::<f32>();
        let ids = |t: &[Tensor<4, Int>]| t.iter().map(|i| i.clone().sum().into_scalar::<i64>()).sum::<i64>();
        // What inference runs (`encode_batch` / `decode_batch`: split over the CPU's core
        // shares), and the whole batch in one pass for comparison.
        let enc = median_secs(repeat, || {
            let _ = ids(&model.encode_batch(x.clone()).indices);
        });
        let codes = model.encode_batch(x.clone()).codes;
        let dec = median_secs(repeat, || {
            let _ = sync(model.decode_batch(&codes));
        });
        let one_pass = median_secs(repeat, || {
            let e = model.encode(x.clone(), 1.0);
            let _ = ids(&e.layers.iter().map(|o| o.indices.clone()).collect::<Vec<_>>());
            let codes: Vec<Tensor<5>> = e.layers.into_iter().map(|o| o.codes).collect();
            let _ = sync(model.decode(&codes));
        });
        per_batch.push(json!({
            "batch": b,
            "encode_clips_per_s": b as f64 / enc,
            "decode_clips_per_s": b as f64 / dec,
            "encode_decode_seconds_per_clip": (enc + dec) / b as f64,
            "encode_decode_one_pass_seconds_per_clip": one_pass / b as f64,
            "workers": crate::cores::inference_shares(device).map_or(1, |c| c.workers()).min(b),
            "real_time_factor": clip_seconds * b as f64 / (enc + dec),
        }));
    }
    let data = ClipSource::synthetic(400, 0, cfg.frames, cfg.height, cfg.fps);
    let train = TokenizerTrainConfig::new().with_batch(batch.max(1)).with_steps(train_steps.max(1) + 1).with_adversarial_weight(0.0).with_val_every(usize::MAX);
    let mut trainer = TokenizerTrainer::new(cfg.clone(), train, device);
    trainer.set_devices(others).map_err(|e| ConfigError::Invalid { name: preset.to_string(), reason: e.to_string() })?;
    let data_error = |e: crate::train::data::DataError| ConfigError::Invalid { name: preset.to_string(), reason: e.to_string() };
    // The batches are rendered on a thread ahead of the steps, as a training run makes them.
    let steps = train_steps.max(1);
    let step_s = std::thread::scope(|scope| -> Result<f64, ConfigError> {
        let mut next = data.prefetch(scope, 0..steps + 1, batch.max(1), 0, PREFETCH, trainer.model.devices()[0].clone());
        trainer.train_step(next(0).map_err(data_error)?);
        let t = Instant::now();
        for s in 1..=steps {
            trainer.train_step(next(s).map_err(data_error)?);
        }
        Ok(t.elapsed().as_secs_f64() / steps as f64)
    })?;
    Ok(json!({
        "preset": preset,
        "clip": {"frames": cfg.frames, "height": cfg.height, "width": cfg.width, "fps": cfg.fps, "seconds": clip_seconds},
        "parameters": model.num_params(),
        "inference": per_batch,
        "train": {"batch": batch.max(1), "devices": 1 + others.len(), "steps": steps, "seconds_per_step": step_s, "steps_per_s": 1.0 / step_s},
    }))
}

/// Peak resident memory of this process so far (`VmHWM`), in MiB; `None` off Linux.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_bench_reports_positive_rates() {
        let v = bench_tokenizer("tiny", &Device::flex(), &[], 2, 1, 1).expect("bench");
        for row in v["inference"].as_array().expect("rows") {
            for key in ["encode_clips_per_s", "decode_clips_per_s", "real_time_factor", "encode_decode_one_pass_seconds_per_clip"] {
                assert!(row[key].as_f64().is_some_and(|x| x.is_finite() && x > 0.0), "{key}: {row}");
            }
        }
        assert!(v["train"]["steps_per_s"].as_f64().is_some_and(|x| x > 0.0));
        assert!(bench_tokenizer("nope", &Device::flex(), &[], 2, 1, 1).is_err());
        assert!(peak_rss_mib().is_some_and(|m| m > 1.0));
    }
}

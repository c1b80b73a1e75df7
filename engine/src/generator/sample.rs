//! Sampling settings, their validation, and a small seeded sampler
//! (temperature, top-k, top-p) over one row of logits.

use rand::Rng;
use serde::{Deserialize, Serialize};

pub use crate::guidance::{CfgSchedule, ScheduleError};

/// Errors of out-of-range settings (never a panic; the message says the allowed range).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SamplingError {
    #[error("temperature must be > 0 (got {0}); use --greedy for argmax decoding")]
    Temperature(f32),
    #[error("top-k must be at least 1 (got {0}); leave it unset to keep every token")]
    TopK(usize),
    #[error("top-p must be in (0, 1] (got {0})")]
    TopP(f32),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
}

/// How the next token is chosen from the logits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingConfig {
    /// Argmax decoding (ignores temperature, top-k and top-p).
    pub greedy: bool,
    /// Softmax temperature (> 0).
    pub temperature: f32,
    /// Keep only the `k` most likely tokens (`None`: all).
    pub top_k: Option<usize>,
    /// Keep the smallest set of tokens whose probability reaches `top_p` (in (0, 1]).
    pub top_p: f32,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self { greedy: false, temperature: 1.0, top_k: None, top_p: 1.0 }
    }
}

impl SamplingConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), SamplingError> {
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(SamplingError::Temperature(self.temperature));
        }
        if self.top_k == Some(0) {
            return Err(SamplingError::TopK(0));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(SamplingError::TopP(self.top_p));
        }
        Ok(())
    }

    /// Picks one index from `logits` with `rng`.
    pub fn sample<R: Rng>(&self, logits: &[f32], rng: &mut R) -> usize {
        let argmax = || logits.iter().enumerate().fold((0, f32::NEG_INFINITY), |a, (i, &v)| if v > a.1 { (i, v) } else { a }).0;
        if self.greedy || logits.len() < 2 {
            return argmax();
        }
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        let keep = self.top_k.unwrap_or(order.len()).min(order.len()).max(1);
        order.truncate(keep);
        let t = f64::from(self.temperature);
        let top = f64::from(logits[order[0]]);
        let mut probs: Vec<f64> = order.iter().map(|&i| ((f64::from(logits[i]) - top) / t).exp()).collect();
        let total: f64 = probs.iter().sum();
        if !(total.is_finite() && total > 0.0) {
            return argmax();
        }
        probs.iter_mut().for_each(|p| *p /= total);
        let mut acc = 0.0;
        let mut cut = probs.len();
        for (i, p) in probs.iter().enumerate() {
            acc += p;
            if acc >= f64::from(self.top_p) {
                cut = i + 1;
                break;
            }
        }
        let mass: f64 = probs[..cut].iter().sum();
        let mut u = rng.random::<f64>() * mass;
        for (i, p) in probs[..cut].iter().enumerate() {
            if u < *p {
                return order[i];
            }
            u -= p;
        }
        order[cut - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn seeded_sampler_is_reproducible_and_respects_filters() {
        let logits = [0.0f32, 2.0, 1.0, -1.0, 3.0];
        let cfg = SamplingConfig::default();
        let draw = |cfg: &SamplingConfig, seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..200).map(|_| cfg.sample(&logits, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draw(&cfg, 7), draw(&cfg, 7));
        assert_ne!(draw(&cfg, 7), draw(&cfg, 8));
        let k2 = SamplingConfig { top_k: Some(2), ..cfg.clone() };
        assert!(draw(&k2, 1).iter().all(|&i| i == 4 || i == 1));
        let p = SamplingConfig { top_p: 0.5, ..cfg.clone() };
        assert!(draw(&p, 1).iter().all(|&i| i == 4), "top token holds > 50% of the mass");
        let greedy = SamplingConfig { greedy: true, ..cfg.clone() };
        assert!(draw(&greedy, 3).iter().all(|&i| i == 4));
        // Frequencies follow the softmax: token 4 (p ~ 0.63) most, token 3 rarest.
        let counts = draw(&cfg, 11).iter().fold([0; 5], |mut c, &i| {
            c[i] += 1;
            c
        });
        assert!(counts[4] > counts[1] && counts[1] > counts[3], "{counts:?}");
    }

    #[test]
    fn bad_settings_are_errors_not_panics() {
        let ok = SamplingConfig::default();
        assert!(ok.validate().is_ok());
        assert!(SamplingConfig { temperature: 0.0, ..ok.clone() }.validate().is_err());
        assert!(SamplingConfig { temperature: f32::NAN, ..ok.clone() }.validate().is_err());
        assert!(SamplingConfig { top_k: Some(0), ..ok.clone() }.validate().is_err());
        assert!(SamplingConfig { top_p: 0.0, ..ok.clone() }.validate().is_err());
        assert!(SamplingConfig { top_p: 1.5, ..ok.clone() }.validate().is_err());
    }
}

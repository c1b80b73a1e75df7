//! Sampling settings, their validation, CFG schedules, and a small seeded sampler
//! (temperature, top-k, top-p) over one row of logits.

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Errors of out-of-range settings (never a panic; the message says the allowed range).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SamplingError {
    #[error("temperature must be > 0 (got {0}); use --greedy for argmax decoding")]
    Temperature(f32),
    #[error("top-k must be at least 1 (got {0}); leave it unset to keep every token")]
    TopK(usize),
    #[error("top-p must be in (0, 1] (got {0})")]
    TopP(f32),
    #[error("CFG scale must be finite and >= 0 (got {0}); 1 means no guidance")]
    Cfg(f32),
    #[error("CFG schedule '{0}': write a number (7.5), 'linear:FROM:TO', or one value per layer (1,3,5,7.5)")]
    Schedule(String),
    #[error("the CFG schedule has {got} values but the model has {layers} layers")]
    ScheduleLayers { got: usize, layers: usize },
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

impl std::fmt::Display for CfgSchedule {
    /// The form [`CfgSchedule::parse`] reads back: `7.5`, `linear:1:7.5`, `1,3,5,7.5`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CfgSchedule::Constant { scale } => write!(f, "{scale}"),
            CfgSchedule::Linear { from, to } => write!(f, "linear:{from}:{to}"),
            CfgSchedule::PerLayer { scales } => {
                let v: Vec<String> = scales.iter().map(f32::to_string).collect();
                f.write_str(&v.join(","))
            }
        }
    }
}

/// Classifier-free guidance scale per token layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum CfgSchedule {
    /// The same scale for every layer.
    Constant { scale: f32 },
    /// From `from` at the coarsest layer to `to` at the finest, linearly.
    Linear { from: f32, to: f32 },
    /// One value per layer, coarsest first.
    PerLayer { scales: Vec<f32> },
}

impl CfgSchedule {
    /// Parses `7.5`, `linear:1:7.5` or `1,3,5,7.5`.
    pub fn parse(s: &str) -> Result<Self, SamplingError> {
        let bad = || SamplingError::Schedule(s.to_string());
        let num = |x: &str| x.trim().parse::<f32>().map_err(|_| bad());
        let s2 = s.trim();
        let out = if let Some(rest) = s2.strip_prefix("linear:") {
            let (a, b) = rest.split_once(':').ok_or_else(bad)?;
            CfgSchedule::Linear { from: num(a)?, to: num(b)? }
        } else if s2.contains(',') {
            CfgSchedule::PerLayer { scales: s2.split(',').map(num).collect::<Result<_, _>>()? }
        } else {
            CfgSchedule::Constant { scale: num(s2)? }
        };
        out.values().iter().try_for_each(|&v| if v.is_finite() && v >= 0.0 { Ok(()) } else { Err(SamplingError::Cfg(v)) })?;
        Ok(out)
    }

    fn values(&self) -> Vec<f32> {
        match self {
            CfgSchedule::Constant { scale } => vec![*scale],
            CfgSchedule::Linear { from, to } => vec![*from, *to],
            CfgSchedule::PerLayer { scales } => scales.clone(),
        }
    }

    /// The scale of every layer of an `layers`-layer model (coarsest first). Every value must
    /// be finite and `>= 0` (schedules built in code are checked here, parsed ones on parsing).
    pub fn scales(&self, layers: usize) -> Result<Vec<f32>, SamplingError> {
        if let Some(&v) = self.values().iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
            return Err(SamplingError::Cfg(v));
        }
        match self {
            CfgSchedule::Constant { scale } => Ok(vec![*scale; layers]),
            CfgSchedule::Linear { from, to } => {
                Ok((0..layers).map(|j| if layers < 2 { *to } else { from + (to - from) * j as f32 / (layers - 1) as f32 }).collect())
            }
            CfgSchedule::PerLayer { scales } if scales.len() == layers => Ok(scales.clone()),
            CfgSchedule::PerLayer { scales } => Err(SamplingError::ScheduleLayers { got: scales.len(), layers }),
        }
    }

    /// Whether guidance is off for every layer (scale 1: the unconditional pass is skipped).
    pub fn is_off(&self, layers: usize) -> bool {
        self.scales(layers).map(|s| s.iter().all(|&v| (v - 1.0).abs() < 1e-6)).unwrap_or(false)
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
        assert!(CfgSchedule::parse("-1").is_err());
        assert!(CfgSchedule::parse("abc").is_err());
        assert!(CfgSchedule::parse("linear:1").is_err());
        assert_eq!(CfgSchedule::parse("linear:1:7").and_then(|s| s.scales(4)), Ok(vec![1.0, 3.0, 5.0, 7.0]));
        assert_eq!(CfgSchedule::parse("1,2").and_then(|s| s.scales(2)), Ok(vec![1.0, 2.0]));
        assert!(CfgSchedule::parse("1,2").and_then(|s| s.scales(4)).is_err());
        assert!(CfgSchedule::parse("1").map(|s| s.is_off(3)).unwrap_or(false));
        assert!(!CfgSchedule::parse("linear:1:2").map(|s| s.is_off(3)).unwrap_or(true));
        assert_eq!(CfgSchedule::Constant { scale: -2.0 }.scales(4), Err(SamplingError::Cfg(-2.0)));
        assert!(CfgSchedule::PerLayer { scales: vec![1.0, f32::NAN] }.scales(2).is_err());
        assert!(CfgSchedule::parse("linear:1:nan").is_err());
        assert!(CfgSchedule::parse("").is_err());
    }

    #[test]
    fn cfg_schedules_give_one_scale_per_layer_and_round_trip() {
        for text in ["7.5", "linear:1:7.5", "1,3,5,7.5", "0"] {
            let s = CfgSchedule::parse(text).expect("valid schedule");
            assert_eq!(CfgSchedule::parse(&s.to_string()), Ok(s.clone()), "{text}");
        }
        assert_eq!(CfgSchedule::parse("7.5").and_then(|s| s.scales(4)), Ok(vec![7.5; 4]));
        assert_eq!(CfgSchedule::parse("linear:2:2").and_then(|s| s.scales(1)), Ok(vec![2.0]));
        assert_eq!(CfgSchedule::parse(" linear:0:1 ").and_then(|s| s.scales(3)), Ok(vec![0.0, 0.5, 1.0]));
        let e = CfgSchedule::parse("1,2,3").and_then(|s| s.scales(4)).expect_err("3 values for 4 layers");
        assert!(e.to_string().contains("3 values but the model has 4 layers"), "{e}");
    }
}

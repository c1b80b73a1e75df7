//! Classifier-free guidance schedules: the CFG scale of each token layer, parsed once from
//! the text people write (`7.5`, `linear:1:7.5`, `1,3,5,7.5`) and stored in that same text
//! form wherever it is saved (export metadata, the studio's queue).
//!
//! It sits below the models because export metadata (`video::meta`) records a schedule;
//! the generator re-exports it (`generator::CfgSchedule`).

use std::fmt;
use std::str::FromStr;

/// Why a CFG schedule was refused (the message says what is allowed).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    #[error("CFG scale must be finite and >= 0 (got {0}); 1 means no guidance")]
    Scale(f32),
    #[error("CFG schedule '{0}': write a number (7.5), 'linear:FROM:TO', or one value per layer (1,3,5,7.5)")]
    Text(String),
    #[error("the CFG schedule has {got} values but the model has {layers} layers")]
    Layers { got: usize, layers: usize },
}

/// Classifier-free guidance scale per token layer.
///
/// Saved as its text form (see [`fmt::Display`]); reading it back parses and checks it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum CfgSchedule {
    /// The same scale for every layer.
    Constant { scale: f32 },
    /// From `from` at the coarsest layer to `to` at the finest, linearly.
    Linear { from: f32, to: f32 },
    /// One value per layer, coarsest first.
    PerLayer { scales: Vec<f32> },
}

impl CfgSchedule {
    /// Parses `7.5`, `linear:1:7.5` or `1,3,5,7.5`; every value must be finite and `>= 0`.
    pub fn parse(s: &str) -> Result<Self, ScheduleError> {
        let bad = || ScheduleError::Text(s.to_string());
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
        out.validate()?;
        Ok(out)
    }

    /// Every value finite and `>= 0` (parsed schedules are checked on parsing, those built in
    /// code when their scales are taken, or here).
    pub fn validate(&self) -> Result<(), ScheduleError> {
        let bad = match self {
            CfgSchedule::Constant { scale } => [*scale].into_iter().find(|v| !ok(*v)),
            CfgSchedule::Linear { from, to } => [*from, *to].into_iter().find(|v| !ok(*v)),
            CfgSchedule::PerLayer { scales } => scales.iter().copied().find(|v| !ok(*v)),
        };
        bad.map_or(Ok(()), |v| Err(ScheduleError::Scale(v)))
    }

    /// The scale of every layer of an `layers`-layer model (coarsest first).
    pub fn scales(&self, layers: usize) -> Result<Vec<f32>, ScheduleError> {
        self.validate()?;
        match self {
            CfgSchedule::Constant { scale } => Ok(vec![*scale; layers]),
            CfgSchedule::Linear { from, to } => {
                Ok((0..layers).map(|j| if layers < 2 { *to } else { from + (to - from) * j as f32 / (layers - 1) as f32 }).collect())
            }
            CfgSchedule::PerLayer { scales } if scales.len() == layers => Ok(scales.clone()),
            CfgSchedule::PerLayer { scales } => Err(ScheduleError::Layers { got: scales.len(), layers }),
        }
    }

    /// The scale of the finest layer: the one number a gallery or a sweep axis shows.
    pub fn finest(&self) -> Option<f32> {
        match self {
            CfgSchedule::Constant { scale } => Some(*scale),
            CfgSchedule::Linear { to, .. } => Some(*to),
            CfgSchedule::PerLayer { scales } => scales.last().copied(),
        }
    }

    /// Whether guidance is off for every layer (scale 1: the unconditional pass is skipped).
    pub fn is_off(&self, layers: usize) -> bool {
        self.scales(layers).map(|s| s.iter().all(|&v| (v - 1.0).abs() < 1e-6)).unwrap_or(false)
    }
}

fn ok(v: f32) -> bool {
    v.is_finite() && v >= 0.0
}

impl fmt::Display for CfgSchedule {
    /// The form [`CfgSchedule::parse`] reads back: `7.5`, `linear:1:7.5`, `1,3,5,7.5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

impl FromStr for CfgSchedule {
    type Err = ScheduleError;
    fn from_str(s: &str) -> Result<Self, ScheduleError> {
        Self::parse(s)
    }
}

impl TryFrom<String> for CfgSchedule {
    type Error = ScheduleError;
    fn try_from(s: String) -> Result<Self, ScheduleError> {
        Self::parse(&s)
    }
}

impl From<CfgSchedule> for String {
    fn from(s: CfgSchedule) -> String {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_schedules_are_errors_not_panics() {
        assert!(CfgSchedule::parse("-1").is_err());
        assert!(CfgSchedule::parse("abc").is_err());
        assert!(CfgSchedule::parse("linear:1").is_err());
        assert!(CfgSchedule::parse("linear:1:nan").is_err());
        assert!(CfgSchedule::parse("").is_err());
        assert_eq!(CfgSchedule::parse("linear:1:7").and_then(|s| s.scales(4)), Ok(vec![1.0, 3.0, 5.0, 7.0]));
        assert_eq!(CfgSchedule::parse("1,2").and_then(|s| s.scales(2)), Ok(vec![1.0, 2.0]));
        assert!(CfgSchedule::parse("1,2").and_then(|s| s.scales(4)).is_err());
        assert!(CfgSchedule::parse("1").map(|s| s.is_off(3)).unwrap_or(false));
        assert!(!CfgSchedule::parse("linear:1:2").map(|s| s.is_off(3)).unwrap_or(true));
        assert_eq!(CfgSchedule::Constant { scale: -2.0 }.scales(4), Err(ScheduleError::Scale(-2.0)));
        assert_eq!(CfgSchedule::Linear { from: 1.0, to: f32::INFINITY }.scales(2), Err(ScheduleError::Scale(f32::INFINITY)));
        assert!(CfgSchedule::PerLayer { scales: vec![1.0, f32::NAN] }.scales(2).is_err());
    }

    #[test]
    fn schedules_give_one_scale_per_layer_and_round_trip() {
        for text in ["7.5", "linear:1:7.5", "1,3,5,7.5", "0"] {
            let s = CfgSchedule::parse(text).expect("valid schedule");
            assert_eq!(CfgSchedule::parse(&s.to_string()), Ok(s.clone()), "{text}");
            assert_eq!(text.parse::<CfgSchedule>(), Ok(s));
        }
        assert_eq!(CfgSchedule::parse("7.5").and_then(|s| s.scales(4)), Ok(vec![7.5; 4]));
        assert_eq!(CfgSchedule::parse("linear:2:2").and_then(|s| s.scales(1)), Ok(vec![2.0]));
        assert_eq!(CfgSchedule::parse(" linear:0:1 ").and_then(|s| s.scales(3)), Ok(vec![0.0, 0.5, 1.0]));
        let e = CfgSchedule::parse("1,2,3").and_then(|s| s.scales(4)).expect_err("3 values for 4 layers");
        assert!(e.to_string().contains("3 values but the model has 4 layers"), "{e}");
        let finest: Vec<Option<f32>> = ["2.5", "linear:1:6", "1,3,4"].iter().map(|t| CfgSchedule::parse(t).ok().and_then(|s| s.finest())).collect();
        assert_eq!(finest, [Some(2.5), Some(6.0), Some(4.0)]);
    }

    #[test]
    fn saved_as_text_and_read_back_checked() {
        let s = CfgSchedule::parse("linear:1:7.5").expect("schedule");
        assert_eq!(serde_json::to_string(&s).expect("json"), "\"linear:1:7.5\"");
        assert_eq!(serde_json::from_str::<CfgSchedule>("\"linear:1:7.5\"").expect("read back"), s);
        let e = serde_json::from_str::<CfgSchedule>("\"linear:1:-3\"").expect_err("a negative scale");
        assert!(e.to_string().contains(">= 0"), "{e}");
        assert!(serde_json::from_str::<CfgSchedule>("\"seven\"").is_err());
    }
}

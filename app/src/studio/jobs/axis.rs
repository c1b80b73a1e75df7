//! Sweep axes: which sampling parameter a sweep varies along its rows or its columns, and the
//! values one axis takes (parsed from the sweep view's text fields by the settings module).

use super::protocol::GenerateRequest;

/// A sampling parameter a sweep can vary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
pub enum SweepAxis {
    /// A constant CFG scale (replaces the Generate view's schedule).
    #[default]
    Cfg,
    Seed,
    Temperature,
    /// Top-k (0: every token).
    TopK,
    TopP,
}

impl SweepAxis {
    /// Every axis, in the order the sweep view lists them.
    pub const ALL: [SweepAxis; 5] = [SweepAxis::Cfg, SweepAxis::Seed, SweepAxis::Temperature, SweepAxis::TopK, SweepAxis::TopP];

    /// The parameter's name as the views write it.
    pub fn label(self) -> &'static str {
        match self {
            SweepAxis::Cfg => "CFG",
            SweepAxis::Seed => "seed",
            SweepAxis::Temperature => "temperature",
            SweepAxis::TopK => "top-k",
            SweepAxis::TopP => "top-p",
        }
    }

    /// Its values, plural ("mean over seeds").
    pub fn plural(self) -> &'static str {
        match self {
            SweepAxis::Cfg => "CFG scales",
            SweepAxis::Seed => "seeds",
            SweepAxis::Temperature => "temperatures",
            SweepAxis::TopK => "top-k values",
            SweepAxis::TopP => "top-p values",
        }
    }
}

/// The values of one sweep axis.
#[derive(Debug, Clone, PartialEq)]
pub enum AxisValues {
    Cfg(Vec<f32>),
    Seed(Vec<u64>),
    Temperature(Vec<f32>),
    /// `None` keeps every token.
    TopK(Vec<Option<usize>>),
    TopP(Vec<f32>),
}

impl AxisValues {
    /// Which parameter these values are of.
    pub fn axis(&self) -> SweepAxis {
        match self {
            AxisValues::Cfg(_) => SweepAxis::Cfg,
            AxisValues::Seed(_) => SweepAxis::Seed,
            AxisValues::Temperature(_) => SweepAxis::Temperature,
            AxisValues::TopK(_) => SweepAxis::TopK,
            AxisValues::TopP(_) => SweepAxis::TopP,
        }
    }

    /// How many values.
    pub fn len(&self) -> usize {
        match self {
            AxisValues::Cfg(v) | AxisValues::Temperature(v) | AxisValues::TopP(v) => v.len(),
            AxisValues::Seed(v) => v.len(),
            AxisValues::TopK(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i` as text (`5`, `0.9`, `all` for top-k without a limit); empty past the end.
    pub fn value_text(&self, i: usize) -> String {
        match self {
            AxisValues::Cfg(v) | AxisValues::Temperature(v) | AxisValues::TopP(v) => v.get(i).map(f32::to_string),
            AxisValues::Seed(v) => v.get(i).map(u64::to_string),
            AxisValues::TopK(v) => v.get(i).map(|k| k.map_or_else(|| "all".to_string(), |k| k.to_string())),
        }
        .unwrap_or_default()
    }

    /// Value `i` with the parameter's name, e.g. `CFG 5` or `top-k all`.
    pub fn label(&self, i: usize) -> String {
        format!("{} {}", self.axis().label(), self.value_text(i))
    }

    /// Value `i` as a number for plots (top-k without a limit: 0).
    pub fn x(&self, i: usize) -> f64 {
        match self {
            AxisValues::Cfg(v) | AxisValues::Temperature(v) | AxisValues::TopP(v) => v.get(i).map_or(0.0, |&x| f64::from(x)),
            AxisValues::Seed(v) => v.get(i).map_or(0.0, |&s| s as f64),
            AxisValues::TopK(v) => v.get(i).copied().flatten().map_or(0.0, |k| k as f64),
        }
    }

    /// Sets the parameter of `req` to value `i` (nothing past the end).
    pub fn apply(&self, i: usize, req: &mut GenerateRequest) {
        match self {
            AxisValues::Cfg(v) => {
                if let Some(c) = v.get(i) {
                    req.cfg_schedule = c.to_string();
                }
            }
            AxisValues::Seed(v) => {
                if let Some(&s) = v.get(i) {
                    req.seeds = vec![s];
                }
            }
            AxisValues::Temperature(v) => {
                if let Some(&t) = v.get(i) {
                    req.temperature = t;
                }
            }
            AxisValues::TopK(v) => {
                if let Some(&k) = v.get(i) {
                    req.top_k = k;
                }
            }
            AxisValues::TopP(v) => {
                if let Some(&p) = v.get(i) {
                    req.top_p = p;
                }
            }
        }
    }

    /// The axis as JSON for export metadata: `{"axis": "top-k", "values": [4, null]}`.
    pub fn to_json(&self) -> serde_json::Value {
        let values = match self {
            AxisValues::Cfg(v) | AxisValues::Temperature(v) | AxisValues::TopP(v) => serde_json::json!(v),
            AxisValues::Seed(v) => serde_json::json!(v),
            AxisValues::TopK(v) => serde_json::json!(v),
        };
        serde_json::json!({ "axis": self.axis().label(), "values": values })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_values_label_and_apply() {
        let mut req = GenerateRequest {
            prompt: "p".into(),
            negative: None,
            cfg_schedule: "linear:1:5".into(),
            seeds: vec![1],
            temperature: 1.0,
            top_k: None,
            top_p: 1.0,
            keep: Vec::new(),
        };
        AxisValues::Cfg(vec![2.5]).apply(0, &mut req);
        AxisValues::Seed(vec![9]).apply(0, &mut req);
        AxisValues::Temperature(vec![0.5, 0.7]).apply(1, &mut req);
        AxisValues::TopK(vec![None, Some(4)]).apply(1, &mut req);
        AxisValues::TopP(vec![0.9]).apply(0, &mut req);
        assert_eq!((req.cfg_schedule.as_str(), req.seeds.as_slice(), req.temperature, req.top_k, req.top_p), ("2.5", &[9][..], 0.7, Some(4), 0.9));
        let k = AxisValues::TopK(vec![None, Some(16)]);
        assert_eq!((k.label(0), k.label(1), k.x(1), k.len()), ("top-k all".to_string(), "top-k 16".to_string(), 16.0, 2));
        assert_eq!(k.to_json(), serde_json::json!({"axis": "top-k", "values": [null, 16]}));
    }
}

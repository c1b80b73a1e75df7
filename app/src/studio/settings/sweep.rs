//! Sweep settings: which sampling parameter the rows and the columns vary, and the values of
//! every parameter (kept per parameter, so switching an axis back finds its values again).

use hitvideo_engine::generator::lists;

use super::MAX_SEEDS;
use crate::studio::jobs::{AxisValues, SweepAxis};

/// Most values one axis may take.
pub const MAX_AXIS_VALUES: usize = 16;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SweepSettings {
    /// The parameter varied down the rows.
    pub rows: SweepAxis,
    /// The parameter varied across the columns.
    pub columns: SweepAxis,
    /// CFG scales (`1,3,5,7.5`).
    pub cfgs: String,
    /// Seeds (`0-1` or `1,5,9`).
    pub seeds: String,
    /// Temperatures (`0.7,1,1.3`).
    pub temperatures: String,
    /// Top-k values (`0,16,64`; 0 keeps every token).
    pub top_ks: String,
    /// Top-p values (`0.8,0.95,1`).
    pub top_ps: String,
}

impl Default for SweepSettings {
    fn default() -> Self {
        Self {
            rows: SweepAxis::Cfg,
            columns: SweepAxis::Seed,
            cfgs: "1,2.5,5,7.5".into(),
            seeds: "0-1".into(),
            temperatures: "0.7,1,1.3".into(),
            top_ks: "0,16,64".into(),
            top_ps: "0.8,0.95,1".into(),
        }
    }
}

/// Parses a list of numbers each of which `ok` accepts; `what` and `hint` go into the message.
fn parse_numbers<T: std::str::FromStr + Copy>(text: &str, what: &str, ok: impl Fn(T) -> bool, hint: &str) -> Result<Vec<T>, String> {
    let v: Vec<T> = text
        .split(',')
        .map(|s| s.trim().parse::<T>().ok().filter(|x| ok(*x)).ok_or_else(|| format!("{what} list '{}': '{}' is not {hint}", text.trim(), s.trim())))
        .collect::<Result<_, _>>()?;
    if v.is_empty() || v.len() > MAX_AXIS_VALUES {
        return Err(format!("{what} list '{}': give between 1 and {MAX_AXIS_VALUES} values", text.trim()));
    }
    Ok(v)
}

impl SweepSettings {
    /// The text field holding `axis`'s values.
    pub fn values_mut(&mut self, axis: SweepAxis) -> &mut String {
        match axis {
            SweepAxis::Cfg => &mut self.cfgs,
            SweepAxis::Seed => &mut self.seeds,
            SweepAxis::Temperature => &mut self.temperatures,
            SweepAxis::TopK => &mut self.top_ks,
            SweepAxis::TopP => &mut self.top_ps,
        }
    }

    /// The parsed values of `axis`, or a message naming the field and the fix.
    pub fn values(&self, axis: SweepAxis) -> Result<AxisValues, String> {
        Ok(match axis {
            SweepAxis::Cfg => AxisValues::Cfg(lists::parse_cfgs(&self.cfgs, MAX_AXIS_VALUES).map_err(|e| e.to_string())?),
            SweepAxis::Seed => {
                let seeds = lists::parse_seeds(&self.seeds, MAX_SEEDS).map_err(|e| e.to_string())?;
                if seeds.len() > MAX_AXIS_VALUES {
                    return Err(format!("seeds '{}': a sweep axis takes at most {MAX_AXIS_VALUES} values", self.seeds.trim()));
                }
                AxisValues::Seed(seeds)
            }
            SweepAxis::Temperature => AxisValues::Temperature(parse_numbers(
                &self.temperatures,
                "temperature",
                |t: f32| t.is_finite() && t > 0.0,
                "a number > 0; write e.g. 0.7,1,1.3",
            )?),
            SweepAxis::TopK => AxisValues::TopK(
                parse_numbers(&self.top_ks, "top-k", |_: usize| true, "a whole number >= 0 (0 keeps every token); write e.g. 0,16,64")?
                    .into_iter()
                    .map(|k| (k > 0).then_some(k))
                    .collect(),
            ),
            SweepAxis::TopP => {
                AxisValues::TopP(parse_numbers(&self.top_ps, "top-p", |p: f32| p > 0.0 && p <= 1.0, "a number in (0, 1]; write e.g. 0.8,0.95,1")?)
            }
        })
    }

    /// The row and column values; the two axes must differ.
    pub fn axes(&self) -> Result<(AxisValues, AxisValues), String> {
        if self.rows == self.columns {
            return Err(format!("rows and columns both vary {}; choose two different parameters", self.rows.label()));
        }
        Ok((self.values(self.rows)?, self.values(self.columns)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::studio::settings::Settings;

    #[test]
    fn sweep_axes_parse_explain_and_old_settings_load() {
        let mut s = SweepSettings { rows: SweepAxis::Temperature, columns: SweepAxis::TopK, ..Default::default() };
        s.temperatures = "0.5, 1.5".into();
        s.top_ks = "0,8".into();
        assert_eq!(s.axes(), Ok((AxisValues::Temperature(vec![0.5, 1.5]), AxisValues::TopK(vec![None, Some(8)]))));
        s.top_ps = "0.9,1.2".into();
        s.columns = SweepAxis::TopP;
        assert!(s.axes().expect_err("top-p 1.2").contains("'1.2' is not a number in (0, 1]"));
        s.columns = SweepAxis::Temperature;
        assert!(s.axes().expect_err("same axis").contains("choose two different parameters"));
        s.temperatures = "0".into();
        assert!(s.values(SweepAxis::Temperature).expect_err("zero").contains("> 0"));
        // Settings saved before sweep axes existed still load: CFG rows, seed columns.
        let old: Settings = serde_json::from_str(r#"{"sweep":{"cfgs":"2,4","seeds":"3-4"}}"#).expect("old settings load");
        assert_eq!((old.sweep.rows, old.sweep.columns, old.sweep.cfgs.as_str()), (SweepAxis::Cfg, SweepAxis::Seed, "2,4"));
        assert_eq!(old.sweep.axes(), Ok((AxisValues::Cfg(vec![2.0, 4.0]), AxisValues::Seed(vec![3, 4]))));
    }
}

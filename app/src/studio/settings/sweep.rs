//! Sweep settings: which sampling parameter the rows and the columns vary, and the values of
//! every parameter (kept per parameter, so switching an axis back finds its values again).

use super::SettingsError;
use hitvideo_engine::eval::sweep::AxisError;

use crate::studio::jobs::{AxisValues, SweepAxis};

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

    /// The parsed values of `axis` (the engine's sweep syntax), or a message naming the field
    /// and the fix.
    pub fn values(&self, axis: SweepAxis) -> Result<AxisValues, SettingsError> {
        let text = match axis {
            SweepAxis::Cfg => &self.cfgs,
            SweepAxis::Seed => &self.seeds,
            SweepAxis::Temperature => &self.temperatures,
            SweepAxis::TopK => &self.top_ks,
            SweepAxis::TopP => &self.top_ps,
        };
        Ok(AxisValues::parse(axis, text)?)
    }

    /// The row and column values; the two axes must differ.
    pub fn axes(&self) -> Result<(AxisValues, AxisValues), SettingsError> {
        if self.rows == self.columns {
            return Err(AxisError::Same(self.rows.label()).into());
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
        assert!(s.axes().expect_err("top-p 1.2").to_string().contains("'1.2' is not a number in (0, 1]"));
        s.columns = SweepAxis::Temperature;
        assert!(s.axes().expect_err("same axis").to_string().contains("choose two different parameters"));
        s.temperatures = "0".into();
        assert!(s.values(SweepAxis::Temperature).expect_err("zero").to_string().contains("> 0"));
        // Settings saved before sweep axes existed still load: CFG rows, seed columns.
        let old: Settings = serde_json::from_str(r#"{"sweep":{"cfgs":"2,4","seeds":"3-4"}}"#).expect("old settings load");
        assert_eq!((old.sweep.rows, old.sweep.columns, old.sweep.cfgs.as_str()), (SweepAxis::Cfg, SweepAxis::Seed, "2,4"));
        assert_eq!(old.sweep.axes(), Ok((AxisValues::Cfg(vec![2.0, 4.0]), AxisValues::Seed(vec![3, 4]))));
    }
}

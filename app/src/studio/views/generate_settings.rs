//! The Generate view's settings grid (prompt, CFG schedule, seeds, sampling, batch) and the
//! short seed-list text of its queue rows.

use eframe::egui;

use crate::studio::settings::{GenerateSettings, ScheduleKind, SeedMode};

pub(super) fn settings_ui(ui: &mut egui::Ui, s: &mut GenerateSettings) {
    egui::Grid::new("gen-settings").num_columns(2).show(ui, |ui| {
        let l = ui.label("prompt");
        let width = (ui.available_width() - 8.0).clamp(160.0, 420.0);
        ui.add(egui::TextEdit::multiline(&mut s.prompt).desired_rows(2).desired_width(width).id_salt("prompt")).labelled_by(l.id);
        ui.end_row();
        let l = ui.label("negative prompt");
        ui.add(egui::TextEdit::singleline(&mut s.negative).desired_width(width).id_salt("negative")).labelled_by(l.id);
        ui.end_row();
        ui.label("CFG");
        ui.horizontal(|ui| {
            ui.radio_value(&mut s.schedule, ScheduleKind::Constant, "constant");
            ui.radio_value(&mut s.schedule, ScheduleKind::Linear, "linear ramp");
            ui.radio_value(&mut s.schedule, ScheduleKind::PerLayer, "per layer");
            match s.schedule {
                ScheduleKind::Constant => {
                    ui.add(egui::DragValue::new(&mut s.cfg).speed(0.1).range(0.0..=30.0).prefix("scale "));
                }
                ScheduleKind::Linear => {
                    ui.add(egui::DragValue::new(&mut s.cfg_from).speed(0.1).range(0.0..=30.0).prefix("from "));
                    ui.add(egui::DragValue::new(&mut s.cfg).speed(0.1).range(0.0..=30.0).prefix("to "));
                }
                ScheduleKind::PerLayer => {
                    let l = ui.label("values");
                    ui.add(egui::TextEdit::singleline(&mut s.per_layer).desired_width(120.0).id_salt("per-layer")).labelled_by(l.id);
                }
            }
        });
        ui.end_row();
        ui.label("seed");
        ui.horizontal(|ui| {
            ui.radio_value(&mut s.seed_mode, SeedMode::Random, "random");
            ui.radio_value(&mut s.seed_mode, SeedMode::Locked, "locked");
            ui.radio_value(&mut s.seed_mode, SeedMode::Range, "range");
            match s.seed_mode {
                SeedMode::Range => {
                    let l = ui.label("seeds");
                    ui.add(egui::TextEdit::singleline(&mut s.seed_range).desired_width(80.0).id_salt("seed-range")).labelled_by(l.id)
                }
                _ => ui.add(egui::DragValue::new(&mut s.seed).prefix("seed ")),
            };
        });
        ui.end_row();
        ui.label("sampling");
        ui.horizontal(|ui| {
            ui.add(egui::DragValue::new(&mut s.temperature).speed(0.01).range(0.05..=5.0).prefix("temperature "));
            ui.add(egui::DragValue::new(&mut s.top_k).range(0..=1 << 18).prefix("top-k ")).on_hover_text("0 keeps every token");
            ui.add(egui::DragValue::new(&mut s.top_p).speed(0.01).range(0.01..=1.0).prefix("top-p "));
        });
        ui.end_row();
        let l = ui.label("batch");
        ui.add_enabled(s.seed_mode != SeedMode::Range, egui::DragValue::new(&mut s.batch).range(1..=8)).labelled_by(l.id);
        ui.end_row();
    });
}

/// A short description of a request's seeds: the list when short, else its range or ends.
pub(super) fn seeds_text(seeds: &[u64]) -> String {
    match seeds {
        [] => "no seeds".into(),
        [one] => format!("seed {one}"),
        _ if seeds.len() <= 4 => format!("seeds {}", seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
        [first, .., last] if seeds.windows(2).all(|w| w[1] == w[0] + 1) => format!("seeds {first}–{last} ({} clips)", seeds.len()),
        [first, second, .., last] => format!("seeds {first}, {second}, …, {last} ({} clips)", seeds.len()),
        _ => format!("{} seeds", seeds.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::seeds_text;

    #[test]
    fn seed_lists_are_summarized() {
        assert_eq!(seeds_text(&[7]), "seed 7");
        assert_eq!(seeds_text(&[1, 5, 9]), "seeds 1, 5, 9");
        assert_eq!(seeds_text(&(0..64).collect::<Vec<_>>()), "seeds 0–63 (64 clips)");
        assert_eq!(seeds_text(&[1, 5, 9, 10, 11]), "seeds 1, 5, …, 11 (5 clips)");
    }
}

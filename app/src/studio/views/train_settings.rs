//! The train view's settings form (a separate file to keep the view readable).

use std::path::PathBuf;

use eframe::egui;
use hitvideo_engine::device::DeviceChoice;
use hitvideo_engine::generator::config::PRESETS as GENERATOR_PRESETS;
use hitvideo_engine::tokenizer::config::PRESETS;

use crate::studio::dialogs::{DialogPurpose, DialogSpec, Dialogs};
use crate::studio::settings::{TrainSettings, TrainTarget};

fn combo(ui: &mut egui::Ui, label: &str, value: &mut String, options: &[&str]) {
    let l = ui.label(label);
    egui::ComboBox::from_id_salt(label)
        .selected_text(value.clone())
        .show_ui(ui, |ui| {
            for o in options {
                ui.selectable_value(value, o.to_string(), *o);
            }
        })
        .response
        .labelled_by(l.id);
    ui.end_row();
}

fn number<T: egui::emath::Numeric>(ui: &mut egui::Ui, label: &str, v: &mut T, range: std::ops::RangeInclusive<T>) {
    let l = ui.label(label);
    ui.add(egui::DragValue::new(v).range(range)).labelled_by(l.id);
    ui.end_row();
}

/// The form; `last_tokenizer` is this session's newest tokenizer checkpoint, `general` the
/// model bundle's general tokenizer. The folders are chosen in `dialogs` (the app sets them,
/// see [`DialogPurpose::TrainTokenizer`] and [`DialogPurpose::TrainDataset`]).
pub fn settings_ui(
    ui: &mut egui::Ui,
    dialogs: &mut Dialogs,
    s: &mut TrainSettings,
    device: &mut DeviceChoice,
    last_tokenizer: Option<&PathBuf>,
    general: Option<&PathBuf>,
) {
    egui::Grid::new("train-settings").num_columns(2).show(ui, |ui| {
        ui.label("model");
        ui.horizontal(|ui| {
            ui.radio_value(&mut s.target, TrainTarget::Tokenizer, "tokenizer");
            ui.radio_value(&mut s.target, TrainTarget::Generator, "generator");
        });
        ui.end_row();
        match s.target {
            TrainTarget::Tokenizer => {
                if let Some(g) = general {
                    ui.label("start from");
                    ui.horizontal(|ui| {
                        ui.radio_value(&mut s.finetune_general, false, "a new network");
                        ui.radio_value(&mut s.finetune_general, true, "the general tokenizer (fine-tune)").on_hover_text(format!("{}", g.display()));
                    });
                    ui.end_row();
                }
                if s.finetune_general && general.is_some() {
                    ui.label("preset");
                    ui.label("general64 (the general tokenizer's)");
                    ui.end_row();
                } else {
                    combo(ui, "preset", &mut s.preset, &PRESETS);
                }
            }
            TrainTarget::Generator => {
                combo(ui, "generator preset", &mut s.generator_preset, &GENERATOR_PRESETS);
                ui.label("tokenizer");
                ui.horizontal(|ui| {
                    let pick = ui.add_enabled(!dialogs.is_open(), egui::Button::new("Tokenizer…"));
                    if pick.on_hover_text("the tokenizer checkpoint whose tokens the generator learns").clicked() {
                        dialogs.open(DialogPurpose::TrainTokenizer, DialogSpec::pick_folder().title("Tokenizer checkpoint folder"));
                    }
                    if let Some(last) = last_tokenizer
                        && ui.button("Use the last tokenizer checkpoint").clicked()
                    {
                        s.tokenizer = Some(last.clone());
                    }
                    ui.label(s.tokenizer.as_ref().map_or("none chosen".to_string(), |p| p.display().to_string()));
                });
                ui.end_row();
                combo(ui, "text encoder", &mut s.text_encoder, &["auto", "minilm", "small"]);
            }
        }
        ui.label("dataset");
        ui.horizontal(|ui| {
            let shapes = s.folder.is_none() && !s.photos;
            if ui.radio(shapes, "synthetic shapes").clicked() {
                s.folder = None;
                s.photos = false;
            }
            let photos = s.folder.is_none() && s.photos;
            if s.target == TrainTarget::Tokenizer
                && ui.radio(photos, "photo world").on_hover_text("clips made from the installed photographs: camera pans, zooms and moving cut-outs").clicked()
            {
                s.folder = None;
                s.photos = true;
            }
            if ui.add_enabled(!dialogs.is_open(), egui::Button::new("Import folder…")).clicked() {
                dialogs.open(DialogPurpose::TrainDataset, DialogSpec::pick_folder().title("Dataset folder (from `hitvideo data import`)"));
            }
            match &s.folder {
                Some(f) => ui.label(f.display().to_string()),
                None if s.photos => ui.label(""),
                None => ui.add(egui::DragValue::new(&mut s.synthetic_count).range(16..=100_000).prefix("clips ")),
            };
        });
        ui.end_row();
        number(ui, "steps", &mut s.steps, 1..=1_000_000);
        number(ui, "batch", &mut s.batch, 1..=256);
        number(ui, "accumulate", &mut s.accumulate, 1..=64);
        let l = ui.label("learning rate");
        ui.add(egui::DragValue::new(&mut s.lr).speed(1e-5).range(1e-6..=1.0)).labelled_by(l.id);
        ui.end_row();
        number(ui, "validate every", &mut s.val_every, 1..=100_000);
        number(ui, "validation clips", &mut s.val_clips, 1..=1024);
        number(ui, "checkpoint every", &mut s.checkpoint_every, 1..=100_000);
        let l = ui.label("device");
        egui::ComboBox::from_id_salt("train-device")
            .selected_text(device.to_string())
            .show_ui(ui, |ui| {
                for d in DeviceChoice::ALL {
                    ui.selectable_value(device, d, d.to_string());
                }
            })
            .response
            .labelled_by(l.id);
        ui.end_row();
    });
}

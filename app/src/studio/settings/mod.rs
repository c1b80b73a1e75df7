//! Everything the studio remembers between runs (eframe storage, key [`SETTINGS_KEY`]), and
//! the conversion of view settings into engine requests. Unknown or missing fields fall back
//! to their defaults, so settings written by an older version still load.

use std::path::PathBuf;

use hitvideo_engine::device::DeviceChoice;

use hitvideo_engine::service::text::EncoderChoice;
use hitvideo_engine::tokenizer::FillStrategy;

use super::jobs::{DataChoice, RunPreset, TrainRequest};

mod generate;
mod sweep;

pub use generate::{EXPORT_SCALES, GenerateSettings, MAX_SEEDS, QueuedGeneration, ScheduleKind, SeedMode};
pub use sweep::SweepSettings;

/// The eframe storage key.
pub const SETTINGS_KEY: &str = "hitvideo-settings";
/// Where saved settings that could not be read are kept (in the same storage), so a later
/// version or a person can still recover them.
pub const UNREADABLE_KEY: &str = "hitvideo-settings-unreadable";

/// Settings read back from storage, with what the studio must tell about reading them.
#[derive(Debug, Default)]
pub struct Loaded {
    pub settings: Settings,
    /// Problems to show as notices (settings reset, queued generations dropped).
    pub notices: Vec<String>,
    /// The stored text when it could not be read, to be kept under [`UNREADABLE_KEY`].
    pub unreadable: Option<String>,
}

/// Reads the settings saved under [`SETTINGS_KEY`] (RON, as eframe stores them). Text that
/// does not read gives the defaults, a notice, and the text back to keep; a queued generation
/// that does not read is dropped with a notice while everything else loads.
pub fn load(stored: Option<String>) -> Loaded {
    let Some(text) = stored else { return Loaded::default() };
    match ron::from_str::<Settings>(&text) {
        Ok(settings) => {
            let dropped = settings.generate.queue.unreadable;
            let notices = (dropped > 0)
                .then(|| format!("{dropped} queued generation(s) saved with the settings could not be read (a CFG schedule edited by hand?) and were dropped; queue them again"))
                .into_iter()
                .collect();
            Loaded { settings, notices, unreadable: None }
        }
        Err(e) => Loaded {
            settings: Settings::default(),
            notices: vec![format!(
                "the saved settings could not be read ({e}); the studio starts with its defaults, and the old settings are kept in its storage under \"{UNREADABLE_KEY}\""
            )],
            unreadable: Some(text),
        },
    }
}

/// Why settings cannot become an engine request; each message names the field and the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    List(#[from] hitvideo_engine::generator::lists::ListError),
    #[error(transparent)]
    Axis(#[from] hitvideo_engine::eval::sweep::AxisError),
    #[error(transparent)]
    TokenizerPreset(#[from] hitvideo_engine::tokenizer::config::ConfigError),
    #[error(transparent)]
    GeneratorPreset(#[from] hitvideo_engine::generator::config::GeneratorConfigError),
    /// The sampling settings as the engine reads them.
    #[error(transparent)]
    Sampling(#[from] hitvideo_engine::generator::SamplingError),
    /// The CFG schedule as the engine reads it.
    #[error(transparent)]
    Schedule(#[from] hitvideo_engine::generator::ScheduleError),
    /// A field's value cannot be used.
    #[error("{0}")]
    Field(String),
}

impl From<String> for SettingsError {
    fn from(why: String) -> Self {
        SettingsError::Field(why)
    }
}

impl From<&str> for SettingsError {
    fn from(why: &str) -> Self {
        SettingsError::Field(why.to_string())
    }
}

/// The studio's views.

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
pub enum View {
    #[default]
    Generate,
    Tokens,
    Sweep,
    Train,
    Data,
    Compare,
}

impl View {
    pub const ALL: [View; 6] = [View::Generate, View::Tokens, View::Sweep, View::Compare, View::Train, View::Data];
    pub fn label(self) -> &'static str {
        match self {
            View::Generate => "Generate",
            View::Tokens => "Tokens",
            View::Sweep => "Sweep",
            View::Train => "Train",
            View::Data => "Data",
            View::Compare => "Compare",
        }
    }
}

/// How token maps are coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
pub enum ColorMode {
    /// A distinct colour per token id.
    #[default]
    Id,
    /// Nearby colours for codes that differ in few bits.
    Similarity,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TokensSettings {
    pub layer: usize,
    pub color: ColorMode,
    pub show_mask: bool,
    /// Layers used by the reconstruction shown beside the original (0 = all).
    pub k: usize,
    /// Redundancy-mask cap (largest masked fraction of a layer's maskable tokens).
    pub cap: f64,
    /// Redundancy tolerance: tokens changed by more than this fraction of their bits are never
    /// masked (0: only unchanged tokens).
    pub tolerance: f64,
    /// Fill strategy of the masked decode (saved as `repeat`, `zero` or `learned`).
    pub fill: FillStrategy,
    /// Video files and clips through the bundle's general tokenizer (real footage) when it
    /// is loaded, rather than the loaded (shapes or your own) tokenizer.
    pub general: bool,
}

impl Default for TokensSettings {
    fn default() -> Self {
        Self { layer: 0, color: ColorMode::Id, show_mask: false, k: 0, cap: 0.85, tolerance: 0.0, fill: FillStrategy::Repeat, general: true }
    }
}

/// Which model the train view trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
pub enum TrainTarget {
    #[default]
    Tokenizer,
    Generator,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TrainSettings {
    pub target: TrainTarget,
    pub preset: String,
    /// `None`: synthetic shapes, or the photo world when `photos` is set.
    pub folder: Option<PathBuf>,
    /// Tokenizer runs without a folder: clips of the photo world instead of the shapes.
    pub photos: bool,
    /// Tokenizer runs: fine-tune the model bundle's general tokenizer (when it has one)
    /// instead of training `preset` from scratch.
    pub finetune_general: bool,
    pub synthetic_count: usize,
    pub data_seed: u64,
    pub steps: usize,
    pub batch: usize,
    /// Micro-batches of `batch` per optimizer step (gradient accumulation).
    pub accumulate: usize,
    pub lr: f64,
    pub warmup: usize,
    pub val_every: usize,
    pub val_clips: usize,
    pub checkpoint_every: usize,
    pub seed: u64,
    /// Where new run folders are made (`None`: the studio's work folder).
    pub runs_dir: Option<PathBuf>,
    /// Generator runs: the tokenizer checkpoint whose tokens the generator learns.
    pub tokenizer: Option<PathBuf>,
    /// Generator runs: `auto` (MiniLM when installed), `minilm` or `small`.
    pub text_encoder: String,
    /// Generator preset (tokenizer runs use `preset`).
    pub generator_preset: String,
    /// The run folder last started or opened (reopened, paused, when the studio starts).
    pub last_run: Option<PathBuf>,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            target: TrainTarget::Tokenizer,
            preset: "tiny".into(),
            folder: None,
            photos: false,
            finetune_general: false,
            synthetic_count: 4000,
            data_seed: 0,
            steps: 2000,
            batch: 8,
            accumulate: 1,
            lr: 1e-3,
            warmup: 50,
            val_every: 100,
            val_clips: 8,
            checkpoint_every: 250,
            seed: 0,
            runs_dir: None,
            tokenizer: None,
            text_encoder: "auto".into(),
            generator_preset: "tiny".into(),
            last_run: None,
        }
    }
}

impl TrainSettings {
    /// The preset of the run these settings start (the saved names parsed here, where they
    /// enter a request or a task: a hand-edited settings file may hold any text).
    pub fn run_preset(&self) -> Result<RunPreset, SettingsError> {
        Ok(match self.target {
            TrainTarget::Generator => RunPreset::Generator(self.generator_preset.parse()?),
            TrainTarget::Tokenizer => RunPreset::Tokenizer(self.preset.parse()?),
        })
    }

    /// The memory estimate's preset and, for a generator, its tokenizer checkpoint and text
    /// encoder (`None` when no tokenizer is chosen yet).
    pub fn estimate_args(&self) -> Result<(RunPreset, Option<(PathBuf, EncoderChoice)>), SettingsError> {
        let on = match (&self.tokenizer, self.target) {
            (Some(tok), TrainTarget::Generator) => {
                Some((tok.clone(), self.text_encoder.parse::<EncoderChoice>().map_err(|e| SettingsError::Field(e.to_string()))?))
            }
            _ => None,
        };
        Ok((self.run_preset()?, on))
    }

    /// The request for a run in `run_dir`; `general` is the model bundle's general tokenizer
    /// (what `finetune_general` starts from).
    pub fn request(&self, run_dir: PathBuf, resume: bool, general: Option<&PathBuf>) -> Result<TrainRequest, SettingsError> {
        if self.steps == 0 || self.batch == 0 || self.accumulate == 0 || self.val_clips == 0 || self.val_every == 0 || self.checkpoint_every == 0 {
            return Err("steps, batch, accumulate, validation clips, validate-every and checkpoint-every must all be at least 1".into());
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(format!("learning rate {} is not a positive number; try 1e-3", self.lr).into());
        }
        let data = match &self.folder {
            Some(dir) if !dir.is_dir() => {
                return Err(format!("dataset folder {} does not exist; choose a folder made by `hitvideo data import`", dir.display()).into());
            }
            Some(dir) => DataChoice::Folder(dir.clone()),
            None if self.photos && self.target == TrainTarget::Generator => {
                return Err("the photo world has no captions: train the generator on the synthetic shapes or a captioned dataset folder".into());
            }
            None if self.photos => DataChoice::Photos { seed: self.data_seed },
            None => DataChoice::Shapes { count: self.synthetic_count.max(16), seed: self.data_seed },
        };
        let generator = self.target == TrainTarget::Generator;
        if generator && !resume && self.tokenizer.is_none() {
            return Err("choose the tokenizer checkpoint whose tokens the generator learns (Tokenizer…)".into());
        }
        let finetune_from = match (self.finetune_general && !generator, general) {
            (false, _) => None,
            (true, Some(g)) => Some(g.clone()),
            (true, None) => return Err("there is no general tokenizer to fine-tune: the model bundle has none (hitvideo models add-general)".into()),
        };
        Ok(TrainRequest {
            finetune_from,
            run_dir,
            resume,
            preset: self.run_preset()?,
            data,
            steps: self.steps,
            batch: self.batch,
            accumulate: self.accumulate,
            lr: self.lr,
            warmup: self.warmup,
            val_every: self.val_every,
            val_clips: self.val_clips,
            checkpoint_every: self.checkpoint_every,
            seed: self.seed,
            tokenizer: self.tokenizer.clone(),
            text_encoder: self.text_encoder.clone(),
        })
    }
}

/// Settings kept between runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, Default)]
#[serde(default)]
pub struct Settings {
    pub view: View,
    pub device: DeviceChoice,
    pub show_debug: bool,
    pub synth_seed: u64,
    pub last_video: Option<PathBuf>,
    pub generate: GenerateSettings,
    pub tokens: TokensSettings,
    pub sweep: SweepSettings,
    pub train: TrainSettings,
}

#[cfg(test)]
mod tests {
    use super::*;
    use hitvideo_engine::generator::CfgSchedule;
    use hitvideo_engine::video::ExportMetadata;

    #[test]
    fn settings_survive_json_and_restore_from_metadata() {
        let mut s = Settings::default();
        s.generate.prompt = "a blue square rises".into();
        s.train.steps = 7;
        let back: Settings = serde_json::from_str(&serde_json::to_string(&s).expect("json")).expect("parse");
        assert_eq!(back, s);
        let old: Settings = serde_json::from_str(r#"{"view":"Train","synth_seed":3}"#).expect("old settings load");
        assert_eq!((old.view, old.synth_seed, old.train.steps, old.train.last_run), (View::Train, 3, 2000, None));
        let video = hitvideo_engine::video::Video::new(8, 8, 8.0);
        let mut meta = ExportMetadata::for_video(&video);
        meta.prompt = Some("a green triangle".into());
        meta.seed = Some(42);
        meta.cfg_schedule = Some(CfgSchedule::parse("linear:1:6").expect("schedule"));
        let mut g = GenerateSettings::default();
        g.restore(&meta);
        assert_eq!((g.prompt.as_str(), g.seed, g.seed_mode, g.schedule), ("a green triangle", 42, SeedMode::Locked, ScheduleKind::Linear));
        assert_eq!(g.schedule().map(|c| c.to_string()), Ok("linear:1:6".into()));
        meta.cfg_schedule = Some(CfgSchedule::parse("1,3,4").expect("schedule"));
        g.restore(&meta);
        assert_eq!((g.schedule, g.per_layer.as_str(), g.schedule().ok().and_then(|c| c.finest())), (ScheduleKind::PerLayer, "1,3,4", Some(4.0)));
        assert_eq!(g.seeds(0), Ok(vec![42]));
        // The CFG schedule and the sampling settings are parsed where they enter.
        let bad = GenerateSettings { prompt: "a red circle".into(), schedule: ScheduleKind::PerLayer, per_layer: "1,x".into(), ..GenerateSettings::default() };
        assert!(matches!(bad.request(0), Err(SettingsError::Schedule(_))), "{:?}", bad.request(0));
        let negative = GenerateSettings { prompt: "a red circle".into(), schedule: ScheduleKind::Linear, cfg_from: -1.0, ..GenerateSettings::default() };
        assert!(matches!(negative.sweep_base(), Err(SettingsError::Schedule(_))));
        let hot = GenerateSettings { prompt: "a red circle".into(), temperature: 0.0, ..GenerateSettings::default() };
        assert!(matches!(hot.sweep_base(), Err(SettingsError::Sampling(_))));
    }

    #[test]
    fn stored_settings_that_do_not_read_are_reported_and_kept() {
        assert!(load(None).notices.is_empty());
        let mut s = Settings::default();
        s.generate.prompt = "a blue square rises".into();
        for (number, cfg) in [(1, "linear:1:5"), (2, "2.5")] {
            let request = s.generate.request_for("p".into(), None, vec![number], CfgSchedule::parse(cfg).expect("schedule"));
            s.generate.queue.push(QueuedGeneration { number, request, paused: false });
        }
        let text = ron::to_string(&s).expect("ron");
        let back = load(Some(text.clone()));
        assert_eq!((back.settings, back.notices.len(), back.unreadable), (s.clone(), 0, None));
        // A schedule edited by hand: that item is dropped, the other and every setting stay.
        assert!(text.contains("\"linear:1:5\""), "{text}");
        let back = load(Some(text.replace("\"linear:1:5\"", "\"linear:1..5\"")));
        assert_eq!(
            (back.settings.generate.prompt.as_str(), back.settings.generate.queue.len(), back.settings.generate.queue.unreadable),
            ("a blue square rises", 1, 1)
        );
        assert_eq!(back.settings.generate.queue[0].number, 2);
        assert!(back.notices[0].contains("1 queued generation(s)"), "{:?}", back.notices);
        // Text that is not settings at all: defaults, a notice, and the text kept.
        let back = load(Some("(view: Nowhere".into()));
        assert_eq!((back.settings, back.unreadable.as_deref()), (Settings::default(), Some("(view: Nowhere")));
        assert!(back.notices[0].contains(UNREADABLE_KEY), "{:?}", back.notices);
    }

    #[test]
    fn train_requests_carry_accumulation_and_refuse_zero() {
        let old: TrainSettings = serde_json::from_str(r#"{"batch":4}"#).expect("settings from before accumulation");
        assert_eq!((old.batch, old.accumulate), (4, 1));
        let s = TrainSettings { accumulate: 3, ..TrainSettings::default() };
        let req = s.request(PathBuf::from("runs/x"), false, None).expect("request");
        assert_eq!((req.batch, req.accumulate), (8, 3));
        // The presets are parsed where the setting enters the request.
        assert_eq!(req.preset, RunPreset::Tokenizer(hitvideo_engine::tokenizer::config::TokenizerPreset::Tiny));
        let bad = TrainSettings { preset: "tiny9".into(), ..TrainSettings::default() }.request(PathBuf::from("runs/x"), false, None);
        assert!(matches!(bad, Err(SettingsError::TokenizerPreset(_))), "{bad:?}");
        let err = TrainSettings { accumulate: 0, ..TrainSettings::default() }.request(PathBuf::from("runs/x"), false, None).unwrap_err();
        assert!(err.to_string().contains("accumulate"), "{err}");
    }

    #[test]
    fn train_requests_name_the_photo_world_and_the_general_tokenizer() {
        let general = PathBuf::from("assets/models/general");
        let s = TrainSettings { photos: true, finetune_general: true, ..TrainSettings::default() };
        let req = s.request(PathBuf::from("runs/x"), false, Some(&general)).expect("request");
        assert_eq!((req.data, req.finetune_from), (DataChoice::Photos { seed: 0 }, Some(general.clone())));
        // Without a general tokenizer in the bundle, the fine-tune is refused with the fix.
        let err = s.request(PathBuf::from("runs/x"), false, None).unwrap_err();
        assert!(err.to_string().contains("add-general"), "{err}");
        // The generator has no captions to learn from in the photo world.
        let g = TrainSettings { photos: true, target: TrainTarget::Generator, tokenizer: Some(general.clone()), ..TrainSettings::default() };
        assert!(g.request(PathBuf::from("runs/x"), false, Some(&general)).unwrap_err().to_string().contains("captions"));
    }
}

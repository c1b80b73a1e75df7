//! Generation settings: prompt, CFG schedule, seeds and sampling, their parsing into an
//! engine request, and restoring them from an export's metadata.

use hitvideo_engine::generator::{CfgSchedule, SamplingConfig, lists};
use hitvideo_engine::video::ExportMetadata;

use super::SettingsError;
use crate::studio::jobs::GenerateRequest;

/// A generation waiting in the studio's queue (saved with the settings, so the queue
/// survives a restart); the queue feeds the engine one generation at a time.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QueuedGeneration {
    /// A number for the queue's rows (`#n`), unique within the queue.
    pub number: u64,
    pub request: GenerateRequest,
    /// Held back: the queue starts the next item that is not paused.
    pub paused: bool,
}

/// The generation queue as saved with the settings. An item the studio can no longer read
/// (say a CFG schedule edited by hand) is dropped and counted in `unreadable`, so the rest of
/// the queue and every other setting still load; the studio says how many were dropped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Queue {
    pub items: Vec<QueuedGeneration>,
    /// Items found in storage that could not be read (not saved again).
    pub unreadable: usize,
}

impl std::ops::Deref for Queue {
    type Target = Vec<QueuedGeneration>;
    fn deref(&self) -> &Vec<QueuedGeneration> {
        &self.items
    }
}

impl std::ops::DerefMut for Queue {
    fn deref_mut(&mut self) -> &mut Vec<QueuedGeneration> {
        &mut self.items
    }
}

impl serde::Serialize for Queue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.items.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Queue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Item {
            Read(QueuedGeneration),
            Unreadable(serde::de::IgnoredAny),
        }
        let mut queue = Queue::default();
        for item in Vec::<Item>::deserialize(d)? {
            match item {
                Item::Read(q) => queue.items.push(q),
                Item::Unreadable(_) => queue.unreadable += 1,
            }
        }
        Ok(queue)
    }
}

/// The export scales the Generate view offers (nearest-neighbour enlargement).
pub const EXPORT_SCALES: [u32; 3] = [1, 4, 8];

/// Most seeds one request may name (a range is a batch).
pub const MAX_SEEDS: usize = 64;

/// How CFG varies across token layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
pub enum ScheduleKind {
    #[default]
    Constant,
    /// From `cfg_from` at the coarsest layer to `cfg` at the finest.
    Linear,
    /// One value per layer, written as a list.
    PerLayer,
}

/// How seeds are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
pub enum SeedMode {
    /// A new random seed per generation (shown, so it can be locked afterwards).
    #[default]
    Random,
    /// Always `seed`.
    Locked,
    /// Every seed of `seed_range` (`0-3` or `1,5,9`), one clip each.
    Range,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct GenerateSettings {
    /// Nearest-neighbour enlargement of exports (one of [`EXPORT_SCALES`]).
    pub export_scale: u32,
    pub prompt: String,
    pub negative: String,
    pub cfg: f32,
    pub cfg_from: f32,
    pub schedule: ScheduleKind,
    pub per_layer: String,
    pub seed_mode: SeedMode,
    pub seed: u64,
    pub seed_range: String,
    pub temperature: f32,
    /// 0 keeps every token.
    pub top_k: usize,
    pub top_p: f32,
    /// Clips per generation in random/locked mode (consecutive seeds).
    pub batch: usize,
    /// Coarse layers kept by "Re-roll details".
    pub keep_layers: usize,
    /// Where finished generations are saved and the gallery lists them (`None`: the work
    /// folder's `outputs`).
    pub outputs_dir: Option<std::path::PathBuf>,
    /// Save every finished generation to the outputs folder.
    pub autosave: bool,
    /// Generations waiting to run, first to run first.
    pub queue: Queue,
}

impl Default for GenerateSettings {
    fn default() -> Self {
        Self {
            export_scale: 1,
            prompt: "a red circle moves left".into(),
            negative: String::new(),
            // The demo generator follows held-out color and motion best at 2.5 (docs/results.md).
            cfg: 2.5,
            cfg_from: 1.0,
            schedule: ScheduleKind::Constant,
            per_layer: "1,3,5,7.5".into(),
            seed_mode: SeedMode::Random,
            seed: 0,
            seed_range: "0-3".into(),
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            batch: 1,
            keep_layers: 2,
            outputs_dir: None,
            autosave: true,
            queue: Queue::default(),
        }
    }
}

impl GenerateSettings {
    /// The CFG schedule these fields describe (the per-layer list parsed here, where its text
    /// enters).
    pub fn schedule(&self) -> Result<CfgSchedule, SettingsError> {
        let schedule = match self.schedule {
            ScheduleKind::Constant => CfgSchedule::Constant { scale: self.cfg },
            ScheduleKind::Linear => CfgSchedule::Linear { from: self.cfg_from, to: self.cfg },
            ScheduleKind::PerLayer => CfgSchedule::parse(&self.per_layer)?,
        };
        schedule.validate()?;
        Ok(schedule)
    }

    /// The seeds of the next generation; `random` supplies a fresh seed in random mode.
    pub fn seeds(&self, random: u64) -> Result<Vec<u64>, SettingsError> {
        let start = match self.seed_mode {
            SeedMode::Range => return Ok(lists::parse_seeds(&self.seed_range, MAX_SEEDS)?),
            SeedMode::Random => random,
            SeedMode::Locked => self.seed,
        };
        Ok((0..self.batch.clamp(1, MAX_SEEDS) as u64).map(|i| start.wrapping_add(i)).collect())
    }

    /// The engine request for these settings (checks what the UI can check).
    pub fn request(&self, random: u64) -> Result<GenerateRequest, SettingsError> {
        self.check_prompt()?;
        self.request_with(self.prompt.clone(), self.negative_prompt(), self.seeds(random)?)
    }

    /// The base of a sweep: these settings with the one seed of the seed field (the seed
    /// range is not read, so an unfinished range does not block a sweep).
    pub fn sweep_base(&self) -> Result<GenerateRequest, SettingsError> {
        self.check_prompt()?;
        self.request_with(self.prompt.clone(), self.negative_prompt(), vec![self.seed])
    }

    /// A request for `prompt` and `seeds` with these settings' CFG schedule and sampling.
    pub fn request_with(&self, prompt: String, negative: Option<String>, seeds: Vec<u64>) -> Result<GenerateRequest, SettingsError> {
        Ok(self.request_for(prompt, negative, seeds, self.schedule()?))
    }

    /// A request for `prompt`, `seeds` and the CFG schedule `cfg` with these settings' sampling.
    pub fn request_for(&self, prompt: String, negative: Option<String>, seeds: Vec<u64>, cfg: CfgSchedule) -> GenerateRequest {
        GenerateRequest {
            prompt,
            negative,
            cfg_schedule: cfg,
            seeds,
            temperature: self.temperature,
            top_k: (self.top_k > 0).then_some(self.top_k),
            top_p: self.top_p,
            keep: Vec::new(),
        }
    }

    /// The negative prompt, `None` when blank.
    pub fn negative_prompt(&self) -> Option<String> {
        Some(self.negative.trim().to_string()).filter(|s| !s.is_empty())
    }

    /// What the UI checks before a request goes to the engine: a prompt and sampling settings
    /// the engine reads (the CFG schedule is parsed when the request is made).
    fn check_prompt(&self) -> Result<(), SettingsError> {
        if self.prompt.trim().is_empty() {
            return Err("the prompt is empty; describe the video, e.g. \"a red circle moves left\"".into());
        }
        SamplingConfig { greedy: false, temperature: self.temperature, top_k: (self.top_k > 0).then_some(self.top_k), top_p: self.top_p }.validate()?;
        Ok(())
    }

    /// Restores the settings an export recorded (fields it lacks stay as they are).
    pub fn restore(&mut self, meta: &ExportMetadata) {
        if let Some(p) = &meta.prompt {
            self.prompt = p.clone();
        }
        self.negative = meta.negative_prompt.clone().unwrap_or_default();
        if let Some(s) = meta.seed {
            self.seed = s;
            self.seed_mode = SeedMode::Locked;
            self.batch = 1;
        }
        if let Some(c) = meta.cfg {
            self.cfg = c;
        }
        match &meta.cfg_schedule {
            Some(CfgSchedule::Constant { scale }) => {
                self.schedule = ScheduleKind::Constant;
                self.cfg = *scale;
            }
            Some(CfgSchedule::Linear { from, to }) => {
                self.schedule = ScheduleKind::Linear;
                (self.cfg_from, self.cfg) = (*from, *to);
            }
            Some(per_layer @ CfgSchedule::PerLayer { .. }) => {
                self.schedule = ScheduleKind::PerLayer;
                self.per_layer = per_layer.to_string();
            }
            None => {}
        }
        self.temperature = meta.sampler.temperature.unwrap_or(self.temperature);
        self.top_k = meta.sampler.top_k.unwrap_or(0);
        self.top_p = meta.sampler.top_p.unwrap_or(1.0);
    }
}

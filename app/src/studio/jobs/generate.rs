//! Generation on the engine thread through the engine's text-to-clip `Pipeline`: coarse-to-fine
//! sampling with a preview decoded after every finished layer, re-roll (keep coarse layers),
//! export metadata made by the engine, sweeps over two sampling parameters scored by the
//! analyzer, and decoding an opened export's tokens.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use hitvideo_engine::device::Device;
use hitvideo_engine::eval::sweep::{self, CellSettings, SweepSpec};
use hitvideo_engine::generator::config::GeneratorPreset;
use hitvideo_engine::generator::{ClipRequest, GenEvent, GenerateError, GeneratorConfig, Pipeline, PipelineError, SamplingConfig, TextConditionConfig};
use hitvideo_engine::service::reroll;
use hitvideo_engine::tokenizer::config_sha256;
use hitvideo_engine::video::Video;

use super::error::JobError;
use super::payload::{ClipPayload, SlotName, SweepPayload};
use super::protocol::{DecodeRequest, Event, GenerateRequest, Job, Outcome, SweepRequest};
use super::worker::{LoadedTokenizer, Worker};

/// A generator with its tokenizer (and text encoder), ready to generate.
pub(super) struct LoadedGenerator {
    pub pipeline: Pipeline,
    pub label: String,
}

impl LoadedGenerator {
    /// A copy of the models on `device` (a loaded pipeline is reloaded from its folders there);
    /// `self` is left as it is, so a failed move keeps the models where they were.
    pub fn copy_to(&self, device: &Device) -> Result<Self, JobError> {
        let pipeline = self.pipeline.copy_to(device)?;
        Ok(Self { pipeline, label: self.label.clone() })
    }
}

/// A fresh generator of `preset` (random weights, small text encoder inside) over the loaded
/// tokenizer's layers.
pub(super) fn untrained_generator(w: &mut Worker, preset: GeneratorPreset) -> Result<(), JobError> {
    let tok = w.tokenizer.as_ref().ok_or("no tokenizer")?;
    let cfg = GeneratorConfig::preset_for(preset.name(), &tok.cfg.name, &config_sha256(&tok.cfg), &tok.cfg.layers, TextConditionConfig::for_encoder("small"))?;
    let model = cfg.init(&w.device);
    let pipeline = Pipeline::from_parts(model, cfg, tok.model.clone(), tok.cfg.clone(), None, &w.device);
    w.generator = Some(LoadedGenerator { pipeline, label: format!("{preset} (untrained)") });
    Ok(())
}

/// Loads a generator checkpoint with `tokenizer` or the one its token cache records (which
/// also becomes the tokens view's tokenizer).
/// Loads a generator (and its tokenizer). Cancelled while it reads (the engine loads in one
/// call), the loaded weights are dropped and the models already held are kept.
pub(super) fn load_generator(w: &mut Worker, job: &Job, path: &Path, tokenizer: Option<&Path>) -> Outcome {
    match Pipeline::load(path, tokenizer, None, &w.device) {
        Ok(_) if job.cancel.load(Ordering::Relaxed) => {
            Outcome::Cancelled(format!("loading the generator {} cancelled; the models already loaded are kept", path.display()))
        }
        Ok(p) => {
            let label = format!("{} ({})", p.cfg.name, p.generator_dir.display());
            let tok_label = format!("{} ({}, the generator's)", p.tok_cfg.name, p.tokenizer_dir.display());
            w.tokenizer = Some(LoadedTokenizer { model: p.tokenizer.clone(), cfg: p.tok_cfg.clone(), label: tok_label, path: Some(p.tokenizer_dir.clone()) });
            w.generator = Some(LoadedGenerator { pipeline: p, label: label.clone() });
            Outcome::Done(format!("loaded generator {label}"))
        }
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

fn pipeline(w: &Worker) -> Result<&LoadedGenerator, JobError> {
    w.generator.as_ref().ok_or_else(|| {
        JobError::Refused(
            "no generator loaded: train one (Train view), open a generator checkpoint folder (its tokenizer comes with it), \
             or press \"Use untrained tiny models\" to try the pipeline"
                .to_string(),
        )
    })
}

fn clip_request(req: &GenerateRequest) -> Result<ClipRequest, JobError> {
    let sampling = SamplingConfig { greedy: false, temperature: req.temperature, top_k: req.top_k, top_p: req.top_p };
    sampling.validate()?;
    Ok(ClipRequest {
        prompts: vec![req.prompt.clone()],
        negative: req.negative.clone(),
        seeds: req.seeds.clone(),
        sampling,
        cfg: req.cfg_schedule.clone(),
        keep: req.keep.clone(),
        use_cache: true,
    })
}

/// Runs one request; `on_layer` sees the decoded clips and tokens after every finished layer.
fn run_one(
    g: &LoadedGenerator,
    job: &Job,
    req: &ClipRequest,
    mut on_layer: impl FnMut(Vec<Video>, Vec<Vec<u32>>, usize),
    mut on_progress: impl FnMut(usize, usize),
) -> Result<Vec<Vec<u32>>, Outcome> {
    let p = &g.pipeline;
    req.cfg.scales(p.cfg.layers.len()).map_err(|e| Outcome::Failed(e.to_string()))?;
    let mut read_err = None;
    let result = p.generate(req, &job.cancel, |e| match e {
        GenEvent::LayerDone { layer, tokens } => match p.decode(&tokens, layer + 1) {
            Ok(videos) => on_layer(videos, tokens, layer + 1),
            Err(e) => {
                read_err.get_or_insert(e);
            }
        },
        GenEvent::Progress { done, total } => on_progress(done, total),
    });
    if let Some(e) = read_err {
        return Err(Outcome::Failed(format!("the preview of a finished layer: {e}")));
    }
    result.map_err(|e| match e {
        PipelineError::Generate(GenerateError::Cancelled { done, total }) => Outcome::Cancelled(format!("stopped after {done} of {total} tokens")),
        other => Outcome::Failed(other.to_string()),
    })
}

pub(super) fn generate(w: &mut Worker, job: &Job, req: GenerateRequest) -> Outcome {
    let w = &*w;
    let g = match pipeline(w) {
        Ok(g) => g,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let creq = match clip_request(&req) {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let p = &g.pipeline;
    // A prompt longer than the text encoder's limit is said so in the outcome.
    let notes = p.truncation_notes(&[req.prompt.as_str()]).unwrap_or_default();
    let layers_total = p.cfg.layers.len();
    let models = vec![("generator".to_string(), g.label.clone()), ("tokenizer".to_string(), p.tok_cfg.name.clone())];
    let started = Instant::now();
    let mut last_report = Instant::now();
    let first = req.keep.iter().map(Vec::len).min().unwrap_or(0);
    let rows = req.seeds.len();
    let out = run_one(
        g,
        job,
        &creq,
        |videos, tokens, layers_done| {
            let metas = if layers_done == layers_total {
                videos.iter().zip(&tokens).zip(&req.seeds).map(|((v, t), &s)| p.metadata(&creq, &req.prompt, s, t, v)).collect()
            } else {
                Vec::new()
            };
            let videos = videos.into_iter().map(Arc::new).collect();
            w.slots.clip.put(ClipPayload { job: job.id, request: req.clone(), videos, tokens, layers_done, layers_total, models: models.clone(), metas });
            w.emit(Event::Payload { job: job.id, slot: SlotName::Clip });
        },
        |done, total| {
            if done == total || last_report.elapsed().as_secs_f64() > 0.05 {
                last_report = Instant::now();
                let rate = done.saturating_sub(first) as f64 * rows as f64 / started.elapsed().as_secs_f64().max(1e-6);
                w.emit(Event::Progress { job: job.id, done, total, rate });
            }
        },
    );
    match out {
        Ok(tokens) => Outcome::Done(format!(
            "{} clip(s), {} tokens each, in {:.1} s{}",
            tokens.len(),
            tokens.first().map(Vec::len).unwrap_or(0),
            started.elapsed().as_secs_f64(),
            notes.iter().map(|n| format!("; {n}")).collect::<String>()
        )),
        Err(o) => o,
    }
}

pub(super) fn sweep(w: &mut Worker, job: &Job, req: SweepRequest) -> Outcome {
    let w = &*w;
    let g = match pipeline(w) {
        Ok(g) => g,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let base = match clip_request(&req.base) {
        Ok(r) => CellSettings { cfg: r.cfg, seed: req.base.seeds.first().copied().unwrap_or(0), sampling: r.sampling },
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let spec = SweepSpec {
        prompts: vec![req.base.prompt.clone()],
        rows: req.rows.clone(),
        columns: req.columns.clone(),
        base,
        negative: req.base.negative.clone(),
        use_cache: true,
    };
    let n_cols = req.columns.len();
    let mut grid = SweepPayload { job: job.id, prompt: req.base.prompt.clone(), rows: req.rows, columns: req.columns, cells: vec![None; spec.cells()] };
    let started = Instant::now();
    let result = sweep::run(&g.pipeline, &spec, &job.cancel, |cell, done, total| {
        grid.cells[cell.row * n_cols + cell.column] = Some(cell.clone());
        w.slots.sweep.put(grid.clone());
        w.emit(Event::Payload { job: job.id, slot: SlotName::Sweep });
        w.emit(Event::Progress { job: job.id, done, total, rate: done as f64 / started.elapsed().as_secs_f64().max(1e-6) });
    });
    match result {
        Ok(cells) => Outcome::Done(format!("{} cells in {:.1} s", cells.len(), started.elapsed().as_secs_f64())),
        Err(PipelineError::Generate(GenerateError::Cancelled { .. })) => {
            let done = grid.cells.iter().filter(|c| c.is_some()).count();
            Outcome::Cancelled(format!("stopped after {done} of {} cells", grid.cells.len()))
        }
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// The first 12 hex digits of a checksum, or "none".
fn short(sum: Option<&String>) -> String {
    sum.map_or_else(|| "none".to_string(), |s| s.chars().take(12).collect())
}

/// Decodes an opened export's tokens into the clip slot. A file made by another generator is
/// still decoded (and may be re-rolled) with the loaded models, as `hitvideo generate --reroll`
/// does, with a warning; tokens that do not fit the loaded layers are refused.
pub(super) fn decode(w: &mut Worker, job: &Job, req: DecodeRequest) -> Outcome {
    let w = &*w;
    let g = match pipeline(w) {
        Ok(g) => g,
        Err(e) => return Outcome::Failed(format!("{}: cannot show its clip: {e}", req.source.display())),
    };
    let p = &g.pipeline;
    let file = req.source.display();
    let file_sum = req.meta.model_checksums.get("generator");
    let made_with = file_sum.map(|s| format!(" (generator checksum {})", short(Some(s)))).unwrap_or_default();
    if let Err(e) = reroll::check_tokens(&p.cfg, &req.tokens) {
        return Outcome::Failed(format!("{file}: {e}; load the generator it was made with{made_with} and open the file again"));
    }
    let loaded_sum = p.checksums.get("generator");
    if file_sum != loaded_sum {
        w.emit(Event::Warning {
            job: Some(job.id),
            text: format!(
                "{file} was made by another generator (checksum {}, loaded: {}): its tokens are decoded and re-rolled with the loaded \
                 models, so the picture and the re-roll may differ from the original; load the generator it was made with to reproduce it",
                short(file_sum),
                short(loaded_sum)
            ),
        });
    }
    let layers = p.cfg.layers.len();
    let videos: Vec<Arc<Video>> = match p.decode(std::slice::from_ref(&req.tokens), layers) {
        Ok(v) => v.into_iter().map(Arc::new).collect(),
        Err(e) => return Outcome::Failed(format!("{file}: {e}")),
    };
    if videos.is_empty() {
        return Outcome::Failed(format!("{file}: its tokens decoded to no clip"));
    }
    let n = req.tokens.len();
    let models = vec![("generator".to_string(), g.label.clone()), ("tokenizer".to_string(), p.tok_cfg.name.clone())];
    w.slots.clip.put(ClipPayload {
        job: job.id,
        request: req.request,
        videos,
        tokens: vec![req.tokens],
        layers_done: layers,
        layers_total: layers,
        models,
        metas: vec![*req.meta],
    });
    w.emit(Event::Payload { job: job.id, slot: SlotName::Clip });
    Outcome::Done(format!("settings restored from {file}; its clip is decoded from its {n} tokens (\"Re-roll details\" keeps its coarse layers)"))
}

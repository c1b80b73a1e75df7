//! `hitvideo data ...`: synthesize, import, inspect, preview and analyze datasets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use hitvideo_engine::dataset::import::{self, ImportOptions};
use hitvideo_engine::dataset::index::{DatasetIndex, DatasetKind, IndexItem};
use hitvideo_engine::dataset::shapes::{RenderConfig, add_noise};
use hitvideo_engine::dataset::synth::{self, SynthConfig};
use hitvideo_engine::eval::analyze::{self, PromptAttributes};
use hitvideo_engine::video::{self, DecodeOptions, ExportMetadata, Video};
use rand::SeedableRng;

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Generate the synthetic captioned "shapes" dataset, or clips of the photo world
    /// (`--world photos`, for inspection), deterministic by seed.
    Synth(SynthArgs),
    /// Import a folder of videos with captions, or a JSONL/CSV manifest, validating every item.
    Import(ImportArgs),
    /// Summarize a dataset folder: kind, splits, attributes, caption examples, rejected items.
    Inspect(InspectArgs),
    /// Render one dataset item (or any video file) to MP4, GIF or PNG frames.
    Preview(PreviewArgs),
    /// Recover color, shape and motion of a shapes clip and score it against a prompt.
    Analyze(AnalyzeArgs),
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output dataset folder.
    #[arg(long)]
    pub out: PathBuf,
    /// `shapes` (a dataset index, clips rendered on demand) or `photos` (clips of the photo
    /// world written as video files with their drawn parameters in `specs.jsonl`).
    #[arg(long, default_value = "shapes", value_parser = ["shapes", "photos"])]
    pub world: String,
    /// Number of clips.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// Master seed; the same seed always gives the same dataset.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Frames per clip.
    #[arg(long, default_value_t = 16)]
    pub frames: usize,
    /// Frame side in pixels.
    #[arg(long, default_value_t = 64)]
    pub size: u32,
    /// Frame rate stamped on the clips.
    #[arg(long, default_value_t = 8.0)]
    pub fps: f64,
    /// Also write every clip as a video file into <out>/clips (mp4 or gif); by default
    /// clips are rendered on demand from the index.
    #[arg(long, value_name = "mp4|gif")]
    pub videos: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A folder of videos (captions in sidecar .txt files or a manifest.jsonl/.csv inside it)
    /// or a manifest file of rows {path, caption, start?, end?}.
    pub source: PathBuf,
    /// Output dataset folder (index.jsonl, errors.jsonl, dataset.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Frame rate clips are resampled to.
    #[arg(long, default_value_t = 8.0)]
    pub fps: f64,
    /// Frame side clips are cropped and resized to.
    #[arg(long, default_value_t = 64)]
    pub size: u32,
    /// Minimum frames at --fps for a clip to be kept.
    #[arg(long, default_value_t = 16)]
    pub min_frames: usize,
    /// Keep videos without a caption (enough to train or fine-tune a tokenizer, which never
    /// reads captions; the generator needs them).
    #[arg(long)]
    pub captions_optional: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Dataset folder.
    pub dataset: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// A dataset folder or a video file.
    pub source: PathBuf,
    /// Item to render when SOURCE is a dataset: its id or its position in the index.
    #[arg(long, default_value = "0")]
    pub item: String,
    /// Output: .mp4, .gif, or a folder for PNG frames.
    #[arg(long)]
    pub out: PathBuf,
    /// Add Gaussian pixel noise of this standard deviation (0..1 units) before export.
    #[arg(long, default_value_t = 0.0)]
    pub noise: f32,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// A video file of the shapes domain (or a dataset folder with --item).
    pub source: PathBuf,
    /// The prompt to score against (e.g. "a red circle moving left").
    #[arg(long)]
    pub prompt: Option<String>,
    /// Item when SOURCE is a dataset.
    #[arg(long, default_value = "0")]
    pub item: String,
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Synth(a) => synth_cmd(a),
        DataCommand::Import(a) => import_cmd(a),
        DataCommand::Inspect(a) => inspect_cmd(a),
        DataCommand::Preview(a) => preview_cmd(a),
        DataCommand::Analyze(a) => analyze_cmd(a),
    }
}

fn synth_cmd(a: SynthArgs) -> Result<()> {
    if a.count == 0 || a.frames == 0 || a.size < 16 || !(a.fps.is_finite() && a.fps > 0.0) {
        bail!("need --count >= 1, --frames >= 1, --size >= 16 and --fps > 0");
    }
    if a.world == "photos" {
        return photos_cmd(&a);
    }
    let config = SynthConfig { count: a.count, seed: a.seed, render: RenderConfig { frames: a.frames, size: a.size, fps: a.fps }, ..SynthConfig::default() };
    let index = DatasetIndex::synthetic(config);
    index.write(&a.out)?;
    if let Some(ext) = &a.videos {
        if ext != "mp4" && ext != "gif" {
            bail!("--videos takes mp4 or gif, not '{ext}'");
        }
        let dir = a.out.join("clips");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let bar = super::progress_bar(a.count as u64, "rendering");
        for item in &index.items {
            let clip = render_synth(&config, item)?;
            let mut meta = ExportMetadata::for_video(&clip);
            meta.prompt = Some(item.caption.clone());
            meta.source = Some(format!("synthetic seed {} item {}", a.seed, item.id));
            video::export(&clip, &dir.join(format!("{}.{ext}", item.id)), &meta)?;
            bar.inc(1);
        }
        bar.finish_and_clear();
    }
    let mut per_split: BTreeMap<String, usize> = BTreeMap::new();
    for it in &index.items {
        *per_split.entry(it.split.map(|s| s.to_string()).unwrap_or_default()).or_default() += 1;
    }
    println!("wrote {} synthetic clips ({}x{}, {} frames at {} fps, seed {}) to {}", a.count, a.size, a.size, a.frames, a.fps, a.seed, a.out.display());
    for (s, n) in per_split {
        println!("  {s:<17} {n}");
    }
    Ok(())
}

/// `data synth --world photos`: clips of the photo world's training draw, for inspection.
fn photos_cmd(a: &SynthArgs) -> Result<()> {
    use hitvideo_engine::dataset::photos::{PhotoLibrary, PhotoWorld, default_dirs};
    let ext = a.videos.as_deref().unwrap_or("mp4");
    if ext != "mp4" && ext != "gif" {
        bail!("--videos takes mp4 or gif, not '{ext}'");
    }
    let lib = PhotoLibrary::load(&default_dirs())?;
    println!("{} photographs ({} for validation only); {} files skipped", lib.photos.len(), lib.split(true).len(), lib.skipped.len());
    let world = PhotoWorld::new(std::sync::Arc::new(lib), a.frames, a.size as usize, a.fps);
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut specs = String::new();
    let bar = super::progress_bar(a.count as u64, "rendering");
    for i in 0..a.count {
        let spec = world.spec(a.seed, i as u64, false);
        let clip = world.render(&spec);
        let mut meta = ExportMetadata::for_video(&clip);
        meta.source = Some(format!("photo world seed {} clip {i}", a.seed));
        let name = format!("photo-{i:04}.{ext}");
        video::export(&clip, &a.out.join(&name), &meta)?;
        let background = world.library.photos[spec.background].path.display().to_string();
        specs.push_str(&serde_json::json!({"file": name, "background_photo": background, "spec": spec}).to_string());
        specs.push('\n');
        bar.inc(1);
    }
    bar.finish_and_clear();
    std::fs::write(a.out.join("specs.jsonl"), specs).with_context(|| format!("writing {}", a.out.join("specs.jsonl").display()))?;
    println!("wrote {} photo-world clips ({}x{}, {} frames at {} fps, seed {}) to {}", a.count, a.size, a.size, a.frames, a.fps, a.seed, a.out.display());
    Ok(())
}

fn render_synth(config: &SynthConfig, item: &IndexItem) -> Result<Video> {
    let i = item.synth_index.with_context(|| format!("item {} has no synthetic index", item.id))?;
    Ok(synth::item(config, i).render(&config.render))
}

fn import_cmd(a: ImportArgs) -> Result<()> {
    let opts = ImportOptions { fps: a.fps, size: a.size, min_frames: a.min_frames, captions_optional: a.captions_optional };
    let bar = super::progress_bar(0, "validating");
    let report = import::import(&a.source, &opts, &mut |done, total, _| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .map_err(|e| anyhow::anyhow!(e.message))?;
    bar.finish_and_clear();
    for e in &report.index.errors {
        eprintln!("rejected: {}", e.message);
    }
    report.index.write(&a.out)?;
    println!("{}", report.summary());
    println!("dataset written to {}", a.out.display());
    if report.index.items.is_empty() {
        bail!("no usable clips in {}; see the reasons above", a.source.display());
    }
    Ok(())
}

fn inspect_cmd(a: InspectArgs) -> Result<()> {
    let ds = DatasetIndex::read(&a.dataset)?;
    let mut splits: BTreeMap<String, usize> = BTreeMap::new();
    let mut attrs: BTreeMap<String, usize> = BTreeMap::new();
    for it in &ds.items {
        *splits.entry(it.split.map(|s| s.to_string()).unwrap_or_else(|| "all".into())).or_default() += 1;
        if let Some(at) = it.attributes {
            for k in [at.shape.to_string(), at.color.to_string(), at.motion.to_string()] {
                *attrs.entry(k).or_default() += 1;
            }
        }
    }
    let kind = match &ds.header.kind {
        DatasetKind::Synthetic { config } => format!("synthetic (seed {}, {} clips)", config.seed, config.count),
        DatasetKind::Imported { source } => format!("imported from {source}"),
    };
    if a.json {
        let v = serde_json::json!({
            "kind": kind, "items": ds.items.len(), "rejected": ds.errors.len(), "fps": ds.header.fps,
            "size": ds.header.size, "frames": ds.header.frames, "splits": splits, "attributes": attrs,
            "examples": ds.items.iter().take(5).map(|i| &i.caption).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("{}: {kind}", a.dataset.display());
    println!(
        "  {} items, {} rejected; {}x{} at {} fps, {} frames per window",
        ds.items.len(),
        ds.errors.len(),
        ds.header.size,
        ds.header.size,
        ds.header.fps,
        ds.header.frames
    );
    for (s, n) in &splits {
        println!("  split {s:<17} {n}");
    }
    if !attrs.is_empty() {
        println!("  attributes: {}", attrs.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", "));
    }
    for it in ds.items.iter().take(5) {
        println!("  e.g. {:<14} \"{}\"", it.id, it.caption);
    }
    for e in ds.errors.iter().take(10) {
        println!("  rejected: {}", e.message);
    }
    Ok(())
}

/// Loads one item of a dataset folder as a clip (synthetic: rendered; imported: decoded).
fn load_item(dir: &Path, item: &str) -> Result<(Video, IndexItem, DatasetIndex)> {
    let ds = DatasetIndex::read(dir)?;
    let found = ds
        .items
        .iter()
        .find(|i| i.id == item)
        .or_else(|| item.parse::<usize>().ok().and_then(|n| ds.items.get(n)))
        .cloned()
        .with_context(|| format!("{}: no item '{item}' ({} items; give an id or a position)", dir.display(), ds.items.len()))?;
    let clip = match &ds.header.kind {
        DatasetKind::Synthetic { config } => render_synth(config, &found)?,
        DatasetKind::Imported { .. } => {
            let path = found.path.clone().with_context(|| format!("item {} has no path", found.id))?;
            let opts = DecodeOptions {
                fps: Some(ds.header.fps),
                size: Some((ds.header.size, ds.header.size)),
                start: found.start.unwrap_or(0.0),
                end: found.end,
                ..DecodeOptions::default()
            };
            video::decode(Path::new(&path), &opts)?
        }
    };
    Ok((clip, found, ds))
}

fn preview_cmd(a: PreviewArgs) -> Result<()> {
    let (mut clip, caption, source) = if a.source.is_dir() {
        let (clip, item, _) = load_item(&a.source, &a.item)?;
        (clip, Some(item.caption.clone()), format!("{} item {}", a.source.display(), item.id))
    } else {
        (video::decode(&a.source, &DecodeOptions::default())?, None, a.source.display().to_string())
    };
    if a.noise > 0.0 {
        clip = add_noise(&clip, a.noise, &mut rand_chacha::ChaCha8Rng::seed_from_u64(0));
    }
    let mut meta = ExportMetadata::for_video(&clip);
    meta.prompt = caption.clone();
    meta.source = Some(source);
    let files = video::export(&clip, &a.out, &meta)?;
    println!("{} frames {}x{} at {} fps -> {} ({} files)", clip.len(), clip.width(), clip.height(), clip.fps(), a.out.display(), files.len());
    if let Some(c) = caption {
        println!("caption: {c}");
    }
    Ok(())
}

fn analyze_cmd(a: AnalyzeArgs) -> Result<()> {
    let (clip, prompt) = if a.source.is_dir() {
        let (clip, item, _) = load_item(&a.source, &a.item)?;
        (clip, a.prompt.or(Some(item.caption)))
    } else {
        (video::decode(&a.source, &DecodeOptions::default())?, a.prompt)
    };
    let res = analyze::analyze(&clip);
    let show = |o: Option<String>| o.unwrap_or_else(|| "not found".into());
    println!("color:  {}", show(res.color.map(|c| c.to_string())));
    let measured = match (res.fill, res.taper) {
        (Some(fill), Some(taper)) => format!(" (fills {fill:.2} of its box, taper {taper:.2})"),
        _ => String::new(),
    };
    println!("shape:  {}{measured}", show(res.shape.map(|c| c.to_string())));
    println!("motion: {}", show(res.motion.map(|c| c.to_string())));
    if let Some(p) = prompt {
        let wanted = PromptAttributes::parse(&p);
        let s = analyze::score(&res, &wanted);
        match s.fraction() {
            Some(f) => println!("prompt \"{p}\": {:.0}% of named attributes match", f * 100.0),
            None => println!("prompt \"{p}\" names no color, shape or motion the analyzer knows"),
        }
    }
    Ok(())
}

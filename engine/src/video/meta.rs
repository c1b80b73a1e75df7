//! Reproducibility metadata: every export carries the settings that made it, in the
//! container (MP4 `comment` tag, GIF comment extension, PNG iTXt chunk) and in a sidecar
//! `<file>.json`, and the app reads either back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::VideoError;
use crate::guidance::CfgSchedule;

/// The container tag / chunk keyword that holds the JSON.
pub const TAG: &str = "hitvideo";

/// Sampler settings of a generation.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SamplerSettings {
    pub temperature: Option<f32>,
    pub top_k: Option<usize>,
    pub top_p: Option<f32>,
}

/// Everything needed to reproduce an exported clip.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExportMetadata {
    /// Always "hitvideo"; lets the reader tell our tags from others'.
    pub app: String,
    pub app_version: String,
    pub prompt: Option<String>,
    pub negative_prompt: Option<String>,
    pub seed: Option<u64>,
    pub cfg: Option<f32>,
    /// The CFG schedule, saved in its text form (`7.5`, `linear:1:7.5`, `1,3,5,7.5`). One
    /// that does not parse is read as `None`, with a warning, so the rest still opens.
    #[serde(default, deserialize_with = "schedule_or_none")]
    pub cfg_schedule: Option<CfgSchedule>,
    #[serde(default)]
    pub sampler: SamplerSettings,
    /// Model name -> SHA-256 of its weights file.
    #[serde(default)]
    pub model_checksums: BTreeMap<String, String>,
    /// Where the frames came from when not generated (a source video, a dataset item).
    pub source: Option<String>,
    pub frames: usize,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    /// Anything else a caller wants kept (device, tokenizer layers used, ...).
    #[serde(default)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl ExportMetadata {
    /// Metadata for a clip with no generation settings yet (the caller fills them in).
    pub fn for_video(video: &super::Video) -> Self {
        Self {
            app: TAG.to_string(),
            app_version: crate::VERSION.to_string(),
            prompt: None,
            negative_prompt: None,
            seed: None,
            cfg: None,
            cfg_schedule: None,
            sampler: SamplerSettings::default(),
            model_checksums: BTreeMap::new(),
            source: None,
            frames: video.len(),
            width: video.width(),
            height: video.height(),
            fps: video.fps(),
            extra: BTreeMap::new(),
        }
    }

    /// Compact JSON, as stored in containers.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses JSON written by [`to_json`](Self::to_json); `None` for anything else.
    pub fn from_json(text: &str) -> Option<Self> {
        serde_json::from_str::<Self>(text).ok().filter(|m| m.app == TAG)
    }
}

/// Reads a saved CFG schedule; an unreadable one (hand-edited, or from another program) is
/// `None` and logged, rather than making the whole metadata unreadable.
fn schedule_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<CfgSchedule>, D::Error> {
    let text: Option<String> = serde::Deserialize::deserialize(d)?;
    Ok(text.and_then(|t| CfgSchedule::parse(&t).map_err(|e| tracing::warn!("export metadata: the CFG schedule is ignored: {e}")).ok()))
}

/// `text` fit for a C-string container tag: control characters (NUL included) become spaces.
pub fn tag_text(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// The sidecar path of an export: `clip.mp4` -> `clip.mp4.json`.
pub fn sidecar_path(export: &Path) -> PathBuf {
    let mut name = export.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".json");
    export.with_file_name(name)
}

/// Writes the sidecar JSON (pretty-printed, atomically) and returns its path.
pub fn write_sidecar(export: &Path, meta: &ExportMetadata) -> Result<PathBuf, VideoError> {
    let path = sidecar_path(export);
    let text = serde_json::to_string_pretty(meta).map_err(|e| VideoError::Metadata { path: path.clone(), reason: e.to_string() })?;
    super::write_atomic(&path, text.as_bytes())?;
    Ok(path)
}

/// Where [`read_metadata`] found the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataSource {
    Container,
    Sidecar,
}

/// Reads an export's metadata back: from the container first, then from the sidecar.
pub fn read_metadata(path: &Path) -> Result<(ExportMetadata, MetadataSource), VideoError> {
    if !path.exists() {
        return Err(VideoError::NotFound { path: path.to_path_buf() });
    }
    let embedded = match super::ExportFormat::from_path(path) {
        super::ExportFormat::Gif => super::gif::read_comment(path).ok().flatten(),
        super::ExportFormat::Png if path.is_file() => super::png::read_text(path).ok().flatten(),
        super::ExportFormat::Png => super::png::read_text(&path.join(super::png::frame_name(0))).ok().flatten(),
        super::ExportFormat::Mp4 => super::probe(path).ok().and_then(|i| i.metadata.get("comment").cloned()),
    };
    if let Some(meta) = embedded.as_deref().and_then(ExportMetadata::from_json) {
        return Ok((meta, MetadataSource::Container));
    }
    let side = sidecar_path(path);
    match std::fs::read(&side) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes).map_err(|_| VideoError::Metadata { path: side.clone(), reason: "not valid UTF-8".into() })?;
            serde_json::from_str(&text).map(|m| (m, MetadataSource::Sidecar)).map_err(|e| VideoError::Metadata { path: side, reason: e.to_string() })
        }
        Err(_) => Err(VideoError::Metadata { path: path.to_path_buf(), reason: format!("no HiTVideo metadata in the file and no sidecar {}", side.display()) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_schedule_is_dropped_and_the_rest_kept() {
        let video = crate::video::Video::from_raw(2, 2, 8.0, vec![0; 12]).expect("video");
        let mut m = ExportMetadata::for_video(&video);
        m.prompt = Some("a red circle".into());
        m.cfg_schedule = Some(CfgSchedule::parse("linear:1:6").expect("schedule"));
        let json = m.to_json();
        assert!(json.contains("\"cfg_schedule\":\"linear:1:6\""), "saved as text: {json}");
        assert_eq!(ExportMetadata::from_json(&json), Some(m.clone()));
        for bad in ["linear:1..7.5", "-2", "seven"] {
            let back = ExportMetadata::from_json(&json.replace("linear:1:6", bad)).expect("the rest still reads");
            assert_eq!((back.cfg_schedule, back.prompt.as_deref()), (None, Some("a red circle")), "{bad}");
        }
        let absent = json.replace("\"cfg_schedule\":\"linear:1:6\",", "");
        assert_eq!(ExportMetadata::from_json(&absent).map(|m| m.cfg_schedule), Some(None), "{absent}");
    }
}

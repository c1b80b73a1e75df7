//! The text encoder of a new generator: the user's choice (`auto`, `minilm`, `small`) parsed
//! once where it enters and resolved (loading it is `TextConditionConfig::load_encoder`).

use std::path::Path;
use std::str::FromStr;

use crate::text;

/// What a person asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncoderChoice {
    /// MiniLM when it is installed, the small encoder otherwise.
    #[default]
    Auto,
    MiniLm,
    Small,
}

/// The encoder a generator is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoder {
    /// The frozen all-MiniLM-L6-v2 (loaded from the model folder).
    MiniLm,
    /// The small trainable encoder inside the generator.
    Small,
}

impl Encoder {
    /// The name a generator config stores (`TextConditionConfig::encoder`).
    pub fn name(self) -> &'static str {
        match self {
            Encoder::MiniLm => "minilm",
            Encoder::Small => "small",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("text encoder '{0}' is not one of auto, minilm, small")]
pub struct UnknownEncoder(pub String);

impl FromStr for EncoderChoice {
    type Err = UnknownEncoder;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "minilm" => Ok(Self::MiniLm),
            "small" => Ok(Self::Small),
            other => Err(UnknownEncoder(other.to_string())),
        }
    }
}

impl EncoderChoice {
    /// `Auto` becomes MiniLM when `model_dir` (default [`text::default_model_dir`]) holds it.
    pub fn resolve(self, model_dir: Option<&Path>) -> Encoder {
        match self {
            Self::Auto if text::is_model_dir(&model_dir.map_or_else(text::default_model_dir, Path::to_path_buf)) => Encoder::MiniLm,
            Self::Auto | Self::Small => Encoder::Small,
            Self::MiniLm => Encoder::MiniLm,
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Device;

    use super::*;

    #[test]
    fn choices_parse_and_resolve() {
        assert_eq!("small".parse::<EncoderChoice>().unwrap(), EncoderChoice::Small);
        assert!("bert".parse::<EncoderChoice>().unwrap_err().to_string().contains("auto, minilm, small"));
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(EncoderChoice::Auto.resolve(Some(empty.path())), Encoder::Small);
        assert_eq!(EncoderChoice::MiniLm.resolve(Some(empty.path())), Encoder::MiniLm);
        let cond = |e: Encoder| crate::generator::TextConditionConfig::for_encoder(e.name());
        assert!(cond(Encoder::Small).load_encoder(Some(empty.path()), &Device::flex()).unwrap().is_none());
        assert!(cond(Encoder::MiniLm).load_encoder(Some(empty.path()), &Device::flex()).is_err());
    }
}

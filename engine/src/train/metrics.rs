//! Typed records of training: what a step and a validation of each trainer report. The same
//! structs are the lines of the run's `metrics.jsonl` (their field names are its keys), the
//! metrics saved in each checkpoint's `state.json`, and the events the CLI and the studio
//! receive.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::tokenizer::dynamic::FillStrategy;

/// What the training loop needs of any step record.
pub trait StepRecord: Serialize + Clone {
    /// Steps done, this one included.
    fn step(&self) -> usize;
    /// The step's total loss (a non-finite one stops the run).
    fn loss(&self) -> f32;
}

/// One tokenizer step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenizerStep {
    /// Steps done, this one included.
    pub step: usize,
    pub lr: f64,
    pub loss: f32,
    pub l1: f32,
    pub commitment: f32,
    pub entropy: f32,
    /// The discriminator's hinge loss (adversarial steps).
    pub d_loss: Option<f32>,
    /// Layers switched on by the progressive schedule.
    pub active_layers: usize,
    /// The coarsest layers the main decode used this step.
    pub decoded_layers: usize,
    /// The partial-decode term's L1 and layer count (when that term is on).
    pub l1_partial: Option<f32>,
    pub partial_layers: Option<usize>,
    /// Masked-decoding steps: the fill used and the masked ratio.
    pub fill: Option<FillStrategy>,
    pub mask_ratio: Option<f64>,
}

/// One generator step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorStep {
    /// Steps done, this one included.
    pub step: usize,
    pub lr: f64,
    pub loss: f32,
    /// Each layer's cross-entropy (nats per token), coarsest first.
    pub ce_by_layer: Vec<f32>,
}

impl StepRecord for TokenizerStep {
    fn step(&self) -> usize {
        self.step
    }
    fn loss(&self) -> f32 {
        self.loss
    }
}

impl StepRecord for GeneratorStep {
    fn step(&self) -> usize {
        self.step
    }
    fn loss(&self) -> f32 {
        self.loss
    }
}

/// A layer's codebook use on the validation clips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodebookUse {
    pub bits: usize,
    /// Fraction of the codebook's entries used.
    pub usage: f64,
    pub perplexity: f64,
}

/// A tokenizer validation: PSNR from the k coarsest layers for every k, and codebook use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenizerValidation {
    pub clips: usize,
    /// `psnr_by_layers[k - 1]`: mean PSNR (dB) decoded from the k coarsest layers.
    pub psnr_by_layers: Vec<f64>,
    /// With all layers.
    pub psnr: f64,
    pub codebook: Vec<CodebookUse>,
}

/// A generator validation: teacher-forced cross-entropy and accuracy per layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorValidation {
    pub items: usize,
    /// The layers' cross-entropies weighted as in training.
    pub loss: f64,
    pub ce_by_layer: Vec<f64>,
    pub accuracy_by_layer: Vec<f64>,
}

fn list(v: &[f64], digits: usize) -> String {
    v.iter().map(|x| format!("{x:.digits$}")).collect::<Vec<_>>().join(" / ")
}

impl fmt::Display for TokenizerValidation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let usage: Vec<f64> = self.codebook.iter().map(|c| c.usage * 100.0).collect();
        write!(
            f,
            "PSNR {:.2} dB ({} by k coarsest layers) on {} clips; codebook use {} %",
            self.psnr,
            list(&self.psnr_by_layers, 2),
            self.clips,
            list(&usage, 0)
        )
    }
}

impl fmt::Display for GeneratorValidation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let acc: Vec<f64> = self.accuracy_by_layer.iter().map(|a| a * 100.0).collect();
        write!(f, "loss {:.3}; cross-entropy by layer {}; accuracy {} % on {} items", self.loss, list(&self.ce_by_layer, 3), list(&acc, 1), self.items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_the_log_keys_and_read_back() {
        let v = TokenizerValidation {
            clips: 2,
            psnr_by_layers: vec![18.0, 21.5],
            psnr: 21.5,
            codebook: vec![CodebookUse { bits: 5, usage: 0.5, perplexity: 9.0 }],
        };
        let json = serde_json::to_value(&v).expect("json");
        assert_eq!(json["psnr_by_layers"][1], 21.5);
        assert_eq!(json["codebook"][0]["usage"], 0.5);
        assert_eq!(serde_json::from_value::<TokenizerValidation>(json).expect("back"), v);
        assert_eq!(v.to_string(), "PSNR 21.50 dB (18.00 / 21.50 by k coarsest layers) on 2 clips; codebook use 50 %");
        let s = GeneratorStep { step: 3, lr: 1e-3, loss: 2.5, ce_by_layer: vec![1.0, 1.5] };
        let json = serde_json::to_value(&s).expect("json");
        assert_eq!((json["step"].as_u64(), json["ce_by_layer"][1].as_f64()), (Some(3), Some(1.5)));
    }
}

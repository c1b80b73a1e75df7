//! The tokens of a clip made by `hitvideo generate` or the studio, checked against the loaded
//! generator before they are decoded or re-rolled (the CLI's `generate --reroll`, the studio's
//! opened exports and "Re-roll details").

use crate::generator::GeneratorConfig;
use crate::generator::config::layer_offsets;

/// Why a clip's tokens cannot be decoded or re-rolled by a generator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RerollError {
    #[error("it holds {have} tokens, but the loaded generator's {layers} layers take {need}")]
    Length { have: usize, need: usize, layers: usize },
    #[error("token {id} of layer {layer} does not fit its {bits} bits")]
    Width { id: u32, layer: usize, bits: usize },
    #[error("keeping {keep} layers: choose 1 to {max} for this generator")]
    Keep { keep: usize, max: usize },
}

/// Every layer's tokens present (the whole sequence, coarsest layer first) and within its
/// layer's code width.
pub fn check_tokens(cfg: &GeneratorConfig, tokens: &[u32]) -> Result<(), RerollError> {
    let offsets = layer_offsets(&cfg.layers);
    let need = offsets.last().copied().unwrap_or(0);
    if tokens.len() != need {
        return Err(RerollError::Length { have: tokens.len(), need, layers: cfg.layers.len() });
    }
    for (j, l) in cfg.layers.iter().enumerate() {
        if let Some(&id) = tokens[offsets[j]..offsets[j + 1]].iter().find(|&&id| u64::from(id) >> l.bits != 0) {
            return Err(RerollError::Width { id, layer: j + 1, bits: l.bits });
        }
    }
    Ok(())
}

/// The tokens of the `keep` coarsest layers of a checked sequence: what a re-roll keeps.
pub fn kept_tokens(cfg: &GeneratorConfig, tokens: &[u32], keep: usize) -> Result<Vec<u32>, RerollError> {
    let max = cfg.layers.len();
    if keep == 0 || keep > max {
        return Err(RerollError::Keep { keep, max });
    }
    check_tokens(cfg, tokens)?;
    Ok(tokens[..layer_offsets(&cfg.layers)[keep]].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::TextConditionConfig;
    use crate::tokenizer::TokenizerConfig;

    #[test]
    fn sequences_are_checked_before_a_reroll() {
        let tok = TokenizerConfig::preset("tiny").expect("preset");
        let cfg = GeneratorConfig::preset("tiny", &tok, TextConditionConfig::for_encoder("small")).expect("generator");
        let offsets = layer_offsets(&cfg.layers);
        let n = *offsets.last().expect("layers");
        let ok = vec![1u32; n];
        assert_eq!(check_tokens(&cfg, &ok), Ok(()));
        assert_eq!(kept_tokens(&cfg, &ok, 2).expect("two layers").len(), offsets[2]);
        assert_eq!(check_tokens(&cfg, &ok[1..]), Err(RerollError::Length { have: n - 1, need: n, layers: 4 }));
        let mut wide = ok.clone();
        wide[offsets[1]] = 1 << cfg.layers[1].bits;
        assert_eq!(check_tokens(&cfg, &wide), Err(RerollError::Width { id: 1 << cfg.layers[1].bits, layer: 2, bits: cfg.layers[1].bits }));
        assert_eq!(kept_tokens(&cfg, &ok, 0), Err(RerollError::Keep { keep: 0, max: 4 }));
        assert_eq!(kept_tokens(&cfg, &ok, 4).expect("all layers").len(), n);
        assert_eq!(kept_tokens(&cfg, &ok, 5), Err(RerollError::Keep { keep: 5, max: 4 }));
        assert!(kept_tokens(&cfg, &wide, 1).is_err(), "the whole sequence is checked");
    }
}

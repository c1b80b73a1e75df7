//! Loading a Hugging Face BERT folder: `config.json` → [`BertConfig`], `model.safetensors` →
//! [`BertModel`] weights through burn-store's `SafetensorsStore`.
//!
//! The checkpoint's keys are renamed onto the module's paths by [`HF_KEY_REMAP`], and
//! burn-store's `PyTorchToBurnAdapter` transposes `Linear` weights (`[out, in]` → `[in, out]`)
//! and renames LayerNorm `weight`/`bias` to `gamma`/`beta`.

use std::path::Path;

use burn::store::{KeyRemapper, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use serde::Deserialize;

use super::{BertConfig, BertModel, TextError};

/// Hugging Face `BertModel` key (regex) → this crate's module path, applied in order.
pub const HF_KEY_REMAP: &[(&str, &str)] = &[
    (r"^(?:bert\.)?embeddings\.word_embeddings\.", "embeddings.word."),
    (r"^(?:bert\.)?embeddings\.position_embeddings\.", "embeddings.position."),
    (r"^(?:bert\.)?embeddings\.token_type_embeddings\.", "embeddings.token_type."),
    (r"^(?:bert\.)?embeddings\.LayerNorm\.", "embeddings.norm."),
    (r"^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.self\.query\.", "layers.$1.query."),
    (r"^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.self\.key\.", "layers.$1.key."),
    (r"^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.self\.value\.", "layers.$1.value."),
    (r"^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.output\.dense\.", "layers.$1.attn_out."),
    (r"^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.", "layers.$1.attn_norm."),
    (r"^(?:bert\.)?encoder\.layer\.(\d+)\.intermediate\.dense\.", "layers.$1.inter."),
    (r"^(?:bert\.)?encoder\.layer\.(\d+)\.output\.dense\.", "layers.$1.out."),
    (r"^(?:bert\.)?encoder\.layer\.(\d+)\.output\.LayerNorm\.", "layers.$1.out_norm."),
];

/// Checkpoint keys that may be present but are not used (the pooler, the position-id buffer).
fn ignorable(key: &str) -> bool {
    key.contains("pooler.") || key.ends_with("position_ids") || key.starts_with("cls.")
}

/// The fields of a Hugging Face BERT `config.json` this crate reads.
#[derive(Deserialize)]
struct HfBertConfig {
    model_type: Option<String>,
    vocab_size: Option<usize>,
    hidden_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    intermediate_size: Option<usize>,
    max_position_embeddings: Option<usize>,
    type_vocab_size: Option<usize>,
    layer_norm_eps: Option<f64>,
    hidden_act: Option<String>,
    position_embedding_type: Option<String>,
    /// Present in sentence-transformers' `1_Pooling/config.json`, which is no BERT config.
    word_embedding_dimension: Option<usize>,
}

/// Reads and checks a Hugging Face BERT `config.json`.
pub fn load_bert_config(path: &Path) -> Result<BertConfig, TextError> {
    let text = std::fs::read_to_string(path).map_err(|source| TextError::Io { path: path.to_path_buf(), source })?;
    let bad = |reason: String| TextError::Config { path: path.to_path_buf(), reason };
    let hf: HfBertConfig = serde_json::from_str(&text).map_err(|e| bad(format!("invalid JSON ({e})")))?;
    if hf.hidden_size.is_none() && hf.word_embedding_dimension.is_some() {
        return Err(bad("it is sentence-transformers' pooling config (1_Pooling/config.json), not the model's; \
            run scripts/setup again, which restores the model's own config.json"
            .into()));
    }
    let need = |v: Option<usize>, key: &str| {
        v.filter(|&n| n > 0).ok_or_else(|| bad(format!("\"{key}\" is missing or zero; use the config.json that came with the model")))
    };
    let cfg = BertConfig::new(
        need(hf.vocab_size, "vocab_size")?,
        need(hf.hidden_size, "hidden_size")?,
        need(hf.num_hidden_layers, "num_hidden_layers")?,
        need(hf.num_attention_heads, "num_attention_heads")?,
        need(hf.intermediate_size, "intermediate_size")?,
        need(hf.max_position_embeddings, "max_position_embeddings")?,
        need(hf.type_vocab_size, "type_vocab_size")?,
    )
    .with_layer_norm_eps(hf.layer_norm_eps.unwrap_or(1e-12));
    let unsupported =
        |what: String| bad(format!("{what}; only BERT-family encoders (model_type \"bert\", hidden_act \"gelu\", absolute positions) are supported"));
    match hf.model_type.as_deref() {
        None | Some("bert") => {}
        Some(other) => return Err(unsupported(format!("model_type is \"{other}\""))),
    }
    match hf.hidden_act.as_deref() {
        None | Some("gelu") => {}
        Some(other) => return Err(unsupported(format!("hidden_act is \"{other}\""))),
    }
    match hf.position_embedding_type.as_deref() {
        None | Some("absolute") => {}
        Some(other) => return Err(unsupported(format!("position_embedding_type is \"{other}\""))),
    }
    if !cfg.hidden_size.is_multiple_of(cfg.num_heads) {
        return Err(bad(format!("hidden_size {} is not a multiple of num_attention_heads {}", cfg.hidden_size, cfg.num_heads)));
    }
    if !(cfg.layer_norm_eps.is_finite() && cfg.layer_norm_eps > 0.0) {
        return Err(bad(format!("layer_norm_eps {} must be a positive number", cfg.layer_norm_eps)));
    }
    Ok(cfg)
}

/// Loads `model.safetensors` at `path` into `model`. Every parameter of the model must be
/// found with its shape; keys the model does not use are an error too (a config/weights
/// mismatch), except the pooler and the position-id buffer.
pub fn load_bert_weights(model: &mut BertModel, path: &Path) -> Result<(), TextError> {
    let bad = |reason: String| TextError::Weights { path: path.to_path_buf(), reason };
    if !path.is_file() {
        return Err(bad("the file does not exist".into()));
    }
    let remap = KeyRemapper::from_patterns(HF_KEY_REMAP.to_vec()).map_err(|e| bad(format!("key remap table: {e}")))?;
    let mut store = SafetensorsStore::from_file(path).with_from_adapter(PyTorchToBurnAdapter).remap(remap).validate(true).allow_partial(true);
    let result = model.load_from(&mut store).map_err(|e| bad(e.to_string()))?;
    if !result.errors.is_empty() {
        let list: Vec<String> = result.errors.iter().take(5).map(ToString::to_string).collect();
        return Err(bad(format!("{} tensors do not fit: {}", result.errors.len(), list.join("; "))));
    }
    if !result.missing.is_empty() {
        let list: Vec<&str> = result.missing.iter().take(5).map(|(p, _)| p.as_str()).collect();
        return Err(bad(format!("{} parameters are missing, e.g. {}", result.missing.len(), list.join(", "))));
    }
    let extra: Vec<&str> = result.unused.iter().map(String::as_str).filter(|k| !ignorable(k)).collect();
    if !extra.is_empty() {
        let n = extra.len();
        let list = extra.into_iter().take(5).collect::<Vec<_>>().join(", ");
        return Err(bad(format!("{n} tensors are not part of the model config.json describes, e.g. {list}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::*;

    #[test]
    fn pooling_config_is_named_as_such() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"word_embedding_dimension": 384, "pooling_mode_mean_tokens": true}"#).expect("write");
        let e = load_bert_config(&path).expect_err("pooling config");
        assert!(e.to_string().contains("scripts/setup"), "{e}");
        std::fs::write(
            &path,
            r#"{"model_type": "roberta", "vocab_size": 5, "hidden_size": 4, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 8, "max_position_embeddings": 8, "type_vocab_size": 1}"#,
        )
        .expect("write");
        assert!(load_bert_config(&path).expect_err("roberta").to_string().contains("roberta"));
        std::fs::write(&path, "{ not json").expect("write");
        assert!(load_bert_config(&path).expect_err("bad json").to_string().contains("invalid JSON"));
    }

    /// Writes a tiny model under Hugging Face names (by inverting the remap table on the
    /// saved keys) and loads it back through the real loader.
    #[test]
    fn hf_named_weights_round_trip() {
        let device = Device::flex();
        let cfg = BertConfig::new(20, 8, 2, 2, 16, 10, 2);
        let src = cfg.init(&device);
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("model.safetensors");
        let to_hf = [
            (r"^embeddings\.word\.", "embeddings.word_embeddings."),
            (r"^embeddings\.position\.", "embeddings.position_embeddings."),
            (r"^embeddings\.token_type\.", "embeddings.token_type_embeddings."),
            (r"^embeddings\.norm\.", "embeddings.LayerNorm."),
            (r"^layers\.(\d+)\.query\.", "encoder.layer.$1.attention.self.query."),
            (r"^layers\.(\d+)\.key\.", "encoder.layer.$1.attention.self.key."),
            (r"^layers\.(\d+)\.value\.", "encoder.layer.$1.attention.self.value."),
            (r"^layers\.(\d+)\.attn_out\.", "encoder.layer.$1.attention.output.dense."),
            (r"^layers\.(\d+)\.attn_norm\.", "encoder.layer.$1.attention.output.LayerNorm."),
            (r"^layers\.(\d+)\.inter\.", "encoder.layer.$1.intermediate.dense."),
            (r"^layers\.(\d+)\.out\.", "encoder.layer.$1.output.dense."),
            (r"^layers\.(\d+)\.out_norm\.", "encoder.layer.$1.output.LayerNorm."),
        ];
        let mut store = SafetensorsStore::from_file(&path)
            .with_to_adapter(burn::store::BurnToPyTorchAdapter)
            .remap(KeyRemapper::from_patterns(to_hf.to_vec()).expect("patterns"));
        src.save_into(&mut store).expect("save");
        let mut dst = cfg.init(&device);
        load_bert_weights(&mut dst, &path).expect("load");
        let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 2, 3, 4], [1, 4]), &device);
        let diff = (src.forward(ids.clone(), &[4]) - dst.forward(ids, &[4])).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-6, "loaded model differs: {diff}");
        // A config with one more layer than the file: a clear error, not a panic.
        let mut bigger = BertConfig::new(20, 8, 3, 2, 16, 10, 2).init(&device);
        let e = load_bert_weights(&mut bigger, &path).expect_err("missing layer");
        assert!(e.to_string().contains("missing"), "{e}");
        let e = load_bert_weights(&mut dst, &dir.path().join("absent.safetensors")).expect_err("absent");
        assert!(e.to_string().contains("does not exist"), "{e}");
    }
}

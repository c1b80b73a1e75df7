//! Where a generator training step's time goes, at the real shapes of a preset and batch:
//! text prefix, the transformer blocks, the per-layer heads and cross-entropy, backward and
//! AdamW; then single ops at the step's shapes (a linear, masked attention as Burn differentiates
//! it and as the blocks do, softmax).
//! `cargo run -p hitvideo-engine --example profile_generator -- [preset] [batch]`
//! (the `tiny` generator over the `tiny` tokenizer's layers, small text encoder, random ids).

mod common;
use common::time;

use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use hitvideo_engine::generator::block::Block;
use hitvideo_engine::generator::loss::layer_losses;
use hitvideo_engine::generator::model::attention_mask;
use hitvideo_engine::generator::rope::RopeTables;
use hitvideo_engine::generator::{GeneratorConfig, TextConditionConfig};
use hitvideo_engine::tokenizer::TokenizerConfig;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (preset, batch) = common::preset_and_batch();
    let preset = preset.as_str();
    let tok = TokenizerConfig::preset(preset)?;
    let cfg = GeneratorConfig::preset(preset, &tok, TextConditionConfig::for_encoder("small"))?;
    let dev = Device::flex().autodiff();
    dev.seed(0);
    let model = cfg.init(&dev);
    let captions: Vec<String> = (0..batch).map(|i| format!("a red circle moves to the left {i}")).collect();
    let prompts: Vec<&str> = captions.iter().map(String::as_str).collect();
    // `[B, n_j]` random ids per layer.
    let ids: Vec<Tensor<2, Int>> = cfg
        .layers
        .iter()
        .map(|l| {
            let n = l.tokens();
            let v: Vec<i64> = (0..batch * n).map(|i| (i as i64 * 2_654_435_761) % (1 << l.bits)).collect();
            Tensor::from_data(TensorData::new(v, [batch, n]), &dev)
        })
        .collect();
    let text = model.encode_prompts(&prompts, cfg.text.max_len)?;
    let valid = model.valid();
    // The training sequence: the prefix (the longest prompt's tokens + BOS) and every video
    // token but the last.
    let prefix = valid.prefix(&valid.encode_prompts(&prompts, cfg.text.max_len)?).embeddings.dims()[1];
    let seq = prefix + cfg.video_tokens() - 1;
    println!("{} generator at batch {batch}: {} parameters, sequence {seq} (prefix {prefix} + video {} - 1)", cfg.name, model.num_params(), cfg.video_tokens());

    let plain_ids: Vec<Tensor<2, Int>> = ids.iter().map(|t| t.clone().inner()).collect();
    let plain_text = valid.encode_prompts(&prompts, cfg.text.max_len)?;
    time("text prefix (small encoder), fwd, no autodiff", || {
        let _ = valid.encode_prompts(&prompts, cfg.text.max_len).map(|t| valid.prefix(&t).embeddings.sum().into_scalar::<f32>());
    });
    time("forward_train (prefix + blocks), no autodiff", || {
        let _ = valid.forward_train(&cfg, &plain_text, &plain_ids).sum().into_scalar::<f32>();
    });
    time("forward_train + heads + cross-entropy, no autodiff", || {
        let h = valid.forward_train(&cfg, &plain_text, &plain_ids);
        let _ = layer_losses(&valid, &cfg, h, &plain_ids, 1.0).total.into_scalar::<f32>();
    });
    time("forward_train fwd+bwd (sum of hidden states)", || {
        let text = model.encode_prompts(&prompts, cfg.text.max_len).expect("prompts");
        let h = model.forward_train(&cfg, &text, &ids);
        let _ = h.powf_scalar(2.0).mean().backward();
    });
    let h0 = model.forward_train(&cfg, &text, &ids).detach().require_grad();
    time("heads + cross-entropy fwd+bwd (hidden states given)", || {
        let _ = layer_losses(&model, &cfg, h0.clone(), &ids, 1.0).total.backward();
    });
    let mut opt = AdamWConfig::new().init();
    let mut m = model.clone();
    time("full step: text, forward, loss, backward, AdamW", || {
        let t = m.encode_prompts(&prompts, cfg.text.max_len).expect("prompts");
        let h = m.forward_train(&cfg, &t, &ids);
        let loss = layer_losses(&m, &cfg, h, &ids, 1.0).total;
        let g = GradientsParams::from_grads(loss.backward(), &m);
        m = opt.step(1e-4, m.clone(), g);
    });

    // Single ops at the step's shapes.
    let (d, heads) = (cfg.dim, cfg.heads);
    let hd = d / heads;
    let x = Tensor::<3>::random([batch, seq, d], burn::tensor::Distribution::Normal(0.0, 1.0), &dev).require_grad();
    let w = Tensor::<2>::random([d, cfg.mlp_hidden], burn::tensor::Distribution::Normal(0.0, 0.02), &dev).require_grad();
    time(&format!("linear [{batch},{seq},{d}] x [{d},{}] fwd+bwd", cfg.mlp_hidden), || {
        let _ = x.clone().matmul(w.clone().unsqueeze::<3>()).sum().backward();
    });
    let q = Tensor::<4>::random([batch, heads, seq, hd], burn::tensor::Distribution::Normal(0.0, 1.0), &dev).require_grad();
    let valid_rows = vec![vec![true; seq]; batch];
    let mask = attention_mask(&valid_rows, 0, seq, seq, &dev);
    let mask = mask.expand([batch, heads, seq, seq]);
    time(&format!("attention [{batch},{heads},{seq},{hd}] with mask, fwd+bwd (Burn's op)"), || {
        let opts = AttentionModuleOptions { scale: None, softcap: None, is_causal: false };
        let _ = attention(q.clone(), q.clone(), q.clone(), Some(mask.clone()), None, opts).sum().backward();
    });
    time(&format!("attention [{batch},{heads},{seq},{hd}] with mask, fwd+bwd (the blocks' op)"), || {
        let _ = hitvideo_engine::ops::attention::attention(q.clone(), q.clone(), q.clone(), mask.clone()).sum().backward();
    });
    let norm = burn::nn::RmsNormConfig::new(d).with_epsilon(1e-5).init(&dev);
    time(&format!("RMSNorm [{batch},{seq},{d}] fwd+bwd"), || {
        let _ = norm.forward(x.clone()).sum().backward();
    });
    let positions: Vec<Option<[f64; 3]>> = (0..seq).map(|i| Some([(i / 64) as f64, ((i / 8) % 8) as f64, (i % 8) as f64])).collect();
    let rope = RopeTables::new(&positions, hd, 10000.0, &dev);
    time(&format!("RoPE [{batch},{heads},{seq},{hd}] fwd+bwd"), || {
        let _ = rope.apply(q.clone()).sum().backward();
    });
    let block = Block::new(d, heads, cfg.mlp_hidden, 1e-5, &dev);
    let plain_block = block.valid();
    let plain_rope = RopeTables::new(&positions, hd, 10000.0, &Device::flex());
    let block_mask = attention_mask(&valid_rows, 0, seq, seq, &dev);
    let plain_mask = block_mask.clone().inner();
    let plain_x = x.clone().inner();
    time(&format!("one block [{batch},{seq},{d}] fwd, no autodiff"), || {
        let _ = plain_block.forward(plain_x.clone(), &plain_rope, plain_mask.clone(), None).sum().into_scalar::<f32>();
    });
    time(&format!("one block [{batch},{seq},{d}] fwd+bwd"), || {
        let _ = block.forward(x.clone(), &rope, block_mask.clone(), None).sum().backward();
    });
    let s = Tensor::<4>::random([batch, heads, seq, seq], burn::tensor::Distribution::Normal(0.0, 1.0), &dev).require_grad();
    time(&format!("softmax [{batch},{heads},{seq},{seq}] fwd+bwd"), || {
        let _ = burn::tensor::activation::softmax(s.clone(), 3).powf_scalar(2.0).sum().backward();
    });
    Ok(())
}

//! The training objective: per-layer cross-entropy of the next video token, summed over the
//! bit groups of a factorized head, weighted per layer.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use super::config::{GeneratorConfig, layer_offsets};
use super::model::Generator;

/// Losses of one teacher-forced batch.
#[derive(Debug, Clone)]
pub struct LayerLosses {
    /// `sum_j w_j CE_j / sum_j w_j`, `[1]`: what training minimizes.
    pub total: Tensor<1>,
    /// Mean cross-entropy per token of each layer (nats, summed over bit groups), `[1]` each.
    pub per_layer: Vec<Tensor<1>>,
}

/// Splits ids `x` `[B, n]` into the bit groups `groups` (low bits first): one `[B, n]` each.
pub fn split_groups<const D: usize>(x: Tensor<D, Int>, groups: &[usize]) -> Vec<Tensor<D, Int>> {
    let mut off = 0;
    groups
        .iter()
        .map(|&g| {
            let part = x.clone().div_scalar(1i64 << off).remainder_scalar(1i64 << g);
            off += g;
            part
        })
        .collect()
}

/// Losses of hidden states `h` `[B, N, D]` (position `i` predicts video token `i`, from
/// [`Generator::forward_train`]) against `targets[j]` `[B, n_j]` for every layer.
pub fn layer_losses(model: &Generator, cfg: &GeneratorConfig, h: Tensor<3>, targets: &[Tensor<2, Int>]) -> LayerLosses {
    let off = layer_offsets(&cfg.layers);
    let mut per_layer = Vec::with_capacity(cfg.layers.len());
    let mut total: Option<Tensor<1>> = None;
    let mut weight_sum = 0f32;
    for (j, target) in targets.iter().enumerate().take(cfg.layers.len()) {
        let hj = h.clone().slice(s![.., off[j]..off[j + 1], ..]);
        let groups = model.groups(j);
        let mut ce: Option<Tensor<1>> = None;
        for (logits, t) in model.logits(j, hj).into_iter().zip(split_groups(target.clone(), &groups)) {
            let lp = log_softmax(logits, 2).gather(2, t.unsqueeze_dim::<3>(2));
            let nll = lp.mean().neg();
            ce = Some(match ce {
                Some(c) => c + nll,
                None => nll,
            });
        }
        let Some(ce) = ce else { continue };
        let w = cfg.loss_weight(j);
        weight_sum += w;
        let weighted = ce.clone().mul_scalar(w);
        total = Some(match total {
            Some(t) => t + weighted,
            None => weighted,
        });
        per_layer.push(ce);
    }
    let device = h.device();
    let total = total.unwrap_or_else(|| Tensor::zeros([1], &device)).div_scalar(weight_sum.max(1e-6));
    LayerLosses { total, per_layer }
}

/// Next-token accuracy per layer: the fraction of tokens whose every bit group's argmax equals
/// the target's (same inputs as [`layer_losses`]).
pub fn accuracy(model: &Generator, cfg: &GeneratorConfig, h: Tensor<3>, targets: &[Tensor<2, Int>]) -> Vec<f64> {
    let off = layer_offsets(&cfg.layers);
    targets
        .iter()
        .enumerate()
        .take(cfg.layers.len())
        .map(|(j, target)| {
            let hj = h.clone().slice(s![.., off[j]..off[j + 1], ..]);
            let groups = model.groups(j);
            let mut all: Option<Tensor<2, Bool>> = None;
            for (logits, t) in model.logits(j, hj).into_iter().zip(split_groups(target.clone(), &groups)) {
                let hit = logits.argmax(2).squeeze_dim::<2>(2).equal(t);
                all = Some(match all {
                    Some(a) => a.bool_and(hit),
                    None => hit,
                });
            }
            all.map(|a| f64::from(a.float().mean().into_scalar::<f32>())).unwrap_or(0.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::config::head_groups;

    #[test]
    fn groups_recombine_to_the_id() {
        let device = Device::flex();
        let ids = [0i64, 1, 511, 512, 262_143, 123_456];
        let x = Tensor::<2, Int>::from_data(TensorData::new(ids.to_vec(), [1, ids.len()]), &device);
        let groups = head_groups(18, 12);
        assert_eq!(groups, vec![9, 9]);
        let parts: Vec<Vec<i64>> = split_groups(x, &groups).into_iter().map(|p| p.into_data().convert::<i64>().try_to_vec().expect("i64")).collect();
        for (i, &id) in ids.iter().enumerate() {
            assert!(parts[0][i] < 512 && parts[1][i] < 512);
            assert_eq!(parts[0][i] + (parts[1][i] << 9), id);
        }
    }
}

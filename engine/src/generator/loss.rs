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
///
/// `change_weight` weighs, in the total only, the tokens of latent frames `1..t` whose id differs
/// from the token at the same `(h, w)` one latent frame earlier (see [`change_weights`]); 1 gives
/// every token the same weight. `per_layer` is always the plain mean.
pub fn layer_losses(model: &Generator, cfg: &GeneratorConfig, h: Tensor<3>, targets: &[Tensor<2, Int>], change_weight: f32) -> LayerLosses {
    let off = layer_offsets(&cfg.layers);
    let mut per_layer = Vec::with_capacity(cfg.layers.len());
    let mut total: Option<Tensor<1>> = None;
    let mut weight_sum = 0f32;
    for (j, target) in targets.iter().enumerate().take(cfg.layers.len()) {
        let hj = h.clone().slice(s![.., off[j]..off[j + 1], ..]);
        let groups = model.groups(j);
        // Per-token negative log-likelihood, summed over bit groups: [B, n_j].
        let mut nll: Option<Tensor<2>> = None;
        for (logits, t) in model.logits(j, hj).into_iter().zip(split_groups(target.clone(), &groups)) {
            let lp = log_softmax(logits, 2).gather(2, t.unsqueeze_dim::<3>(2)).squeeze_dim::<2>(2).neg();
            nll = Some(match nll {
                Some(c) => c + lp,
                None => lp,
            });
        }
        let Some(nll) = nll else { continue };
        let ce = nll.clone().mean();
        let layer = &cfg.layers[j];
        let focused = match change_weights(target.clone(), layer.h * layer.w, change_weight) {
            Some(cw) => (nll * cw.clone()).sum().div(cw.sum()),
            None => ce.clone(),
        };
        let w = cfg.loss_weight(j);
        weight_sum += w;
        let weighted = focused.mul_scalar(w);
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

/// Per-token weights `[B, n]` for a layer's ids `target` `[B, n]` laid out as latent frames of
/// `frame` tokens: `change_weight` where a token of frame `f >= 1` differs from the token at the
/// same position in frame `f - 1`, 1 elsewhere. `None` when the weighting changes nothing
/// (`change_weight == 1`, or a layer of one latent frame).
///
/// Why: most tokens of a later latent frame repeat the one before (the redundancy dynamic
/// encoding removes), so teacher forcing is dominated by copying, and the few tokens where a
/// shape moves, the only ones that need the prompt's motion, weigh little in a plain mean.
pub fn change_weights(target: Tensor<2, Int>, frame: usize, change_weight: f32) -> Option<Tensor<2>> {
    let [b, n] = target.dims();
    if (change_weight - 1.0).abs() < f32::EPSILON || frame == 0 || n <= frame {
        return None;
    }
    let changed = target.clone().slice(s![.., frame..n]).not_equal(target.clone().slice(s![.., 0..n - frame])).float();
    let later = changed.mul_scalar(change_weight - 1.0).add_scalar(1.0);
    let first = Tensor::<2>::ones([b, frame], &target.device());
    Some(Tensor::cat(vec![first, later], 1))
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
    fn changed_tokens_get_the_change_weight() {
        let device = Device::flex();
        // Two latent frames of 3 tokens, then a third: frame 1 changes position 1, frame 2
        // changes positions 0 and 2.
        let ids = [5i64, 6, 7, 5, 9, 7, 1, 9, 2];
        let x = Tensor::<2, Int>::from_data(TensorData::new(ids.to_vec(), [1, 9]), &device);
        let w = change_weights(x.clone(), 3, 4.0).expect("weights").into_data().convert::<f32>().try_to_vec::<f32>().expect("f32");
        assert_eq!(w, vec![1.0, 1.0, 1.0, 1.0, 4.0, 1.0, 4.0, 1.0, 4.0]);
        assert!(change_weights(x.clone(), 3, 1.0).is_none(), "weight 1 is the plain mean");
        assert!(change_weights(x, 9, 4.0).is_none(), "one latent frame has nothing to compare");
    }

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

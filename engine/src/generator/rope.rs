//! 3D rotary position embedding: each attention head's frequency pairs are split into three
//! groups that rotate by a token's `t`, `h` and `w`. Text-prefix positions (and BOS) get no
//! rotation. Burn's `RotaryEncoding` is 1D, hence this module.
//!
//! Positions are either a token's integer `(t, h, w)` within its own layer, or (configs with
//! `rope_finest_grid`) the centre of the region it covers in units of the finest layer's grid
//! ([`grid_position`]): then a fine token and the coarse token over the same place have a
//! zero offset, so attention can find "the coarse token above me" by position alone.

use burn::prelude::*;

use super::config::TokenPos;

/// Cosine and sine tables for a run of positions, `[S, head_dim]` each (rotate-half layout:
/// the first and second halves of the head share the same angles).
#[derive(Debug, Clone)]
pub struct RopeTables {
    pub cos: Tensor<2>,
    pub sin: Tensor<2>,
}

/// Frequencies of the three axes: `(axis, inverse frequency)` per frequency pair.
fn pair_freqs(head_dim: usize, theta: f64) -> Vec<(usize, f64)> {
    let half = head_dim / 2;
    let sizes = [half.div_ceil(3), (half - half.div_ceil(3)).div_ceil(2), 0];
    let sizes = [sizes[0], sizes[1], half - sizes[0] - sizes[1]];
    let mut out = Vec::with_capacity(half);
    for (axis, &n) in sizes.iter().enumerate() {
        for i in 0..n {
            out.push((axis, theta.powf(-(i as f64) / n.max(1) as f64)));
        }
    }
    out
}

/// Angles of one position: `None` (prefix: no rotation) or a video token's `(t, h, w)`.
fn angles(pos: Option<[f64; 3]>, freqs: &[(usize, f64)]) -> Vec<f64> {
    freqs
        .iter()
        .map(|&(axis, f)| match pos {
            None => 0.0,
            Some(p) => p[axis] * f,
        })
        .collect()
}

/// A token's integer `(t, h, w)` within its layer, as RoPE coordinates.
pub fn layer_position(p: TokenPos) -> [f64; 3] {
    [p.t as f64, p.h as f64, p.w as f64]
}

/// The centre of the region a token of a `grid` `[t, h, w]` layer covers, in units of the
/// `finest` grid's cells: `(i + 1/2) finest / grid - 1/2` per axis (a finest-layer token keeps
/// its integer position; the one token of a `1 x 1 x 1` layer over an 8-cell axis sits at 3.5).
pub fn grid_position(p: TokenPos, grid: [usize; 3], finest: [usize; 3]) -> [f64; 3] {
    let axis = |i: usize, n: usize, f: usize| (i as f64 + 0.5) * f as f64 / n.max(1) as f64 - 0.5;
    [axis(p.t, grid[0], finest[0]), axis(p.h, grid[1], finest[1]), axis(p.w, grid[2], finest[2])]
}

impl RopeTables {
    /// Tables for positions `positions` (`None` = prefix; else `(t, h, w)` coordinates, which
    /// may be fractional).
    pub fn new(positions: &[Option<[f64; 3]>], head_dim: usize, theta: f64, device: &Device) -> Self {
        let freqs = pair_freqs(head_dim, theta);
        let mut cos = Vec::with_capacity(positions.len() * head_dim);
        let mut sin = Vec::with_capacity(positions.len() * head_dim);
        for &p in positions {
            let a = angles(p, &freqs);
            for _ in 0..2 {
                cos.extend(a.iter().map(|x| x.cos() as f32));
                sin.extend(a.iter().map(|x| x.sin() as f32));
            }
        }
        let s = positions.len();
        Self { cos: Tensor::from_data(TensorData::new(cos, [s, head_dim]), device), sin: Tensor::from_data(TensorData::new(sin, [s, head_dim]), device) }
    }

    /// Rows `range` of the tables.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Self {
        Self { cos: self.cos.clone().slice([range.clone()]), sin: self.sin.clone().slice([range]) }
    }

    /// Rotates `x` `[B, H, S, head_dim]` (S = rows of the tables).
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, s, d] = x.dims();
        let half = d / 2;
        let x1 = x.clone().slice(s![.., .., .., 0..half]);
        let x2 = x.clone().slice(s![.., .., .., half..d]);
        let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
        let cos = self.cos.clone().reshape([1, 1, s, d]);
        let sin = self.sin.clone().reshape([1, 1, s, d]);
        x * cos + rotated * sin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_preserves_norm_and_depends_on_relative_position() {
        let device = Device::flex();
        let p = |t, h, w| Some(layer_position(TokenPos { layer: 0, t, h, w }));
        let tables = RopeTables::new(&[None, p(0, 1, 2), p(1, 2, 3), p(2, 3, 4)], 12, 10000.0, &device);
        let q = Tensor::<4>::random([1, 1, 4, 12], burn::tensor::Distribution::Default, &device);
        let r = tables.apply(q.clone());
        let n = |x: Tensor<4>| x.powf_scalar(2.0).sum_dim(3).into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 values");
        for (a, b) in n(q.clone()).iter().zip(n(r.clone())) {
            assert!((a - b).abs() < 1e-4);
        }
        // Prefix row is not rotated.
        let d0 = (q.clone().slice(s![.., .., 0..1, ..]) - r.clone().slice(s![.., .., 0..1, ..])).abs().max().into_scalar::<f32>();
        assert!(d0 < 1e-6);
        // Same vector at (0,1,2) and (1,2,3) against (1,2,3) and (2,3,4): equal dot products
        // (relative offset (1,1,1) in both cases).
        let v = Tensor::<4>::random([1, 1, 1, 12], burn::tensor::Distribution::Default, &device).repeat_dim(2, 4);
        let rv = tables.apply(v);
        let row = |i: usize| rv.clone().slice(s![.., .., i..i + 1, ..]);
        let d1 = (row(1) * row(2)).sum().into_scalar::<f32>();
        let d2 = (row(2) * row(3)).sum().into_scalar::<f32>();
        assert!((d1 - d2).abs() < 1e-4, "{d1} vs {d2}");
    }

    /// `<R(a) q, R(b) k>` for positions `a`, `b` (`None` = prefix).
    fn score(a: Option<TokenPos>, b: Option<TokenPos>, q: &Tensor<4>, k: &Tensor<4>) -> f32 {
        let device = Device::flex();
        let t = RopeTables::new(&[a.map(layer_position), b.map(layer_position)], 24, 10000.0, &device);
        let qk = Tensor::cat(vec![q.clone(), k.clone()], 2);
        let r = t.apply(qk);
        (r.clone().slice(s![.., .., 0..1, ..]) * r.slice(s![.., .., 1..2, ..])).sum().into_scalar::<f32>()
    }

    #[test]
    fn scores_depend_on_the_3d_offset_only_and_every_axis_counts() {
        let device = Device::flex();
        device.seed(1);
        let q = Tensor::<4>::random([1, 1, 1, 24], burn::tensor::Distribution::Default, &device);
        let k = Tensor::<4>::random([1, 1, 1, 24], burn::tensor::Distribution::Default, &device);
        let p = |layer, t, h, w| Some(TokenPos { layer, t, h, w });
        let base = score(p(0, 0, 0, 0), p(0, 1, 2, 3), &q, &k);
        // Same offset (1, 2, 3) elsewhere, and in another layer: same score.
        assert!((score(p(2, 3, 5, 1), p(2, 4, 7, 4), &q, &k) - base).abs() < 1e-4);
        assert!((score(p(3, 0, 0, 0), p(3, 1, 2, 3), &q, &k) - base).abs() < 1e-4);
        // Changing the offset along any single axis changes the score.
        for other in [p(0, 2, 2, 3), p(0, 1, 3, 3), p(0, 1, 2, 4)] {
            assert!((score(p(0, 0, 0, 0), other, &q, &k) - base).abs() > 1e-4, "{other:?}");
        }
        // The prefix is never rotated: prefix-prefix scores are plain dot products.
        let plain = (q.clone() * k.clone()).sum().into_scalar::<f32>();
        assert!((score(None, None, &q, &k) - plain).abs() < 1e-5);
    }

    #[test]
    fn grid_positions_align_layers_on_the_finest_grid() {
        let p = |layer, t, h, w| TokenPos { layer, t, h, w };
        let finest = [4, 8, 8];
        // A finest-layer token keeps its integer position.
        assert_eq!(grid_position(p(2, 3, 5, 1), finest, finest), [3.0, 5.0, 1.0]);
        // A 2x2x2 layer's token (0, 1, 0) covers finest frames 0-1, rows 4-7, columns 0-3:
        // its centre is (0.5, 5.5, 1.5).
        assert_eq!(grid_position(p(0, 0, 1, 0), [2, 2, 2], finest), [0.5, 5.5, 1.5]);
        // One token over the whole clip sits in the middle.
        assert_eq!(grid_position(p(0, 0, 0, 0), [1, 1, 1], finest), [1.5, 3.5, 3.5]);
        // A fine token and the coarse token covering it: offsets below one cell on every axis.
        let fine = grid_position(p(2, 1, 6, 2), finest, finest);
        let coarse = grid_position(p(0, 0, 1, 0), [2, 2, 2], finest);
        assert!(fine.iter().zip(coarse).all(|(a, b)| (a - b).abs() <= 0.5 + 1e-9), "{fine:?} {coarse:?}");
    }
}

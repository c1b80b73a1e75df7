//! The KV-cache: explicit per-block key/value state for incremental decoding, preallocated to
//! the full sequence length and filled in place (the buffers are uniquely owned between steps,
//! so the backend writes into them without copying).

use burn::prelude::*;

/// Keys and values of one block, `[B, H, S_max, head_dim]`, of which the first `len`
/// positions are filled.
#[derive(Debug, Clone)]
pub struct LayerCache {
    k: Option<Tensor<4>>,
    v: Option<Tensor<4>>,
    len: usize,
    max_len: usize,
}

impl LayerCache {
    /// An empty cache for `batch` rows, `heads` heads, up to `max_len` positions.
    pub fn new(batch: usize, heads: usize, max_len: usize, head_dim: usize, device: &Device) -> Self {
        Self {
            k: Some(Tensor::zeros([batch, heads, max_len, head_dim], device)),
            v: Some(Tensor::zeros([batch, heads, max_len, head_dim], device)),
            len: 0,
            max_len,
        }
    }

    /// Appends `k`, `v` `[B, H, S, head_dim]` and returns all keys and values so far,
    /// `[B, H, len + S, head_dim]`. Positions beyond the preallocated length grow the buffers
    /// (by concatenation), so an undersized cache is slower, never wrong.
    pub fn append(&mut self, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let s = k.dims()[2];
        let end = self.len + s;
        let (ck, cv) = (self.k.take(), self.v.take());
        let (ck, cv) = match (ck, cv) {
            (Some(ck), Some(cv)) if end <= self.max_len => {
                let range = self.len..end;
                (ck.slice_assign(s![.., .., range.clone(), ..], k), cv.slice_assign(s![.., .., range, ..], v))
            }
            (Some(ck), Some(cv)) => {
                let keep = self.len;
                let ck = Tensor::cat(vec![ck.slice(s![.., .., 0..keep, ..]), k], 2);
                let cv = Tensor::cat(vec![cv.slice(s![.., .., 0..keep, ..]), v], 2);
                self.max_len = end;
                (ck, cv)
            }
            _ => {
                self.max_len = end;
                (k, v)
            }
        };
        self.len = end;
        let out = (ck.clone().slice(s![.., .., 0..end, ..]), cv.clone().slice(s![.., .., 0..end, ..]));
        self.k = Some(ck);
        self.v = Some(cv);
        out
    }

    /// Filled positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The cache of a whole generator: one [`LayerCache`] per block.
#[derive(Debug, Clone)]
pub struct KvCache {
    pub blocks: Vec<LayerCache>,
}

impl KvCache {
    /// Positions filled so far.
    pub fn len(&self) -> usize {
        self.blocks.first().map(LayerCache::len).unwrap_or(0)
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_fills_in_order_and_grows_past_the_preallocation() {
        let device = Device::flex();
        let mut c = LayerCache::new(1, 1, 3, 2, &device);
        let t = |v: f32, s: usize| Tensor::<4>::full([1, 1, s, 2], v, &device);
        let (k, _) = c.append(t(1.0, 2), t(10.0, 2));
        assert_eq!(k.dims(), [1, 1, 2, 2]);
        let (k, v) = c.append(t(2.0, 2), t(20.0, 2));
        assert_eq!(c.len(), 4);
        let k: Vec<f32> = k.into_data().try_to_vec().expect("f32");
        let v: Vec<f32> = v.into_data().try_to_vec().expect("f32");
        assert_eq!(k, vec![1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]);
        assert_eq!(v, vec![10.0, 10.0, 10.0, 10.0, 20.0, 20.0, 20.0, 20.0]);
    }
}

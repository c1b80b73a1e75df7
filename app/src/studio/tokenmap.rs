//! Token-map colouring on the CPU. The same formulas live in `shaders/token_map.wgsl` for the
//! wgpu renderer; this path is used with the glow renderer and in tests (no GPU device).
//!
//! - By id: hue from a Fibonacci hash of the id, so neighbouring ids differ visibly.
//! - By code similarity: the code's ±1 bits are projected on three fixed pseudo-random
//!   directions (one per RGB channel), so codes a few bits apart get nearby colours.
//! - Masked tokens (redundancy mask overlay) are mixed 70% towards grey.

use eframe::egui::{self, Color32, ColorImage};

use super::settings::ColorMode;

fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let h6 = (h.fract() * 6.0).max(0.0);
    let i = h6.floor();
    let f = h6 - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match i as u32 % 6 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// PCG hash (the same integer steps as `pcg` in the WGSL shader).
pub fn pcg(v: u32) -> u32 {
    let state = v.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277_803_737);
    (word >> 22) ^ word
}

/// The fixed projection weight of bit `k` on channel `c`, in `[-1, 1]` (WGSL: `weight`).
pub fn weight(c: u32, k: u32) -> f32 {
    (pcg(c * 64 + k) >> 8) as f32 / 16_777_216.0 * 2.0 - 1.0
}

/// The hue of token `id`, in `[0, 1)`: Fibonacci hashing, exact in integers (WGSL: `id_hue`).
pub fn id_hue(id: u32) -> f32 {
    (id.wrapping_mul(2_654_435_769) >> 8) as f32 / 16_777_216.0
}

/// The colour of token `id` of a `bits`-bit codebook, `[0, 1]` RGB.
pub fn token_rgb(id: u32, bits: u32, mode: ColorMode) -> [f32; 3] {
    match mode {
        ColorMode::Id => hsv(id_hue(id), 0.65, 0.95),
        ColorMode::Similarity => {
            let mut out = [0.0f32; 3];
            for (c, o) in out.iter_mut().enumerate() {
                let mut acc = 0.0;
                let mut norm = 0.0;
                for k in 0..bits {
                    let b = if (id >> k) & 1 == 1 { 1.0 } else { -1.0 };
                    let wk = weight(c as u32, k);
                    acc += b * wk;
                    norm += wk * wk;
                }
                *o = (0.5 + 0.5 * acc / norm.sqrt().max(1e-6)).clamp(0.0, 1.0);
            }
            out
        }
    }
}

fn to_color(rgb: [f32; 3]) -> Color32 {
    let b = |x: f32| (x.clamp(0.0, 1.0) * 255.0).round() as u8;
    Color32::from_rgb(b(rgb[0]), b(rgb[1]), b(rgb[2]))
}

/// Latent frame `t` of a layer (`ids` row-major `[t, h, w]`) as an `w x h` image; `mask`
/// (same layout) greys out masked tokens.
pub fn token_image(ids: &[u32], shape: [usize; 3], t: usize, bits: u32, mode: ColorMode, mask: Option<&[bool]>) -> ColorImage {
    let [_, h, w] = shape;
    let base = t * h * w;
    let pixels = (0..h * w)
        .map(|i| {
            let id = ids.get(base + i).copied().unwrap_or(0);
            let mut rgb = token_rgb(id, bits, mode);
            if mask.and_then(|m| m.get(base + i)).copied().unwrap_or(false) {
                rgb = rgb.map(|x| x * 0.3 + 0.5 * 0.7);
            }
            to_color(rgb)
        })
        .collect();
    ColorImage::new([w, h], pixels)
}

/// The cell under `pos` of a `w x h` grid drawn in `rect`.
pub fn cell_at(rect: egui::Rect, pos: egui::Pos2, h: usize, w: usize) -> Option<(usize, usize)> {
    if !rect.contains(pos) || h == 0 || w == 0 {
        return None;
    }
    let x = ((pos.x - rect.left()) / rect.width() * w as f32).floor() as usize;
    let y = ((pos.y - rect.top()) / rect.height() * h as f32).floor() as usize;
    Some((y.min(h - 1), x.min(w - 1)))
}

/// The bits of `id` as text, most significant first.
pub fn bits_text(id: u32, bits: usize) -> String {
    (0..bits).rev().map(|k| if (id >> k) & 1 == 1 { '1' } else { '0' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(a: [f32; 3], b: [f32; 3]) -> f32 {
        a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f32>().sqrt()
    }

    #[test]
    fn similar_codes_get_similar_colours() {
        let bits = 10;
        let base = 0b10_1100_1010u32;
        let one_bit = base ^ 0b100;
        let far = !base & 0x3ff;
        let m = ColorMode::Similarity;
        assert!(dist(token_rgb(base, bits, m), token_rgb(one_bit, bits, m)) < dist(token_rgb(base, bits, m), token_rgb(far, bits, m)));
        // By id, neighbouring ids differ clearly.
        assert!(dist(token_rgb(5, bits, ColorMode::Id), token_rgb(6, bits, ColorMode::Id)) > 0.2);
    }

    #[test]
    fn images_cells_and_bits() {
        let ids: Vec<u32> = (0..2 * 2 * 3).collect();
        let img = token_image(&ids, [2, 2, 3], 1, 5, ColorMode::Id, Some(&[true; 12]));
        assert_eq!(img.size, [3, 2]);
        let rect = egui::Rect::from_min_size(egui::pos2(10.0, 10.0), egui::vec2(30.0, 20.0));
        assert_eq!(cell_at(rect, egui::pos2(39.0, 29.0), 2, 3), Some((1, 2)));
        assert_eq!(cell_at(rect, egui::pos2(5.0, 5.0), 2, 3), None);
        assert_eq!(bits_text(5, 5), "00101");
    }
}

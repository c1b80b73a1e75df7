//! A labelled grid of clips: column labels along the top under an axis title, row labels on
//! the left, each clip scaled up (nearest neighbour) with a caption line under it. Frames are
//! composed one by one, so the grid is itself a video (and any frame of it an image).

use super::label::{draw_text, fit, text_width};
use crate::video::Video;

/// What to draw around the cells.
#[derive(Debug, Clone, PartialEq)]
pub struct GridLabels {
    /// Over the column labels, e.g. `CFG scale`.
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<String>,
    /// Under each cell, row-major (may be shorter: missing captions are blank).
    pub captions: Vec<String>,
}

const BG: u8 = 24;
const TEXT: [u8; 3] = [235, 235, 235];
const DIM: [u8; 3] = [170, 170, 170];
const PX: f32 = 12.0;
const LINE: usize = 16;
const PAD: usize = 4;
const MAX_ROW_LABEL: f32 = 240.0;

/// Composes `cells` (row-major, `rows x columns` of `labels`; `None` leaves a blank cell) at
/// `scale` times their size. Every clip must have the size of the first; the grid has the
/// frame count and fps of the longest. Width and height are even (H.264 wants them so).
pub fn compose(cells: &[Option<&Video>], labels: &GridLabels, scale: usize) -> Option<Video> {
    let first = cells.iter().flatten().next()?;
    let (cw, ch) = (first.width() as usize * scale.max(1), first.height() as usize * scale.max(1));
    let frames = cells.iter().flatten().map(|v| v.len()).max().unwrap_or(0);
    let (nr, nc) = (labels.rows.len(), labels.columns.len());
    let label_w = labels.rows.iter().map(|r| text_width(r, PX)).fold(0.0f32, f32::max).min(MAX_ROW_LABEL).ceil() as usize + 2 * PAD;
    let head = 2 * LINE + PAD;
    let cell_h = ch + LINE + PAD;
    let w = (label_w + nc * (cw + PAD) + PAD).next_multiple_of(2);
    let h = (head + nr * cell_h + PAD).next_multiple_of(2);
    let mut base = vec![BG; w * h * 3];
    let title_x = label_w as f32 + ((nc * (cw + PAD)) as f32 - text_width(&labels.title, PX)).max(0.0) / 2.0;
    draw_text(&mut base, (w, h), (title_x, 1.0), &labels.title, PX, DIM);
    for (c, col) in labels.columns.iter().enumerate() {
        let x = label_w + c * (cw + PAD);
        let t = fit(col, PX, cw as f32);
        draw_text(&mut base, (w, h), (x as f32 + (cw as f32 - text_width(&t, PX)).max(0.0) / 2.0, (LINE + 1) as f32), &t, PX, TEXT);
    }
    for (r, row) in labels.rows.iter().enumerate() {
        let y = head + r * cell_h + ch / 2 - LINE / 2;
        draw_text(&mut base, (w, h), (PAD as f32, y as f32), &fit(row, PX, MAX_ROW_LABEL), PX, TEXT);
        for c in 0..nc {
            if let Some(cap) = labels.captions.get(r * nc + c) {
                let x = label_w + c * (cw + PAD);
                draw_text(&mut base, (w, h), (x as f32, (head + r * cell_h + ch + 1) as f32), &fit(cap, PX - 2.0, cw as f32), PX - 2.0, DIM);
            }
        }
    }
    let fps = cells.iter().flatten().map(|v| v.fps()).fold(0.0, f64::max);
    let mut out = Video::new(w as u32, h as u32, fps);
    for t in 0..frames {
        let mut frame = base.clone();
        for (i, cell) in cells.iter().enumerate().take(nr * nc) {
            let Some(v) = cell else { continue };
            if v.is_empty() || (v.width() as usize * scale.max(1), v.height() as usize * scale.max(1)) != (cw, ch) {
                continue;
            }
            let (r, c) = (i / nc, i % nc);
            let src = (v.frame(t.min(v.len() - 1)), v.width() as usize, v.height() as usize);
            blit_scaled(&mut frame, w, src, scale.max(1), (label_w + c * (cw + PAD), head + r * cell_h));
        }
        out.push_frame(&frame);
    }
    Some(out)
}

/// Copies an RGB8 image `(pixels, width, height)`, each pixel as a `scale x scale` block, into
/// `dst` (`dw` pixels wide) at `(x0, y0)`.
fn blit_scaled(dst: &mut [u8], dw: usize, (src, sw, sh): (&[u8], usize, usize), scale: usize, (x0, y0): (usize, usize)) {
    for y in 0..sh * scale {
        let row = &src[(y / scale) * sw * 3..(y / scale + 1) * sw * 3];
        let d = ((y0 + y) * dw + x0) * 3;
        for x in 0..sw * scale {
            let s = (x / scale) * 3;
            if let Some(px) = dst.get_mut(d + x * 3..d + x * 3 + 3) {
                px.copy_from_slice(&row[s..s + 3]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_land_scaled_in_place_with_even_size() {
        let red = Video::from_raw(4, 4, 8.0, [200u8, 10, 10].repeat(16 * 2)).expect("clip");
        let blue = Video::from_raw(4, 4, 8.0, [10u8, 10, 200].repeat(16 * 3)).expect("clip");
        let labels = GridLabels {
            title: "CFG scale".into(),
            columns: vec!["1".into(), "7.5".into()],
            rows: vec!["a red circle · seed 0".into()],
            captions: vec!["1/3".into(), "3/3".into()],
        };
        let g = compose(&[Some(&red), Some(&blue)], &labels, 3).expect("grid");
        assert_eq!(g.len(), 3, "as long as the longest clip");
        assert!(g.width().is_multiple_of(2) && g.height().is_multiple_of(2));
        let (w, f) = (g.width() as usize, g.frame(0));
        let px = |x: usize, y: usize| &f[(y * w + x) * 3..(y * w + x) * 3 + 3];
        // The first cell's 12x12 block is red, the second's blue, right of it.
        let (label_w, head) = (text_width("a red circle · seed 0", PX).ceil() as usize + 2 * PAD, 2 * LINE + PAD);
        assert_eq!(px(label_w + 5, head + 5), &[200, 10, 10]);
        assert_eq!(px(label_w + 12 + PAD + 5, head + 11), &[10, 10, 200]);
        assert!(compose(&[None], &labels, 2).is_none());
    }
}

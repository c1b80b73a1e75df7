//! Text labels drawn into RGB8 frames (sweep grids), rasterized with `ab_glyph` from the
//! DejaVu Sans font shipped in `assets/fonts/` (compiled in, so no file is needed at run time;
//! license in `assets/fonts/DejaVuSans-LICENSE.txt`).

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};

static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// The label font.
fn font() -> Option<FontRef<'static>> {
    FontRef::try_from_slice(FONT).ok()
}

/// Width in pixels of `text` at `px` pixels per em.
pub fn text_width(text: &str, px: f32) -> f32 {
    let Some(font) = font() else { return 0.0 };
    let f = font.as_scaled(PxScale::from(px));
    let mut w = 0.0;
    let mut prev = None;
    for c in text.chars() {
        let id = f.glyph_id(c);
        if let Some(p) = prev {
            w += f.kern(p, id);
        }
        w += f.h_advance(id);
        prev = Some(id);
    }
    w
}

/// `text`, shortened with an ellipsis to fit `max_width` pixels at `px`.
pub fn fit(text: &str, px: f32, max_width: f32) -> String {
    if text_width(text, px) <= max_width {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    for n in (0..chars.len()).rev() {
        let t: String = chars[..n].iter().collect::<String>() + "…";
        if text_width(&t, px) <= max_width {
            return t;
        }
    }
    String::new()
}

/// Draws `text` into an RGB8 frame of `size = (width, height)` with its top-left corner at
/// `at = (x, y)`, `px` pixels per em, blending `rgb` by glyph coverage. Pixels outside the
/// frame are skipped.
pub fn draw_text(frame: &mut [u8], size: (usize, usize), at: (f32, f32), text: &str, px: f32, rgb: [u8; 3]) {
    let ((width, height), (x, y)) = (size, at);
    let Some(font) = font() else { return };
    let scale = PxScale::from(px);
    let f = font.as_scaled(scale);
    let baseline = y + f.ascent();
    let mut caret = x;
    let mut prev = None;
    for c in text.chars() {
        let id = f.glyph_id(c);
        if let Some(p) = prev {
            caret += f.kern(p, id);
        }
        let glyph = id.with_scale_and_position(scale, point(caret, baseline));
        caret += f.h_advance(id);
        prev = Some(id);
        let Some(outlined) = font.outline_glyph(glyph) else { continue };
        let b = outlined.px_bounds();
        outlined.draw(|gx, gy, coverage| {
            let (px_x, px_y) = (b.min.x as i64 + i64::from(gx), b.min.y as i64 + i64::from(gy));
            if px_x < 0 || px_y < 0 || px_x as usize >= width || px_y as usize >= height {
                return;
            }
            let i = (px_y as usize * width + px_x as usize) * 3;
            let a = coverage.clamp(0.0, 1.0);
            for (k, &c) in rgb.iter().enumerate() {
                let old = f32::from(frame[i + k]);
                frame[i + k] = (old + (f32::from(c) - old) * a).round() as u8;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_inside_the_frame_and_fits_text() {
        let (w, h) = (80, 20);
        let mut frame = vec![0u8; w * h * 3];
        draw_text(&mut frame, (w, h), (2.0, 2.0), "CFG 7.5", 12.0, [255, 255, 255]);
        let lit = frame.chunks(3).filter(|p| p[0] > 128).count();
        assert!(lit > 20, "{lit} lit pixels");
        // Nothing is drawn right of the text's width.
        let tw = text_width("CFG 7.5", 12.0).ceil() as usize + 4;
        assert!((0..h).all(|y| (tw..w).all(|x| frame[(y * w + x) * 3] == 0)));
        // Off-frame drawing is clipped, not a panic.
        draw_text(&mut frame, (w, h), (-30.0, 15.0), "clipped text", 12.0, [255, 0, 0]);
        let short = fit("a very long prompt that will not fit", 12.0, 60.0);
        assert!(short.ends_with('…') && text_width(&short, 12.0) <= 60.0, "{short}");
        assert_eq!(fit("ok", 12.0, 60.0), "ok");
    }
}

//! The text table of an [`EvalReport`] (what `hitvideo tokenizer eval` prints).

use std::fmt;

use super::tokenizer::{EvalReport, Quality};

fn ms(q: &Quality) -> String {
    q.ms_ssim.map_or_else(|| "n/a".to_string(), |v| format!("{v:.4}"))
}

/// Reports of at most this many clips list each clip's worst frames.
const WORST_FRAMES_CLIPS: usize = 10;
/// How many of a clip's worst frames are listed.
const WORST_FRAMES: usize = 5;

/// The `n` lowest of `psnr` (per frame) as `frame (dB)`, lowest first.
fn worst_frames(psnr: &[f64], n: usize) -> String {
    let mut order: Vec<usize> = (0..psnr.len()).collect();
    order.sort_by(|&a, &b| psnr[a].total_cmp(&psnr[b]).then(a.cmp(&b)));
    order.iter().take(n).map(|&t| format!("frame {t} ({:.1} dB)", psnr[t])).collect::<Vec<_>>().join(", ")
}

fn pct(x: f64) -> String {
    format!("{:.0}%", 100.0 * x)
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = &self.config_sha256[..self.config_sha256.len().min(12)];
        writeln!(
            f,
            "tokenizer '{}' (config {short}): {} clips, {} frames of {}x{} at {} fps in {} windows",
            self.preset, self.clips, self.frames, self.width, self.height, self.fps, self.windows
        )?;
        writeln!(f, "{} tokens per window; {:.4} bits per pixel; compression {:.1}x over RGB24", self.tokens_per_window, self.bpp, self.compression_ratio)?;
        writeln!(f, "encode {:.2} s, decode (all layers) {:.2} s", self.encode_seconds, self.decode_seconds)?;
        writeln!(f, "\nlayer  grid       bits  usage    perplexity")?;
        for (i, l) in self.layers.iter().enumerate() {
            let grid = format!("{}x{}x{}", l.shape[0], l.shape[1], l.shape[2]);
            writeln!(f, "{:<6} {grid:<10} {:<5} {:<8.4} {:.1} / {}", i + 1, l.bits, l.usage, l.perplexity, 1u64 << l.bits)?;
        }
        writeln!(f, "\nquality from the k coarsest layers (mean over clips)")?;
        writeln!(f, "k      PSNR dB   SSIM     MS-SSIM")?;
        for (k, q) in self.mean_by_layers.iter().enumerate() {
            writeln!(f, "{:<6} {:<9.2} {:<8.4} {}", k + 1, q.psnr, q.ssim, ms(q))?;
        }
        if let Some(note) = &self.ms_ssim_note {
            writeln!(f, "{note}")?;
        }
        if let Some(sem) = &self.semantics_by_layers {
            let n = sem.first().map_or(0, |a| a.clips);
            writeln!(f, "\nattributes the analyzer reads as in the original, from the k coarsest layers ({n} clips with a shape)")?;
            writeln!(f, "k      color    shape    motion")?;
            for (k, a) in sem.iter().enumerate() {
                writeln!(f, "{:<6} {:<8} {:<8} {}", k + 1, pct(a.color), pct(a.shape), pct(a.motion))?;
            }
        }
        if !self.shape_confusion.is_empty() {
            writeln!(f, "\nshapes read from the decodes (all layers), by the original's shape")?;
            writeln!(f, "original  clips  circle  square  triangle  none  mean fill  mean taper")?;
            let opt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
            for r in &self.shape_confusion {
                let name = r.original.to_string();
                writeln!(
                    f,
                    "{name:<9} {:<6} {:<7} {:<7} {:<9} {:<5} {:<10} {}",
                    r.clips,
                    r.as_circle,
                    r.as_square,
                    r.as_triangle,
                    r.as_none,
                    opt(r.mean_fill),
                    opt(r.mean_taper)
                )?;
            }
        }
        if let Some(h) = &self.h264 {
            writeln!(f, "\nH.264 (libx264 {}) at the tokens' bpp: {}/{} clips within budget", h.preset, h.matched_clips, self.clips)?;
            writeln!(
                f,
                "bpp {:.4} (coded slices; whole stream {:.4}, whole MP4 {:.4}); PSNR {:.2} dB, SSIM {:.4}, MS-SSIM {}",
                h.bpp,
                h.stream_bpp,
                h.file_bpp,
                h.quality.psnr,
                h.quality.ssim,
                ms(&h.quality)
            )?;
            if let Some(t) = self.mean_by_layers.last() {
                writeln!(f, "tokenizer (all layers) at bpp {:.4}: PSNR {:.2} dB, SSIM {:.4}, MS-SSIM {}", self.bpp, t.psnr, t.ssim, ms(t))?;
            }
            if let Some(a) = &h.semantics {
                writeln!(
                    f,
                    "the analyzer reads from the H.264 decodes as from the originals ({} clips): color {}, shape {}, motion {}",
                    a.clips,
                    pct(a.color),
                    pct(a.shape),
                    pct(a.motion)
                )?;
            }
        }
        if let Some(d) = &self.dynamic {
            let s = &d.summary;
            writeln!(
                f,
                "\ndynamic encoding (cap {:.2}, tolerance {:.2}): {} of {} maskable tokens masked ({:.1}%), {:.1}% of all {} tokens saved",
                s.cap,
                d.tolerance,
                s.masked,
                s.maskable,
                100.0 * d.mask_ratio,
                100.0 * d.tokens_saved,
                s.tokens
            )?;
            writeln!(f, "bpp {:.4} masked stream (mask bits + kept ids) against {:.4} unmasked", d.bpp, d.dense_bpp)?;
            let per_layer: Vec<String> =
                s.layers.iter().map(|l| if l.maskable == 0 { "-".into() } else { format!("{:.1}%", 100.0 * l.masked as f64 / l.maskable as f64) }).collect();
            writeln!(f, "masked per layer (coarse -> fine): {}", per_layer.join(", "))?;
            writeln!(f, "fill      PSNR dB   SSIM     MS-SSIM   PSNR vs unmasked")?;
            writeln!(f, "{:<9} {:<9.2} {:<8.4} {:<9} {:+.2}", "none", d.unmasked.psnr, d.unmasked.ssim, ms(&d.unmasked), 0.0)?;
            for q in &d.fills {
                writeln!(f, "{:<9} {:<9.2} {:<8.4} {:<9} {:+.2}", q.fill, q.quality.psnr, q.quality.ssim, ms(&q.quality), q.quality.psnr - d.unmasked.psnr)?;
            }
        }
        writeln!(f, "\nper clip (all layers)")?;
        let width = self.per_clip.iter().map(|c| c.name.len()).max().unwrap_or(4).clamp(4, 48);
        write!(f, "{:<width$}  frames  bpp     PSNR dB  SSIM    MS-SSIM", "clip")?;
        if self.h264.is_some() {
            write!(f, "  | H.264 CRF  bpp     PSNR dB  SSIM")?;
        }
        writeln!(f)?;
        for c in &self.per_clip {
            let Some(q) = c.by_layers.last() else { continue };
            write!(f, "{:<width$}  {:<6}  {:<7.4} {:<8.2} {:<7.4} {:<7}", c.name, c.frames, c.bpp, q.psnr, q.ssim, ms(q))?;
            if let Some(h) = &c.h264 {
                let star = if h.matched { "" } else { "*" };
                write!(f, "  | {:<9} {:<7.4} {:<8.2} {:.4}", format!("{}{star}", h.crf), h.bpp, h.quality.psnr, h.quality.ssim)?;
            }
            writeln!(f)?;
        }
        if self.per_clip.iter().any(|c| c.h264.as_ref().is_some_and(|h| !h.matched)) {
            writeln!(f, "* even CRF 51 exceeds the token budget for this clip")?;
        }
        if self.per_clip.len() <= WORST_FRAMES_CLIPS {
            writeln!(f, "\nthe worst frames of each clip (all layers; every frame's PSNR is in the JSON)")?;
            for c in &self.per_clip {
                writeln!(f, "{:<width$}  {}", c.name, worst_frames(&c.psnr_by_frame, WORST_FRAMES))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_frames_lists_the_lowest_first() {
        assert_eq!(worst_frames(&[20.0, 11.3, 30.0, 14.0], 2), "frame 1 (11.3 dB), frame 3 (14.0 dB)");
        assert_eq!(worst_frames(&[20.0], 5), "frame 0 (20.0 dB)");
        assert_eq!(worst_frames(&[], 5), "");
    }
}

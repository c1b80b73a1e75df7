//! A natural-image training world: clips made deterministically from photographs, as the
//! FlyingChairs / FlyingThings data sets make optical-flow training data.
//!
//! Each clip is a camera moving over one photograph (a pan, a zoom, a small rotation) with
//! sprites cut from other photographs moving over it with their own affine motion (and so
//! occluding the background and each other, entering and leaving the frame), under a
//! brightness that may drift. Everything a clip shows follows from `(seed, index)` through
//! [`PhotoWorld::spec`], so the same seed gives the same clip on every machine with the same
//! photographs.
//!
//! The photographs come from packages `scripts/setup` installs (Debian's `mate-backgrounds`
//! and `gnome-backgrounds`, scikit-image's sample images from its PyPI wheel); see
//! [`default_dirs`] and `docs/data.md` for the list and the licences. Nothing is downloaded at
//! run time.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::video::Video;

/// Photographs are kept with their shorter side at most this many pixels: enough for a
/// 64x64 camera to zoom in 4x, and 50 photographs take 15 MB.
pub const MAX_SHORT_SIDE: u32 = 320;
/// Photographs smaller than this on either side are skipped (icons, test patterns).
pub const MIN_SIDE: u32 = 64;
/// Files larger than this are skipped unread (the 16-MB 5640x3172 duplicates of a wallpaper).
pub const MAX_FILE_BYTES: u64 = 12 << 20;
/// Every this-many-th photograph (in sorted path order) is kept for validation clips only.
pub const VAL_EVERY: usize = 8;

/// The share of clips that cut to a second shot at a random frame. Real footage is edited:
/// bikes.mp4 cuts five times in 10 s, and a tokenizer trained on uncut clips alone smears each
/// cut over the frames around it (docs/results.md, session 20).
pub const CUT_SHARE: f64 = 0.3;

/// Errors of the photo library.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    #[error(
        "no photographs found in {dirs}; run ./scripts/setup (it installs Debian's mate-backgrounds and gnome-backgrounds \
         and scikit-image's sample images), or set HITVIDEO_PHOTOS to folders of JPEG/PNG/WebP photographs"
    )]
    NoPhotos { dirs: String },
    #[error("the photo world needs at least 2 photographs (one for training, one for validation); found {found} in {dirs}")]
    TooFew { found: usize, dirs: String },
}

/// One photograph, downscaled, RGB8 row-major.
#[derive(Clone)]
pub struct Photo {
    /// Where it came from (for messages and the docs).
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl std::fmt::Debug for Photo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Photo({}, {}x{})", self.path.display(), self.width, self.height)
    }
}

impl Photo {
    /// Bilinear sample at `(x, y)` in pixel units (pixel centres at `i + 0.5`), clamped to the
    /// edges.
    fn sample(&self, x: f32, y: f32) -> [f32; 3] {
        let (w, h) = (self.width as usize, self.height as usize);
        let fx = (x - 0.5).clamp(0.0, (w - 1) as f32);
        let fy = (y - 0.5).clamp(0.0, (h - 1) as f32);
        let (x0, y0) = (fx as usize, fy as usize);
        let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
        let (ax, ay) = (fx - x0 as f32, fy - y0 as f32);
        let px = |xx: usize, yy: usize, c: usize| f32::from(self.rgb[(yy * w + xx) * 3 + c]);
        std::array::from_fn(|c| {
            let top = px(x0, y0, c) * (1.0 - ax) + px(x1, y0, c) * ax;
            let bottom = px(x0, y1, c) * (1.0 - ax) + px(x1, y1, c) * ax;
            top * (1.0 - ay) + bottom * ay
        })
    }
}

/// The folders searched for photographs: `HITVIDEO_PHOTOS` (colon-separated) when set,
/// else the Debian wallpaper folders (`mate-backgrounds`, `plasma-workspace-wallpapers`) and
/// the scikit-image images `scripts/setup` unpacks into `~/.cache/hitvideo/photos`.
pub fn default_dirs() -> Vec<PathBuf> {
    if let Some(list) = std::env::var_os("HITVIDEO_PHOTOS").filter(|v| !v.is_empty()) {
        return std::env::split_paths(&list).collect();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    // The photographs among the wallpapers: MATE's nature set and Plasma's (abstract and logo
    // wallpapers are left out).
    let mut dirs = vec![PathBuf::from("/usr/share/backgrounds/mate/nature"), PathBuf::from("/usr/share/wallpapers")];
    if let Some(c) = cache {
        dirs.push(c.join("hitvideo/photos"));
    }
    dirs
}

fn is_image(p: &Path) -> bool {
    // Plasma's wallpaper thumbnails (`contents/screenshot.png`) repeat their wallpaper.
    if p.file_stem().and_then(|s| s.to_str()) == Some("screenshot") {
        return false;
    }
    matches!(p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref(), Some("jpg" | "jpeg" | "png" | "webp"))
}

/// `WxH` from a file named for its size (`1920x1080.jpg`).
fn named_size(p: &Path) -> Option<(u32, u32)> {
    let (w, h) = p.file_stem()?.to_str()?.split_once('x')?;
    Some((w.parse().ok()?, h.parse().ok()?))
}

fn collect(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut here = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() && depth < 6 => collect(&p, depth + 1, out),
            Ok(t) if t.is_file() && is_image(&p) => here.push(p),
            _ => {}
        }
    }
    // A folder of one picture at several sizes (`1280x1024.jpg`, `1920x1080.jpg`, ...: how
    // Plasma ships a wallpaper) counts once: the smallest that still covers MAX_SHORT_SIDE.
    let sized: Vec<(PathBuf, (u32, u32))> = here.iter().filter_map(|p| Some((p.clone(), named_size(p)?))).collect();
    if sized.len() >= 2 && sized.len() == here.len() {
        let pick = sized
            .iter()
            .filter(|(_, (w, h))| (*w).min(*h) >= MAX_SHORT_SIDE)
            .min_by_key(|(_, (w, h))| u64::from(*w) * u64::from(*h))
            .or_else(|| sized.iter().max_by_key(|(_, (w, h))| u64::from(*w) * u64::from(*h)));
        out.extend(pick.map(|(p, _)| p.clone()));
    } else {
        out.extend(here);
    }
}

/// Reads and downscales one photograph; `None` (with the reason) for what is not one.
fn load_photo(path: &Path) -> Result<Photo, String> {
    let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if size > MAX_FILE_BYTES {
        return Err(format!("{size} bytes, over the {MAX_FILE_BYTES}-byte limit"));
    }
    let mut reader = image::ImageReader::open(path).map_err(|e| e.to_string())?.with_guessed_format().map_err(|e| e.to_string())?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(16_384);
    limits.max_image_height = Some(16_384);
    limits.max_alloc = Some(1 << 30);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| e.to_string())?.to_rgb8();
    let (w, h) = img.dimensions();
    if w < MIN_SIDE || h < MIN_SIDE {
        return Err(format!("{w}x{h}, smaller than {MIN_SIDE} pixels a side"));
    }
    let short = w.min(h);
    let img = if short > MAX_SHORT_SIDE {
        let (nw, nh) =
            ((u64::from(w) * u64::from(MAX_SHORT_SIDE) / u64::from(short)) as u32, (u64::from(h) * u64::from(MAX_SHORT_SIDE) / u64::from(short)) as u32);
        image::imageops::resize(&img, nw.max(1), nh.max(1), image::imageops::FilterType::Triangle)
    } else {
        img
    };
    let (width, height) = img.dimensions();
    Ok(Photo { path: path.to_path_buf(), width, height, rgb: img.into_raw() })
}

/// The photographs of the world, split by photograph into training and validation.
#[derive(Debug, Clone)]
pub struct PhotoLibrary {
    pub photos: Vec<Photo>,
    /// Files that were found but are not usable photographs, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

impl PhotoLibrary {
    /// Every JPEG, PNG and WebP under `dirs` (sorted by path, so the order and the split are
    /// the same on every machine with the same packages), read on two threads.
    pub fn load(dirs: &[PathBuf]) -> Result<Self, PhotoError> {
        let mut paths = Vec::new();
        for d in dirs {
            collect(d, 0, &mut paths);
        }
        paths.sort();
        paths.dedup();
        let listed = || dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ");
        if paths.is_empty() {
            return Err(PhotoError::NoPhotos { dirs: listed() });
        }
        let half = paths.len().div_ceil(2);
        let results: Vec<Result<Photo, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = paths.chunks(half).map(|chunk| s.spawn(move || chunk.iter().map(|p| load_photo(p)).collect::<Vec<_>>())).collect();
            handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
        });
        let mut lib = Self { photos: Vec::new(), skipped: Vec::new() };
        for (path, r) in paths.iter().zip(results) {
            match r {
                Ok(p) => lib.photos.push(p),
                Err(why) => lib.skipped.push((path.clone(), why)),
            }
        }
        for (p, why) in &lib.skipped {
            tracing::info!("photo world: skipping {}: {why}", p.display());
        }
        match lib.photos.len() {
            0 => Err(PhotoError::NoPhotos { dirs: listed() }),
            1 => Err(PhotoError::TooFew { found: 1, dirs: listed() }),
            _ => Ok(lib),
        }
    }

    /// A library of given photographs (tests, custom worlds); at least two.
    pub fn from_photos(photos: Vec<Photo>) -> Result<Self, PhotoError> {
        if photos.len() < 2 {
            return Err(PhotoError::TooFew { found: photos.len(), dirs: "the given photographs".into() });
        }
        Ok(Self { photos, skipped: Vec::new() })
    }

    /// Indices of the photographs a split draws from: validation gets every
    /// [`VAL_EVERY`]-th (at least one), training the rest.
    pub fn split(&self, val: bool) -> Vec<usize> {
        let n = self.photos.len();
        let is_val = |i: usize| if n < VAL_EVERY { i == n - 1 } else { i % VAL_EVERY == VAL_EVERY - 1 };
        (0..n).filter(|&i| is_val(i) == val).collect()
    }
}

/// The camera over the background photograph. Positions are in photograph pixels, the scale
/// in photograph pixels per output pixel.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Camera {
    /// Centre of the view at frame 0.
    pub center: [f32; 2],
    /// Movement of the centre per frame, in output pixels (a pan of `v` moves the picture by
    /// `-v` on screen).
    pub velocity: [f32; 2],
    /// Photograph pixels per output pixel at frame 0.
    pub scale: f32,
    /// Scale factor per frame (< 1 zooms in).
    pub zoom: f32,
    /// Rotation at frame 0 and per frame, radians.
    pub angle: f32,
    pub spin: f32,
}

/// The outline of a sprite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SpriteShape {
    Ellipse,
    Rectangle,
}

/// A piece of another photograph moving over the background. Positions and sizes are in
/// output pixels.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Sprite {
    /// The photograph the texture is cut from, and where.
    pub photo: usize,
    pub source_center: [f32; 2],
    /// Photograph pixels per sprite pixel.
    pub source_scale: f32,
    pub shape: SpriteShape,
    /// Half-extents at scale 1.
    pub radius: [f32; 2],
    /// Centre at frame 0 and its movement per frame.
    pub position: [f32; 2],
    pub velocity: [f32; 2],
    /// Rotation at frame 0 and per frame, radians.
    pub angle: f32,
    pub spin: f32,
    /// Size factor at frame 0 and per frame.
    pub scale: f32,
    pub growth: f32,
}

/// Everything one clip shows; [`PhotoWorld::spec`] draws it from `(seed, index)`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PhotoClipSpec {
    pub background: usize,
    pub camera: Camera,
    /// Drawn in order: later sprites occlude earlier ones.
    pub sprites: Vec<Sprite>,
    /// Brightness gain at frame 0 and its change per frame.
    pub brightness: f32,
    pub brightness_drift: f32,
    /// A cut to another shot partway through, if any.
    pub cut: Option<Cut>,
}

/// From `frame` on, a clip shows `shot` (at the same frame times) instead.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Cut {
    pub frame: usize,
    /// Drawn as a clip's first shot is; it has no cut of its own.
    pub shot: Box<PhotoClipSpec>,
}

/// The clip geometry of a photo world: frames of `size x size` at `fps`.
#[derive(Debug, Clone)]
pub struct PhotoWorld {
    pub frames: usize,
    pub size: usize,
    pub fps: f64,
    pub library: Arc<PhotoLibrary>,
}

fn log_uniform(rng: &mut ChaCha8Rng, lo: f32, hi: f32) -> f32 {
    (rng.random_range(lo.ln()..=hi.ln())).exp()
}

impl PhotoWorld {
    pub fn new(library: Arc<PhotoLibrary>, frames: usize, size: usize, fps: f64) -> Self {
        Self { frames, size, fps, library }
    }

    /// The clip `index` of world `seed`, drawn from the training or the validation
    /// photographs.
    pub fn spec(&self, seed: u64, index: u64, val: bool) -> PhotoClipSpec {
        let salt = seed ^ if val { 0x7661_6c00 } else { 0x7472_6e00 };
        let mut spec = self.shot(&mut ChaCha8Rng::seed_from_u64(super::synth::item_seed(salt, index as usize)), val);
        // The cut is drawn from a stream of its own, so a clip's first shot does not depend on it.
        let mut rng = ChaCha8Rng::seed_from_u64(super::synth::item_seed(salt ^ 0x6375_7400, index as usize));
        if self.frames >= 2 && rng.random_bool(CUT_SHARE) {
            let frame = rng.random_range(1..self.frames);
            spec.cut = Some(Cut { frame, shot: Box::new(self.shot(&mut rng, val)) });
        }
        spec
    }

    /// One shot: a camera over a photograph of the training or validation split, sprites and
    /// brightness, drawn from `rng`.
    fn shot(&self, rng: &mut ChaCha8Rng, val: bool) -> PhotoClipSpec {
        let pool = self.library.split(val);
        let size = self.size as f32;
        let t_last = (self.frames.max(2) - 1) as f32;
        let background = pool[rng.random_range(0..pool.len())];
        let bg = &self.library.photos[background];
        let (bw, bh) = (bg.width as f32, bg.height as f32);
        // The view (with room for the rotation) must stay inside the photograph at every frame.
        let room = 1.5;
        let max_scale = (bw.min(bh) / (size * room)).max(0.05);
        let zoom = if rng.random_bool(0.5) { log_uniform(rng, 0.97, 1.03) } else { 1.0 };
        let end_factor = zoom.powf(t_last).max(1.0);
        let scale = log_uniform(rng, (max_scale * 0.25).min(max_scale / end_factor), max_scale / end_factor);
        let extent = |s: f32| size * 0.5 * s * room;
        let widest = extent(scale * end_factor);
        let (lo_x, hi_x) = (widest, (bw - widest).max(widest));
        let (lo_y, hi_y) = (widest, (bh - widest).max(widest));
        let start = [rng.random_range(lo_x..=hi_x), rng.random_range(lo_y..=hi_y)];
        // A pan of up to 3 output pixels per frame, kept inside the photograph.
        let pan = if rng.random_bool(0.8) { rng.random_range(0.0..=3.0f32) } else { 0.0 };
        let dir = rng.random_range(0.0..std::f32::consts::TAU);
        let mut end = [start[0] + pan * scale * t_last * dir.cos(), start[1] + pan * scale * t_last * dir.sin()];
        end[0] = end[0].clamp(lo_x, hi_x);
        end[1] = end[1].clamp(lo_y, hi_y);
        let velocity = [(end[0] - start[0]) / (t_last * scale), (end[1] - start[1]) / (t_last * scale)];
        let (angle, spin) = if rng.random_bool(0.4) { (rng.random_range(-0.15..=0.15), rng.random_range(-0.015..=0.015)) } else { (0.0, 0.0) };
        let camera = Camera { center: start, velocity, scale, zoom, angle, spin };

        let count = rng.random_range(0..=3usize);
        let others: Vec<usize> = (0..self.library.photos.len()).filter(|&i| i != background && pool.contains(&i)).collect();
        let others = if others.is_empty() { pool.clone() } else { others };
        let sprites = (0..count)
            .map(|_| {
                let photo = others[rng.random_range(0..others.len())];
                let p = &self.library.photos[photo];
                let radius = [rng.random_range(0.08..=0.3) * size, rng.random_range(0.08..=0.3) * size];
                let source_scale = log_uniform(rng, 0.5, 2.0);
                let reach = radius[0].max(radius[1]) * source_scale * 1.5;
                let (pw, ph) = (p.width as f32, p.height as f32);
                let source_center =
                    [rng.random_range(reach.min(pw / 2.0)..=(pw - reach).max(pw / 2.0)), rng.random_range(reach.min(ph / 2.0)..=(ph - reach).max(ph / 2.0))];
                let position = [rng.random_range(-0.1 * size..=1.1 * size), rng.random_range(-0.1 * size..=1.1 * size)];
                let speed = rng.random_range(0.0..=4.0f32);
                let heading = rng.random_range(0.0..std::f32::consts::TAU);
                Sprite {
                    photo,
                    source_center,
                    source_scale,
                    shape: if rng.random_bool(0.5) { SpriteShape::Ellipse } else { SpriteShape::Rectangle },
                    radius,
                    position,
                    velocity: [speed * heading.cos(), speed * heading.sin()],
                    angle: rng.random_range(0.0..std::f32::consts::TAU),
                    spin: if rng.random_bool(0.5) { rng.random_range(-0.08..=0.08) } else { 0.0 },
                    scale: 1.0,
                    growth: if rng.random_bool(0.3) { log_uniform(rng, 0.97, 1.03) } else { 1.0 },
                }
            })
            .collect();
        let (brightness, brightness_drift) = if rng.random_bool(0.3) { (rng.random_range(0.8..=1.2), rng.random_range(-0.012..=0.012)) } else { (1.0, 0.0) };
        PhotoClipSpec { background, camera, sprites, brightness, brightness_drift, cut: None }
    }

    /// Renders a clip: `frames` RGB frames of `size x size` at `fps`.
    pub fn render(&self, spec: &PhotoClipSpec) -> Video {
        let n = self.size;
        let mut video = Video::new(n as u32, n as u32, self.fps);
        let mut frame = vec![0u8; n * n * 3];
        for t in 0..self.frames {
            let shot = match &spec.cut {
                Some(cut) if t >= cut.frame => &cut.shot,
                _ => spec,
            };
            self.render_frame(shot, t, &mut frame);
            video.push_frame(&frame);
        }
        video
    }

    /// Frame `t` of one shot (its cut ignored) into `frame`, RGB8 `size x size`.
    fn render_frame(&self, spec: &PhotoClipSpec, t: usize, frame: &mut [u8]) {
        let n = self.size;
        let half = n as f32 * 0.5;
        let bg = &self.library.photos[spec.background];
        let c = &spec.camera;
        let tf = t as f32;
        let s = c.scale * c.zoom.powf(tf);
        let (sin, cos) = (c.angle + c.spin * tf).sin_cos();
        let centre = [c.center[0] + c.velocity[0] * c.scale * tf, c.center[1] + c.velocity[1] * c.scale * tf];
        let gain = (spec.brightness + spec.brightness_drift * tf).clamp(0.3, 2.0);
        // Per sprite at this frame: centre, rotation, size factor.
        let sprites: Vec<_> = spec
            .sprites
            .iter()
            .map(|sp| {
                let (ss, sc) = (sp.angle + sp.spin * tf).sin_cos();
                ([sp.position[0] + sp.velocity[0] * tf, sp.position[1] + sp.velocity[1] * tf], ss, sc, sp.scale * sp.growth.powf(tf))
            })
            .collect();
        for y in 0..n {
            for x in 0..n {
                let (u, v) = (x as f32 + 0.5 - half, y as f32 + 0.5 - half);
                let mut rgb = bg.sample(centre[0] + s * (cos * u - sin * v), centre[1] + s * (sin * u + cos * v));
                for (sp, &(pos, ss, sc, k)) in spec.sprites.iter().zip(&sprites) {
                    let (dx, dy) = (x as f32 + 0.5 - pos[0], y as f32 + 0.5 - pos[1]);
                    // Into the sprite's own frame: undo its rotation and size.
                    let (ux, uy) = cos_sin_apply(sc, ss, dx, dy);
                    let (lx, ly) = (ux / k, uy / k);
                    let (rx, ry) = (sp.radius[0], sp.radius[1]);
                    let inside = match sp.shape {
                        SpriteShape::Ellipse => (lx / rx).powi(2) + (ly / ry).powi(2) <= 1.0,
                        SpriteShape::Rectangle => lx.abs() <= rx && ly.abs() <= ry,
                    };
                    if inside {
                        let p = &self.library.photos[sp.photo];
                        rgb = p.sample(sp.source_center[0] + sp.source_scale * lx, sp.source_center[1] + sp.source_scale * ly);
                    }
                }
                let o = (y * n + x) * 3;
                for ch in 0..3 {
                    frame[o + ch] = (rgb[ch] * gain).round().clamp(0.0, 255.0) as u8;
                }
            }
        }
    }

    /// [`Self::spec`] then [`Self::render`].
    pub fn clip(&self, seed: u64, index: u64, val: bool) -> Video {
        self.render(&self.spec(seed, index, val))
    }
}

/// Rotation by minus the angle whose cosine and sine are given (into a sprite's frame).
fn cos_sin_apply(cos: f32, sin: f32, x: f32, y: f32) -> (f32, f32) {
    (cos * x + sin * y, -sin * x + cos * y)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A textured test image (no two nearby pixels alike), `w x h`.
    fn texture(seed: u32, w: u32, h: u32) -> Photo {
        let mut rgb = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                let (xf, yf) = (x as f32, y as f32);
                rgb.push((128.0 + 60.0 * (xf * 0.21 + seed as f32).sin() + 60.0 * (yf * 0.13).cos()) as u8);
                rgb.push((128.0 + 90.0 * ((xf + 2.0 * yf) * 0.07).sin()) as u8);
                rgb.push(((x * 7 + y * 13 + seed * 31) % 256) as u8);
            }
        }
        Photo { path: PathBuf::from(format!("texture-{seed}.png")), width: w, height: h, rgb }
    }

    fn world(size: usize) -> PhotoWorld {
        let lib = PhotoLibrary::from_photos((0..3).map(|i| texture(i, 320, 240)).collect()).unwrap();
        PhotoWorld::new(Arc::new(lib), 8, size, 8.0)
    }

    #[test]
    fn same_seed_same_clip_and_seeds_differ() {
        let w = world(32);
        let a = w.clip(7, 3, false);
        assert_eq!(a, w.clip(7, 3, false));
        assert_eq!((a.len(), a.width(), a.height()), (8, 32, 32));
        assert_ne!(a, w.clip(8, 3, false));
        assert_ne!(a, w.clip(7, 4, false));
    }

    #[test]
    fn validation_draws_only_held_out_photographs() {
        let w = world(16);
        let val = w.library.split(true);
        assert_eq!(val, vec![2]);
        for i in 0..40 {
            let s = w.spec(1, i, true);
            assert!(val.contains(&s.background));
            assert!(s.sprites.iter().all(|sp| val.contains(&sp.photo)));
            if let Some(cut) = &s.cut {
                assert!(val.contains(&cut.shot.background) && cut.shot.sprites.iter().all(|sp| val.contains(&sp.photo)));
            }
            let t = w.spec(1, i, false);
            assert!(!val.contains(&t.background));
            assert!(t.cut.iter().all(|cut| !val.contains(&cut.shot.background)));
        }
    }

    #[test]
    fn a_share_of_clips_cuts_to_a_second_shot() {
        let w = world(16);
        let specs: Vec<PhotoClipSpec> = (0..300).map(|i| w.spec(5, i, false)).collect();
        let cuts: Vec<&Cut> = specs.iter().filter_map(|s| s.cut.as_ref()).collect();
        let share = cuts.len() as f64 / specs.len() as f64;
        assert!((share - CUT_SHARE).abs() < 0.08, "{} of {} clips cut", cuts.len(), specs.len());
        assert!(cuts.iter().all(|c| (1..w.frames).contains(&c.frame) && c.shot.cut.is_none()));
        // Every cut frame occurs, and the first shot is the clip an uncut draw gives.
        for f in 1..w.frames {
            assert!(cuts.iter().any(|c| c.frame == f), "no cut at frame {f}");
        }
        let spec = specs.iter().find(|s| s.cut.as_ref().is_some_and(|c| c.frame == 3)).unwrap();
        let cut = spec.cut.as_ref().unwrap();
        let first = PhotoClipSpec { cut: None, ..spec.clone() };
        let (clip, a, b) = (w.render(spec), w.render(&first), w.render(&cut.shot));
        for t in 0..w.frames {
            assert_eq!(clip.frame(t), if t < 3 { a.frame(t) } else { b.frame(t) }, "frame {t}");
        }
        assert_ne!(a.frame(3), b.frame(3));
    }

    /// The shift `(dx, dy)` in -r..=r minimising the mean squared difference between
    /// `b(x, y)` and `a(x + dx, y + dy)` over the pixels both cover.
    fn best_shift(a: &[u8], b: &[u8], n: usize, r: i32) -> (i32, i32) {
        let mut best = (f64::INFINITY, (0, 0));
        for dy in -r..=r {
            for dx in -r..=r {
                let (mut sum, mut count) = (0.0, 0usize);
                for y in r..n as i32 - r {
                    for x in r..n as i32 - r {
                        let (i, j) = (((y * n as i32 + x) * 3) as usize, (((y + dy) * n as i32 + x + dx) * 3) as usize);
                        for c in 0..3 {
                            sum += (f64::from(b[i + c]) - f64::from(a[j + c])).powi(2);
                        }
                        count += 3;
                    }
                }
                let mse = sum / count as f64;
                if mse < best.0 {
                    best = (mse, (dx, dy));
                }
            }
        }
        best.1
    }

    #[test]
    fn the_requested_pan_is_present_between_consecutive_frames() {
        let w = world(32);
        for v in [[2.0f32, 0.0], [0.0, -1.0], [-3.0, 2.0]] {
            let mut spec = w.spec(0, 0, false);
            spec.sprites.clear();
            spec.cut = None;
            spec.brightness = 1.0;
            spec.brightness_drift = 0.0;
            spec.camera = Camera { center: [160.0, 120.0], velocity: v, scale: 1.0, zoom: 1.0, angle: 0.0, spin: 0.0 };
            let clip = w.render(&spec);
            for t in 0..clip.len() - 1 {
                // The camera moves by v, so the picture moves by -v: frame t+1 at x shows frame t at x + v.
                assert_eq!(best_shift(clip.frame(t), clip.frame(t + 1), 32, 4), (v[0] as i32, v[1] as i32), "pan {v:?}, frame {t}");
            }
        }
    }

    #[test]
    fn a_sprite_moves_by_its_velocity_over_a_still_background() {
        let mut w = world(32);
        let flat = Photo { path: "flat.png".into(), width: 100, height: 100, rgb: vec![0; 100 * 100 * 3] };
        let mut photos = w.library.photos.clone();
        photos[0] = flat;
        w.library = Arc::new(PhotoLibrary::from_photos(photos).unwrap());
        let mut spec = w.spec(0, 0, false);
        spec.background = 0;
        spec.cut = None;
        spec.camera = Camera { center: [50.0, 50.0], velocity: [0.0, 0.0], scale: 1.0, zoom: 1.0, angle: 0.0, spin: 0.0 };
        spec.brightness = 1.0;
        spec.brightness_drift = 0.0;
        spec.sprites = vec![Sprite {
            photo: 1,
            source_center: [100.0, 100.0],
            source_scale: 1.0,
            shape: SpriteShape::Rectangle,
            radius: [4.0, 4.0],
            position: [8.0, 10.0],
            velocity: [2.0, 1.0],
            angle: 0.0,
            spin: 0.0,
            scale: 1.0,
            growth: 1.0,
        }];
        let clip = w.render(&spec);
        let centroid = |f: &[u8]| {
            let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
            for y in 0..32 {
                for x in 0..32 {
                    if f[(y * 32 + x) * 3..][..3].iter().any(|&c| c > 0) {
                        sx += x as f64;
                        sy += y as f64;
                        n += 1.0;
                    }
                }
            }
            (sx / n, sy / n)
        };
        for t in 0..clip.len() - 1 {
            let (a, b) = (centroid(clip.frame(t)), centroid(clip.frame(t + 1)));
            assert!((b.0 - a.0 - 2.0).abs() < 0.3 && (b.1 - a.1 - 1.0).abs() < 0.3, "frame {t}: {a:?} -> {b:?}");
        }
    }

    #[test]
    fn a_picture_shipped_at_several_sizes_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let wall = dir.path().join("Autumn/contents/images");
        std::fs::create_dir_all(&wall).unwrap();
        for name in ["1920x1080.jpg", "640x480.jpg", "800x600.jpg", "320x240.jpg"] {
            std::fs::write(wall.join(name), b"").unwrap();
        }
        std::fs::write(dir.path().join("cat.png"), b"").unwrap();
        std::fs::write(dir.path().join("Autumn/contents/screenshot.png"), b"").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"").unwrap();
        let mut found = Vec::new();
        collect(dir.path(), 0, &mut found);
        found.sort();
        assert_eq!(found, vec![wall.join("640x480.jpg"), dir.path().join("cat.png")]);
    }

    #[test]
    fn a_library_needs_two_photographs_and_names_the_fix() {
        let e = PhotoLibrary::load(&[PathBuf::from("/nonexistent/photos")]).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/photos") && e.contains("scripts/setup"), "{e}");
        assert!(PhotoLibrary::from_photos(vec![texture(0, 64, 64)]).is_err());
    }

    /// The installed photographs (CI installs them with scripts/setup): they load and give
    /// clips with motion.
    #[test]
    fn the_installed_photographs_make_a_world() {
        let lib = match PhotoLibrary::load(&default_dirs()) {
            Ok(lib) => lib,
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("CI must have the photographs (scripts/setup installs them): {e}"),
            Err(e) => {
                eprintln!("skipping: {e}");
                return;
            }
        };
        assert!(lib.photos.len() >= 20, "{} photographs", lib.photos.len());
        assert!(lib.photos.iter().all(|p| p.width.min(p.height) <= MAX_SHORT_SIDE && p.width.min(p.height) >= MIN_SIDE));
        let w = PhotoWorld::new(Arc::new(lib), 16, 64, 8.0);
        // Most clips move (a still camera without sprites or drift is drawn now and then).
        let moving = (0..8).filter(|&i| {
            let clip = w.clip(0, i, false);
            (0..15).all(|t| clip.frame(t) != clip.frame(t + 1))
        });
        assert!(moving.count() >= 5);
    }
}

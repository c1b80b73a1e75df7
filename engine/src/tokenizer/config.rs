//! Tokenizer configuration and the named presets.
//!
//! Layers are listed **coarsest first** (the order the decoder rebuilds in and the generator
//! predicts in). The finest layer is the encoder's own latent; each coarser one is produced from
//! the next finer by a compressor that divides time and/or space by 2.

use burn::config::Config;

/// One quantized layer: its latent grid and its LFQ code width.
#[derive(Config, Debug, PartialEq)]
pub struct LayerConfig {
    /// Latent frames.
    pub t: usize,
    /// Latent height.
    pub h: usize,
    /// Latent width.
    pub w: usize,
    /// LFQ quantization dimension: the codebook has `2^bits` entries.
    pub bits: usize,
}

impl LayerConfig {
    /// Tokens in one clip of this layer (`t * h * w`).
    pub fn tokens(&self) -> usize {
        self.t * self.h * self.w
    }
}

/// The hierarchical LFQ video tokenizer.
#[derive(Config, Debug, PartialEq)]
pub struct TokenizerConfig {
    /// Preset name, kept for messages and checkpoint checks.
    pub name: String,
    /// Frames per clip.
    pub frames: usize,
    /// Frame height and width in pixels.
    pub height: usize,
    pub width: usize,
    /// Frame rate clips are resampled to.
    #[config(default = 8.0)]
    pub fps: f64,
    /// Lossless space-to-depth patch at the input, `[time, space]`: the encoder sees
    /// `T/p_t x H/p_s x W/p_s` voxels of `3 p_t p_s²` channels (the decoder ends with the
    /// inverse). `[1, 1]` for the paper's presets; the CPU presets use it to keep full-resolution
    /// convolutions off a 2-core machine.
    #[config(default = "[1, 1]")]
    pub patch: [usize; 2],
    /// Channels of each downsampling stage (a strided conv, norm, SiLU and ResNet blocks; the
    /// decoder mirrors them): one spatial halving per entry.
    pub channels: Vec<usize>,
    /// Channels of the latent grids (all layers) before quantization.
    pub latent_channels: usize,
    /// Quantized layers, coarsest first. The last one is the encoder's latent.
    pub layers: Vec<LayerConfig>,
    /// Normalize each bit before its sign by batch statistics (running ones at inference; see
    /// [`super::lfq::BitNorm`]). Off in configs saved before it existed.
    #[config(default = false)]
    pub bit_norm: bool,
    /// ResNet blocks per encoder/decoder stage.
    #[config(default = 1)]
    pub blocks_per_stage: usize,
    /// Decoder upsampling by sub-pixel convolution (Shi et al. 2016): each stage's causal conv
    /// runs at the coarser grid and outputs `f_t f_h f_w` times the channels, rearranged by
    /// depth-to-space, instead of a conv over a nearest-upsampled grid. The same weights per
    /// output pixel, a third of the step time on a CPU. Off in configs saved before it existed
    /// (their checksums are unchanged: see [`config_sha256`]).
    #[config(default = false)]
    pub subpixel_decoder: bool,
    /// Channels of the 3D patch discriminator's first layer.
    #[config(default = 32)]
    pub disc_channels: usize,
}

/// Named presets (see [`TokenizerConfig::preset`]).
pub const PRESETS: [&str; 8] = ["paper", "paper-single", "small", "tiny", "tiny-single", "tiny64", "tiny64-single", "general64"];

/// A named tokenizer preset (see [`TokenizerConfig::preset`]), parsed once where its name
/// enters (a flag, a setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenizerPreset {
    Paper,
    PaperSingle,
    Small,
    Tiny,
    TinySingle,
    Tiny64,
    Tiny64Single,
    General64,
}

impl TokenizerPreset {
    /// Every preset, in [`PRESETS`] order.
    pub const ALL: [TokenizerPreset; 8] = [
        TokenizerPreset::Paper,
        TokenizerPreset::PaperSingle,
        TokenizerPreset::Small,
        TokenizerPreset::Tiny,
        TokenizerPreset::TinySingle,
        TokenizerPreset::Tiny64,
        TokenizerPreset::Tiny64Single,
        TokenizerPreset::General64,
    ];

    /// Its name, as configs and checkpoints store it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Paper => "paper",
            Self::PaperSingle => "paper-single",
            Self::Small => "small",
            Self::Tiny => "tiny",
            Self::TinySingle => "tiny-single",
            Self::Tiny64 => "tiny64",
            Self::Tiny64Single => "tiny64-single",
            Self::General64 => "general64",
        }
    }

    /// Its config.
    pub fn config(self) -> TokenizerConfig {
        TokenizerConfig::build_preset(self)
    }
}

impl std::fmt::Display for TokenizerPreset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for TokenizerPreset {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Self::ALL.into_iter().find(|p| p.name() == s).ok_or_else(|| ConfigError::UnknownPreset(s.to_string()))
    }
}

/// A tokenizer named by a preset or by a config JSON file (a checkpoint's `config.json`,
/// edited), as `tokenizer train --preset` and `tokenizer info --preset` take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenizerChoice {
    Preset(TokenizerPreset),
    File(std::path::PathBuf),
}

impl std::str::FromStr for TokenizerChoice {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.parse::<TokenizerPreset>() {
            Ok(p) => Ok(Self::Preset(p)),
            Err(_) if s.ends_with(".json") || std::path::Path::new(s).is_file() => Ok(Self::File(s.into())),
            Err(e) => Err(e),
        }
    }
}

impl TokenizerChoice {
    /// The config: the preset's, or the file's (read, bounded and validated).
    pub fn config(&self) -> Result<TokenizerConfig, ConfigError> {
        match self {
            Self::Preset(p) => Ok(p.config()),
            Self::File(path) => TokenizerConfig::from_file(path),
        }
    }
}

/// Errors of configuration: unknown preset, inconsistent geometry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown tokenizer preset '{0}'; choose one of: {list}", list = PRESETS.join(", "))]
    UnknownPreset(String),
    #[error("tokenizer config '{name}': {reason}")]
    Invalid { name: String, reason: String },
}

fn layer(t: usize, h: usize, w: usize, bits: usize) -> LayerConfig {
    LayerConfig::new(t, h, w, bits)
}

impl TokenizerConfig {
    /// A named preset:
    /// - `paper`: 64 frames at 8 fps, 256x256; latents 1x4x4, 2x8x8, 4x8x8, 8x16x16 with
    ///   12, 14, 16, 18 bits (the paper's Table 4; 2448 tokens, 1713.4 pixels per token).
    /// - `paper-single`: one layer of 8x17x17 = 2312 tokens, 2^18 codes.
    /// - `small`: 16 frames of 64x64; latents 1x4x4, 1x8x8, 2x8x8, 4x16x16 with 6, 8, 8, 10 bits
    ///   (1232 tokens), stages of 48 and 96 channels.
    /// - `tiny`: 16 frames of 32x32; latents 1x2x2, 1x4x4, 2x4x4, 4x8x8 with 5, 6, 8, 10 bits
    ///   (308 tokens), two stages of 32 channels and no ResNet blocks in the backbone (0.56 M
    ///   parameters) — sized so that the tokenizer *and* the generator train on a 2-core CPU.
    ///   On this budget backbone ResNet blocks cost speed and quality (docs/results.md).
    /// - `tiny-single`: one layer of 4x9x9 = 324 tokens, 2^10 codes (the single-layer baseline at
    ///   about `tiny`'s token count), the same backbone.
    /// - `tiny64`: `tiny`'s latents and bits (308 tokens) from 16 frames of 64x64: twice the
    ///   spatial compression at every layer (the paper's Fig. 5 question: at a fixed token
    ///   count, does a higher input resolution reconstruct better?). A lossless 2x2
    ///   space-to-depth patch in front of `tiny`'s backbone keeps the step's cost near `tiny`'s.
    /// - `tiny64-single`: `tiny-single`'s one layer (324 tokens) from 64x64, the same backbone.
    /// - `general64`: the general tokenizer for real footage: 16 frames of 64x64, `small`'s
    ///   latents and bits (1232 tokens, 0.18 bits per pixel). A lossless 2x2x2 space-to-depth
    ///   patch, then one stage of 128 channels with a ResNet block: every convolution runs on
    ///   the 4x16x16 grid, so a training step at batch 8 takes about 1.1 s on two cores
    ///   (`small`'s full-resolution stages take about 3 s).
    ///
    /// All presets set `bit_norm` and `subpixel_decoder`.
    pub fn preset(name: &str) -> Result<Self, ConfigError> {
        Ok(name.parse::<TokenizerPreset>()?.config())
    }

    /// The config of `preset` (every preset's geometry is checked by the tests).
    fn build_preset(preset: TokenizerPreset) -> Self {
        use TokenizerPreset as P;
        let name = preset.name();
        let cfg = match preset {
            P::Paper => Self::new(
                name.into(),
                64,
                256,
                256,
                vec![128, 128, 256, 256],
                64,
                vec![layer(1, 4, 4, 12), layer(2, 8, 8, 14), layer(4, 8, 8, 16), layer(8, 16, 16, 18)],
            )
            .with_blocks_per_stage(2)
            .with_disc_channels(64),
            P::PaperSingle => {
                Self::new(name.into(), 64, 256, 256, vec![128, 128, 256, 256], 64, vec![layer(8, 17, 17, 18)]).with_blocks_per_stage(2).with_disc_channels(64)
            }
            P::Small => {
                Self::new(name.into(), 16, 64, 64, vec![48, 96], 32, vec![layer(1, 4, 4, 6), layer(1, 8, 8, 8), layer(2, 8, 8, 8), layer(4, 16, 16, 10)])
                    .with_disc_channels(16)
            }
            P::Tiny => Self::new(name.into(), 16, 32, 32, vec![32, 32], 32, vec![layer(1, 2, 2, 5), layer(1, 4, 4, 6), layer(2, 4, 4, 8), layer(4, 8, 8, 10)])
                .with_blocks_per_stage(0)
                .with_disc_channels(16),
            P::TinySingle => Self::new(name.into(), 16, 32, 32, vec![32, 32], 32, vec![layer(4, 9, 9, 10)]).with_blocks_per_stage(0).with_disc_channels(16),
            P::Tiny64 => {
                Self::new(name.into(), 16, 64, 64, vec![32, 32], 32, vec![layer(1, 2, 2, 5), layer(1, 4, 4, 6), layer(2, 4, 4, 8), layer(4, 8, 8, 10)])
                    .with_patch([1, 2])
                    .with_blocks_per_stage(0)
                    .with_disc_channels(16)
            }
            P::Tiny64Single => Self::new(name.into(), 16, 64, 64, vec![32, 32], 32, vec![layer(4, 9, 9, 10)])
                .with_patch([1, 2])
                .with_blocks_per_stage(0)
                .with_disc_channels(16),
            P::General64 => {
                Self::new(name.into(), 16, 64, 64, vec![128], 32, vec![layer(1, 4, 4, 6), layer(1, 8, 8, 8), layer(2, 8, 8, 8), layer(4, 16, 16, 10)])
                    .with_patch([2, 2])
                    .with_blocks_per_stage(1)
                    .with_disc_channels(16)
            }
        };
        // Every preset normalizes its bits before the sign (docs/results.md: without it the
        // finer codebooks die and the decoder learns to ignore them) and upsamples by sub-pixel
        // convolution (half the step time of `tiny` on a CPU, and 1.1 dB better at equal time).
        cfg.with_bit_norm(true).with_subpixel_decoder(true)
    }

    /// Reads a config JSON (a checkpoint's `config.json`, a custom config file). Fields added
    /// since older files were written take the value that reproduces the old network
    /// (`subpixel_decoder: false`).
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let mut value: serde_json::Value = serde_json::from_slice(bytes)?;
        if let Some(map) = value.as_object_mut() {
            map.entry("subpixel_decoder").or_insert(serde_json::Value::Bool(false));
        }
        serde_json::from_value(value)
    }

    /// A preset name, or the path of a config JSON file (a `config.json` saved beside every
    /// checkpoint, edited): how a custom geometry is trained. The file's config is validated.
    pub fn preset_or_file(name: &str) -> Result<Self, ConfigError> {
        name.parse::<TokenizerChoice>()?.config()
    }

    /// A config JSON file (at most 1 MiB), validated; errors name the file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let bad = |reason: String| ConfigError::Invalid { name: path.display().to_string(), reason };
        let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read it ({e}); give a preset name or a config JSON file")))?;
        if bytes.len() > 1 << 20 {
            return Err(bad(format!("{} bytes is too large for a config file", bytes.len())));
        }
        let cfg = Self::from_json(&bytes).map_err(|e| bad(format!("not a tokenizer config ({e}); start from a checkpoint's config.json")))?;
        // Errors name the file, not the `name` field inside it.
        cfg.validate().map_err(|e| bad(e.to_string()))?;
        Ok(cfg)
    }

    /// The finest layer (the encoder's latent grid).
    pub fn finest(&self) -> &LayerConfig {
        &self.layers[self.layers.len() - 1]
    }

    /// Number of spatial downsampling stages of the encoder (`channels.len()`).
    pub fn stages(&self) -> usize {
        self.channels.len()
    }

    /// The encoder's output grid before any adapter
    /// (`frames / (p_t 2^k_t)`, `height / (p_s 2^stages)`, ...).
    pub fn encoder_grid(&self) -> (usize, usize, usize) {
        let s = self.patch[1] << self.stages();
        let t = (self.frames / self.patch[0].max(1)) >> self.temporal_stages();
        (t, self.height / s.max(1), self.width / s.max(1))
    }

    /// How many of the first stages also halve time.
    pub fn temporal_stages(&self) -> usize {
        let frames = self.frames / self.patch[0].max(1);
        let mut k = 0;
        while (frames >> k) > self.finest().t && k < self.stages() {
            k += 1;
        }
        k
    }

    /// Checks that the geometry is realisable by the architecture.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |reason: String| Err(ConfigError::Invalid { name: self.name.clone(), reason });
        if self.layers.is_empty() {
            return bad("needs at least one layer".into());
        }
        // Upper bounds first, so nothing below shifts, multiplies or allocates from an absurd
        // value (a config file from elsewhere); each names its field.
        let limits: [(&str, usize, usize); 8] = [
            ("frames", self.frames, 1024),
            ("height", self.height, 8192),
            ("width", self.width, 8192),
            ("channels (stages)", self.channels.len(), 8),
            ("latent_channels", self.latent_channels, 4096),
            ("layers", self.layers.len(), 16),
            ("blocks_per_stage", self.blocks_per_stage, 16),
            ("disc_channels", self.disc_channels, 1024),
        ];
        if let Some((field, v, max)) = limits.iter().find(|(_, v, max)| v > max) {
            return bad(format!("field `{field}` is {v}; at most {max} is allowed"));
        }
        if let Some(c) = self.channels.iter().find(|&&c| c > 4096) {
            return bad(format!("field `channels` has {c}; at most 4096 per stage is allowed"));
        }
        if self.patch.iter().any(|&p| p > 16) {
            return bad(format!("field `patch` is {:?}; at most 16 is allowed", self.patch));
        }
        if !(self.fps.is_finite() && self.fps > 0.0 && self.fps <= 1000.0) {
            return bad(format!("field `fps` is {}; it must be in (0, 1000]", self.fps));
        }
        if self.disc_channels == 0 {
            return bad("field `disc_channels` is 0; it must be at least 1".into());
        }
        if let Some(l) = self.layers.iter().find(|l| l.t == 0 || l.h == 0 || l.w == 0 || l.t > 1024 || l.h > 8192 || l.w > 8192) {
            return bad(format!("layer {}x{}x{} has a zero or absurd side", l.t, l.h, l.w));
        }
        if self.channels.is_empty() || self.channels.contains(&0) || self.latent_channels == 0 {
            return bad("needs at least one stage, all with channels > 0".into());
        }
        if self.frames == 0 || self.height == 0 || self.width == 0 {
            return bad("frames, height and width must be positive".into());
        }
        if self.patch[0] == 0 || self.patch[1] == 0 || !self.frames.is_multiple_of(self.patch[0]) {
            return bad(format!("patch {:?} must be positive and divide the {} frames", self.patch, self.frames));
        }
        let s = self.patch[1] << self.stages();
        if !self.height.is_multiple_of(s) || !self.width.is_multiple_of(s) {
            return bad(format!("{}x{} is not divisible by {s} (the patch, then one halving per stage)", self.height, self.width));
        }
        let f = self.finest();
        let (t, h, w) = self.encoder_grid();
        if t != f.t {
            return bad(format!("{} frames cannot be halved to {} latent frames within {} stages", self.frames, f.t, self.stages()));
        }
        // The finest grid is the encoder grid, or one larger on each side (paper-single's 17x17).
        let adapter_ok = (f.h, f.w) == (h, w) || (f.h, f.w) == (h + 1, w + 1);
        if !adapter_ok {
            return bad(format!("finest latent {}x{} does not follow from a {h}x{w} encoder grid", f.h, f.w));
        }
        if self.layers.len() > 1 && (f.h, f.w) != (h, w) {
            return bad("only single-layer tokenizers may use the +1 grid adapter".into());
        }
        for pair in self.layers.windows(2) {
            let (c, n) = (&pair[0], &pair[1]);
            let ok = |a: usize, b: usize| b == a || b == 2 * a;
            if !(ok(c.t, n.t) && ok(c.h, n.h) && ok(c.w, n.w)) || c.tokens() == n.tokens() {
                return bad(format!("layer {}x{}x{} must halve some of time/height/width of {}x{}x{}", c.t, c.h, c.w, n.t, n.h, n.w));
            }
        }
        if self.layers.iter().any(|l| l.bits == 0 || l.bits > 24) {
            return bad("bits must be 1..=24 per layer".into());
        }
        Ok(())
    }

    /// Tokens per clip over all layers.
    pub fn total_tokens(&self) -> usize {
        self.layers.iter().map(LayerConfig::tokens).sum()
    }

    /// Pixels (frame positions `T * H * W`) per token.
    pub fn pixels_per_token(&self) -> f64 {
        (self.frames * self.height * self.width) as f64 / self.total_tokens() as f64
    }

    /// Token bits per clip.
    pub fn total_bits(&self) -> usize {
        self.layers.iter().map(|l| l.tokens() * l.bits).sum()
    }

    /// Bits per pixel of the token stream.
    pub fn bpp(&self) -> f64 {
        self.total_bits() as f64 / (self.frames * self.height * self.width) as f64
    }

    /// Raw RGB24 bits over token bits.
    pub fn compression_ratio(&self) -> f64 {
        24.0 / self.bpp()
    }
}

/// SHA-256 of a tokenizer config's JSON, as stored in checkpoints and token files: two
/// artefacts with the same checksum use the same geometry and the same weights' layout.
///
/// A field added later is left out of the checksummed text while it has the value of older
/// configs (`"subpixel_decoder": false`), so the token files, caches and generators made with
/// a tokenizer before the field existed still match it.
pub fn config_sha256(cfg: &TokenizerConfig) -> String {
    let text = String::from_utf8(serde_json::to_vec_pretty(cfg).unwrap_or_default()).unwrap_or_default();
    let legacy: String = text.split_inclusive('\n').filter(|line| line.trim() != "\"subpixel_decoder\": false,").collect();
    crate::checkpoint::sha256_hex(legacy.as_bytes())
}

#[cfg(test)]
mod tests {

    #[test]
    fn every_preset_parses_by_name_and_validates() {
        for p in TokenizerPreset::ALL {
            let cfg = p.config();
            assert_eq!(cfg.name, p.name());
            cfg.validate().expect("a valid preset");
            assert_eq!(p.name().parse::<TokenizerPreset>().expect("its name"), p);
            assert!(PRESETS.contains(&p.name()), "PRESETS lists {p}");
            assert_eq!(p.name().parse::<TokenizerChoice>().expect("a choice"), TokenizerChoice::Preset(p));
        }
        assert!(matches!("tiny9".parse::<TokenizerChoice>(), Err(ConfigError::UnknownPreset(_))));
        assert_eq!("my.json".parse::<TokenizerChoice>().expect("a file"), TokenizerChoice::File("my.json".into()));
        assert!(TokenizerChoice::File("/nonexistent/cfg.json".into()).config().expect_err("no file").to_string().contains("/nonexistent/cfg.json"));
    }

    use super::*;

    #[test]
    fn paper_preset_matches_table_4() {
        let c = TokenizerConfig::preset("paper").unwrap();
        let tokens: Vec<usize> = c.layers.iter().map(LayerConfig::tokens).collect();
        assert_eq!(tokens, vec![16, 128, 256, 2048]);
        assert_eq!(c.total_tokens(), 2448);
        assert_eq!(format!("{:.1}", c.pixels_per_token()), "1713.4");
        assert_eq!(c.layers.iter().map(|l| l.bits).collect::<Vec<_>>(), vec![12, 14, 16, 18]);
        assert_eq!(c.encoder_grid(), (8, 16, 16));
        let s = TokenizerConfig::preset("paper-single").unwrap();
        assert_eq!(s.total_tokens(), 2312);
        assert_eq!(s.finest().bits, 18);
    }

    #[test]
    fn tiny_presets_have_about_equal_token_counts() {
        let t = TokenizerConfig::preset("tiny").unwrap();
        let s = TokenizerConfig::preset("tiny-single").unwrap();
        assert_eq!(t.total_tokens(), 308);
        assert_eq!(s.total_tokens(), 324);
        let ratio = s.total_tokens() as f64 / t.total_tokens() as f64;
        assert!((0.95..=1.1).contains(&ratio), "{ratio}");
        assert_eq!(TokenizerConfig::preset("small").unwrap().total_tokens(), 1232);
    }

    #[test]
    fn the_64x64_presets_keep_the_tiny_token_counts() {
        let (t, t64) = (TokenizerConfig::preset("tiny").unwrap(), TokenizerConfig::preset("tiny64").unwrap());
        assert_eq!((t64.frames, t64.height, t64.width), (16, 64, 64));
        assert_eq!(t64.total_tokens(), 308);
        assert_eq!(t64.layers, t.layers, "the same latents and bits");
        assert_eq!(t64.encoder_grid(), (4, 8, 8), "the finest layer's grid straight from the backbone");
        assert!((t64.pixels_per_token() - 4.0 * t.pixels_per_token()).abs() < 1e-9, "4x the pixels per token");
        let single = TokenizerConfig::preset("tiny64-single").unwrap();
        assert_eq!(single.total_tokens(), 324);
        let ratio = single.total_tokens() as f64 / t64.total_tokens() as f64;
        assert!((0.95..1.1).contains(&ratio), "about equal token counts: {ratio}");
        assert!((t64.bpp() - t.bpp() / 4.0).abs() < 1e-12);
    }

    #[test]
    fn the_general_preset_has_small_s_latents_at_64x64() {
        let (g, small) = (TokenizerConfig::preset("general64").unwrap(), TokenizerConfig::preset("small").unwrap());
        assert_eq!((g.frames, g.height, g.width, g.fps), (16, 64, 64, 8.0));
        assert_eq!(g.layers, small.layers);
        assert_eq!(g.total_tokens(), 1232);
        assert_eq!(g.encoder_grid(), (4, 16, 16), "one stage after the 2x2x2 patch reaches the finest grid");
        assert!((g.bpp() - small.bpp()).abs() < 1e-12);
    }

    #[test]
    fn configs_from_before_the_subpixel_decoder_keep_their_checksum() {
        // The shipped demo tokenizer's config.json predates the field; the generator packed
        // with it records the checksum of that exact text.
        let legacy = r#"{
  "name": "tiny",
  "frames": 16,
  "height": 32,
  "width": 32,
  "channels": [
    32,
    32
  ],
  "latent_channels": 32,
  "layers": [
    {
      "t": 4,
      "h": 8,
      "w": 8,
      "bits": 10
    }
  ],
  "fps": 8.0,
  "patch": [
    1,
    1
  ],
  "bit_norm": true,
  "blocks_per_stage": 0,
  "disc_channels": 16
}"#;
        let cfg = TokenizerConfig::from_json(legacy.as_bytes()).unwrap();
        assert!(!cfg.subpixel_decoder);
        assert_eq!(config_sha256(&cfg), crate::checkpoint::sha256_hex(legacy.as_bytes()));
        let new = cfg.clone().with_subpixel_decoder(true);
        assert_ne!(config_sha256(&new), config_sha256(&cfg));
        assert!(serde_json::to_string(&new).unwrap().contains("\"subpixel_decoder\":true"));
    }

    #[test]
    fn bad_configs_are_rejected_with_reasons() {
        assert!(TokenizerConfig::preset("huge").unwrap_err().to_string().contains("paper, paper-single, small, tiny, tiny-single"));
        let mut c = TokenizerConfig::preset("tiny").unwrap();
        c.layers[0].t = 3;
        assert!(c.validate().unwrap_err().to_string().contains("must halve"));
        let mut c = TokenizerConfig::preset("tiny").unwrap();
        c.height = 30;
        assert!(c.validate().is_err());
        let c = TokenizerConfig::preset("tiny").unwrap();
        let text = c.to_string();
        let back: TokenizerConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back, c);
        // A config file: read back, or refused with the file's name and the reason.
        let dir = std::env::temp_dir().join(format!("hitvideo-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.json");
        std::fs::write(&good, &text).unwrap();
        assert_eq!(TokenizerConfig::preset_or_file(good.to_str().unwrap()).unwrap(), c);
        let broken = dir.join("broken.json");
        std::fs::write(&broken, b"{\"name\": 3").unwrap();
        let e = TokenizerConfig::preset_or_file(broken.to_str().unwrap()).unwrap_err().to_string();
        assert!(e.contains("broken.json") && e.contains("not a tokenizer config"), "{e}");
        let mut odd = c.clone();
        odd.height = 30;
        let odd_path = dir.join("odd.json");
        std::fs::write(&odd_path, odd.to_string()).unwrap();
        assert!(TokenizerConfig::preset_or_file(odd_path.to_str().unwrap()).unwrap_err().to_string().contains("not divisible"));
        assert!(TokenizerConfig::preset_or_file(dir.join("missing.json").to_str().unwrap()).unwrap_err().to_string().contains("cannot read"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

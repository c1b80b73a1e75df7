//! PNG frame export: a folder of `frame_00000.png` ... with the metadata JSON in an iTXt
//! chunk of every frame.

use std::path::{Path, PathBuf};

use super::{ExportMetadata, Video, VideoError};

/// The file name of frame `t` inside an export folder.
pub fn frame_name(t: usize) -> String {
    format!("frame_{t:05}.png")
}

/// Encodes one RGB frame as PNG bytes, with `text` under the [`TAG`](super::meta::TAG) keyword.
pub fn encode_png(rgb: &[u8], w: u32, h: u32, text: Option<&str>) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        if let Some(text) = text {
            enc.add_itxt_chunk(super::meta::TAG.to_string(), text.to_string()).map_err(|e| e.to_string())?;
        }
        let mut writer = enc.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(rgb).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// Writes every frame of `video` into the folder `dir` (created if needed); returns the files.
pub fn write_png_frames(video: &Video, dir: &Path, meta: &ExportMetadata) -> Result<Vec<PathBuf>, VideoError> {
    std::fs::create_dir_all(dir).map_err(|source| VideoError::Io { path: dir.to_path_buf(), source })?;
    let json = meta.to_json();
    let mut files = Vec::with_capacity(video.len());
    for t in 0..video.len() {
        let path = dir.join(frame_name(t));
        let bytes =
            encode_png(video.frame(t), video.width(), video.height(), Some(&json)).map_err(|reason| VideoError::Encode { path: path.clone(), reason })?;
        super::write_atomic(&path, &bytes)?;
        files.push(path);
    }
    Ok(files)
}

/// Reads the HiTVideo iTXt chunk of one PNG (`None` when it has none).
pub fn read_text(path: &Path) -> Result<Option<String>, VideoError> {
    let file = std::fs::File::open(path).map_err(|source| VideoError::Io { path: path.to_path_buf(), source })?;
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let reader = decoder.read_info().map_err(|e| VideoError::Unreadable { path: path.to_path_buf(), reason: e.to_string() })?;
    let info = reader.info();
    Ok(info.utf8_text.iter().find(|c| c.keyword == super::meta::TAG).and_then(|c| c.get_text().ok()))
}

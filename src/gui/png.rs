//! Window captures as PNG files: the plots' export and the README's screenshots.

use anyhow::{Context, Result};
use std::path::Path;

/// Writes `image` (or the `region` of it, in points) as an RGBA PNG, atomically.
pub fn save_png(
    image: &egui::ColorImage,
    region: Option<egui::Rect>,
    pixels_per_point: f32,
    path: &Path,
) -> Result<()> {
    let image = match region {
        Some(r) => image.region(&r, Some(pixels_per_point)),
        None => image.clone(),
    };
    let [w, h] = image.size;
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, w as u32, h as u32);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        let rgba: Vec<u8> = image
            .pixels
            .iter()
            .flat_map(|c| c.to_srgba_unmultiplied())
            .collect();
        writer.write_image_data(&rgba)?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    crate::fsutil::write_atomically(path, &bytes)
}

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
        Some(r) => {
            // Clipped to the window: part of a plot may be scrolled out of it.
            let [w, h] = image.size;
            let px =
                |v: f32, max: usize| ((v * pixels_per_point).round().max(0.0) as usize).min(max);
            let (x0, y0, x1, y1) = (
                px(r.min.x, w),
                px(r.min.y, h),
                px(r.max.x, w),
                px(r.max.y, h),
            );
            if x1 <= x0 || y1 <= y0 {
                anyhow::bail!("the area to save is outside the window");
            }
            image.region_by_pixels([x0, y0], [x1 - x0, y1 - y0])
        }
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
    squadlab_core::fsutil::write_atomically(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_is_saved_as_a_readable_png() {
        let (w, h) = (40usize, 30usize);
        let pixels = (0..w * h)
            .map(|i| egui::Color32::from_rgb((i % w) as u8, (i / w) as u8, 7))
            .collect();
        let image = egui::ColorImage::new([w, h], pixels);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exports/plot.png");
        // Points at 2 pixels per point: (5, 4)..(15, 10) is pixels (10, 8)..(30, 20).
        let region = egui::Rect::from_min_max(egui::pos2(5.0, 4.0), egui::pos2(15.0, 10.0));
        save_png(&image, Some(region), 2.0, &path).unwrap();
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (20, 12));
        // The top-left pixel of the region: x = 10, y = 8.
        assert_eq!(&buf[..4], &[10, 8, 7, 255]);
        // A region reaching past the window is clipped to it, not a panic.
        let past = egui::Rect::from_min_max(egui::pos2(10.0, 10.0), egui::pos2(90.0, 90.0));
        save_png(&image, Some(past), 2.0, &path).unwrap();
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let info = decoder.read_info().unwrap().info().clone();
        assert_eq!((info.width, info.height), (20, 10));
        let outside = egui::Rect::from_min_max(egui::pos2(50.0, 50.0), egui::pos2(60.0, 60.0));
        assert!(save_png(&image, Some(outside), 2.0, &path).is_err());
    }
}

//! Scatter panels for 2-D data (digit grids are `crate::eval::pictures::save_grid`).

use std::path::Path;

use image::{Rgb, RgbImage};

/// Distinct colours for up to 16 groups: the charts' palette.
pub use crate::eval::plot::PALETTE;

/// One scatter panel: points `(x, y)` with a group each, drawn as 2×2 dots.
pub struct Panel<'a> {
    /// Row-major pairs.
    pub points: &'a [f32],
    /// Group of each point (colour); `None` draws all points grey.
    pub groups: Option<&'a [usize]>,
}

/// Writes `rows` of scatter panels (each `size`×`size` pixels, white
/// background, 4-pixel gaps) covering `[-extent, extent]²`.
pub fn scatter_grid(
    path: &Path,
    rows: &[Vec<Panel>],
    size: u32,
    extent: f32,
) -> anyhow::Result<()> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0) as u32;
    let gap = 4;
    let w = cols * (size + gap) + gap;
    let h = rows.len() as u32 * (size + gap) + gap;
    let mut img = RgbImage::from_pixel(w.max(1), h.max(1), Rgb([230, 230, 230]));
    for (r, row) in rows.iter().enumerate() {
        for (c, panel) in row.iter().enumerate() {
            let (x0, y0) = (gap + c as u32 * (size + gap), gap + r as u32 * (size + gap));
            for y in 0..size {
                for x in 0..size {
                    img.put_pixel(x0 + x, y0 + y, Rgb([255, 255, 255]));
                }
            }
            for (i, p) in panel.points.chunks_exact(2).enumerate() {
                let colour = match panel.groups {
                    Some(g) => PALETTE[g[i] % PALETTE.len()],
                    None => [90, 90, 90],
                };
                let px = ((p[0] + extent) / (2.0 * extent) * size as f32) as i64;
                let py = ((extent - p[1]) / (2.0 * extent) * size as f32) as i64;
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let (x, y) = (px + dx, py + dy);
                    if x >= 0 && y >= 0 && (x as u32) < size && (y as u32) < size {
                        img.put_pixel(x0 + x as u32, y0 + y as u32, Rgb(colour));
                    }
                }
            }
        }
    }
    img.save(path)?;
    Ok(())
}

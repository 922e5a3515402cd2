//! PNG output: sample grids (one column per expert) and loss curves.

use std::path::Path;

use image::{GrayImage, Luma, Rgb, RgbImage};

use crate::util::write_atomic;

/// Lays out `cols × rows` square tiles of `side × side` intensities in
/// `[0, 1]` (tile `(col, row)` is `tiles[row * cols + col]`), with a 2-pixel
/// grey gutter, and writes a PNG (atomically).
pub fn save_grid(
    path: &Path,
    tiles: &[Vec<f32>],
    cols: usize,
    width: usize,
    height: usize,
) -> anyhow::Result<()> {
    let tiles: Vec<Vec<u8>> = tiles
        .iter()
        .map(|t| {
            let mut px = vec![0u8; t.len()];
            engine::to_pixels(t, &mut px);
            px
        })
        .collect();
    save_grid_bytes(path, &tiles, cols, width, height)
}

/// [`save_grid`] for 8-bit tiles of `width × height` pixels (what the
/// engine's `to_pixels` and the harness's `generate` produce). Tiles smaller
/// than MNIST's 28 pixels are drawn at an integer scale that brings their
/// longer side to at least 28 (an 8×8 tile becomes 32×32), so that a small
/// image set's samples can be seen.
pub fn save_grid_bytes(
    path: &Path,
    tiles: &[Vec<u8>],
    cols: usize,
    width: usize,
    height: usize,
) -> anyhow::Result<()> {
    let cols = cols.max(1);
    let rows = tiles.len().div_ceil(cols);
    let gap = 2;
    let scale = 28usize.div_ceil(width.max(height).max(1)).max(1);
    let (tw, th) = (width * scale, height * scale);
    let w = cols * (tw + gap) + gap;
    let h = rows * (th + gap) + gap;
    let mut img = GrayImage::from_pixel(w as u32, h as u32, Luma([96]));
    for (i, tile) in tiles.iter().enumerate() {
        let (c, r) = (i % cols, i / cols);
        let (x0, y0) = (gap + c * (tw + gap), gap + r * (th + gap));
        for (p, &v) in tile.iter().take(width * height).enumerate() {
            let (x, y) = (x0 + (p % width) * scale, y0 + (p / width) * scale);
            for dy in 0..scale {
                for dx in 0..scale {
                    img.put_pixel((x + dx) as u32, (y + dy) as u32, Luma([v]));
                }
            }
        }
    }
    write_png(path, image::DynamicImage::ImageLuma8(img))
}

/// Points `(x, y)` of one curve and its RGB colour.
pub type Series<'a> = (&'a [(f64, f64)], [u8; 3]);

/// Plots `(x, y)` series as polylines on a white canvas with axes and tick
/// marks at every tenth of the range (no text: the figures the curve
/// summarises are in metrics.jsonl and report.md).
pub fn save_curves(path: &Path, series: &[Series<'_>]) -> anyhow::Result<()> {
    let (w, h, m) = (640i64, 400i64, 30i64);
    let mut img = RgbImage::from_pixel(w as u32, h as u32, Rgb([255, 255, 255]));
    let pts = series
        .iter()
        .flat_map(|(s, _)| s.iter())
        .filter(|p| p.1.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1e-12 {
        x1 = x0 + 1.0;
    }
    if y1 - y0 < 1e-12 {
        y1 = y0 + 1.0;
    }
    let to_px = |x: f64, y: f64| {
        let px = m + ((x - x0) / (x1 - x0) * (w - 2 * m) as f64) as i64;
        let py = h - m - ((y - y0) / (y1 - y0) * (h - 2 * m) as f64) as i64;
        (px, py)
    };
    let put = |img: &mut RgbImage, x: i64, y: i64, c: [u8; 3]| {
        if x >= 0 && y >= 0 && x < w && y < h {
            img.put_pixel(x as u32, y as u32, Rgb(c));
        }
    };
    let black = [0, 0, 0];
    for x in m..w - m {
        put(&mut img, x, h - m, black);
    }
    for y in m..=h - m {
        put(&mut img, m, y, black);
    }
    for i in 0..=10 {
        let tx = m + i * (w - 2 * m) / 10;
        let ty = h - m - i * (h - 2 * m) / 10;
        for d in 0..5 {
            put(&mut img, tx, h - m + d, black);
            put(&mut img, m - d, ty, black);
        }
    }
    for (s, colour) in series {
        let mut prev: Option<(i64, i64)> = None;
        for &(x, y) in s.iter().filter(|p| p.1.is_finite()) {
            let (px, py) = to_px(x, y);
            if let Some((qx, qy)) = prev {
                let steps = (px - qx).abs().max((py - qy).abs()).max(1);
                for t in 0..=steps {
                    let x = qx + (px - qx) * t / steps;
                    let y = qy + (py - qy) * t / steps;
                    put(&mut img, x, y, *colour);
                    put(&mut img, x, y + 1, *colour);
                }
            }
            prev = Some((px, py));
        }
    }
    write_png(path, image::DynamicImage::ImageRgb8(img))
}

/// Encodes `img` as PNG and writes it atomically.
fn write_png(path: &Path, img: image::DynamicImage) -> anyhow::Result<()> {
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )?;
    write_atomic(path, &bytes)
}

//! PNG output: sample grids (one column per expert, plain or with a
//! header naming each column's cluster) and the confusion matrix picture.
//! Charts (`loss.png`, per-round curves) are [`super::plot`]'s.

use std::path::Path;

use image::{GrayImage, Luma, RgbImage};

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
    save_grid_bytes(path, &to_bytes(tiles), cols, width, height)
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
    let scale = 28usize.div_ceil(width.max(height).max(1)).max(1);
    let (tw, th) = (width * scale, height * scale);
    let w = cols * (tw + GAP) + GAP;
    let h = rows * (th + GAP) + GAP;
    let mut img = GrayImage::from_pixel(w as u32, h as u32, Luma([GUTTER]));
    paint_tiles(tiles, cols, (width, height), scale, |x, y, v| {
        img.put_pixel(x as u32, y as u32, Luma([v]));
    });
    write_png(path, image::DynamicImage::ImageLuma8(img))
}

/// Tiles of intensities in `[0, 1]` as 8-bit pixels (the engine's rounding).
fn to_bytes(tiles: &[Vec<f32>]) -> Vec<Vec<u8>> {
    tiles
        .iter()
        .map(|t| {
            let mut px = vec![0u8; t.len()];
            engine::to_pixels(t, &mut px);
            px
        })
        .collect()
}

/// Gutter between tiles, in pixels.
const GAP: usize = 2;
/// Grey of the gutter.
const GUTTER: u8 = 96;

/// Calls `put(x, y, v)` for every pixel of `tiles` (8-bit, `width ×
/// height`) laid out `cols` wide at the integer `scale`, each tile with a
/// [`GAP`] gutter before it: pixel-exact, no resampling.
fn paint_tiles(
    tiles: &[Vec<u8>],
    cols: usize,
    (width, height): (usize, usize),
    scale: usize,
    mut put: impl FnMut(usize, usize, u8),
) {
    let (tw, th) = (width * scale, height * scale);
    for (i, tile) in tiles.iter().enumerate() {
        let (c, r) = (i % cols, i / cols);
        let (x0, y0) = (GAP + c * (tw + GAP), GAP + r * (th + GAP));
        for (p, &v) in tile.iter().take(width * height).enumerate() {
            let (x, y) = (x0 + (p % width) * scale, y0 + (p / width) * scale);
            for dy in 0..scale {
                for dx in 0..scale {
                    put(x + dx, y + dy, v);
                }
            }
        }
    }
}

/// Column headers of a grid of expert samples: `cluster c` over `→ digit d`
/// when `label_map` gives cluster `c` the label `d` (class names, when the
/// data has them, in place of the digit), `cluster c` alone otherwise.
pub fn cluster_headers(
    k: usize,
    label_map: Option<&[u8]>,
    class_names: Option<&[String]>,
) -> Vec<String> {
    (0..k)
        .map(|c| match label_map.and_then(|m| m.get(c)) {
            Some(&d) => match class_names.and_then(|n| n.get(d as usize)) {
                Some(name) => format!("cluster {c}\n→ {name}"),
                None => format!("cluster {c}\n→ digit {d}"),
            },
            None => format!("cluster {c}"),
        })
        .collect()
}

/// Tiles' longer side in a labelled grid is at least this many pixels.
pub const LABELLED_TILE: usize = 84;

/// [`save_grid`] with text: `title` above (none when empty) and a header
/// above each column (`headers[c]`, lines split at `\n`; see
/// [`cluster_headers`]). Tiles are scaled by the integer factor that brings
/// their longer side to at least [`LABELLED_TILE`] pixels (MNIST's 28 × 28
/// becomes 84 × 84), pixel-exact. A header wider than its
/// column (a long class name) runs over its neighbours' space.
pub fn save_labelled_grid(
    path: &Path,
    title: &str,
    tiles: &[Vec<f32>],
    cols: usize,
    (width, height): (usize, usize),
    headers: &[String],
) -> anyhow::Result<()> {
    save_labelled_grid_bytes(
        path,
        title,
        &to_bytes(tiles),
        cols,
        (width, height),
        headers,
    )
}

/// Where [`save_labelled_grid_bytes`] puts things: the picture's size, the
/// tiles' scale and the grid's top-left corner (tile 0's first pixel is at
/// `(left + 2, top + 2)`, each of its pixels `scale × scale`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabelledLayout {
    /// Picture width and height, in pixels.
    pub size: (usize, usize),
    /// Integer scale of every tile pixel.
    pub scale: usize,
    /// Left edge of the grid (the grid is centred under a wider title).
    pub left: usize,
    /// Top edge of the grid, below the title and the headers.
    pub top: usize,
}

/// The layout of a labelled grid of `n` tiles of `width × height`, `cols`
/// wide, under `title` and `headers`.
pub fn labelled_layout(
    title: &str,
    n: usize,
    cols: usize,
    (width, height): (usize, usize),
    headers: &[String],
) -> LabelledLayout {
    let cols = cols.max(1);
    let rows = n.div_ceil(cols);
    let scale = LABELLED_TILE.div_ceil(width.max(height).max(1)).max(1);
    let (tw, th) = (width * scale, height * scale);
    let lines = headers.iter().map(|h| h.lines().count()).max().unwrap_or(0);
    let header_h = if lines == 0 { 0 } else { 8 + 18 * lines };
    let title_h = if title.is_empty() {
        0
    } else {
        crate::eval::plot::TITLE_HEIGHT as usize
    };
    let grid_w = cols * (tw + GAP) + GAP;
    let w = grid_w.max(if title.is_empty() {
        0
    } else {
        10 * title.chars().count() + 40
    });
    let top = title_h + header_h;
    LabelledLayout {
        size: (w, top + rows * (th + GAP) + GAP),
        scale,
        left: (w - grid_w) / 2,
        top,
    }
}

/// [`save_labelled_grid`] for 8-bit tiles (what `harness generate` and a
/// board's `generate` answers give).
pub fn save_labelled_grid_bytes(
    path: &Path,
    title: &str,
    tiles: &[Vec<u8>],
    cols: usize,
    (width, height): (usize, usize),
    headers: &[String],
) -> anyhow::Result<()> {
    use crate::eval::plot;
    let cols = cols.max(1);
    let layout = labelled_layout(title, tiles.len(), cols, (width, height), headers);
    let LabelledLayout {
        size: (w, h),
        scale,
        left,
        top,
    } = layout;
    let tw = width * scale;
    let grid_w = cols * (tw + GAP) + GAP;
    let title_h = if title.is_empty() {
        0
    } else {
        plot::TITLE_HEIGHT as usize
    };
    let mut buf = vec![255u8; w * h * 3];
    for y in top..h {
        for x in left..left + grid_w {
            buf[(y * w + x) * 3..(y * w + x) * 3 + 3].fill(GUTTER);
        }
    }
    paint_tiles(tiles, cols, (width, height), scale, |x, y, v| {
        let i = ((top + y) * w + left + x) * 3;
        buf[i..i + 3].fill(v);
    });
    {
        let root = plot::area_keep(&mut buf, (w as u32, h as u32));
        if !title.is_empty() {
            plot::text(
                &root,
                title,
                18,
                ((w / 2) as i32, (title_h / 2) as i32),
                plotters::style::BLACK,
            )?;
        }
        for (c, header) in headers.iter().take(cols).enumerate() {
            let x = left + GAP + c * (tw + GAP) + tw / 2;
            for (l, line) in header.lines().enumerate() {
                let y = title_h + 4 + 18 * l + 9;
                plot::text(
                    &root,
                    line,
                    14,
                    (x as i32, y as i32),
                    plotters::style::BLACK,
                )?;
            }
        }
        root.present()?;
    }
    // Grey tiles, black text on white: one channel says it all.
    let grey: Vec<u8> = buf.chunks_exact(3).map(|p| p[1]).collect();
    let img = GrayImage::from_raw(w as u32, h as u32, grey)
        .ok_or_else(|| anyhow::anyhow!("a {w}x{h} grid has the wrong number of pixels"))?;
    write_png(path, image::DynamicImage::ImageLuma8(img))
}

/// Writes an RGB buffer of `w × h` pixels (what the plotters pictures
/// draw into) as a PNG, atomically.
pub(crate) fn write_rgb(path: &Path, w: u32, h: u32, buf: Vec<u8>) -> anyhow::Result<()> {
    let img = RgbImage::from_raw(w, h, buf)
        .ok_or_else(|| anyhow::anyhow!("a {w}x{h} picture needs {} bytes", w * h * 3))?;
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

/// Side of a cell of the confusion picture.
const CELL: usize = 52;

/// The colour of a cell holding `share` (0..=1) of its row: white through
/// light and mid blue to dark blue (ColorBrewer's "Blues").
fn blues(share: f64) -> [u8; 3] {
    const STOPS: [[f64; 3]; 4] = [
        [255.0, 255.0, 255.0],
        [198.0, 219.0, 239.0],
        [66.0, 146.0, 198.0],
        [8.0, 48.0, 107.0],
    ];
    let t = share.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let i = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    [0, 1, 2].map(|c| (a[c] + (b[c] - a[c]) * f).round() as u8)
}

/// Writes the confusion matrix of `ev` as a picture: one row per true
/// label (`digit d`, or the class name), one column per cluster headed
/// `c→d` with the label `label_map` gives it (the model's map; `ev`'s own
/// matching when `None`), columns ordered by that label so that a good
/// clustering shows a dark diagonal. Each cell holds its count, coloured
/// by its share of the row (the scale is drawn below the matrix).
pub fn save_confusion(
    path: &Path,
    title: &str,
    ev: &crate::eval::metrics::Evaluation,
    label_map: Option<&[u8]>,
    class_names: Option<&[String]>,
) -> anyhow::Result<()> {
    use crate::eval::plot::{self, TITLE_HEIGHT};
    use plotters::prelude::*;
    let k = ev.confusion.len();
    let classes = ev.classes();
    let mapped: Vec<Option<u8>> = (0..k)
        .map(|c| match label_map {
            Some(m) => m.get(c).copied(),
            None => ev.cluster_to_label.get(c).copied().flatten(),
        })
        .collect();
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by_key(|&c| (mapped[c].map_or(u16::MAX, u16::from), c));
    let row_name = |d: usize| match class_names.and_then(|n| n.get(d)) {
        Some(n) => n.clone(),
        None => format!("digit {d}"),
    };
    let left = 20
        + (0..classes)
            .map(|d| 8 * row_name(d).chars().count())
            .max()
            .unwrap_or(0);
    let header = 56;
    let top = TITLE_HEIGHT as usize + header;
    let footer = 74;
    let matrix_w = k * CELL;
    let w = (left + matrix_w + 24)
        .max(10 * title.chars().count() + 40)
        .max(420);
    let h = top + classes * CELL + footer;
    let mut buf = vec![255u8; w * h * 3];
    {
        let root = plot::area(&mut buf, (w as u32, h as u32))?;
        plot::title_band(&root, title)?;
        let black = RGBColor(0, 0, 0);
        let grey = RGBColor(150, 150, 150);
        let t = TITLE_HEIGHT as i32;
        let (l, tp) = (left as i32, top as i32);
        let cell = CELL as i32;
        plot::text(
            &root,
            "cluster → its digit",
            14,
            (l + matrix_w as i32 / 2, t + 12),
            black,
        )?;
        plot::text(&root, "true label", 14, (l / 2, t + 38), black)?;
        for (j, &c) in order.iter().enumerate() {
            let x = l + j as i32 * cell + cell / 2;
            let head = match mapped[c] {
                Some(d) => format!("{c}→{d}"),
                None => format!("{c}"),
            };
            plot::text(&root, &head, 13, (x, t + 38), black)?;
        }
        for d in 0..classes {
            let y = tp + d as i32 * cell;
            plot::text(&root, &row_name(d), 13, (l / 2, y + cell / 2), black)?;
            let total: u64 = ev
                .confusion
                .iter()
                .map(|r| r.get(d).copied().unwrap_or(0))
                .sum();
            for (j, &c) in order.iter().enumerate() {
                let x = l + j as i32 * cell;
                let n = ev.confusion[c].get(d).copied().unwrap_or(0);
                let share = n as f64 / total.max(1) as f64;
                let [r, g, b] = blues(share);
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    RGBColor(r, g, b).filled(),
                ))?;
                root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], grey))?;
                let ink = if share > 0.45 {
                    RGBColor(255, 255, 255)
                } else {
                    black
                };
                plot::text(&root, &n.to_string(), 12, (x + cell / 2, y + cell / 2), ink)?;
            }
        }
        // The colour scale: a horizontal bar under the matrix.
        let (bx, by, bw, bh) = (l, tp + (classes * CELL) as i32 + 18, 200i32, 14i32);
        for i in 0..bw {
            let [r, g, b] = blues(i as f64 / (bw - 1) as f64);
            root.draw(&Rectangle::new(
                [(bx + i, by), (bx + i + 1, by + bh)],
                RGBColor(r, g, b).filled(),
            ))?;
        }
        root.draw(&Rectangle::new([(bx, by), (bx + bw, by + bh)], grey))?;
        plot::text(&root, "0%", 12, (bx, by + bh + 12), black)?;
        plot::text(&root, "50%", 12, (bx + bw / 2, by + bh + 12), black)?;
        plot::text(&root, "100%", 12, (bx + bw, by + bh + 12), black)?;
        plot::text_at(
            &root,
            "colour: share of the row's images",
            12,
            (bx + bw + 16, by + bh / 2),
            black,
            plot::HPos::Left,
        )?;
        root.present()?;
    }
    write_rgb(path, w as u32, h as u32, buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::plot::tests::{dark_in_rows, read, varied};

    #[test]
    fn headers_name_clusters_and_their_digits() {
        let h = cluster_headers(3, Some(&[7, 1, 0]), None);
        assert_eq!(h[0], "cluster 0\n→ digit 7");
        assert_eq!(cluster_headers(2, None, None)[1], "cluster 1");
        let names = ["cat".to_string(), "dog".to_string()];
        assert_eq!(
            cluster_headers(1, Some(&[1]), Some(&names))[0],
            "cluster 0\n→ dog"
        );
    }

    #[test]
    fn labelled_grid_is_pixel_exact_and_has_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grid.png");
        // Two experts, two rows of 28 × 28 tiles: tile i is all i / 3.
        let tiles: Vec<Vec<f32>> = (0..4).map(|i| vec![i as f32 / 3.0; 784]).collect();
        let headers = cluster_headers(2, Some(&[4, 2]), None);
        save_labelled_grid(&path, "Samples", &tiles, 2, (28, 28), &headers).unwrap();
        let img = read(&path);
        let grid_w = 2 * (84 + GAP) + GAP;
        let w = grid_w.max(10 * "Samples".len() + 40);
        let top = crate::eval::plot::TITLE_HEIGHT as usize + 8 + 18 * 2;
        assert_eq!(
            img.dimensions(),
            (w as u32, (top + 2 * (84 + GAP) + GAP) as u32)
        );
        assert!(varied(&img));
        assert!(dark_in_rows(&img, 0, top as u32, 40), "no title or headers");
        // The last tile (all ones: white) covers 84 × 84 pixels exactly.
        let left = (w - grid_w) / 2;
        let (x0, y0) = (left + GAP + 84 + GAP, top + GAP + 84 + GAP);
        for (x, y) in [(x0, y0), (x0 + 83, y0 + 83)] {
            assert_eq!(img.get_pixel(x as u32, y as u32).0, [255; 3]);
        }
        assert_eq!(img.get_pixel(x0 as u32 + 84, y0 as u32).0, [GUTTER; 3]);
    }

    #[test]
    fn confusion_picture_has_cells_and_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("confusion.png");
        let pred: Vec<usize> = (0..300)
            .map(|i| (i % 3 + (i % 7 == 0) as usize) % 3)
            .collect();
        let labels: Vec<u8> = (0..300).map(|i| (i % 3) as u8).collect();
        let ev = crate::eval::metrics::evaluate(&pred, &labels, 3);
        save_confusion(&path, "Confusion", &ev, Some(&[0, 1, 2]), None).unwrap();
        let img = read(&path);
        let top = crate::eval::plot::TITLE_HEIGHT;
        assert!(img.width() >= 420);
        assert_eq!(img.height(), top + 56 + 3 * CELL as u32 + 74);
        assert!(varied(&img));
        assert!(dark_in_rows(&img, 0, top, 20), "no title");
        // The top-left cell is mostly digit 0 in cluster 0: dark blue.
        let left = 20 + 8 * "digit 0".len() as u32;
        let p = img.get_pixel(left + 4, top + 56 + 4).0;
        assert!(p[2] > p[0] && p[0] < 100, "{p:?}");
    }
}

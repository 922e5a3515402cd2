//! A drawing turned into an MNIST-style image, the way MNIST was made
//! (LeCun, Cortes, Burges): the digit's bounding box is scaled to fit a
//! 20×20 box keeping its aspect ratio, with grey levels from the scaling
//! (each output pixel is the mean of the area it covers), then placed so that
//! its centre of mass falls on the centre of the 28×28 field.
//!
//! For another image shape the box is 20/28 of each side. An MNIST image
//! drawn at an integer scale comes back unchanged: its bounding box is
//! exactly 20 pixels on its longer side and its centre of mass lies within
//! half a pixel of the centre (true of every MNIST test image), so the
//! scaling averages whole blocks and the shift rounds to zero.

/// Writes the MNIST-style image of `ink` (`width × height` bytes, row-major,
/// 0 = paper, 255 = ink) into `out` (`out_width × out_height` bytes).
/// Returns false, with `out` all zero, when the drawing is empty.
pub fn normalize(
    ink: &[u8],
    width: usize,
    height: usize,
    out: &mut [u8],
    out_width: usize,
    out_height: usize,
) -> bool {
    out.fill(0);
    let Some((x0, y0, bw, bh)) = bounding_box(ink, width, height) else {
        return false;
    };
    let fit_w = (out_width * 20).div_ceil(28).max(1);
    let fit_h = (out_height * 20).div_ceil(28).max(1);
    let scale = f64::min(fit_w as f64 / bw as f64, fit_h as f64 / bh as f64);
    let sw = ((bw as f64 * scale).round() as usize).clamp(1, fit_w);
    let sh = ((bh as f64 * scale).round() as usize).clamp(1, fit_h);

    // Area-average resampling, rows first, then columns.
    let xs = spans(bw, sw);
    let ys = spans(bh, sh);
    let mut rows = vec![0.0f64; bh * sw];
    for y in 0..bh {
        let src = &ink[(y0 + y) * width + x0..][..bw];
        for (x, span) in xs.iter().enumerate() {
            rows[y * sw + x] = span.mean(|i| src[i] as f64);
        }
    }
    let mut small = vec![0u8; sw * sh];
    for (y, span) in ys.iter().enumerate() {
        for x in 0..sw {
            let v = span.mean(|i| rows[i * sw + x]);
            small[y * sw + x] = v.round().clamp(0.0, 255.0) as u8;
        }
    }

    // Centre of mass, in pixel indices, moved to the field's centre
    // (index 14 of 28, as in MNIST).
    let (mut sum, mut sx, mut sy) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &v) in small.iter().enumerate() {
        let v = v as f64;
        sum += v;
        sx += (i % sw) as f64 * v;
        sy += (i / sw) as f64 * v;
    }
    let (cx, cy) = if sum > 0.0 {
        (sx / sum, sy / sum)
    } else {
        ((sw - 1) as f64 / 2.0, (sh - 1) as f64 / 2.0)
    };
    let dx = ((out_width / 2) as f64 - cx).round() as isize;
    let dy = ((out_height / 2) as f64 - cy).round() as isize;
    for y in 0..sh {
        for x in 0..sw {
            let (tx, ty) = (x as isize + dx, y as isize + dy);
            if (0..out_width as isize).contains(&tx) && (0..out_height as isize).contains(&ty) {
                out[ty as usize * out_width + tx as usize] = small[y * sw + x];
            }
        }
    }
    true
}

/// `(x0, y0, width, height)` of the pixels with any ink.
fn bounding_box(ink: &[u8], width: usize, height: usize) -> Option<(usize, usize, usize, usize)> {
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for (i, &v) in ink.iter().take(width * height).enumerate() {
        if v > 0 {
            let (x, y) = (i % width, i / width);
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    (x0 != usize::MAX).then(|| (x0, y0, x1 - x0 + 1, y1 - y0 + 1))
}

/// The source interval `[start, end)` one output pixel covers.
struct Span {
    start: f64,
    end: f64,
}

impl Span {
    /// Mean of `value(i)` over the interval, each source pixel weighted by
    /// its overlap.
    fn mean(&self, value: impl Fn(usize) -> f64) -> f64 {
        let mut total = 0.0;
        let mut i = self.start.floor() as usize;
        while (i as f64) < self.end {
            let overlap = self.end.min(i as f64 + 1.0) - self.start.max(i as f64);
            total += overlap * value(i);
            i += 1;
        }
        total / (self.end - self.start)
    }
}

/// Output pixel `j` of `dst` covers `[j, j + 1) · src / dst` of the source.
fn spans(src: usize, dst: usize) -> Vec<Span> {
    let step = src as f64 / dst as f64;
    (0..dst)
        .map(|j| Span {
            start: j as f64 * step,
            end: ((j + 1) as f64 * step).min(src as f64),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 28×28 digit-like image whose box is 20 rows tall and whose centre of
    /// mass sits within half a pixel of index 14, as in MNIST.
    fn mnist_like() -> Vec<u8> {
        let mut img = vec![0u8; 784];
        for y in 4..24 {
            for x in 12..17 {
                img[y * 28 + x] = (150 + 2 * (y - 4) + 3 * (x - 12)) as u8;
            }
        }
        img
    }

    fn upscale(img: &[u8], f: usize) -> Vec<u8> {
        let mut big = vec![0u8; 784 * f * f];
        for y in 0..28 * f {
            for x in 0..28 * f {
                big[y * 28 * f + x] = img[(y / f) * 28 + x / f];
            }
        }
        big
    }

    #[test]
    fn an_mnist_image_drawn_at_any_integer_scale_comes_back_unchanged() {
        let img = mnist_like();
        for f in [1, 2, 3, 10] {
            let mut out = vec![0u8; 784];
            assert!(normalize(
                &upscale(&img, f),
                28 * f,
                28 * f,
                &mut out,
                28,
                28
            ));
            assert_eq!(out, img, "scale {f}");
        }
    }

    #[test]
    fn a_bar_is_scaled_to_20_rows_and_centred() {
        let (w, h) = (280, 280);
        let mut ink = vec![0u8; w * h];
        for y in 10..110 {
            for x in 200..220 {
                ink[y * w + x] = 255;
            }
        }
        let mut out = vec![0u8; 784];
        assert!(normalize(&ink, w, h, &mut out, 28, 28));
        let rows: Vec<usize> = (0..28)
            .filter(|y| out[y * 28..][..28].iter().any(|&v| v > 0))
            .collect();
        let cols: Vec<usize> = (0..28)
            .filter(|&x| (0..28).any(|y| out[y * 28 + x] > 0))
            .collect();
        // Centre of mass at row 9.5 of 20: shifted by round(14 - 9.5) = 5.
        assert_eq!(rows, (5..25).collect::<Vec<_>>());
        assert_eq!(cols, vec![13, 14, 15, 16]);
        assert!(out.iter().all(|&v| v == 0 || v == 255));
    }

    #[test]
    fn grey_levels_come_from_partial_coverage() {
        // Two 1-pixel lines 3 pixels apart, 30 rows tall: scaled by 2/3, an
        // output pixel covers 1.5 source columns, partly ink, partly paper.
        let (w, h) = (40, 40);
        let mut ink = vec![0u8; w * h];
        for y in 5..35 {
            ink[y * w + 10] = 255;
            ink[y * w + 12] = 255;
        }
        let mut out = vec![0u8; 784];
        assert!(normalize(&ink, w, h, &mut out, 28, 28));
        assert!(out.iter().any(|&v| v > 0 && v < 255));
    }

    #[test]
    fn an_empty_drawing_gives_an_empty_image() {
        let mut out = vec![7u8; 784];
        assert!(!normalize(&[0u8; 100], 10, 10, &mut out, 28, 28));
        assert!(out.iter().all(|&v| v == 0));
    }

    #[test]
    fn a_single_dot_fills_the_box() {
        let mut ink = vec![0u8; 100];
        ink[55] = 255;
        let mut out = vec![0u8; 784];
        assert!(normalize(&ink, 10, 10, &mut out, 28, 28));
        assert_eq!(out.iter().filter(|&&v| v == 255).count(), 400);
    }
}

//! A drawing framed the way MNIST's digits were (LeCun, Cortes, Burges):
//! the ink's bounding box is scaled to fit 20/28 of each side of the output
//! keeping its aspect ratio (20×20 of 28×28), each output pixel the mean of
//! the area it covers (grey levels from the scaling), then placed so that
//! its centre of mass falls on the centre pixel (`width / 2`, `height / 2`:
//! index 14 of 28, 4 of 8).
//!
//! ```
//! // A 2×2 blob of ink in a 4×4 drawing, framed into an 8×8 image: the box
//! // is scaled to 6×6 (20/28 of 8, rounded up) and centred on pixel 4.
//! let mut ink = [0u8; 16];
//! for i in [5, 6, 9, 10] {
//!     ink[i] = 255;
//! }
//! let mut image = [0u8; 64];
//! assert!(engine::frame::mnist(&ink, 4, 4, &mut image, 8, 8)?);
//! for (y, row) in image.chunks(8).enumerate() {
//!     let ink = if y >= 2 { 255 } else { 0 };
//!     assert_eq!(row, [0, 0, ink, ink, ink, ink, ink, ink]);
//! }
//! # Ok::<(), engine::frame::FrameError>(())
//! ```
//!
//! **Unchanged MNIST digits.** An MNIST image drawn at an integer scale
//! comes back unchanged: its bounding box is exactly 20 pixels on its
//! longer side and its centre of mass lies within half a pixel of index 14
//! (true of every MNIST test image), so each output pixel averages a whole
//! block of equal source pixels and the shift rounds to zero.
//!
//! **Exact, integer arithmetic: the same bytes on every target.** Output
//! pixel `j` of `d` over a source span of `l` pixels covers
//! `[j·l/d, (j+1)·l/d)`; in units of `1/d` of a source pixel every overlap is
//! an integer, so a pixel's mean is the exact fraction
//! `Σ overlapₓ·overlapᵧ·ink / (box width · box height)`, rounded half up.
//! The centre of mass and the shift are fractions of integer sums too,
//! rounded half away from zero. No float is used: x86_64, Cortex-M0+
//! (no FPU), RISC-V and wasm32 compute the same bytes.
//!
//! **Cost.** Nothing is allocated and no scratch buffer is used: the scaled
//! image is written into `out`'s top-left corner, then moved into place in
//! `out` itself. Finding the box reads every drawing byte once; the scaling
//! does at most four integer multiply-adds per pixel of the box (a source
//! pixel straddles at most two output pixels each way), plus one division
//! per output pixel (32-bit when it fits); the spans are walked by
//! additions, not divisions; the centring touches every output pixel
//! twice. For a 280×280 drawing with a 200×200 box framed into 28×28, that
//! is about 80,000 byte reads and at most 160,000 multiply-adds (u32 in the
//! inner loop, u64 per output pixel). The stack use is a few dozen words.
//! Measured: a 28×28 MNIST digit takes 267 k cycles (2.1 ms) on the RP2040,
//! 75 k instructions on rv32imc (`firmware-example/README.md`).
//!
//! **Limits.** The drawing and the output may each hold at most
//! [`MAX_PIXELS`] pixels, which keeps every sum within `u64` (the inner
//! sums within `u32`).

use core::fmt;

/// The most pixels a drawing, or an output image, may have: 2²⁴
/// (16,777,216, e.g. 4096×4096). Sums of at most 2²⁴ products of a byte and
/// an overlap of at most 2²⁴ stay well within `u64`.
///
/// ```
/// let big = engine::frame::MAX_PIXELS + 1;
/// let err = engine::frame::mnist(&[], big, 1, &mut [0u8; 64], 8, 8).unwrap_err();
/// assert!(matches!(err, engine::frame::FrameError::TooLarge { .. }));
/// ```
pub const MAX_PIXELS: usize = 1 << 24;

/// Why [`mnist`] refused its arguments. Displays as one line.
///
/// ```
/// use engine::frame::{mnist, FrameError};
/// let err = mnist(&[0u8; 10], 4, 4, &mut [0u8; 64], 8, 8).unwrap_err();
/// assert_eq!(err, FrameError::InkLength { expected: 16, found: 10 });
/// assert_eq!(err.to_string(), "drawing needs 16 bytes (width × height), got 10");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// `ink.len()` is not `width × height`.
    InkLength {
        /// `width × height`.
        expected: usize,
        /// `ink.len()`.
        found: usize,
    },
    /// `out.len()` is not `out_width × out_height`.
    OutLength {
        /// `out_width × out_height`.
        expected: usize,
        /// `out.len()`.
        found: usize,
    },
    /// The output image has no pixels (`out_width` or `out_height` is 0).
    EmptyOutput,
    /// The drawing or the output image has more than [`MAX_PIXELS`] pixels.
    TooLarge {
        /// `"drawing"` or `"output image"`.
        what: &'static str,
        /// Its pixel count (`usize::MAX` if `width × height` overflows).
        pixels: usize,
        /// [`MAX_PIXELS`].
        max: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::InkLength { expected, found } => {
                write!(
                    f,
                    "drawing needs {expected} bytes (width × height), got {found}"
                )
            }
            FrameError::OutLength { expected, found } => {
                write!(
                    f,
                    "output image needs {expected} bytes (width × height), got {found}"
                )
            }
            FrameError::EmptyOutput => f.write_str("output image has no pixels"),
            FrameError::TooLarge { what, pixels, max } => {
                if pixels == usize::MAX {
                    write!(f, "{what} too large: more than {max} pixels")
                } else {
                    write!(f, "{what} too large: {pixels} pixels, at most {max}")
                }
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FrameError {}

/// Writes the MNIST-style image of a drawing into `out`.
///
/// `ink` is `width × height` bytes, row-major, 0 = paper, anything else =
/// ink (brighter = more); `out` is `out_width × out_height` bytes, written
/// the same way (the model's input: 0 = background, 255 = ink). Returns
/// `Ok(true)` when the drawing has ink, `Ok(false)` with `out` all zero
/// when it has none. The framing is described in the [module
/// docs](self): box scaled into 20/28 of each side keeping its aspect, area
/// averages, centre of mass moved to pixel (`out_width / 2`,
/// `out_height / 2`).
///
/// # Errors
///
/// [`FrameError`] when a buffer's length is not its shape's product, the
/// output has no pixels, or either shape has more than [`MAX_PIXELS`]
/// pixels; `out` is then left as it was. Nothing panics, whatever the
/// arguments.
///
/// ```
/// // A 280×280 drawing pad, framed into MNIST's 28×28: a vertical bar.
/// let (w, h) = (280, 280);
/// let mut pad = vec![0u8; w * h];
/// for y in 40..240 {
///     for x in 130..150 {
///         pad[y * w + x] = 255;
///     }
/// }
/// let mut digit = [0u8; 784];
/// assert!(engine::frame::mnist(&pad, w, h, &mut digit, 28, 28)?);
/// // 200 rows scaled to 20, centre of mass 9.5 moved by round(14 − 9.5)
/// // = 5 (halves round away from zero): rows 5..25.
/// let inked = |y: usize| digit[y * 28..][..28].iter().any(|&v| v > 0);
/// assert_eq!((0..28).filter(|&y| inked(y)).collect::<Vec<_>>(), (5..25).collect::<Vec<_>>());
/// # Ok::<(), engine::frame::FrameError>(())
/// ```
pub fn mnist(
    ink: &[u8],
    width: usize,
    height: usize,
    out: &mut [u8],
    out_width: usize,
    out_height: usize,
) -> Result<bool, FrameError> {
    let ink_pixels = area(width, height, "drawing")?;
    let out_pixels = area(out_width, out_height, "output image")?;
    if ink.len() != ink_pixels {
        return Err(FrameError::InkLength {
            expected: ink_pixels,
            found: ink.len(),
        });
    }
    if out.len() != out_pixels {
        return Err(FrameError::OutLength {
            expected: out_pixels,
            found: out.len(),
        });
    }
    if out_pixels == 0 {
        return Err(FrameError::EmptyOutput);
    }
    out.fill(0);
    // width ≥ 1 here (ink_pixels > 0 after the box is found).
    let Some(b) = bounding_box(ink, width) else {
        return Ok(false);
    };
    let (sw, sh) = scaled_size(b.w, b.h, out_width, out_height);
    resample(ink, width, &b, out, out_width, sw, sh);
    centre(out, out_width, out_height, sw, sh);
    Ok(true)
}

/// `width × height`, checked against [`MAX_PIXELS`].
fn area(width: usize, height: usize, what: &'static str) -> Result<usize, FrameError> {
    match width.checked_mul(height) {
        Some(p) if p <= MAX_PIXELS => Ok(p),
        p => Err(FrameError::TooLarge {
            what,
            pixels: p.unwrap_or(usize::MAX),
            max: MAX_PIXELS,
        }),
    }
}

/// The ink's bounding box: first column and row, width and height.
struct BoundingBox {
    x: usize,
    y: usize,
    w: usize,
    h: usize,
}

/// The box of the non-zero bytes, or `None` when there are none.
fn bounding_box(ink: &[u8], width: usize) -> Option<BoundingBox> {
    if width == 0 {
        return None;
    }
    let (mut x0, mut x1) = (usize::MAX, 0);
    let (mut y0, mut y1) = (usize::MAX, 0);
    for (y, row) in ink.chunks_exact(width).enumerate() {
        let Some(first) = row.iter().position(|&v| v != 0) else {
            continue;
        };
        let last = row.iter().rposition(|&v| v != 0).unwrap_or(first);
        x0 = x0.min(first);
        x1 = x1.max(last);
        y0 = y0.min(y);
        y1 = y;
    }
    // `then`, not `then_some`: the box's sides are computed only when there
    // is ink (with none, `x1 - x0` would overflow).
    (y0 != usize::MAX).then(|| BoundingBox {
        x: x0,
        y: y0,
        w: x1 - x0 + 1,
        h: y1 - y0 + 1,
    })
}

/// The size a `bw × bh` box is scaled to: the largest that fits
/// `ceil(20/28 · side)` on both sides keeping the aspect, the other side
/// rounded half up, at least 1.
fn scaled_size(bw: usize, bh: usize, out_width: usize, out_height: usize) -> (usize, usize) {
    let fit = |side: usize| (side * 20).div_ceil(28).max(1);
    let (fw, fh) = (fit(out_width), fit(out_height));
    let (bw64, bh64) = (bw as u64, bh as u64);
    // fw / bw ≤ fh / bh: the width limits the scale.
    if fw as u64 * bh64 <= fh as u64 * bw64 {
        let sh = round_half_up(bh64 * fw as u64, bw64) as usize;
        (fw, sh.clamp(1, fh))
    } else {
        let sw = round_half_up(bw64 * fh as u64, bh64) as usize;
        (sw.clamp(1, fw), fh)
    }
}

/// `p / q` rounded half up (`q > 0`).
fn round_half_up(p: u64, q: u64) -> u64 {
    (2 * p + q) / (2 * q)
}

/// `p / q` rounded half away from zero (`q > 0`).
fn round_half_away(p: i64, q: i64) -> i64 {
    if p >= 0 {
        (2 * p + q) / (2 * q)
    } else {
        -((-2 * p + q) / (2 * q))
    }
}

/// Output pixel `j` of `d` over `l` source pixels covers source
/// `[j·l/d, (j+1)·l/d)`; in units of `1/d` of a source pixel that is
/// `[start, end) = [j·l, (j+1)·l)`, and source pixel `i` covers
/// `[i·d, (i+1)·d)`.
#[derive(Clone, Copy)]
struct Span {
    /// `j·l`.
    start: u64,
    /// `(j+1)·l`.
    end: u64,
    /// The first source pixel it touches, `⌊start / d⌋`.
    first: u64,
    /// `first · d`, where that pixel starts.
    first_at: u64,
    /// `d`.
    d: u64,
}

impl Span {
    /// Each source pixel the span touches, with its overlap in `1/d`
    /// units (they sum to `l`): additions and comparisons only.
    fn pixels(self) -> impl Iterator<Item = (usize, u32)> {
        let mut at = self.first_at;
        let mut i = self.first;
        core::iter::from_fn(move || {
            if at >= self.end {
                return None;
            }
            let next = at + self.d;
            let overlap = self.end.min(next) - self.start.max(at);
            let item = (i as usize, overlap as u32);
            at = next;
            i += 1;
            Some(item)
        })
    }
}

/// The spans of `d` output pixels over `l` source pixels, in order
/// (`d, l ≤ 2²⁴`), with no division or multiplication: each span's first
/// source pixel follows from the last's. A division per pixel cost most of
/// the framing on a Cortex-M0+, whose 64-bit divisions and
/// multiplications are software routines.
struct Spans {
    next: Span,
    l: u64,
}

impl Spans {
    fn new(l: usize, d: usize) -> Self {
        let (l, d) = (l as u64, d as u64);
        Spans {
            next: Span {
                start: 0,
                end: l,
                first: 0,
                first_at: 0,
                d,
            },
            l,
        }
    }
}

impl Iterator for Spans {
    type Item = Span;

    fn next(&mut self) -> Option<Span> {
        let span = self.next;
        let n = &mut self.next;
        n.start = span.end;
        n.end = span.end + self.l;
        while n.first_at + n.d <= n.start {
            n.first += 1;
            n.first_at += n.d;
        }
        Some(span)
    }
}

/// `p / q` rounded half up (`q > 0`), in 32 bits when they suffice (a
/// 64-bit division is a long software routine on 32-bit cores; the result
/// is the same).
fn round_half_up_fast(p: u64, q: u64) -> u64 {
    match (u32::try_from(2 * p + q), u32::try_from(2 * q)) {
        (Ok(n), Ok(m)) => u64::from(n / m),
        _ => round_half_up(p, q),
    }
}

/// Area-average resampling of the box into `sw × sh` pixels, written into
/// `out`'s top-left corner (row stride `out_width`; `sw ≤ out_width` and
/// `sh ≤ out_height`).
fn resample(
    ink: &[u8],
    width: usize,
    b: &BoundingBox,
    out: &mut [u8],
    out_width: usize,
    sw: usize,
    sh: usize,
) {
    // At most 255 · 2²⁴: within u64, and 2 · den + … too.
    let den = b.w as u64 * b.h as u64;
    let rows = out.chunks_exact_mut(out_width).take(sh);
    for (out_row, y_span) in rows.zip(Spans::new(b.h, sh)) {
        for (px, x_span) in out_row.iter_mut().take(sw).zip(Spans::new(b.w, sw)) {
            let mut num = 0u64;
            for (iy, wy) in y_span.pixels() {
                let start = (b.y + iy) * width + b.x;
                let Some(row) = ink.get(start..start + b.w) else {
                    continue; // unreachable: the box lies in the drawing
                };
                // At most 255 · (sum of overlaps = b.w ≤ 2²⁴) < 2³².
                let mut sum = 0u32;
                for (ix, wx) in x_span.pixels() {
                    sum += wx * u32::from(row.get(ix).copied().unwrap_or(0));
                }
                num += u64::from(wy) * u64::from(sum);
            }
            *px = round_half_up_fast(num, den).min(255) as u8;
        }
    }
}

/// Moves the `sw × sh` image in `out`'s top-left corner so that its centre
/// of mass falls on pixel (`out_width / 2`, `out_height / 2`), in place;
/// what leaves the field is dropped.
fn centre(out: &mut [u8], out_width: usize, out_height: usize, sw: usize, sh: usize) {
    let (mut sum, mut sx, mut sy) = (0i64, 0i64, 0i64);
    for (y, row) in out.chunks_exact(out_width).take(sh).enumerate() {
        for (x, &v) in row.iter().take(sw).enumerate() {
            let v = i64::from(v);
            sum += v;
            sx += x as i64 * v;
            sy += y as i64 * v;
        }
    }
    // Shift = round(centre − centre of mass), the mass centre being
    // sx / sum (or the image's middle, (sw − 1) / 2, if every pixel
    // rounded to 0).
    let shift = |c: usize, s: i64, n: usize| -> i64 {
        let c = c as i64 / 2;
        if sum > 0 {
            round_half_away(c * sum - s, sum)
        } else {
            round_half_away(2 * c - (n as i64 - 1), 2)
        }
    };
    let dx = shift(out_width, sx, sw);
    let dy = shift(out_height, sy, sh);
    if dx == 0 && dy == 0 {
        return;
    }
    // Destination (tx, ty) reads source (tx − dx, ty − dy): visiting the
    // destinations in descending index order when the image moves to
    // higher indices (ascending otherwise) reads every source before it is
    // overwritten. Rows and columns are walked directly: no division per
    // pixel.
    // Indices in usize (32-bit multiplications on a microcontroller); a
    // source outside the image reads as 0.
    let descending = dy * out_width as i64 + dx > 0;
    let source = |t: usize, d: i64, n: usize| -> Option<usize> {
        let s = t as i64 - d;
        (0..n as i64).contains(&s).then_some(s as usize)
    };
    for i in 0..out_height {
        let ty = if descending { out_height - 1 - i } else { i };
        let y = source(ty, dy, sh);
        for j in 0..out_width {
            let tx = if descending { out_width - 1 - j } else { j };
            let v = match (source(tx, dx, sw), y) {
                (Some(x), Some(y)) => out.get(y * out_width + x).copied().unwrap_or(0),
                _ => 0,
            };
            if let Some(p) = out.get_mut(ty * out_width + tx) {
                *p = v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::string::ToString;
    use std::vec;
    use std::vec::Vec;

    /// The first version of the resampling and the centring, kept as the
    /// oracle the division-free code must equal byte for byte: a span per
    /// pixel by division, a division per pixel in the move.
    mod reference {
        use super::super::{round_half_away, round_half_up, BoundingBox};

        /// The source pixels output pixel `j` of `d` covers over a span of `l`
        /// source pixels, each with its overlap in units of `1/d` of a pixel (they
        /// sum to `l`). `j < d`, `d, l ≤ 2²⁴`.
        pub fn span(j: usize, l: usize, d: usize) -> impl Iterator<Item = (usize, u32)> {
            let (l, d) = (l as u64, d as u64);
            let start = j as u64 * l;
            let end = start + l;
            (start / d..end.div_ceil(d)).map(move |i| {
                let overlap = end.min((i + 1) * d) - start.max(i * d);
                (i as usize, overlap as u32)
            })
        }

        /// Area-average resampling of the box into `sw × sh` pixels, written into
        /// `out`'s top-left corner (row stride `out_width`; `sw ≤ out_width` and
        /// `sh ≤ out_height`).
        pub fn resample(
            ink: &[u8],
            width: usize,
            b: &BoundingBox,
            out: &mut [u8],
            out_width: usize,
            sw: usize,
            sh: usize,
        ) {
            // At most 255 · 2²⁴: within u64, and 2 · den + … too.
            let den = b.w as u64 * b.h as u64;
            for (oy, out_row) in out.chunks_exact_mut(out_width).take(sh).enumerate() {
                for (ox, px) in out_row.iter_mut().take(sw).enumerate() {
                    let mut num = 0u64;
                    for (iy, wy) in span(oy, b.h, sh) {
                        let start = (b.y + iy) * width + b.x;
                        let Some(row) = ink.get(start..start + b.w) else {
                            continue; // unreachable: the box lies in the drawing
                        };
                        // At most 255 · (sum of overlaps = b.w ≤ 2²⁴) < 2³².
                        let mut sum = 0u32;
                        for (ix, wx) in span(ox, b.w, sw) {
                            sum += wx * u32::from(row.get(ix).copied().unwrap_or(0));
                        }
                        num += u64::from(wy) * u64::from(sum);
                    }
                    *px = round_half_up(num, den).min(255) as u8;
                }
            }
        }

        /// Moves the `sw × sh` image in `out`'s top-left corner so that its centre
        /// of mass falls on pixel (`out_width / 2`, `out_height / 2`), in place;
        /// what leaves the field is dropped.
        pub fn centre(out: &mut [u8], out_width: usize, out_height: usize, sw: usize, sh: usize) {
            let (mut sum, mut sx, mut sy) = (0i64, 0i64, 0i64);
            for (y, row) in out.chunks_exact(out_width).take(sh).enumerate() {
                for (x, &v) in row.iter().take(sw).enumerate() {
                    let v = i64::from(v);
                    sum += v;
                    sx += x as i64 * v;
                    sy += y as i64 * v;
                }
            }
            // Shift = round(centre − centre of mass), the mass centre being
            // sx / sum (or the image's middle, (sw − 1) / 2, if every pixel
            // rounded to 0).
            let shift = |c: usize, s: i64, n: usize| -> i64 {
                let c = c as i64 / 2;
                if sum > 0 {
                    round_half_away(c * sum - s, sum)
                } else {
                    round_half_away(2 * c - (n as i64 - 1), 2)
                }
            };
            let dx = shift(out_width, sx, sw);
            let dy = shift(out_height, sy, sh);
            if dx == 0 && dy == 0 {
                return;
            }
            // Destination pixel d reads source d − offset: visiting destinations
            // away from the sources (backwards when the image moves to higher
            // indices) reads every source before it is overwritten.
            let offset = dy * out_width as i64 + dx;
            let (w, h) = (out_width as i64, out_height as i64);
            let mut move_pixel = |d: usize| {
                let (tx, ty) = ((d % out_width) as i64, (d / out_width) as i64);
                let (x, y) = (tx - dx, ty - dy);
                let v = if (0..sw as i64).contains(&x) && (0..sh as i64).contains(&y) {
                    out.get((y * w + x) as usize).copied().unwrap_or(0)
                } else {
                    0
                };
                if let Some(p) = out.get_mut(d) {
                    *p = v;
                }
            };
            let n = (w * h) as usize;
            if offset > 0 {
                (0..n).rev().for_each(&mut move_pixel);
            } else {
                (0..n).for_each(&mut move_pixel);
            }
        }
    }

    /// [`mnist`] with the reference resampling and centring.
    fn mnist_reference(ink: &[u8], w: usize, out: &mut [u8], ow: usize, oh: usize) {
        out.fill(0);
        if let Some(b) = bounding_box(ink, w) {
            let (sw, sh) = scaled_size(b.w, b.h, ow, oh);
            reference::resample(ink, w, &b, out, ow, sw, sh);
            reference::centre(out, ow, oh, sw, sh);
        }
    }

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

    fn upscale(img: &[u8], w: usize, h: usize, f: usize) -> Vec<u8> {
        let mut big = vec![0u8; w * h * f * f];
        for y in 0..h * f {
            for x in 0..w * f {
                big[y * w * f + x] = img[(y / f) * w + x / f];
            }
        }
        big
    }

    #[test]
    fn an_mnist_image_drawn_at_any_integer_scale_comes_back_unchanged() {
        let img = mnist_like();
        for f in [1, 2, 3, 10] {
            let mut out = vec![0u8; 784];
            let big = upscale(&img, 28, 28, f);
            assert_eq!(mnist(&big, 28 * f, 28 * f, &mut out, 28, 28), Ok(true));
            assert_eq!(out, img, "scale {f}");
        }
    }

    #[test]
    fn an_8x8_digit_framed_like_mnist_comes_back_unchanged() {
        // Box 6 rows tall (20/28 of 8, rounded up), 4 wide, its centre of
        // mass within half a pixel of (4, 4).
        #[rustfmt::skip]
        let img: [u8; 64] = [
            0, 0, 0,   0,   0,   0,   0, 0,
            0, 0, 0,  90, 200,  40,   0, 0,
            0, 0, 30, 255,  10, 120,   0, 0,
            0, 0, 0, 180, 255, 255,   0, 0,
            0, 0, 0,   0,   5, 255,   0, 0,
            0, 0, 0,  60, 140, 255,   0, 0,
            0, 0, 0, 200, 255, 100,   0, 0,
            0, 0, 0,   0,   0,   0,   0, 0,
        ];
        for f in [1, 2, 35] {
            let mut out = [0u8; 64];
            let big = upscale(&img, 8, 8, f);
            assert_eq!(mnist(&big, 8 * f, 8 * f, &mut out, 8, 8), Ok(true));
            assert_eq!(out, img, "scale {f}");
        }
    }

    #[test]
    fn literal_upscaled_bars_into_8x8() {
        // 3×1: scaled by 2 to 6×2 (each output pixel half a source pixel);
        // centre of mass (2.5, 0.5) moved to (4, 4): shifts of 2 and 4
        // (3.5 rounds away from zero).
        let mut out = [9u8; 64];
        assert_eq!(mnist(&[255, 0, 255], 3, 1, &mut out, 8, 8), Ok(true));
        let mut expected = [0u8; 64];
        for y in [4, 5] {
            expected[y * 8..][..8].copy_from_slice(&[0, 0, 255, 255, 0, 0, 255, 255]);
        }
        assert_eq!(out, expected);
    }

    #[test]
    fn literal_half_grey_levels_round_up() {
        // 6×1 scaled to 3×1 (3 = ceil(20/28 · 3)): each output pixel covers
        // one ink and one paper pixel, 127.5 → 128; moved to row 1.
        let mut out = [0u8; 9];
        let ink = [255, 0, 255, 0, 0, 255];
        assert_eq!(mnist(&ink, 6, 1, &mut out, 3, 3), Ok(true));
        assert_eq!(out, [0, 0, 0, 128, 128, 128, 0, 0, 0]);
    }

    #[test]
    fn literal_thirds_of_a_pixel() {
        // 4×4 into 3×3 (3 = ceil(20/28 · 3)): each output pixel covers 4/3
        // source pixels each way. Only row 0 and column 0 are inked.
        #[rustfmt::skip]
        let ink = [
            255, 255, 255, 255,
            255,   0,   0,   0,
            255,   0,   0,   0,
            255,   0,   0,   0,
        ];
        let mut out = [0u8; 9];
        assert_eq!(mnist(&ink, 4, 4, &mut out, 3, 3), Ok(true));
        // In ninths of a source pixel, output (0, 0) covers 9 of (0, 0),
        // 3 of (1, 0), 3 of (0, 1), 1 of (1, 1): 15 inked of 16, 255 · 15/16
        // = 239.06 → 239. Output (1, 0) covers 6 of (1, 0), 6 of (2, 0): 12
        // of 16, 191.25 → 191; likewise (2, 0), (0, 1), (0, 2).
        let small = [239, 191, 191, 191, 0, 0, 191, 0, 0];
        // Centre of mass ≈ (0.6, 0.6): moved by round(1 − 0.6) = 0.
        assert_eq!(out, small);
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
        assert_eq!(mnist(&ink, w, h, &mut out, 28, 28), Ok(true));
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
    fn a_bar_into_8x8() {
        // 200 rows by 20 columns: 6 rows (fit), 20 · 6/200 = 0.6 → 1 column.
        let (w, h) = (280, 280);
        let mut ink = vec![0u8; w * h];
        for y in 40..240 {
            for x in 130..150 {
                ink[y * w + x] = 255;
            }
        }
        let mut out = [0u8; 64];
        assert_eq!(mnist(&ink, w, h, &mut out, 8, 8), Ok(true));
        let mut expected = [0u8; 64];
        // Centre of mass (0, 2.5) → (4, 4): shifts 4 and round(1.5) = 2.
        for y in 2..8 {
            expected[y * 8 + 4] = 255;
        }
        assert_eq!(out, expected);
    }

    #[test]
    fn grey_levels_come_from_partial_coverage() {
        let (w, h) = (40, 40);
        let mut ink = vec![0u8; w * h];
        for y in 5..35 {
            ink[y * w + 10] = 255;
            ink[y * w + 12] = 255;
        }
        let mut out = vec![0u8; 784];
        assert_eq!(mnist(&ink, w, h, &mut out, 28, 28), Ok(true));
        assert!(out.iter().any(|&v| v > 0 && v < 255));
    }

    #[test]
    fn an_empty_drawing_gives_an_empty_image() {
        let mut out = vec![7u8; 784];
        assert_eq!(mnist(&[0u8; 100], 10, 10, &mut out, 28, 28), Ok(false));
        assert!(out.iter().all(|&v| v == 0));
        let mut out = [7u8; 64];
        assert_eq!(mnist(&[], 0, 5, &mut out, 8, 8), Ok(false));
        assert_eq!(out, [0; 64]);
    }

    #[test]
    fn a_single_dot_fills_the_box() {
        let mut ink = vec![0u8; 100];
        ink[55] = 255;
        let mut out = vec![0u8; 784];
        assert_eq!(mnist(&ink, 10, 10, &mut out, 28, 28), Ok(true));
        assert_eq!(out.iter().filter(|&&v| v == 255).count(), 400);
    }

    #[test]
    fn bad_arguments_are_typed_errors_and_leave_out_alone() {
        let mut out = [7u8; 64];
        assert_eq!(
            mnist(&[1; 15], 4, 4, &mut out, 8, 8),
            Err(FrameError::InkLength {
                expected: 16,
                found: 15
            })
        );
        assert_eq!(
            mnist(&[1; 16], 4, 4, &mut out, 8, 7),
            Err(FrameError::OutLength {
                expected: 56,
                found: 64
            })
        );
        assert_eq!(
            mnist(&[1; 16], 4, 4, &mut out[..0], 0, 8),
            Err(FrameError::EmptyOutput)
        );
        assert_eq!(
            mnist(&[1; 16], 4, 4, &mut out, usize::MAX, 2),
            Err(FrameError::TooLarge {
                what: "output image",
                pixels: usize::MAX,
                max: MAX_PIXELS
            })
        );
        assert_eq!(
            mnist(&[], 1 << 13, 1 << 12, &mut out, 8, 8),
            Err(FrameError::TooLarge {
                what: "drawing",
                pixels: 1 << 25,
                max: MAX_PIXELS
            })
        );
        assert_eq!(out, [7; 64]);
        assert_eq!(
            FrameError::OutLength {
                expected: 56,
                found: 64
            }
            .to_string(),
            "output image needs 56 bytes (width × height), got 64"
        );
        assert_eq!(
            FrameError::InkLength {
                expected: 12,
                found: 1
            }
            .to_string(),
            "drawing needs 12 bytes (width × height), got 1"
        );
    }

    #[test]
    fn extreme_shapes() {
        // A one-pixel output, a one-row drawing as wide as allowed, the
        // largest output.
        let mut one = [0u8];
        assert_eq!(mnist(&[0, 3, 0], 3, 1, &mut one, 1, 1), Ok(true));
        assert_eq!(one, [3]);
        let mut wide = vec![0u8; MAX_PIXELS];
        wide[MAX_PIXELS - 1] = 255;
        wide[0] = 255;
        let mut out = [0u8; 784];
        assert_eq!(mnist(&wide, MAX_PIXELS, 1, &mut out, 28, 28), Ok(true));
        // 20 columns of a 2²⁴-pixel row: the end pixels are 1/838,861 of
        // their output pixel each, which rounds to 0; the image is blank
        // but centred as a blank box.
        assert!(out.iter().all(|&v| v == 0));
        let mut big = vec![0u8; MAX_PIXELS];
        assert_eq!(mnist(&[255; 4], 2, 2, &mut big, 4096, 4096), Ok(true));
        assert_eq!(big.iter().filter(|&&v| v == 255).count(), 2926 * 2926);
    }

    fn inputs() -> impl Strategy<Value = (Vec<u8>, usize, usize, usize, usize, usize)> {
        (0usize..40, 0usize..40, 0usize..40, 0usize..40).prop_flat_map(|(w, h, ow, oh)| {
            let ink = prop_oneof![
                4 => proptest::collection::vec(
                    prop_oneof![3 => Just(0u8), 1 => any::<u8>()], w * h..=w * h),
                1 => proptest::collection::vec(any::<u8>(), 0..64),
            ];
            let out_len = prop_oneof![4 => Just(ow * oh), 1 => 0usize..64];
            (ink, Just(w), Just(h), out_len, Just(ow), Just(oh))
        })
    }

    /// Found by the `frame` fuzz target (in a debug build, whose overflow
    /// checks caught the box of an empty drawing being computed anyway).
    #[test]
    fn a_drawing_without_rows_or_columns_is_empty() {
        let mut out = vec![7u8; 63 * 8];
        assert_eq!(mnist(&[], 1, 0, &mut out, 63, 8), Ok(false));
        assert!(out.iter().all(|&v| v == 0));
        assert_eq!(mnist(&[], 0, 5, &mut out, 63, 8), Ok(false));
    }

    /// Strokes on pads of many sizes (down- and up-scaling, odd ratios),
    /// framed into 28×28, 8×8 and odd shapes: the division-free code gives
    /// the reference's bytes.
    #[test]
    fn equals_the_reference_on_random_strokes() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for case in 0..300 {
            let (w, h) = (1 + next(300), 1 + next(300));
            let mut ink = vec![0u8; w * h];
            let (mut x, mut y) = (next(w), next(h));
            for _ in 0..1 + next(400) {
                ink[y * w + x] = (1 + next(255)) as u8;
                x = (x + next(3) + w - 1) % w;
                y = (y + next(3) + h - 1) % h;
            }
            let (ow, oh) = [(28, 28), (8, 8), (1 + next(40), 1 + next(40))][case % 3];
            let (mut fast, mut slow) = (vec![0u8; ow * oh], vec![0u8; ow * oh]);
            assert_eq!(mnist(&ink, w, h, &mut fast, ow, oh), Ok(true));
            mnist_reference(&ink, w, &mut slow, ow, oh);
            assert_eq!(fast, slow, "case {case}: {w}x{h} into {ow}x{oh}");
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_keeps_its_promises(
            (ink, w, h, out_len, ow, oh) in inputs(),
            shape_noise in any::<bool>(),
        ) {
            // Sometimes huge or overflowing shapes.
            let (w, ow) = if shape_noise && w == 1 { (usize::MAX / 2, usize::MAX) } else { (w, ow) };
            let mut out = vec![7u8; out_len];
            let r = mnist(&ink, w, h, &mut out, ow, oh);
            let lengths_ok = w.checked_mul(h) == Some(ink.len())
                && ow.checked_mul(oh) == Some(out_len)
                && out_len > 0;
            prop_assert_eq!(r.is_ok(), lengths_ok, "{:?}", r);
            match r {
                Err(_) => prop_assert!(out.iter().all(|&v| v == 7)),
                Ok(has_ink) => {
                    prop_assert_eq!(has_ink, ink.iter().any(|&v| v != 0));
                    // Means never exceed the brightest ink.
                    let max = ink.iter().copied().max().unwrap_or(0);
                    prop_assert!(out.iter().all(|&v| v <= max));
                    // The same call gives the same bytes.
                    let mut again = vec![0u8; out_len];
                    prop_assert_eq!(mnist(&ink, w, h, &mut again, ow, oh), r);
                    prop_assert_eq!(&again, &out);
                    // ... and the reference's (a division per span and per pixel).
                    let mut reference = vec![0u8; out_len];
                    mnist_reference(&ink, w, &mut reference, ow, oh);
                    prop_assert_eq!(reference, out);
                }
            }
        }
    }
}

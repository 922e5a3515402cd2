//! Out-of-distribution image sets for measuring a novelty score, made in
//! code from a seed: each function returns `n` 28×28 8-bit images (ink
//! bright on black, as MNIST). The MNIST-derived sets transform images of a
//! given set (the test set, in `trainer experiment novelty`); labels are
//! never read.

use plotters::prelude::*;

use crate::data::Images;
use crate::rng::Rng;

/// Side of every image.
pub const SIDE: usize = 28;

/// Pixels of every image.
pub const PIXELS: usize = SIDE * SIDE;

fn images(n: usize, mut each: impl FnMut(usize, &mut [u8])) -> Images {
    let mut pixels = vec![0u8; n * PIXELS];
    for (i, img) in pixels.chunks_exact_mut(PIXELS).enumerate() {
        each(i, img);
    }
    Images {
        n,
        rows: SIDE,
        cols: SIDE,
        pixels,
    }
}

/// Every pixel uniform in 0–255.
pub fn uniform_noise(n: usize, seed: u64) -> Images {
    let mut rng = Rng::new(seed, 101);
    images(n, |_, img| {
        img.iter_mut().for_each(|p| *p = rng.below(256) as u8)
    })
}

/// Blank and near-blank images: 0 to 5 random pixels of ink (128–255) on
/// black (about one in six images entirely blank).
pub fn near_blank(n: usize, seed: u64) -> Images {
    let mut rng = Rng::new(seed, 102);
    images(n, |_, img| {
        for _ in 0..rng.below(6) {
            img[rng.below(PIXELS)] = 128 + rng.below(128) as u8;
        }
    })
}

/// Stamps a disc of radius `r` at `(x, y)` at full ink.
fn stamp(img: &mut [u8], x: f64, y: f64, r: f64) {
    for (i, p) in img.iter_mut().enumerate() {
        let (px, py) = ((i % SIDE) as f64, (i / SIDE) as f64);
        if (px - x).powi(2) + (py - y).powi(2) <= r * r {
            *p = 255;
        }
    }
}

/// Random strokes: 1 to 4 thick line segments (radius 0.8–1.8 pixels)
/// between random points of the central 22×22 pixels.
pub fn strokes(n: usize, seed: u64) -> Images {
    let mut rng = Rng::new(seed, 103);
    images(n, |_, img| {
        for _ in 0..1 + rng.below(4) {
            let (x0, y0) = (rng.uniform(3.0, 25.0), rng.uniform(3.0, 25.0));
            let (x1, y1) = (rng.uniform(3.0, 25.0), rng.uniform(3.0, 25.0));
            let r = rng.uniform(0.8, 1.8);
            let steps = ((x1 - x0).hypot(y1 - y0) * 2.0).ceil().max(1.0) as usize;
            for s in 0..=steps {
                let t = s as f64 / steps as f64;
                stamp(img, x0 + t * (x1 - x0), y0 + t * (y1 - y0), r);
            }
        }
    })
}

/// `n` images of `source` (28×28) picked at random, each transformed by
/// `f` (given a generator too).
fn from_source(
    source: &Images,
    n: usize,
    rng: &mut Rng,
    mut f: impl FnMut(&mut [u8], &mut Rng),
) -> Images {
    assert_eq!((source.rows, source.cols), (SIDE, SIDE), "28×28 images");
    assert!(source.n > 0, "an empty source set");
    images(n, |_, img| {
        img.copy_from_slice(source.image(rng.below(source.n)));
        f(img, rng);
    })
}

/// Digits of `source` with their pixels shuffled (a fresh permutation per
/// image): the same intensities, no shape.
pub fn shuffled(source: &Images, n: usize, seed: u64) -> Images {
    let mut rng = Rng::new(seed, 104);
    from_source(source, n, &mut rng, |img, rng| rng.shuffle(img))
}

/// Digits of `source` inverted (255 − x): dark ink on white.
pub fn inverted(source: &Images, n: usize, seed: u64) -> Images {
    let mut rng = Rng::new(seed, 105);
    from_source(source, n, &mut rng, |img, _| {
        img.iter_mut().for_each(|p| *p = 255 - *p)
    })
}

/// Digits of `source` with a 10×10 block set to 0, its corner at a random
/// place in rows and columns 4–14 (so the block lies on the digit's box).
pub fn block_cut(source: &Images, n: usize, seed: u64) -> Images {
    let mut rng = Rng::new(seed, 106);
    from_source(source, n, &mut rng, |img, rng| {
        let (r0, c0) = (4 + rng.below(11), 4 + rng.below(11));
        for r in r0..r0 + 10 {
            img[r * SIDE + c0..r * SIDE + c0 + 10].fill(0);
        }
    })
}

/// Side of the canvas a letter is drawn on before framing.
const CANVAS: usize = 64;

/// Capital letters A–Z drawn in DejaVu Sans (the font embedded for the
/// run pictures) at a random size, framed as MNIST frames its digits
/// (`engine::frame::mnist`: the ink's box into 20×20, centre of mass at
/// the centre). Image `i` is letter `i mod 26`.
pub fn letters(n: usize, seed: u64) -> Images {
    let mut rng = Rng::new(seed, 107);
    crate::eval::plot::font();
    images(n, |i, img| {
        let letter = char::from(b'A' + (i % 26) as u8);
        let size = rng.uniform(36.0, 52.0);
        let canvas = draw_letter(letter, size);
        if engine::frame::mnist(&canvas, CANVAS, CANVAS, img, SIDE, SIDE).is_err() {
            img.fill(0);
        }
    })
}

/// `letter` drawn white on black in a `CANVAS`² grey image.
fn draw_letter(letter: char, size: f64) -> Vec<u8> {
    let mut rgb = vec![0u8; CANVAS * CANVAS * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (CANVAS as u32, CANVAS as u32))
            .into_drawing_area();
        let style = TextStyle::from((crate::eval::plot::FAMILY, size).into_font()).color(&WHITE);
        // Drawing into a buffer of the right size cannot fail but for a
        // missing font, which leaves the canvas blank (framed as blank).
        let _ = root.draw_text(&letter.to_string(), &style, (8, 4));
        let _ = root.present();
    }
    rgb.chunks_exact(3).map(|p| p[0]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> Images {
        images(3, |i, img| {
            img.iter_mut()
                .enumerate()
                .for_each(|(j, p)| *p = ((i * 7 + j) % 256) as u8)
        })
    }

    /// A set's name and its maker, given a seed.
    type Maker<'a> = (&'a str, Box<dyn Fn(u64) -> Images + 'a>);

    #[test]
    fn every_set_has_the_shape_asked_and_repeats_with_its_seed() {
        let src = source();
        let makers: Vec<Maker> = vec![
            ("noise", Box::new(|s| uniform_noise(7, s))),
            ("near-blank", Box::new(|s| near_blank(7, s))),
            ("strokes", Box::new(|s| strokes(7, s))),
            ("shuffled", Box::new(|s| shuffled(&src, 7, s))),
            ("inverted", Box::new(|s| inverted(&src, 7, s))),
            ("block", Box::new(|s| block_cut(&src, 7, s))),
            ("letters", Box::new(|s| letters(7, s))),
        ];
        for (name, make) in makers {
            let a = make(1);
            assert_eq!(
                (a.n, a.rows, a.cols, a.pixels.len()),
                (7, 28, 28, 7 * 784),
                "{name}"
            );
            assert_eq!(a.pixels, make(1).pixels, "{name}: same seed, same images");
            if name != "inverted" {
                assert_ne!(
                    a.pixels,
                    make(2).pixels,
                    "{name}: another seed, other images"
                );
            }
        }
    }

    #[test]
    fn transforms_do_what_they_say() {
        let src = source();
        let inv = inverted(&src, 5, 1);
        for i in 0..5 {
            let img = inv.image(i);
            assert!((0..3).any(|s| src.image(s).iter().zip(img).all(|(a, b)| 255 - a == *b)));
        }
        let sh = shuffled(&src, 5, 1);
        for i in 0..5 {
            let mut a = sh.image(i).to_vec();
            a.sort_unstable();
            assert!((0..3).any(|s| {
                let mut b = src.image(s).to_vec();
                b.sort_unstable();
                a == b
            }));
        }
        let blk = block_cut(&src, 5, 1);
        for i in 0..5 {
            assert!(blk.image(i).iter().filter(|&&p| p == 0).count() >= 100);
        }
        let blank = near_blank(50, 1);
        for i in 0..50 {
            assert!(blank.image(i).iter().filter(|&&p| p != 0).count() <= 5);
        }
    }

    #[test]
    fn letters_have_ink_and_paper() {
        let l = letters(26, 1);
        for i in 0..26 {
            let img = l.image(i);
            let ink = img.iter().filter(|&&p| p > 0).count();
            assert!(ink > 20, "letter {i}: {ink} pixels of ink");
            assert!(ink < 500, "letter {i}: {ink} pixels of ink");
        }
    }
}

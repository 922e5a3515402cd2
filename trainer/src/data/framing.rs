//! MNIST-style framing of images of any size (scans, photos of single
//! digits) into one size, with the engine's own code (`engine::frame`, what
//! the web page and the firmware run): the ink's box scaled into 20/28 of
//! each side, its centre of mass at the centre. Each image's polarity is
//! settled on its own first (`Invert::Auto` reads each image's border:
//! scans in one folder may differ), then pixels below [`PAPER`] count as
//! paper, so that the grey of scanned or photographed paper does not widen
//! the ink's box.

use super::polarity::Invert;
use super::{DataError, Images};
use std::path::Path;

/// The darkest level (after the polarity is settled) still taken for
/// paper: 1/8 of full ink.
pub const PAPER: u8 = 31;

/// `--frame mnist` into `width × height`, with the per-image polarity rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Framing {
    /// Output width.
    pub width: usize,
    /// Output height.
    pub height: usize,
    /// How each image's polarity is settled before framing.
    pub invert: Invert,
}

impl Framing {
    /// Pixels of a framed image.
    pub fn pixels(&self) -> usize {
        self.width * self.height
    }

    /// Frames one `w × h` grey image into `out` (`self.pixels()` bytes);
    /// `path` and `index` name it in an error.
    pub fn frame(
        &self,
        grey: &[u8],
        w: usize,
        h: usize,
        out: &mut [u8],
        path: &Path,
        index: usize,
    ) -> Result<(), DataError> {
        let inverted = match self.invert {
            Invert::Yes => true,
            Invert::No => false,
            Invert::Auto => border_mean(grey, w, h) > 127.5,
        };
        let ink: Vec<u8> = grey
            .iter()
            .map(|&v| if inverted { 255 - v } else { v })
            .map(|v| if v <= PAPER { 0 } else { v })
            .collect();
        engine::frame::mnist(&ink, w, h, out, self.width, self.height)
            .map(|_| ())
            .map_err(|e| DataError::invalid(path, format!("image {index}: {e}")))
    }

    /// Frames every image of a set of one size.
    pub fn frame_set(&self, images: &Images, path: &Path) -> Result<Images, DataError> {
        let size = self.pixels();
        let mut pixels = vec![0u8; images.n * size];
        for (i, out) in pixels.chunks_exact_mut(size.max(1)).enumerate() {
            self.frame(images.image(i), images.cols, images.rows, out, path, i)?;
        }
        Ok(Images {
            n: images.n,
            rows: self.height,
            cols: self.width,
            pixels,
        })
    }
}

/// The mean of one image's outermost ring of pixels.
fn border_mean(grey: &[u8], w: usize, h: usize) -> f64 {
    let (mut sum, mut count) = (0u64, 0u64);
    for y in 0..h {
        for x in 0..w {
            if y == 0 || x == 0 || y + 1 == h || x + 1 == w {
                sum += u64::from(grey.get(y * w + x).copied().unwrap_or(0));
                count += 1;
            }
        }
    }
    sum as f64 / count.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_of_either_polarity_frame_to_the_same_digit() {
        // A 4-pixel bar on a 10x6 page, dark on light with grey paper, and
        // the same light on dark.
        let mut scan = vec![230u8; 60];
        for y in 1..5 {
            scan[y * 10 + 3] = 10;
        }
        let dark: Vec<u8> = scan.iter().map(|&v| 255 - v).collect();
        let f = Framing {
            width: 8,
            height: 8,
            invert: Invert::Auto,
        };
        let (mut a, mut b) = (vec![0u8; 64], vec![0u8; 64]);
        f.frame(&scan, 10, 6, &mut a, Path::new("s"), 0).unwrap();
        f.frame(&dark, 10, 6, &mut b, Path::new("d"), 0).unwrap();
        assert_eq!(a, b);
        // The bar alone (grey paper is paper): its 1x4 box scaled by 1.5
        // into 2x6 (6 = 20/28 of 8, rounded up), all of it ink.
        assert_eq!(a.iter().filter(|&&v| v > 0).count(), 12);
        assert!(a.iter().all(|&v| v == 0 || v == 245));
    }
}

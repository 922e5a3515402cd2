//! Images as training needs them: a [`Split`] (pixels and labels) and
//! batches of it as f32, optionally shifted (augmentation).

use super::{PIXELS, SIDE};
use crate::rng::Rng;

/// Images and labels as the loop needs them (labels only for evaluation).
pub struct Split {
    /// Number of images.
    pub n: usize,
    /// `n * 784` bytes.
    pub pixels: Vec<u8>,
    /// Digit labels: used for evaluation and the label map, never in training.
    pub labels: Vec<u8>,
}

/// Images `idx` as f32 in `[0, 1]`, each shifted by up to `shift` pixels in
/// x and y (zeros fill in) when an RNG is given.
pub fn batch_pixels(pixels: &[u8], idx: &[usize], shift: usize, rng: Option<&mut Rng>) -> Vec<f32> {
    let mut out = vec![0f32; idx.len() * PIXELS];
    match rng {
        Some(rng) if shift > 0 => {
            let s = shift as i64;
            for (o, &i) in out.chunks_exact_mut(PIXELS).zip(idx) {
                let dx = rng.below(2 * shift + 1) as i64 - s;
                let dy = rng.below(2 * shift + 1) as i64 - s;
                let img = &pixels[i * PIXELS..(i + 1) * PIXELS];
                for y in 0..SIDE as i64 {
                    let sy = y - dy;
                    if !(0..SIDE as i64).contains(&sy) {
                        continue;
                    }
                    for x in 0..SIDE as i64 {
                        let sx = x - dx;
                        if (0..SIDE as i64).contains(&sx) {
                            o[(y * SIDE as i64 + x) as usize] =
                                img[(sy * SIDE as i64 + sx) as usize] as f32 / 255.0;
                        }
                    }
                }
            }
        }
        _ => {
            for (o, &i) in out.chunks_exact_mut(PIXELS).zip(idx) {
                for (d, &p) in o.iter_mut().zip(&pixels[i * PIXELS..(i + 1) * PIXELS]) {
                    *d = p as f32 / 255.0;
                }
            }
        }
    }
    out
}

//! Images as training needs them: a [`Split`] (pixels, optional labels),
//! batches of it as f32, optionally shifted (augmentation), and the
//! deterministic hold-out of a test fraction.

use crate::rng::Rng;

/// Images and labels as the loop needs them (labels only for evaluation).
#[derive(Debug, Clone)]
pub struct Split {
    /// Number of images.
    pub n: usize,
    /// `n * width * height` bytes.
    pub pixels: Vec<u8>,
    /// Class labels when the set has them: used for evaluation and the
    /// label map, never in training.
    pub labels: Option<Vec<u8>>,
}

impl Split {
    /// The pixels of images `idx`, in that order, with their labels.
    pub fn select(&self, idx: &[usize]) -> Split {
        let p = self.pixels.len() / self.n.max(1);
        let mut pixels = Vec::with_capacity(idx.len() * p);
        for &i in idx {
            pixels.extend_from_slice(&self.pixels[i * p..(i + 1) * p]);
        }
        Split {
            n: idx.len(),
            pixels,
            labels: self
                .labels
                .as_ref()
                .map(|l| idx.iter().map(|&i| l[i]).collect()),
        }
    }
}

/// Splits `set` into a training part and a test part holding
/// `round(fraction · n)` images (at least 1, at most n − 1), chosen by a
/// fixed permutation that depends on `n` only (not on the training seed),
/// so every run on the same set holds out the same images. Both parts keep
/// the set's order.
pub fn holdout(set: &Split, fraction: f64) -> (Split, Split) {
    let n = set.n;
    let k = ((fraction * n as f64).round() as usize).clamp(1, n.saturating_sub(1).max(1));
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = Rng::new(0x07e5_75e7, n as u64);
    for i in (1..n).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let mut test: Vec<usize> = order[..k].to_vec();
    let mut train: Vec<usize> = order[k..].to_vec();
    test.sort_unstable();
    train.sort_unstable();
    (set.select(&train), set.select(&test))
}

/// Images `idx` of `pixels` (`size` bytes each), unshifted, as a tensor
/// `[idx.len(), size]` of intensities in `[0, 1]` on `device`: a batch for
/// a forward pass.
pub fn images_tensor(
    pixels: &[u8],
    size: usize,
    idx: &[usize],
    device: &candle_core::Device,
) -> candle_core::Result<candle_core::Tensor> {
    candle_core::Tensor::from_vec(
        batch_pixels(pixels, (size, 1), idx, 0, None),
        (idx.len(), size),
        device,
    )
}

/// Images `idx` (each `width × height` bytes) as f32 in `[0, 1]`, each
/// shifted by up to `shift` pixels in x and y (zeros fill in) when an RNG is
/// given.
pub fn batch_pixels(
    pixels: &[u8],
    (width, height): (usize, usize),
    idx: &[usize],
    shift: usize,
    rng: Option<&mut Rng>,
) -> Vec<f32> {
    let size = width * height;
    let mut out = vec![0f32; idx.len() * size];
    let (w, h) = (width as i64, height as i64);
    match rng {
        Some(rng) if shift > 0 => {
            let s = shift as i64;
            for (o, &i) in out.chunks_exact_mut(size).zip(idx) {
                let dx = rng.below(2 * shift + 1) as i64 - s;
                let dy = rng.below(2 * shift + 1) as i64 - s;
                let img = &pixels[i * size..(i + 1) * size];
                for y in 0..h {
                    let sy = y - dy;
                    if !(0..h).contains(&sy) {
                        continue;
                    }
                    for x in 0..w {
                        let sx = x - dx;
                        if (0..w).contains(&sx) {
                            o[(y * w + x) as usize] = img[(sy * w + sx) as usize] as f32 / 255.0;
                        }
                    }
                }
            }
        }
        _ => {
            for (o, &i) in out.chunks_exact_mut(size).zip(idx) {
                for (d, &p) in o.iter_mut().zip(&pixels[i * size..(i + 1) * size]) {
                    *d = p as f32 / 255.0;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdout_is_fixed_disjoint_and_ordered() {
        let set = Split {
            n: 20,
            pixels: (0..40).collect(),
            labels: Some((0..20).collect()),
        };
        let (train, test) = holdout(&set, 0.1);
        assert_eq!((train.n, test.n), (18, 2));
        let tl = test.labels.clone().unwrap();
        assert!(tl.windows(2).all(|w| w[0] < w[1]));
        for &l in &tl {
            assert!(!train.labels.as_ref().unwrap().contains(&l));
            // Pixels travel with their labels (2 bytes per image here).
            let i = tl.iter().position(|&x| x == l).unwrap();
            assert_eq!(test.pixels[2 * i], 2 * l);
        }
        let (_, again) = holdout(&set, 0.1);
        assert_eq!(again.labels, test.labels);
        assert_eq!(holdout(&set, 0.0).1.n, 1);
        assert_eq!(holdout(&set, 1.0).1.n, 19);
    }

    #[test]
    fn batches_of_any_shape_shift_inside_their_frame() {
        // One 3x2 image: a single lit pixel at (x 0, y 0).
        let px = [255u8, 0, 0, 0, 0, 0];
        assert_eq!(batch_pixels(&px, (3, 2), &[0], 0, None)[0], 1.0);
        let mut rng = Rng::new(3, 0);
        for _ in 0..20 {
            let b = batch_pixels(&px, (3, 2), &[0], 1, Some(&mut rng));
            assert_eq!(b.len(), 6);
            assert!(b.iter().filter(|&&v| v == 1.0).count() <= 1);
        }
    }
}

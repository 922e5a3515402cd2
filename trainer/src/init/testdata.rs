//! Synthetic point sets for the partition tests.

use super::PIXELS;
use crate::rng::Rng;

/// `per` points around each of `centres` (2-D) with Gaussian noise of std `sd`,
/// interleaved by cluster; returns the flat `n × 2` points and the true labels.
pub fn blobs(centres: &[[f32; 2]], per: usize, sd: f64, seed: u64) -> (Vec<f32>, Vec<usize>) {
    let mut r = Rng::from_state(seed);
    let mut data = Vec::new();
    let mut truth = Vec::new();
    for _ in 0..per {
        for (c, centre) in centres.iter().enumerate() {
            data.push(centre[0] + (r.normal() * sd) as f32);
            data.push(centre[1] + (r.normal() * sd) as f32);
            truth.push(c);
        }
    }
    (data, truth)
}

/// Concentric rings of the given radii (2-D), `per` points each with radial
/// noise `sd`: a shape k-means cannot separate but a neighbour graph can.
pub fn rings(radii: &[f32], per: usize, sd: f64, seed: u64) -> (Vec<f32>, Vec<usize>) {
    let mut r = Rng::from_state(seed);
    let mut data = Vec::new();
    let mut truth = Vec::new();
    for _ in 0..per {
        for (c, &radius) in radii.iter().enumerate() {
            let angle = r.unit_f64() * std::f64::consts::TAU;
            let rho = radius as f64 + r.normal() * sd;
            data.push((rho * angle.cos()) as f32);
            data.push((rho * angle.sin()) as f32);
            truth.push(c);
        }
    }
    (data, truth)
}

/// Fraction of points on which two labelings agree after the best one-to-one
/// renaming of `a`'s clusters (both with values `< k <= 10`).
pub fn agreement(a: &[usize], b: &[usize], k: usize) -> f64 {
    let labels: Vec<u8> = b.iter().map(|&x| x as u8).collect();
    crate::eval::metrics::evaluate(a, &labels, k).acc
}

/// Images of three kinds (horizontal bar, vertical bar, hollow square), each
/// shifted by up to 4 pixels in x and y: 81 shifts, so neighbouring images of
/// one kind differ by small shifts and each kind is one connected family.
pub fn toy_images(n: usize, seed: u64) -> (Vec<u8>, Vec<usize>) {
    let mut r = Rng::from_state(seed);
    let mut images = vec![0u8; n * PIXELS];
    let mut kinds = Vec::with_capacity(n);
    for (i, img) in images.chunks_exact_mut(PIXELS).enumerate() {
        let kind = i % 3;
        let (dx, dy) = (r.below(9) as isize - 4, r.below(9) as isize - 4);
        for y in 0..28isize {
            for x in 0..28isize {
                let on = match kind {
                    0 => (y - 14 - dy).abs() < 3 && (6..22).contains(&(x - dx)),
                    1 => (x - 14 - dx).abs() < 3 && (6..22).contains(&(y - dy)),
                    _ => {
                        // A hollow square frame.
                        let (u, v) = (x - dx, y - dy);
                        (5..23).contains(&u)
                            && (5..23).contains(&v)
                            && !((8..20).contains(&u) && (8..20).contains(&v))
                    }
                };
                if on {
                    img[(y * 28 + x) as usize] = 200 + r.below(56) as u8;
                }
            }
        }
        kinds.push(kind);
    }
    (images, kinds)
}

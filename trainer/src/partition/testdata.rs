//! Synthetic point sets for the partition tests.

use super::rng::Rng;

/// `per` points around each of `centres` (2-D) with Gaussian noise of std `sd`,
/// interleaved by cluster; returns the flat `n × 2` points and the true labels.
pub fn blobs(centres: &[[f32; 2]], per: usize, sd: f64, seed: u64) -> (Vec<f32>, Vec<usize>) {
    let mut r = Rng::new(seed);
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
    let mut r = Rng::new(seed);
    let mut data = Vec::new();
    let mut truth = Vec::new();
    for _ in 0..per {
        for (c, &radius) in radii.iter().enumerate() {
            let angle = r.next_f64() * std::f64::consts::TAU;
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
    crate::metrics::evaluate(a, &labels, k).acc
}

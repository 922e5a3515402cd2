//! k-means (Lloyd's iterations) with k-means++ seeding and several restarts,
//! keeping the restart of least inertia. Points are rows of a flat `n × d`
//! `f32` matrix; sums are accumulated in `f64`.

use crate::rng::Rng;

/// The result of [`kmeans`].
#[derive(Debug, Clone)]
pub struct KMeans {
    /// `k × d` cluster centres, row-major.
    pub centroids: Vec<f32>,
    /// Index of the nearest centre for each point.
    pub assignment: Vec<usize>,
    /// Sum of squared distances of points to their centres.
    pub inertia: f64,
}

/// Settings for [`kmeans`].
#[derive(Debug, Clone, Copy)]
pub struct KMeansConfig {
    /// Number of clusters.
    pub k: usize,
    /// Independent k-means++ starts; the one of least inertia is kept.
    pub restarts: usize,
    /// Upper bound on Lloyd iterations per start (stops earlier when no point moves).
    pub max_iter: usize,
}

pub(crate) fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Index and squared distance of the centre nearest to `x`.
pub fn nearest(x: &[f32], centroids: &[f32], d: usize) -> (usize, f32) {
    let mut best = (0, f32::INFINITY);
    for (c, centre) in centroids.chunks_exact(d).enumerate() {
        let dist = sq_dist(x, centre);
        if dist < best.1 {
            best = (c, dist);
        }
    }
    best
}

/// Clusters the `n = data.len() / d` rows of `data` into `cfg.k` groups.
///
/// # Panics
/// If `data` is empty, `d == 0`, `data.len()` is not a multiple of `d`, or
/// there are fewer points than clusters.
pub fn kmeans(data: &[f32], d: usize, cfg: &KMeansConfig, rng: &mut Rng) -> KMeans {
    assert!(
        d > 0 && !data.is_empty() && data.len().is_multiple_of(d),
        "kmeans: bad shape"
    );
    let n = data.len() / d;
    assert!(
        n >= cfg.k && cfg.k > 0,
        "kmeans: {n} points for {} clusters",
        cfg.k
    );
    let mut best: Option<KMeans> = None;
    for restart in 0..cfg.restarts.max(1) {
        let mut r = rng.fork(restart as u64);
        let centroids = plus_plus_seeds(data, d, cfg.k, &mut r);
        let run = lloyd(data, d, centroids, cfg.max_iter);
        if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
            best = Some(run);
        }
    }
    best.expect("at least one restart")
}

/// k-means++ (Arthur & Vassilvitskii 2007): each new centre drawn with
/// probability proportional to the squared distance to the nearest chosen one.
fn plus_plus_seeds(data: &[f32], d: usize, k: usize, rng: &mut Rng) -> Vec<f32> {
    let n = data.len() / d;
    let mut centroids = Vec::with_capacity(k * d);
    let first = rng.below(n);
    centroids.extend_from_slice(&data[first * d..(first + 1) * d]);
    let mut dist: Vec<f64> = data
        .chunks_exact(d)
        .map(|x| sq_dist(x, &centroids[..d]) as f64)
        .collect();
    for _ in 1..k {
        let total: f64 = dist.iter().sum();
        let pick = if total > 0.0 {
            let mut target = rng.unit_f64() * total;
            let mut pick = n - 1;
            for (i, &w) in dist.iter().enumerate() {
                if target < w {
                    pick = i;
                    break;
                }
                target -= w;
            }
            pick
        } else {
            rng.below(n) // all points coincide with chosen centres
        };
        let centre = &data[pick * d..(pick + 1) * d];
        centroids.extend_from_slice(centre);
        for (x, dx) in data.chunks_exact(d).zip(dist.iter_mut()) {
            *dx = dx.min(sq_dist(x, centre) as f64);
        }
    }
    centroids
}

fn lloyd(data: &[f32], d: usize, mut centroids: Vec<f32>, max_iter: usize) -> KMeans {
    let n = data.len() / d;
    let k = centroids.len() / d;
    let mut assignment = vec![usize::MAX; n];
    let mut dists = vec![0f32; n];
    for _ in 0..max_iter.max(1) {
        let mut moved = 0usize;
        for (i, x) in data.chunks_exact(d).enumerate() {
            let (c, dist) = nearest(x, &centroids, d);
            if assignment[i] != c {
                assignment[i] = c;
                moved += 1;
            }
            dists[i] = dist;
        }
        if moved == 0 {
            break;
        }
        let mut sums = vec![0f64; k * d];
        let mut counts = vec![0usize; k];
        for (x, &c) in data.chunks_exact(d).zip(&assignment) {
            counts[c] += 1;
            for (s, &v) in sums[c * d..(c + 1) * d].iter_mut().zip(x) {
                *s += v as f64;
            }
        }
        for c in 0..k {
            if counts[c] == 0 {
                // An empty cluster takes the point farthest from its centre.
                let far = (0..n)
                    .max_by(|&a, &b| dists[a].total_cmp(&dists[b]))
                    .expect("n > 0");
                dists[far] = 0.0;
                centroids[c * d..(c + 1) * d].copy_from_slice(&data[far * d..(far + 1) * d]);
                continue;
            }
            for j in 0..d {
                centroids[c * d + j] = (sums[c * d + j] / counts[c] as f64) as f32;
            }
        }
    }
    // Final assignment against the final centres, and its inertia.
    let mut inertia = 0f64;
    for (i, x) in data.chunks_exact(d).enumerate() {
        let (c, dist) = nearest(x, &centroids, d);
        assignment[i] = c;
        inertia += dist as f64;
    }
    KMeans {
        centroids,
        assignment,
        inertia,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `per` points around each of `centres` (2-D), Gaussian noise of std `sd`.
    pub(crate) fn blobs(
        centres: &[[f32; 2]],
        per: usize,
        sd: f64,
        seed: u64,
    ) -> (Vec<f32>, Vec<usize>) {
        let mut r = Rng::from_state(seed);
        let mut data = Vec::new();
        let mut truth = Vec::new();
        for i in 0..per {
            for (c, centre) in centres.iter().enumerate() {
                let _ = i;
                data.push(centre[0] + (r.normal() * sd) as f32);
                data.push(centre[1] + (r.normal() * sd) as f32);
                truth.push(c);
            }
        }
        (data, truth)
    }

    /// True when the two labelings are equal up to renaming clusters.
    pub(crate) fn same_partition(a: &[usize], b: &[usize]) -> bool {
        let mut map = std::collections::HashMap::new();
        let mut back = std::collections::HashMap::new();
        a.iter()
            .zip(b)
            .all(|(x, y)| *map.entry(x).or_insert(y) == y && *back.entry(y).or_insert(x) == x)
    }

    #[test]
    fn recovers_separated_blobs() {
        let centres = [
            [0.0, 0.0],
            [10.0, 0.0],
            [0.0, 10.0],
            [10.0, 10.0],
            [5.0, 20.0],
        ];
        let (data, truth) = blobs(&centres, 60, 1.0, 1);
        let cfg = KMeansConfig {
            k: 5,
            restarts: 4,
            max_iter: 100,
        };
        let fit = kmeans(&data, 2, &cfg, &mut Rng::from_state(9));
        assert!(same_partition(&fit.assignment, &truth));
        // Inertia of the truth: about n·d·sd² = 300·2·1.
        assert!(fit.inertia < 800.0, "{}", fit.inertia);
    }

    #[test]
    fn restarts_never_do_worse_and_runs_are_reproducible() {
        // Overlapping blobs: local optima exist.
        let centres = [
            [0.0, 0.0],
            [3.0, 0.0],
            [0.0, 3.0],
            [3.0, 3.0],
            [1.5, 1.5],
            [6.0, 1.5],
        ];
        let (data, _) = blobs(&centres, 40, 1.0, 2);
        let one = KMeansConfig {
            k: 6,
            restarts: 1,
            max_iter: 100,
        };
        let many = KMeansConfig { restarts: 8, ..one };
        let a = kmeans(&data, 2, &one, &mut Rng::from_state(5));
        let b = kmeans(&data, 2, &many, &mut Rng::from_state(5));
        // Restart 0 of `many` is exactly `one`, so the best of 8 is no worse.
        assert!(b.inertia <= a.inertia);
        let b2 = kmeans(&data, 2, &many, &mut Rng::from_state(5));
        assert_eq!(b.assignment, b2.assignment);
        assert_eq!(b.inertia, b2.inertia);
    }

    #[test]
    fn no_cluster_is_left_empty() {
        // Three distinct locations, many duplicates, k = 3.
        let mut data = Vec::new();
        for i in 0..30 {
            let v = (i % 3) as f32 * 100.0;
            data.extend_from_slice(&[v, -v]);
        }
        let cfg = KMeansConfig {
            k: 3,
            restarts: 2,
            max_iter: 50,
        };
        let fit = kmeans(&data, 2, &cfg, &mut Rng::from_state(0));
        let mut sizes = [0; 3];
        fit.assignment.iter().for_each(|&c| sizes[c] += 1);
        assert_eq!(sizes, [10, 10, 10]);
        assert_eq!(fit.inertia, 0.0);
    }
}

//! Spectral clustering (Ng, Jordan & Weiss 2001) of points in a low-dimensional
//! code space: a symmetric k-nearest-neighbour graph, its normalized affinity
//! `D^-1/2 W D^-1/2`, the `k` leading eigenvectors, rows scaled to unit
//! length, then k-means on those rows.

use super::eigen::{top_eigenvectors, EigenConfig, SparseSym};
use super::kmeans::{kmeans, KMeansConfig};
use super::knn::knn;
use crate::rng::Rng;

/// How edges of the neighbour graph are weighted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeWeight {
    /// Every edge weighs 1 (scikit-learn's `affinity="nearest_neighbors"`).
    Connectivity,
    /// `exp(-d²/(σ_i σ_j))` with `σ_i` the distance from `i` to its
    /// `neighbours`-th neighbour (Zelnik-Manor & Perona 2004).
    SelfTuning,
}

/// Settings for [`spectral_clustering`].
#[derive(Debug, Clone, Copy)]
pub struct SpectralConfig {
    /// Neighbours per point in the graph (before symmetrization).
    pub neighbours: usize,
    /// Edge weighting.
    pub weight: EdgeWeight,
    /// k-means restarts on the spectral embedding.
    pub kmeans_restarts: usize,
    /// Eigensolver settings.
    pub eigen: EigenConfig,
}

impl Default for SpectralConfig {
    fn default() -> Self {
        Self {
            neighbours: 20,
            weight: EdgeWeight::Connectivity,
            kmeans_restarts: 10,
            eigen: EigenConfig::default(),
        }
    }
}

/// What [`spectral_clustering`] found.
#[derive(Debug, Clone)]
pub struct Spectral {
    /// Cluster of each input point.
    pub assignment: Vec<usize>,
    /// The `k` leading eigenvalues of the normalized affinity.
    pub eigenvalues: Vec<f64>,
    /// Largest eigen-residual at the end of the solve.
    pub residual: f64,
    /// Eigensolver rounds used.
    pub rounds: usize,
}

/// The symmetrized graph `W = (G + Gᵀ)/2` of the k-NN relation `G`,
/// normalized to `D^-1/2 W D^-1/2`.
pub fn normalized_affinity(points: &[f32], d: usize, cfg: &SpectralConfig) -> SparseSym {
    let m = points.len() / d;
    let nb = knn(points, points, d, cfg.neighbours, true);
    let sigma: Vec<f64> = (0..m)
        .map(|i| (nb.dists(i)[cfg.neighbours - 1] as f64).sqrt().max(1e-12))
        .collect();
    let mut rows: Vec<Vec<(u32, f64)>> = vec![Vec::with_capacity(2 * cfg.neighbours); m];
    for i in 0..m {
        for (&j, &d2) in nb.of(i).iter().zip(nb.dists(i)) {
            let w = match cfg.weight {
                EdgeWeight::Connectivity => 1.0,
                EdgeWeight::SelfTuning => (-(d2 as f64) / (sigma[i] * sigma[j as usize])).exp(),
            };
            rows[i].push((j, 0.5 * w));
            rows[j as usize].push((i as u32, 0.5 * w));
        }
    }
    let mut row_ptr = Vec::with_capacity(m + 1);
    row_ptr.push(0);
    let mut col = Vec::new();
    let mut val = Vec::new();
    for row in &mut rows {
        row.sort_by_key(|e| e.0);
        for &(j, w) in row.iter() {
            if col.len() > *row_ptr.last().expect("non-empty")
                && *col.last().expect("non-empty") == j
            {
                *val.last_mut().expect("non-empty") += w;
            } else {
                col.push(j);
                val.push(w);
            }
        }
        row_ptr.push(col.len());
    }
    let degree: Vec<f64> = (0..m)
        .map(|i| val[row_ptr[i]..row_ptr[i + 1]].iter().sum::<f64>())
        .collect();
    for i in 0..m {
        for e in row_ptr[i]..row_ptr[i + 1] {
            val[e] /= (degree[i] * degree[col[e] as usize]).sqrt();
        }
    }
    SparseSym {
        n: m,
        row_ptr,
        col,
        val,
    }
}

/// Clusters the rows of `points` (flat, `d` columns) into `k` groups.
pub fn spectral_clustering(
    points: &[f32],
    d: usize,
    k: usize,
    cfg: &SpectralConfig,
    rng: &mut Rng,
) -> Spectral {
    let a = normalized_affinity(points, d, cfg);
    let eig = top_eigenvectors(&a, k, &cfg.eigen, &mut rng.fork(1));
    let embedding: Vec<f32> = eig
        .vectors
        .chunks_exact(k)
        .flat_map(|row| {
            let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
            row.iter().map(move |v| (v / norm) as f32)
        })
        .collect();
    let km = kmeans(
        &embedding,
        k,
        &KMeansConfig {
            k,
            restarts: cfg.kmeans_restarts,
            max_iter: 300,
        },
        &mut rng.fork(2),
    );
    Spectral {
        assignment: km.assignment,
        eigenvalues: eig.values,
        residual: eig.residual,
        rounds: eig.rounds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::testdata::{agreement, blobs, rings};

    #[test]
    fn separates_rings_that_kmeans_cannot() {
        let (data, truth) = rings(&[1.0, 4.0, 8.0], 200, 0.15, 3);
        let sc = spectral_clustering(
            &data,
            2,
            3,
            &SpectralConfig::default(),
            &mut Rng::from_state(1),
        );
        assert_eq!(agreement(&sc.assignment, &truth, 3), 1.0);
        // Three components (or nearly): three eigenvalues at or near 1.
        assert!(
            sc.eigenvalues.iter().all(|&l| l > 0.99),
            "{:?}",
            sc.eigenvalues
        );
        let km = kmeans(
            &data,
            2,
            &KMeansConfig {
                k: 3,
                restarts: 5,
                max_iter: 100,
            },
            &mut Rng::from_state(1),
        );
        assert!(agreement(&km.assignment, &truth, 3) < 0.8);
    }

    #[test]
    fn recovers_blobs_with_either_weighting() {
        let centres = [[0.0, 0.0], [6.0, 0.0], [0.0, 6.0], [6.0, 6.0]];
        let (data, truth) = blobs(&centres, 100, 1.0, 8);
        for weight in [EdgeWeight::Connectivity, EdgeWeight::SelfTuning] {
            let cfg = SpectralConfig {
                weight,
                ..SpectralConfig::default()
            };
            let sc = spectral_clustering(&data, 2, 4, &cfg, &mut Rng::from_state(2));
            assert!(agreement(&sc.assignment, &truth, 4) > 0.97, "{weight:?}");
        }
    }

    #[test]
    fn affinity_is_symmetric_with_unit_top_eigenvalue() {
        let (data, _) = blobs(&[[0.0, 0.0], [3.0, 1.0]], 50, 1.0, 5);
        let a = normalized_affinity(&data, 2, &SpectralConfig::default());
        let get = |i: usize, j: u32| {
            (a.row_ptr[i]..a.row_ptr[i + 1])
                .find(|&e| a.col[e] == j)
                .map(|e| a.val[e])
        };
        for i in 0..a.n {
            for e in a.row_ptr[i]..a.row_ptr[i + 1] {
                let back = get(a.col[e] as usize, i as u32).expect("symmetric structure");
                assert!((back - a.val[e]).abs() < 1e-12);
            }
        }
        let eig = top_eigenvectors(&a, 1, &EigenConfig::default(), &mut Rng::from_state(0));
        assert!((eig.values[0] - 1.0).abs() < 1e-9);
    }
}

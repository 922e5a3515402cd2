//! Exact k-nearest-neighbour search by brute force (squared Euclidean
//! distance), split over the available cores. At the sizes used here (tens of
//! thousands of 10-dimensional codes) this is a few seconds, with no index to
//! build or tune.

/// The `k` nearest reference points of each query, nearest first.
#[derive(Debug, Clone)]
pub struct Neighbours {
    /// Neighbours per query.
    pub k: usize,
    /// `queries × k` reference indices.
    pub index: Vec<u32>,
    /// `queries × k` squared distances, ascending within a row.
    pub sq_dist: Vec<f32>,
}

impl Neighbours {
    /// Indices of the neighbours of query `q`.
    pub fn of(&self, q: usize) -> &[u32] {
        &self.index[q * self.k..(q + 1) * self.k]
    }

    /// Squared distances to the neighbours of query `q`.
    pub fn dists(&self, q: usize) -> &[f32] {
        &self.sq_dist[q * self.k..(q + 1) * self.k]
    }
}

/// For each row of `queries` (flat, `d` columns), its `k` nearest rows of
/// `reference`. With `self_excluded`, `queries` must be `reference` itself and
/// each point is not its own neighbour.
///
/// # Panics
/// If there are fewer than `k` candidate neighbours or the shapes disagree.
pub fn knn(
    reference: &[f32],
    queries: &[f32],
    d: usize,
    k: usize,
    self_excluded: bool,
) -> Neighbours {
    assert!(
        d > 0 && reference.len().is_multiple_of(d) && queries.len().is_multiple_of(d),
        "knn: bad shape"
    );
    let n_ref = reference.len() / d;
    let n_q = queries.len() / d;
    let candidates = n_ref - usize::from(self_excluded);
    assert!(
        k > 0 && k <= candidates,
        "knn: {k} neighbours among {candidates} points"
    );
    let mut index = vec![0u32; n_q * k];
    let mut sq_dist = vec![0f32; n_q * k];
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(n_q.max(1));
    let rows_per = n_q.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for (t, (idx_chunk, dist_chunk)) in index
            .chunks_mut(rows_per * k)
            .zip(sq_dist.chunks_mut(rows_per * k))
            .enumerate()
        {
            s.spawn(move || {
                let first = t * rows_per;
                for (r, (idx, dst)) in idx_chunk
                    .chunks_exact_mut(k)
                    .zip(dist_chunk.chunks_exact_mut(k))
                    .enumerate()
                {
                    let q = first + r;
                    let x = &queries[q * d..(q + 1) * d];
                    dst.fill(f32::INFINITY);
                    for (j, y) in reference.chunks_exact(d).enumerate() {
                        if self_excluded && j == q {
                            continue;
                        }
                        let dist = super::kmeans::sq_dist(x, y);
                        if dist < dst[k - 1] {
                            // Insert into the sorted row, dropping the farthest.
                            let mut pos = k - 1;
                            while pos > 0 && dst[pos - 1] > dist {
                                dst[pos] = dst[pos - 1];
                                idx[pos] = idx[pos - 1];
                                pos -= 1;
                            }
                            dst[pos] = dist;
                            idx[pos] = j as u32;
                        }
                    }
                }
            });
        }
    });
    Neighbours { k, index, sq_dist }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn matches_a_full_sort() {
        let mut r = Rng::from_state(11);
        let d = 3;
        let reference: Vec<f32> = (0..200 * d).map(|_| r.normal() as f32).collect();
        let queries: Vec<f32> = (0..37 * d).map(|_| r.normal() as f32).collect();
        let nb = knn(&reference, &queries, d, 5, false);
        for q in 0..37 {
            let x = &queries[q * d..(q + 1) * d];
            let mut all: Vec<(f32, usize)> = reference
                .chunks_exact(d)
                .enumerate()
                .map(|(j, y)| (crate::init::kmeans::sq_dist(x, y), j))
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0));
            let want: Vec<u32> = all[..5].iter().map(|&(_, j)| j as u32).collect();
            assert_eq!(nb.of(q), &want[..], "query {q}");
            assert!(nb.dists(q).windows(2).all(|w| w[0] <= w[1]));
        }
    }

    #[test]
    fn excludes_self_on_a_line() {
        // Points 0, 1, 2, ..., 9 on a line: the two nearest of 5 are 4 and 6.
        let pts: Vec<f32> = (0..10).map(|i| i as f32).collect();
        let nb = knn(&pts, &pts, 1, 2, true);
        let mut n5 = nb.of(5).to_vec();
        n5.sort_unstable();
        assert_eq!(n5, vec![4, 6]);
        assert_eq!(nb.of(0), &[1, 2]);
        assert_eq!(nb.dists(9), &[1.0, 4.0]);
    }
}

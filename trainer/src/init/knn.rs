//! Exact k-nearest-neighbour search (squared Euclidean distance), split over
//! the available cores: `kiddo`'s k-d tree for points of [`TREE_DIM`]
//! coordinates (the autoencoder's codes and the UMAP embedding), brute force
//! for any other width. Both are exact; on the default preset's MNIST codes
//! the tree is about 4.5× faster than brute force with the same neighbours
//! (`bench/init-vs-libraries`, trainer/src/init/README.md).

use std::num::NonZero;

/// The point width the k-d tree serves (kiddo's trees fix it at compile
/// time): the default preset's code width.
pub const TREE_DIM: usize = 10;

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
    let candidates = n_ref - usize::from(self_excluded);
    assert!(
        k > 0 && k <= candidates,
        "knn: {k} neighbours among {candidates} points"
    );
    if d == TREE_DIM {
        return kd_tree(reference, queries, k, self_excluded);
    }
    brute_force(reference, queries, d, k, self_excluded)
}

/// Each query's `k` nearest rows by `kiddo`'s exact k-d tree, the queries
/// split over the cores. The tree returns the nearest `k + 1` when a query
/// is itself a reference point, and drops it.
fn kd_tree(reference: &[f32], queries: &[f32], k: usize, self_excluded: bool) -> Neighbours {
    use kiddo::{ImmutableKdTree, SquaredEuclidean};
    let point = |v: &[f32]| {
        let mut row = [0f32; TREE_DIM];
        row.copy_from_slice(v);
        row
    };
    let refs: Vec<[f32; TREE_DIM]> = reference.chunks_exact(TREE_DIM).map(point).collect();
    let tree: ImmutableKdTree<f32, TREE_DIM> = match ImmutableKdTree::new_from_slice(&refs) {
        Ok(tree) => tree,
        // Only an empty or oversized (> u32 items) slice fails, which
        // `knn`'s checks and the u32 indices already rule out; brute force
        // answers the same.
        Err(_) => return brute_force(reference, queries, TREE_DIM, k, self_excluded),
    };
    let wanted = NonZero::new(k + usize::from(self_excluded)).unwrap_or(NonZero::<usize>::MIN);
    each_query(queries, TREE_DIM, k, |q, x, idx, dst| {
        let found = tree
            .query(&point(x))
            .nearest_n::<SquaredEuclidean<f32>>(wanted)
            .execute();
        let kept = found
            .iter()
            .filter(|hit| !(self_excluded && hit.item as usize == q))
            .take(k);
        for ((i, dist), hit) in idx.iter_mut().zip(dst.iter_mut()).zip(kept) {
            *i = hit.item;
            *dist = hit.distance;
        }
    })
}

/// Each query's `k` nearest rows, comparing it with every row (what
/// [`knn`] does for widths other than [`TREE_DIM`]; public so that
/// `bench/init-vs-libraries` can time it against the tree). The arguments
/// are [`knn`]'s (`own`: its `self_excluded`), whose checks it relies on.
pub fn brute_force(refs: &[f32], queries: &[f32], d: usize, k: usize, own: bool) -> Neighbours {
    each_query(queries, d, k, |q, x, idx, dst| {
        dst.fill(f32::INFINITY);
        for (j, y) in refs.chunks_exact(d).enumerate() {
            if own && j == q {
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
    })
}

/// `find(q, query, indices, squared distances)` fills the `k`-long rows of
/// every query `q` (`d` columns each), the queries split evenly over the
/// cores.
fn each_query(
    queries: &[f32],
    d: usize,
    k: usize,
    find: impl Fn(usize, &[f32], &mut [u32], &mut [f32]) + Sync,
) -> Neighbours {
    let n_q = queries.len() / d;
    let mut index = vec![0u32; n_q * k];
    let mut sq_dist = vec![0f32; n_q * k];
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(n_q.max(1));
    let rows_per = n_q.div_ceil(threads).max(1);
    let find = &find;
    std::thread::scope(|s| {
        for (t, (idx_chunk, dist_chunk)) in index
            .chunks_mut(rows_per * k)
            .zip(sq_dist.chunks_mut(rows_per * k))
            .enumerate()
        {
            s.spawn(move || {
                let rows = idx_chunk
                    .chunks_exact_mut(k)
                    .zip(dist_chunk.chunks_exact_mut(k));
                for (r, (idx, dst)) in rows.enumerate() {
                    let q = t * rows_per + r;
                    find(q, &queries[q * d..(q + 1) * d], idx, dst);
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
    fn the_tree_finds_what_brute_force_finds() {
        let mut r = Rng::from_state(12);
        let d = TREE_DIM;
        let reference: Vec<f32> = (0..500 * d).map(|_| r.normal() as f32).collect();
        let queries: Vec<f32> = (0..61 * d).map(|_| r.normal() as f32).collect();
        for (refs, qs, own) in [
            (&reference, &queries, false),
            (&reference, &reference, true),
        ] {
            let tree = kd_tree(refs, qs, 7, own);
            let brute = brute_force(refs, qs, d, 7, own);
            assert_eq!(tree.index, brute.index, "self excluded: {own}");
            for (a, b) in tree.sq_dist.iter().zip(&brute.sq_dist) {
                assert!((a - b).abs() <= 1e-5 * b.max(1.0), "{a} against {b}");
            }
        }
        // And `knn` takes the tree at this width.
        assert_eq!(
            knn(&reference, &queries, d, 7, false).index,
            brute_force(&reference, &queries, d, 7, false).index
        );
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

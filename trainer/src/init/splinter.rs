//! Mending a splinter: a part of the partition far smaller than its even share.
//!
//! Asked for `k` parts, a Gaussian mixture (or k-means) on the UMAP embedding
//! sometimes gives one to a small, dense group of one digit's style — on
//! scikit-learn's 8×8 digits, 27 ones drawn with a foot — and leaves two
//! digits to share one part (3 and 9 there). Ten of twelve autoencoder seeds
//! did that on that set (partition ACC 0.84–0.87 against 0.93 for the other
//! two). The mend ([`crate::init`]'s UMAP tries): cluster the embedding into
//! `k + 1`, `k + 2`, `k + 3` parts, let the smallest part join the part it
//! shares the most neighbour edges with until `k` remain
//! ([`merge_smallest`]), and keep whichever of these and the first partition
//! has the most even sizes — the evenness prior the tries already choose by,
//! and the one the mixture's balancing term holds the gate to. A set whose
//! classes really are that uneven (one under a quarter of an even share)
//! would lose its small class to this (`trainer fit --mend-splinters off`
//! keeps it; [`crate::init::PartitionConfig::mend_splinters`]); the trainer
//! assumes classes of comparable size throughout. Labels are never used.

use crate::init::knn::Neighbours;
use crate::init::part_sizes;

/// A part under this share of the even size `n / k` is a splinter: with
/// `k = 10`, under 2.5% of the points. Every set the trainer was measured on
/// (MNIST and the five sets of `bench/n2d-side-by-side.sh`) has its smallest
/// part at 84% or more of the even size, except the 8×8 digits' footed ones
/// (15%).
pub const SPLINTER_SHARE: f64 = 0.25;

/// How many more parts than `k` the mend clusters into, one count after the
/// other.
pub const EXTRA_PARTS: usize = 3;

/// Whether the smallest of `k` parts is a splinter (fewer points than
/// [`SPLINTER_SHARE`] of `n / k`; an empty part is one).
pub fn has_splinter(assignment: &[usize], k: usize) -> bool {
    let smallest = part_sizes(assignment, k).into_iter().min().unwrap_or(0);
    (smallest as f64) < SPLINTER_SHARE * assignment.len() as f64 / k as f64
}

/// Merges the parts `0..parts` of `assignment` until `k` remain: each time the
/// smallest part (the first of equal ones; an empty part first of all) joins
/// the part it shares the most neighbour edges with, counted both ways
/// (`neighbours`: each point's nearest points, among the same points as
/// `assignment`; ties to the lower part). Returns labels `0..k`, numbered in
/// the order of the parts' first points.
pub fn merge_smallest(
    assignment: &[usize],
    parts: usize,
    k: usize,
    neighbours: &Neighbours,
) -> Vec<usize> {
    // `edges[a][b]`: neighbour edges from part a to part b.
    let mut edges = vec![vec![0usize; parts]; parts];
    for (i, &a) in assignment.iter().enumerate() {
        for &j in neighbours.of(i) {
            edges[a][assignment[j as usize]] += 1;
        }
    }
    let mut sizes = part_sizes(assignment, parts);
    // `into[p]`: the part p now belongs to (itself while alive).
    let mut into: Vec<usize> = (0..parts).collect();
    let mut alive: Vec<usize> = (0..parts).collect();
    while alive.len() > k.max(1) {
        let Some(&small) = alive.iter().min_by_key(|&&p| sizes[p]) else {
            break;
        };
        let Some(&host) = alive
            .iter()
            .filter(|&&p| p != small)
            .max_by_key(|&&p| (edges[small][p] + edges[p][small], std::cmp::Reverse(p)))
        else {
            break;
        };
        for row in edges.iter_mut() {
            row[host] += row[small];
            row[small] = 0;
        }
        let moved = std::mem::replace(&mut edges[small], vec![0; parts]);
        for (c, e) in moved.into_iter().enumerate() {
            edges[host][c] += e;
        }
        sizes[host] += sizes[small];
        sizes[small] = 0;
        for p in into.iter_mut() {
            if *p == small {
                *p = host;
            }
        }
        alive.retain(|&p| p != small);
    }
    // Renumber the surviving parts 0.. in the order of their first points.
    let mut label = vec![usize::MAX; parts];
    let mut next = 0;
    assignment
        .iter()
        .map(|&a| {
            let p = into[a];
            if label[p] == usize::MAX {
                label[p] = next;
                next += 1;
            }
            label[p]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::knn::knn;

    /// Points on a line: `groups` of (start, count), one unit apart within a
    /// group.
    fn line(groups: &[(f32, usize)]) -> Vec<f32> {
        groups
            .iter()
            .flat_map(|&(start, count)| (0..count).map(move |i| start + i as f32))
            .collect()
    }

    #[test]
    fn a_splinter_is_under_a_quarter_of_the_even_share() {
        // 100 points, 4 parts: even share 25, splinter under 6.25.
        let mut a: Vec<usize> = (0..100).map(|i| i % 3).collect();
        a[..6].fill(3);
        assert_eq!(part_sizes(&a, 4)[3], 6);
        assert!(has_splinter(&a, 4));
        a[6] = 3;
        assert_eq!(part_sizes(&a, 4)[3], 7);
        assert!(!has_splinter(&a, 4));
        // An empty part is one.
        assert!(has_splinter(&[0, 0, 1, 1], 3));
    }

    #[test]
    fn the_smallest_part_joins_its_most_connected_neighbour() {
        // A run of 40 points cut into parts 0 and 1, a run of 20 far away
        // (part 2), and a small run of 5 (part 3) right after part 2's end.
        let points = line(&[(0.0, 40), (1000.0, 20), (1020.0, 5)]);
        let mut a = vec![0; 20];
        a.extend([1; 20]);
        a.extend([2; 20]);
        a.extend([3; 5]);
        let nb = knn(&points, &points, 1, 4, true);
        // Down to three: part 3 joins part 2, its only neighbour.
        let three = merge_smallest(&a, 4, 3, &nb);
        assert_eq!(part_sizes(&three, 3), vec![20, 20, 25]);
        assert!(three[..20].iter().all(|&p| p == 0) && three[40..].iter().all(|&p| p == 2));
        // Down to two: then part 0 (20, the first of the smallest) joins
        // part 1, which it touches.
        let two = merge_smallest(&a, 4, 2, &nb);
        assert_eq!(part_sizes(&two, 2), vec![40, 25]);
        // Nothing to merge: the labels only renumbered by first point.
        let swapped: Vec<usize> = a.iter().map(|&p| 3 - p).collect();
        assert_eq!(merge_smallest(&swapped, 4, 4, &nb), a);
    }

    #[test]
    fn an_empty_part_goes_first() {
        let points = line(&[(0.0, 10), (100.0, 10)]);
        let mut a = vec![0; 10];
        a.extend([2; 10]);
        let nb = knn(&points, &points, 1, 3, true);
        assert_eq!(part_sizes(&merge_smallest(&a, 3, 2, &nb), 2), vec![10, 10]);
    }
}

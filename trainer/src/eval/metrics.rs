//! Clustering metrics against class labels (MNIST's digits, or any set's
//! classes 0..C): ACC (Hungarian one-to-one matching), NMI (arithmetic-mean
//! normalization, as scikit-learn's default) and ARI, plus the confusion
//! matrix of clusters against classes (C = the largest label + 1).
//!
//! Labels are used here for evaluation only, never for training.

use std::fmt::Write as _;

/// How well a partition into `k` clusters agrees with the digit labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Fraction of points whose cluster is mapped to their label by the best
    /// one-to-one cluster→label matching (Hungarian method).
    pub acc: f64,
    /// Normalized mutual information, `I(U;V) / ((H(U) + H(V)) / 2)`.
    pub nmi: f64,
    /// Adjusted Rand index.
    pub ari: f64,
    /// The one-to-one matching behind `acc`: the digit each cluster stands
    /// for, or `None` for clusters left without a digit (only when `k > 10`).
    pub cluster_to_label: Vec<Option<u8>>,
    /// `confusion[c][d]`: points in cluster `c` whose label is class `d`
    /// (`k` rows, one column per class 0..C).
    pub confusion: Vec<Vec<u64>>,
    /// Number of points in each cluster (`k` entries).
    pub sizes: Vec<usize>,
}

/// Scores the cluster assignment `pred` (values in `0..k`) against `labels`
/// (classes `0..C`, C the largest label + 1: 10 for MNIST's digits).
///
/// # Panics
/// If the slices differ in length or a prediction is `>= k`: programming
/// errors, not data errors.
pub fn evaluate(pred: &[usize], labels: &[u8], k: usize) -> Evaluation {
    assert_eq!(
        pred.len(),
        labels.len(),
        "evaluate: {} predictions for {} labels",
        pred.len(),
        labels.len()
    );
    let classes = labels.iter().copied().max().map_or(1, |m| m as usize + 1);
    let mut confusion = vec![vec![0u64; classes]; k];
    for (&p, &l) in pred.iter().zip(labels) {
        assert!(p < k, "evaluate: cluster {p} out of range for k = {k}");
        confusion[p][l as usize] += 1;
    }
    let sizes: Vec<usize> = confusion
        .iter()
        .map(|row| row.iter().sum::<u64>() as usize)
        .collect();
    let n = pred.len();

    let cluster_to_label = best_matching(&confusion);
    let matched: u64 = cluster_to_label
        .iter()
        .enumerate()
        .filter_map(|(c, d)| d.map(|d| confusion[c][d as usize]))
        .sum();
    let acc = if n == 0 {
        0.0
    } else {
        matched as f64 / n as f64
    };

    Evaluation {
        acc,
        nmi: nmi(&confusion),
        ari: ari(&confusion),
        cluster_to_label,
        confusion,
        sizes,
    }
}

impl Evaluation {
    /// Purity (many-to-one): the share of points whose label is their
    /// cluster's most frequent label. Unlike `acc` it lets several clusters
    /// stand for one digit, the fair score when `k > 10`.
    pub fn purity(&self) -> f64 {
        let n: u64 = self.confusion.iter().flatten().sum();
        let majority: u64 = self
            .confusion
            .iter()
            .map(|row| row.iter().copied().max().unwrap_or(0))
            .sum();
        if n == 0 {
            0.0
        } else {
            majority as f64 / n as f64
        }
    }

    /// Number of label classes (columns of the confusion matrix).
    pub fn classes(&self) -> usize {
        self.confusion.first().map_or(0, Vec::len)
    }

    /// The confusion matrix as a markdown table: one row per cluster with its
    /// size and matched label, one column per label.
    pub fn confusion_table(&self) -> String {
        let mut s = String::from("| cluster | label | size |");
        for d in 0..self.classes() {
            let _ = write!(s, " {d} |");
        }
        s.push_str("\n|---:|---:|---:|");
        s.push_str(&"---:|".repeat(self.classes()));
        s.push('\n');
        for (c, row) in self.confusion.iter().enumerate() {
            let digit = match self.cluster_to_label[c] {
                Some(d) => d.to_string(),
                None => "-".to_string(),
            };
            let _ = write!(s, "| {c} | {digit} | {} |", self.sizes[c]);
            for v in row {
                let _ = write!(s, " {v} |");
            }
            s.push('\n');
        }
        s
    }

    /// One line: ACC, NMI, ARI, number of points and the cluster size range.
    pub fn summary(&self) -> String {
        let n: usize = self.sizes.iter().sum();
        let min = self.sizes.iter().copied().min().unwrap_or(0);
        let max = self.sizes.iter().copied().max().unwrap_or(0);
        format!(
            "ACC {:.4}  NMI {:.4}  ARI {:.4}  (n = {n}, k = {}, cluster sizes {min}..{max})",
            self.acc,
            self.nmi,
            self.ari,
            self.sizes.len()
        )
    }
}

/// The cluster→label matching maximizing the matched count, by the Hungarian
/// method on the confusion matrix padded to a square of side `max(k, C)`.
fn best_matching(confusion: &[Vec<u64>]) -> Vec<Option<u8>> {
    let k = confusion.len();
    let classes = confusion.first().map_or(0, Vec::len);
    let side = k.max(classes);
    let max = confusion.iter().flatten().copied().max().unwrap_or(0) as i64;
    // Minimize `max - count`; padding cells cost `max` (a count of zero).
    let mut cost = vec![vec![max; side]; side];
    for (c, row) in confusion.iter().enumerate() {
        for (d, &v) in row.iter().enumerate() {
            cost[c][d] = max - v as i64;
        }
    }
    let col_of_row = hungarian(&cost);
    (0..k)
        .map(|c| {
            let d = col_of_row[c];
            (d < classes).then_some(d as u8)
        })
        .collect()
}

/// Minimum-cost perfect assignment on a square cost matrix (Hungarian method
/// with row/column potentials, O(n³)). Returns the column assigned to each row.
pub fn hungarian(cost: &[Vec<i64>]) -> Vec<usize> {
    let n = cost.len();
    assert!(
        cost.iter().all(|r| r.len() == n),
        "hungarian: matrix not square"
    );
    // 1-based arrays; index 0 of the columns is a virtual start column.
    let inf = i64::MAX / 4;
    let mut u = vec![0i64; n + 1];
    let mut v = vec![0i64; n + 1];
    let mut row_of_col = vec![0usize; n + 1];
    let mut way = vec![0usize; n + 1];
    for i in 1..=n {
        row_of_col[0] = i;
        let mut j0 = 0usize;
        let mut minv = vec![inf; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let i0 = row_of_col[j0];
            let mut delta = inf;
            let mut j1 = 0usize;
            for j in 1..=n {
                if !used[j] {
                    let cur = cost[i0 - 1][j - 1] - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[row_of_col[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if row_of_col[j0] == 0 {
                break;
            }
        }
        // Augment along the alternating path back to the virtual column.
        loop {
            let j1 = way[j0];
            row_of_col[j0] = row_of_col[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut col_of_row = vec![0usize; n];
    for j in 1..=n {
        if row_of_col[j] > 0 {
            col_of_row[row_of_col[j] - 1] = j - 1;
        }
    }
    col_of_row
}

fn entropy(counts: impl Iterator<Item = u64>, n: f64) -> f64 {
    counts
        .filter(|&c| c > 0)
        .map(|c| {
            let p = c as f64 / n;
            -p * p.ln()
        })
        .sum()
}

fn marginals(confusion: &[Vec<u64>]) -> (Vec<u64>, Vec<u64>, u64) {
    let rows: Vec<u64> = confusion.iter().map(|r| r.iter().sum()).collect();
    let classes = confusion.first().map_or(0, Vec::len);
    let cols: Vec<u64> = (0..classes)
        .map(|d| confusion.iter().map(|r| r[d]).sum())
        .collect();
    let n = rows.iter().sum();
    (rows, cols, n)
}

fn nmi(confusion: &[Vec<u64>]) -> f64 {
    let (rows, cols, n) = marginals(confusion);
    if n == 0 {
        return 0.0;
    }
    let nf = n as f64;
    let hu = entropy(rows.iter().copied(), nf);
    let hv = entropy(cols.iter().copied(), nf);
    // Both partitions trivial (one class each): identical, as scikit-learn says.
    if hu == 0.0 && hv == 0.0 {
        return 1.0;
    }
    let mut mi = 0.0;
    for (c, row) in confusion.iter().enumerate() {
        for (d, &v) in row.iter().enumerate() {
            if v > 0 {
                let v = v as f64;
                mi += v / nf * (v * nf / (rows[c] as f64 * cols[d] as f64)).ln();
            }
        }
    }
    let denom = (hu + hv) / 2.0;
    (mi / denom).clamp(0.0, 1.0)
}

fn pairs(x: u64) -> f64 {
    let x = x as f64;
    x * (x - 1.0) / 2.0
}

fn ari(confusion: &[Vec<u64>]) -> f64 {
    let (rows, cols, n) = marginals(confusion);
    let index: f64 = confusion.iter().flatten().map(|&v| pairs(v)).sum();
    let a: f64 = rows.iter().map(|&v| pairs(v)).sum();
    let b: f64 = cols.iter().map(|&v| pairs(v)).sum();
    let total = pairs(n);
    if total == 0.0 {
        return 1.0;
    }
    let expected = a * b / total;
    let max = (a + b) / 2.0;
    if max == expected {
        // Both partitions trivial in the same way (all one cluster, or all singletons).
        return 1.0;
    }
    (index - expected) / (max - expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn permuted_perfect_clustering_scores_one() {
        let labels: Vec<u8> = (0..200).map(|i| (i % 10) as u8).collect();
        let perm = [3usize, 7, 0, 9, 1, 4, 8, 2, 6, 5];
        let pred: Vec<usize> = labels.iter().map(|&l| perm[l as usize]).collect();
        let e = evaluate(&pred, &labels, 10);
        assert!(
            close(e.acc, 1.0) && close(e.nmi, 1.0) && close(e.ari, 1.0),
            "{e:?}"
        );
        for (d, &c) in perm.iter().enumerate() {
            assert_eq!(e.cluster_to_label[c], Some(d as u8));
        }
        assert_eq!(e.sizes, vec![20; 10]);
    }

    #[test]
    fn small_example_matches_scikit_learn() {
        let pred = [0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 0, 1];
        let labels = [3, 3, 5, 5, 5, 7, 7, 7, 7, 3, 3, 5];
        let e = evaluate(&pred, &labels, 3);
        // scikit-learn 1.9.1: normalized_mutual_info_score(labels, pred) and
        // adjusted_rand_score(labels, pred); ACC from scipy's
        // linear_sum_assignment on the confusion matrix (9 of 12 matched).
        assert!((e.nmi - 0.48814049285708533).abs() < 1e-12, "{}", e.nmi);
        assert!((e.ari - 0.3125).abs() < 1e-12, "{}", e.ari);
        assert!(close(e.acc, 0.75), "{}", e.acc);
        assert_eq!(e.cluster_to_label, vec![Some(3), Some(5), Some(7)]);
        // Classes 0..=7: the largest label + 1.
        assert_eq!(e.confusion[2], vec![0, 0, 0, 1, 0, 0, 0, 3]);
        assert_eq!(e.classes(), 8);
        assert_eq!(e.sizes, vec![4, 4, 4]);
    }

    #[test]
    fn more_clusters_than_digits_leaves_extra_clusters_unmatched() {
        let pred = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 1];
        let labels = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 0, 1];
        let e = evaluate(&pred, &labels, 12);
        // Only one of clusters 9, 10, 11 (all digit 9) can keep digit 9: 12/14.
        assert!(close(e.acc, 12.0 / 14.0), "{}", e.acc);
        // scikit-learn 1.9.1 on the same arrays.
        assert!((e.nmi - 0.9493358093896505).abs() < 1e-12, "{}", e.nmi);
        assert!((e.ari - 0.5575364667747164).abs() < 1e-12, "{}", e.ari);
        assert_eq!(e.cluster_to_label.iter().filter(|m| m.is_none()).count(), 2);
        assert_eq!(e.cluster_to_label.len(), 12);
    }

    #[test]
    fn fewer_clusters_than_digits() {
        // Two clusters, four digits: cluster 0 holds digits 0,1 and cluster 1 digits 2,3.
        let pred = [0, 0, 0, 0, 0, 1, 1, 1, 1];
        let labels = [0, 0, 0, 1, 1, 2, 2, 3, 3];
        let e = evaluate(&pred, &labels, 2);
        // Best matching: cluster 0 -> digit 0 (3 points), cluster 1 -> 2 or 3 (2 points).
        assert!(close(e.acc, 5.0 / 9.0), "{}", e.acc);
        assert_eq!(e.cluster_to_label[0], Some(0));
        assert!(matches!(e.cluster_to_label[1], Some(2) | Some(3)));
    }

    #[test]
    fn hungarian_finds_the_optimum_that_greedy_misses() {
        // Greedy on the smallest entry takes (0,0)=1, then must take (1,1)=100: 101.
        // The optimum is (0,1)+(1,0) = 2 + 2 = 4.
        let cost = vec![vec![1, 2], vec![2, 100]];
        assert_eq!(hungarian(&cost), vec![1, 0]);
        // A 4x4 case checked by enumerating all 24 permutations.
        let cost = vec![
            vec![9, 2, 7, 8],
            vec![6, 4, 3, 7],
            vec![5, 8, 1, 8],
            vec![7, 6, 9, 4],
        ];
        let assignment = hungarian(&cost);
        let total: i64 = assignment
            .iter()
            .enumerate()
            .map(|(r, &c)| cost[r][c])
            .sum();
        let mut best = i64::MAX;
        let mut perm = [0usize, 1, 2, 3];
        permutations(&mut perm, 0, &mut |p| {
            best = best.min(p.iter().enumerate().map(|(r, &c)| cost[r][c]).sum());
        });
        assert_eq!(total, best);
        assert_eq!(best, 13);
    }

    fn permutations(p: &mut [usize; 4], i: usize, f: &mut dyn FnMut(&[usize; 4])) {
        if i == p.len() {
            f(p);
            return;
        }
        for j in i..p.len() {
            p.swap(i, j);
            permutations(p, i + 1, f);
            p.swap(i, j);
        }
    }

    #[test]
    fn table_and_summary_mention_the_figures() {
        let e = evaluate(&[0, 1, 1], &[4, 2, 2], 2);
        let t = e.confusion_table();
        assert_eq!(t.lines().count(), 4);
        assert!(
            t.lines().nth(2).unwrap().starts_with("| 0 | 4 | 1 |"),
            "{t}"
        );
        assert!(e.summary().contains("ACC 1.0000"), "{}", e.summary());
    }

    #[test]
    fn purity_lets_clusters_share_a_digit() {
        // Clusters 0 and 1 are both mostly 7s, cluster 2 is split 3/1.
        let pred = [0, 0, 0, 1, 1, 2, 2, 2, 2];
        let labels = [7, 7, 1, 7, 7, 3, 3, 3, 5];
        let ev = evaluate(&pred, &labels, 3);
        assert!((ev.purity() - 7.0 / 9.0).abs() < 1e-12, "{}", ev.purity());
        // One-to-one matching can give 7 to one cluster only.
        assert!(ev.acc < ev.purity());
        assert_eq!(evaluate(&[], &[], 2).purity(), 0.0);
    }
}

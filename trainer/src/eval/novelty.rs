//! The arithmetic of novelty scores (higher = more novel): the AUROC of a
//! score between two sets, the threshold at a percentile of training
//! scores, and per-cluster diagonal Gaussians of hidden activations.

/// The area under the ROC curve of `novel` against `known` scores: the
/// probability that a random novel image scores above a random known one,
/// ties counted half (the Mann–Whitney statistic, from tie-averaged
/// ranks). NaN when either set is empty.
pub fn auroc(known: &[f64], novel: &[f64]) -> f64 {
    if known.is_empty() || novel.is_empty() {
        return f64::NAN;
    }
    let mut all: Vec<(f64, bool)> = known
        .iter()
        .map(|&s| (s, false))
        .chain(novel.iter().map(|&s| (s, true)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sum of the novel scores' ranks (1-based), ties given their mean rank.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += mean_rank * all[i..=j].iter().filter(|e| e.1).count() as f64;
        i = j + 1;
    }
    let (n, m) = (novel.len() as f64, known.len() as f64);
    (rank_sum - n * (n + 1.0) / 2.0) / (n * m)
}

/// The `q`-th percentile (0–100) of `scores`, nearest rank: the smallest
/// score with at least q% of the scores at or below it. NaN when empty.
pub fn percentile(scores: &[f64], q: f64) -> f64 {
    if scores.is_empty() {
        return f64::NAN;
    }
    let mut s = scores.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((q / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

/// The share (0–1) of `sorted` (ascending) at or below `x`: the empirical
/// distribution function, which puts scores of different units on one
/// scale (0–1) for combining them.
pub fn empirical_cdf(sorted: &[f64], x: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.partition_point(|&s| s <= x) as f64 / sorted.len() as f64
}

/// The share (0–1) of `scores` above `threshold`.
pub fn share_above(scores: &[f64], threshold: f64) -> f64 {
    if scores.is_empty() {
        return f64::NAN;
    }
    scores.iter().filter(|&&s| s > threshold).count() as f64 / scores.len() as f64
}

/// One diagonal Gaussian per cluster over D-dimensional activations.
#[derive(Debug, Clone, PartialEq)]
pub struct DiagGaussians {
    /// Per cluster, the D means.
    pub means: Vec<Vec<f64>>,
    /// Per cluster, the D variances (floored).
    pub vars: Vec<Vec<f64>>,
}

impl DiagGaussians {
    /// Fits cluster `c`'s Gaussian on the rows whose `cluster` is `c`
    /// (maximum likelihood: the mean, the variance over n), each variance
    /// at least `floor_share` × the mean over units of the variance of all
    /// rows together (dead units, clusters of one image). A cluster no row
    /// falls in gets the Gaussian of all rows.
    pub fn fit(rows: &[Vec<f32>], cluster: &[usize], k: usize, floor_share: f64) -> Self {
        assert_eq!(rows.len(), cluster.len(), "a cluster per row");
        let d = rows.first().map_or(0, Vec::len);
        let moments = |pick: &dyn Fn(usize) -> bool| -> Option<(Vec<f64>, Vec<f64>)> {
            let chosen: Vec<&Vec<f32>> = (0..rows.len())
                .filter(|&i| pick(i))
                .map(|i| &rows[i])
                .collect();
            if chosen.is_empty() {
                return None;
            }
            let n = chosen.len() as f64;
            let mut mean = vec![0.0; d];
            for r in &chosen {
                mean.iter_mut()
                    .zip(r.iter())
                    .for_each(|(m, &v)| *m += v as f64 / n);
            }
            let mut var = vec![0.0; d];
            for r in &chosen {
                var.iter_mut()
                    .zip(r.iter().zip(&mean))
                    .for_each(|(s, (&v, m))| *s += (v as f64 - m).powi(2) / n);
            }
            Some((mean, var))
        };
        let (all_mean, all_var) = moments(&|_| true).unwrap_or_default();
        let floor = floor_share * all_var.iter().sum::<f64>() / d.max(1) as f64;
        let floor = if floor > 0.0 { floor } else { 1e-6 };
        let (mut means, mut vars) = (Vec::with_capacity(k), Vec::with_capacity(k));
        for c in 0..k {
            let (m, v) = moments(&|i| cluster[i] == c)
                .unwrap_or_else(|| (all_mean.clone(), all_var.clone()));
            means.push(m);
            vars.push(v.into_iter().map(|v| v.max(floor)).collect());
        }
        DiagGaussians { means, vars }
    }

    /// The negative log density of `x` under cluster `c`'s Gaussian:
    /// ½ Σ_d ((x_d − μ_d)² / σ²_d + ln(2π σ²_d)).
    pub fn neg_log_density(&self, c: usize, x: &[f32]) -> f64 {
        let ln_2pi = (2.0 * std::f64::consts::PI).ln();
        x.iter()
            .zip(self.means[c].iter().zip(&self.vars[c]))
            .map(|(&x, (m, v))| 0.5 * ((x as f64 - m).powi(2) / v + ln_2pi + v.ln()))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_of_hand_made_cases() {
        assert_eq!(auroc(&[0.0, 1.0], &[2.0, 3.0]), 1.0, "perfect");
        assert_eq!(auroc(&[2.0, 3.0], &[0.0, 1.0]), 0.0, "reversed");
        assert_eq!(auroc(&[1.0, 1.0], &[1.0, 1.0]), 0.5, "all tied");
        // Pairs (novel, known): 2>1, 2=2, 3>1, 3>2 → (3 + 0.5) / 4.
        assert_eq!(auroc(&[1.0, 2.0], &[2.0, 3.0]), 0.875);
        // Novel 0.5 beats 0 (1); 1.5 beats both (2); 1.0 beats 0, ties 1 (1.5).
        assert_eq!(
            auroc(&[0.0, 1.0], &[0.5, 1.5, 1.0]),
            (1.0 + 2.0 + 1.5) / 6.0
        );
        assert!(auroc(&[], &[1.0]).is_nan());
    }

    #[test]
    fn percentile_is_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), 2.0);
        assert_eq!(share_above(&v, 99.0), 0.01);
    }

    #[test]
    fn empirical_cdf_counts_scores_at_or_below() {
        let s = [1.0, 2.0, 2.0, 4.0];
        assert_eq!(empirical_cdf(&s, 0.5), 0.0);
        assert_eq!(empirical_cdf(&s, 2.0), 0.75);
        assert_eq!(empirical_cdf(&s, 3.0), 0.75);
        assert_eq!(empirical_cdf(&s, 9.0), 1.0);
    }

    #[test]
    fn diagonal_gaussian_matches_a_hand_computation() {
        // Cluster 0: rows (0, 2) and (2, 2): mean (1, 2), variances (1, 0);
        // the floor, 0.1 × the mean variance of all three rows, lifts the 0.
        let rows = vec![vec![0.0, 2.0], vec![2.0, 2.0], vec![10.0, 4.0]];
        let g = DiagGaussians::fit(&rows, &[0, 0, 1], 3, 0.1);
        assert_eq!(g.means[0], vec![1.0, 2.0]);
        let mean_x = 4.0;
        let var_x = (16.0 + 4.0 + 36.0) / 3.0;
        let mean_y = 8.0 / 3.0;
        let var_y = (2.0 * (2.0f64 - mean_y).powi(2) + (4.0 - mean_y).powi(2)) / 3.0;
        let floor = 0.1 * (var_x + var_y) / 2.0;
        assert!((g.vars[0][0] - 1.0).abs() < 1e-12);
        assert!((g.vars[0][1] - floor).abs() < 1e-12);
        // Cluster 2 has no rows: the Gaussian of all rows.
        assert!((g.means[2][0] - mean_x).abs() < 1e-12);
        assert!((g.vars[2][0] - var_x).abs() < 1e-12);
        // −log N((3, 2); (1, 2), diag(1, floor)) by hand.
        let ln_2pi = (2.0 * std::f64::consts::PI).ln();
        let want = 0.5 * (4.0 / 1.0 + ln_2pi + 0.0) + 0.5 * (0.0 + ln_2pi + floor.ln());
        assert!((g.neg_log_density(0, &[3.0, 2.0]) - want).abs() < 1e-9);
    }
}

//! The novelty section of an exported model (`engine/FORMAT.md`,
//! *Novelty*), fitted on training images only, never on labels.
//!
//! 1. The gate (the model's f32 weights) runs on the training images: its
//!    last hidden layer `h` and its softmax `p` for each.
//! 2. Per cluster (the gate's argmax), a diagonal Gaussian over `h`: the
//!    mean and the variance of each unit, each variance at least
//!    [`VAR_FLOOR_SHARE`] of the unit's mean variance over all images (dead
//!    units, small clusters).
//! 3. Two scores per image: its cluster's distance `½ Σ (h − μ)² / σ²`
//!    (out of fold: under Gaussians fitted without it, see
//!    [`out_of_fold_distances`]) and the gate's doubt `1 − max p`. Each image's rank is the larger of its
//!    two ranks (its distance's among its cluster's, its doubt's among
//!    all); the quantile `q` is that rank's [`FLAGGED_PERCENTILE`]th
//!    percentile, and every threshold (each cluster's distance, the doubt)
//!    sits at quantile `q` of its own scores. So an image is flagged when
//!    either score passes its threshold, and about 1% of the training
//!    images are.
//!
//! Why these two (docs/measurements/novelty.md, `trainer experiment
//! novelty`): the distance flags noise, inverted digits and strokes at
//! almost no cost and misses blank frames; the doubt flags blank frames.

use engine::writer::{NoveltySpec, TwoLevelSpec};

use crate::eval::novelty::{empirical_cdf, percentile, DiagGaussians};
use crate::eval::reference::{GateOutputs, ReferenceModel};

/// Each variance of a cluster's Gaussian is at least this share of the
/// unit's mean variance over all training images.
pub const VAR_FLOOR_SHARE: f64 = 0.01;

/// The percentile of the training images' combined ranks the thresholds
/// sit at: 99, so that about 1% of real digits are flagged.
pub const FLAGGED_PERCENTILE: f64 = 99.0;

/// Smallest threshold written (a threshold must be positive).
const MIN_THRESHOLD: f64 = 1e-6;

/// A fitted novelty section and how it was fitted.
#[derive(Debug, Clone)]
pub struct Fitted {
    /// What the model file carries.
    pub spec: NoveltySpec,
    /// Training images it was fitted on.
    pub images: usize,
    /// The quantile (0–1) every threshold sits at.
    pub quantile: f64,
    /// Each cluster's threshold on `½ Σ (h − μ)² / σ²`.
    pub distance_thresholds: Vec<f64>,
    /// Share (0–1) of the training images flagged.
    pub flagged: f64,
}

/// The gate's outputs on `n` training images of `pixels` (bytes).
pub fn gate_outputs(spec: &TwoLevelSpec, pixels: &[u8], n: usize) -> anyhow::Result<GateOutputs> {
    if spec.model.gate.len() < 2 {
        anyhow::bail!("the gate has no hidden layer: no novelty score (use --no-novelty)");
    }
    let reference = ReferenceModel::from_two_level(spec, &candle_core::Device::Cpu)?;
    reference.gate_hidden(pixels, n)
}

/// Fits the section of `spec` on `n` training images (`pixels`, bytes).
pub fn fit(spec: &TwoLevelSpec, pixels: &[u8], n: usize) -> anyhow::Result<Fitted> {
    if n == 0 {
        anyhow::bail!("no training images to fit the novelty score on");
    }
    let k = spec.model.mixture_weights.len();
    Ok(fit_outputs(&gate_outputs(spec, pixels, n)?, k))
}

/// [`fit`] on the gate's outputs of the training images, `k` clusters.
pub fn fit_outputs(gate: &GateOutputs, k: usize) -> Fitted {
    let clusters = gate.argmax();
    let gauss = DiagGaussians::fit(&gate.hidden, &clusters, k, VAR_FLOOR_SHARE);
    let distances = out_of_fold_distances(gate, &clusters, k);
    let doubts: Vec<f64> = gate
        .probabilities
        .iter()
        .zip(&clusters)
        .map(|(p, &c)| 1.0 - p[c] as f64)
        .collect();
    // Each cluster's distances, sorted, for the within-cluster ranks.
    let mut per_cluster: Vec<Vec<f64>> = vec![Vec::new(); k];
    for (&d, &c) in distances.iter().zip(&clusters) {
        per_cluster[c].push(d);
    }
    per_cluster
        .iter_mut()
        .for_each(|v| v.sort_by(f64::total_cmp));
    let mut sorted_doubts = doubts.clone();
    sorted_doubts.sort_by(f64::total_cmp);
    let ranks: Vec<f64> = distances
        .iter()
        .zip(&doubts)
        .zip(&clusters)
        .map(|((&d, &u), &c)| {
            empirical_cdf(&per_cluster[c], d).max(empirical_cdf(&sorted_doubts, u))
        })
        .collect();
    let quantile = percentile(&ranks, FLAGGED_PERCENTILE);
    let all_distances = percentile(&distances, 100.0 * quantile);
    let distance_thresholds: Vec<f64> = per_cluster
        .iter()
        .map(|d| {
            // A cluster no training image falls in takes the thresholds'
            // quantile over all images.
            let t = if d.is_empty() {
                all_distances
            } else {
                percentile(d, 100.0 * quantile)
            };
            t.max(MIN_THRESHOLD)
        })
        .collect();
    let doubt_threshold = percentile(&doubts, 100.0 * quantile).clamp(MIN_THRESHOLD, 1.0);
    let flagged = distances
        .iter()
        .zip(&doubts)
        .zip(&clusters)
        .filter(|((&d, &u), &c)| d > distance_thresholds[c] || u > doubt_threshold)
        .count() as f64
        / distances.len().max(1) as f64;
    let to_f32 = |v: &[Vec<f64>]| -> Vec<Vec<f32>> {
        v.iter()
            .map(|r| r.iter().map(|&x| x as f32).collect())
            .collect()
    };
    let thresholds: Vec<f32> = distance_thresholds.iter().map(|&t| t as f32).collect();
    Fitted {
        spec: NoveltySpec::from_gaussians(
            &to_f32(&gauss.means),
            &to_f32(&gauss.vars),
            &thresholds,
            doubt_threshold as f32,
        ),
        images: distances.len(),
        quantile,
        distance_thresholds,
        flagged,
    }
}

/// The engine's novelty of each of `n` images (`pixels`, bytes) with the
/// model file `bytes` (`None` per image when the file has no section).
pub fn engine_scores(
    bytes: &[u8],
    pixels: &[u8],
    n: usize,
) -> anyhow::Result<Vec<Option<engine::Novelty>>> {
    let model = crate::eval::host::parse(bytes, "exported model")?;
    anyhow::ensure!(
        pixels.len() == n * model.pixels(),
        "{} bytes for {n} images of {} pixels",
        pixels.len(),
        model.pixels()
    );
    Ok(engine::host::classify_all(&model, pixels)?
        .into_iter()
        .map(|c| c.novelty)
        .collect())
}

/// The report's section on the novelty score: how it was fitted, and on
/// the test images the share each exported file flags and how closely its
/// score follows the f32 model's.
pub fn report(
    fitted: &Fitted,
    spec: &TwoLevelSpec,
    test_pixels: &[u8],
    test_n: usize,
    files: &[(&str, &[u8])],
) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    let gate = gate_outputs(spec, test_pixels, test_n)?;
    let reference: Vec<engine::Novelty> = gate
        .hidden
        .iter()
        .zip(&gate.probabilities)
        .map(|(h, p)| fitted.spec.novelty(p, h))
        .collect();
    let share = |known: &mut dyn Iterator<Item = bool>| {
        let (mut flagged, mut all) = (0usize, 0usize);
        for k in known {
            flagged += usize::from(!k);
            all += 1;
        }
        100.0 * flagged as f64 / all.max(1) as f64
    };
    let mut r = String::new();
    let _ = writeln!(
        r,
        "
## Novelty score

Fitted on {} training images (no labels): per cluster a diagonal Gaussian over the gate's last hidden layer ({} units), and the gate's doubt 1 − max p; both thresholds at quantile {:.4} of their training scores, so that {:.2}% of the training images are flagged (goal: 1%). Doubt threshold {:.4}; distance thresholds per cluster {}. `engine/FORMAT.md`, *Novelty*.
",
        fitted.images,
        fitted.spec.means.first().map_or(0, Vec::len),
        fitted.quantile,
        100.0 * fitted.flagged,
        fitted.spec.doubt_threshold,
        fitted
            .distance_thresholds
            .iter()
            .map(|t| format!("{t:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        r,
        "| model | test images flagged | same verdict as f32 | score: median / largest difference from f32 (relative) |
|---|---:|---:|---:|
| f32 model | {:.2}% | – | – |",
        share(&mut reference.iter().map(|n| n.known))
    );
    for (name, bytes) in files {
        let got = engine_scores(bytes, test_pixels, test_n)?;
        let mut diffs: Vec<f64> = got
            .iter()
            .zip(&reference)
            .filter_map(|(g, r)| {
                g.map(|g| ((g.score - r.score).abs() / r.score.abs().max(1.0)) as f64)
            })
            .collect();
        diffs.sort_by(f64::total_cmp);
        let same = got
            .iter()
            .zip(&reference)
            .filter(|(g, r)| g.is_some_and(|g| g.known == r.known))
            .count();
        let _ = writeln!(
            r,
            "| {name} | {:.2}% | {:.2}% | {:.2e} / {:.2e} |",
            share(&mut got.iter().map(|n| n.is_none_or(|n| n.known))),
            100.0 * same as f64 / test_n.max(1) as f64,
            diffs.get(diffs.len() / 2).copied().unwrap_or(f64::NAN),
            diffs.last().copied().unwrap_or(f64::NAN)
        );
    }
    Ok(r)
}

/// Folds of the out-of-fold distances.
const FOLDS: usize = 5;

/// Each image's distance under Gaussians fitted without it: image `i`
/// is in fold `i mod 5`, scored by the Gaussians of the other four. A
/// Gaussian scores the images it was fitted on as closer than new ones
/// (256 variances from a few hundred images of a small cluster fit them
/// closely), so thresholds from in-sample distances flag far more than 1%
/// of new digits on small sets; out of fold they do not. The file's
/// Gaussians are then fitted on all the images (a little tighter still:
/// if anything, new digits are flagged a little less).
fn out_of_fold_distances(gate: &GateOutputs, clusters: &[usize], k: usize) -> Vec<f64> {
    let n = gate.hidden.len();
    let mut distances = vec![0.0; n];
    for fold in 0..FOLDS.min(n) {
        let (mut rows, mut of) = (Vec::new(), Vec::new());
        for i in (0..n).filter(|i| i % FOLDS != fold) {
            rows.push(gate.hidden[i].clone());
            of.push(clusters[i]);
        }
        let gauss = DiagGaussians::fit(&rows, &of, k, VAR_FLOOR_SHARE);
        for i in (fold..n).step_by(FOLDS) {
            distances[i] = mahalanobis(&gauss, clusters[i], &gate.hidden[i]);
        }
    }
    distances
}

/// `½ Σ (h − μ)² / σ²` of cluster `c`'s Gaussian.
fn mahalanobis(gauss: &DiagGaussians, c: usize, h: &[f32]) -> f64 {
    h.iter()
        .zip(gauss.means[c].iter().zip(&gauss.vars[c]))
        .map(|(&x, (m, v))| 0.5 * (x as f64 - m).powi(2) / v)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Two clusters of hidden rows around 0 and 5, the softmax confident.
    fn outputs(n: usize, seed: u64) -> GateOutputs {
        let mut rng = Rng::new(seed, 0);
        let mut out = GateOutputs::default();
        for i in 0..n {
            let c = i % 2;
            let centre = 5.0 * c as f32;
            out.hidden
                .push((0..4).map(|_| centre + rng.normal() as f32).collect());
            let confident = rng.uniform(0.9, 1.0) as f32;
            let mut p = vec![1.0 - confident; 2];
            p[c] = confident;
            out.probabilities.push(p);
        }
        out
    }

    #[test]
    fn about_one_percent_of_the_training_images_are_flagged() {
        let fitted = fit_outputs(&outputs(4000, 1), 2);
        assert!(
            (0.005..=0.015).contains(&fitted.flagged),
            "{}",
            fitted.flagged
        );
        assert!(
            fitted.quantile > 0.99 && fitted.quantile < 1.0,
            "{}",
            fitted.quantile
        );
        // The section's arithmetic on the training images: about as many
        // flagged (fewer, if anything: the thresholds come from distances
        // out of fold, the file's Gaussians from all the images).
        let gate = outputs(4000, 1);
        let spec = &fitted.spec;
        let flagged = gate
            .hidden
            .iter()
            .zip(&gate.probabilities)
            .filter(|(h, p)| !spec.novelty(p, h).known)
            .count() as f64
            / 4000.0;
        assert!(
            (flagged - fitted.flagged).abs() < 0.002,
            "{flagged} vs {}",
            fitted.flagged
        );
        // New images from the same clusters: about 1% flagged; far ones all.
        let fresh = outputs(4000, 2);
        let share = fresh
            .hidden
            .iter()
            .zip(&fresh.probabilities)
            .filter(|(h, p)| !spec.novelty(p, h).known)
            .count() as f64
            / 4000.0;
        assert!(share < 0.03, "{share}");
        assert!(!spec.novelty(&[0.95, 0.05], &[20.0; 4]).known);
        // An image the gate cannot place is flagged by its doubt alone.
        assert!(!spec.novelty(&[0.5, 0.5], &[0.0; 4]).known);
    }

    #[test]
    fn a_cluster_with_no_images_gets_the_overall_threshold() {
        let fitted = fit_outputs(&outputs(400, 3), 3);
        assert_eq!(fitted.distance_thresholds.len(), 3);
        assert!(fitted
            .distance_thresholds
            .iter()
            .all(|t| t.is_finite() && *t > 0.0));
        assert_eq!(fitted.spec.means.len(), 3);
    }
}

//! `--styles auto`: which styles each digit expert keeps. The two-level
//! model is trained with S styles under every digit expert; then, on
//! training images held out of training ([`HELD_OUT_SHARE`]), each digit
//! expert drops, one at a time, the style whose loss costs the held-out
//! likelihood least, as long as that cost is not clearly above
//! [`MARGIN_NATS`] per image (TreeVAE grows a leaf where it pays; this
//! prunes one where it does not).
//!
//! The score of a set of styles `K` on an image `x` of the digit expert is
//! the bound `log Σ_{s∈K} w_s exp(ELBO_s(x))` on the log-likelihood of the
//! digit expert's mixture (`w` the styles' training shares, renormalized
//! over `K`). A style is kept when the mean per-image drop from removing
//! it, less two standard errors, exceeds the margin.

use serde::{Deserialize, Serialize};

/// The share of the training images held out of a two-level run's training
/// to decide its styles (1 in 20: 3,000 of MNIST's 60,000).
pub const HELD_OUT_SHARE: usize = 20;

/// Nats per image a style must add to the held-out bound to be kept: about
/// 1% of a digit's negative ELBO (about 100 nats on MNIST).
pub const MARGIN_NATS: f64 = 1.0;

/// What the pruning found for one digit expert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StyleDecision {
    /// Held-out images routed to the digit expert.
    pub images: usize,
    /// The styles kept, in order.
    pub kept: Vec<usize>,
    /// For each style removed, in the order it was: the style, the mean
    /// per-image loss of the bound (nats) and its standard error.
    pub dropped: Vec<(usize, f64, f64)>,
    /// When more than one style is kept, the smallest loss (mean, standard
    /// error) that removing one of them would have cost.
    pub kept_gain: Option<(f64, f64)>,
}

/// `log Σ_{s∈kept} w_s exp(elbo[s])` with `w` renormalized over `kept`.
fn bound(elbo: &[f32], weights: &[f64], kept: &[usize]) -> f64 {
    let total: f64 = kept.iter().map(|&s| weights[s]).sum::<f64>().max(1e-12);
    let terms: Vec<f64> = kept
        .iter()
        .map(|&s| (weights[s] / total).max(1e-12).ln() + elbo[s] as f64)
        .collect();
    crate::util::log_sum_exp(&terms)
}

/// Mean and standard error of `v`.
fn mean_se(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, (var / n).sqrt())
}

/// Decides one digit expert's styles from its held-out images' per-style
/// ELBOs (`elbos[i][s]`) and its styles' training counts.
pub fn decide(elbos: &[Vec<f32>], counts: &[usize]) -> StyleDecision {
    let styles = counts.len();
    let total = counts.iter().sum::<usize>().max(1) as f64;
    // A style no training image took still has a small weight, so that it
    // can be scored (and dropped).
    let weights: Vec<f64> = counts
        .iter()
        .map(|&c| (c as f64 + 0.5) / (total + 0.5 * styles as f64))
        .collect();
    let mut kept: Vec<usize> = (0..styles).collect();
    let mut dropped = Vec::new();
    let mut kept_gain = None;
    while kept.len() > 1 && !elbos.is_empty() {
        let full: Vec<f64> = elbos.iter().map(|e| bound(e, &weights, &kept)).collect();
        let cost = |s: usize| -> (f64, f64) {
            let rest: Vec<usize> = kept.iter().copied().filter(|&k| k != s).collect();
            let d: Vec<f64> = elbos
                .iter()
                .zip(&full)
                .map(|(e, f)| f - bound(e, &weights, &rest))
                .collect();
            mean_se(&d)
        };
        let (s, (mean, se)) = kept
            .iter()
            .map(|&s| (s, cost(s)))
            .min_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
            .expect("at least two styles are kept");
        if mean - 2.0 * se > MARGIN_NATS {
            kept_gain = Some((mean, se));
            break;
        }
        kept.retain(|&k| k != s);
        dropped.push((s, mean, se));
    }
    StyleDecision {
        images: elbos.len(),
        kept,
        dropped,
        kept_gain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_style_that_explains_its_images_is_kept() {
        // Half the images are far better explained by style 0, half by
        // style 1: each style gains about ln(1/2) + 50 nats on its half.
        let elbos: Vec<Vec<f32>> = (0..100)
            .map(|i| {
                if i % 2 == 0 {
                    vec![-100.0, -150.0]
                } else {
                    vec![-150.0, -100.0]
                }
            })
            .collect();
        let d = decide(&elbos, &[50, 50]);
        assert_eq!(d.kept, vec![0, 1]);
        let (mean, se) = d.kept_gain.unwrap();
        // Removing a style costs −ln 2 on the images of the other (whose
        // weight goes from 1/2 to 1) and 50 − ln 2 on its own: 25 − ln 2.
        assert!((mean - (25.0 - 2f64.ln())).abs() < 0.01, "{mean}");
        assert!(se > 0.0);
    }

    #[test]
    fn a_redundant_style_is_dropped() {
        // Both styles explain every image equally: removing one costs
        // nothing (log(w0·e^a + w1·e^a) = a = log(1·e^a)).
        let elbos: Vec<Vec<f32>> = (0..100).map(|i| vec![-100.0 - i as f32; 2]).collect();
        let d = decide(&elbos, &[70, 30]);
        assert_eq!(d.kept.len(), 1);
        assert_eq!(d.dropped.len(), 1);
        assert!(d.dropped[0].1.abs() < 1e-9);
        assert!(d.kept_gain.is_none());
    }

    #[test]
    fn no_held_out_images_keep_every_style() {
        let d = decide(&[], &[3, 4, 5]);
        assert_eq!(d.kept, vec![0, 1, 2]);
    }
}

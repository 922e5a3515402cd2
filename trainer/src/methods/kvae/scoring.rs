//! Step (c): every point scored against every VAE ([`Scorer`]), the
//! per-model normalisation, and the move to the best VAE under the prior
//! and load-balancing rules; [`reassign_round`] runs steps (b) and (c).

use candle_core::{Device, Result, D};

use super::batching::shares;
use super::config::KVaeConfig;
use super::discriminators::{
    train_discriminators, train_generator_classifier, DiscNet, DiscTraining,
};
use super::training::RoundContext;
use super::vae::VaeNets;
use crate::data::Points;
use crate::nn::adam::Adam;
use crate::rng::Rng;

/// How step (c) scores a point against generator j.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scorer {
    /// `log((1 − D_j(x))/D_j(x)) = −logit_j(x)` from trained discriminators
    /// (the method of the design document).
    Discriminator,
    /// `log p_gj(x)` estimated by importance sampling with this many samples:
    /// the limit of a perfect discriminator (`log p_d(x)` is common to all j).
    Likelihood {
        /// Importance samples per point.
        samples: usize,
    },
    /// `log C(j | x)` from one persistent K-way classifier trained to tell
    /// which VAE made a sample (equal numbers from each): with equal
    /// shares its Bayes optimum is `p_gj(x) / Σ_i p_gi(x)`, the posterior
    /// over generators, without the real data's density in the ratio.
    Classifier,
}

impl Scorer {
    /// Whether the scorer is the per-VAE discriminators.
    pub fn uses_discriminators(self) -> bool {
        self == Scorer::Discriminator
    }
}

/// `[n][k]` scores `log p_gj(x)/p_d(x)` (up to a per-point constant) of
/// every point: `−logit_j(x)` from discriminators, or the importance-sampled
/// log-likelihood.
pub fn scores(
    scorer: Scorer,
    disc: Option<&dyn DiscNet>,
    vaes: &dyn VaeNets,
    data: &Points,
    rng: &mut Rng,
    device: &Device,
) -> Result<Vec<Vec<f32>>> {
    let k = vaes.k();
    let chunk = match (scorer, disc) {
        (Scorer::Discriminator | Scorer::Classifier, Some(d)) => d.chunk(),
        _ => 256,
    };
    let mut out = vec![vec![0f32; k]; data.n];
    let mut start = 0;
    while start < data.n {
        let len = chunk.min(data.n - start);
        let x = data.slice(start, len, device)?;
        match scorer {
            Scorer::Discriminator => {
                let disc = disc.expect("discriminator scores need discriminators");
                let xk = x
                    .unsqueeze(0)?
                    .broadcast_as((k, len, data.dim))?
                    .contiguous()?;
                let logits = disc.forward(&xk)?.squeeze(D::Minus1)?.to_vec2::<f32>()?; // [K][len]
                for (j, row) in logits.iter().enumerate() {
                    for (b, &l) in row.iter().enumerate() {
                        out[start + b][j] = -l;
                    }
                }
            }
            Scorer::Classifier => {
                let disc = disc.expect("classifier scores need the classifier");
                let logits = disc.forward(&x.unsqueeze(0)?)?.squeeze(0)?;
                let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?.to_vec2::<f32>()?;
                for (b, row) in logp.into_iter().enumerate() {
                    out[start + b] = row;
                }
            }
            Scorer::Likelihood { samples } => {
                let ll = vaes.log_likelihood_is(&x, samples, rng)?;
                for (j, row) in ll.iter().enumerate() {
                    for (b, &v) in row.iter().enumerate() {
                        out[start + b][j] = v as f32;
                    }
                }
            }
        }
        start += len;
    }
    Ok(out)
}

/// Subtracts from each model's column of `scores` (`[n][k]`) its
/// log-sum-exp over the points: `s_j(x) − log Σ_i exp s_j(x_i)`, the log of
/// the authors' `p_j(x) / Σ_i p_j(x_i)`. A generator whose ratios are small
/// everywhere (one the discriminator finds easy to tell) is lifted, so that
/// what decides is where each model is relatively strong.
pub fn normalise_per_model(scores: &mut [Vec<f32>]) {
    let k = scores.first().map_or(0, Vec::len);
    for j in 0..k {
        let max = scores
            .iter()
            .map(|s| s[j])
            .fold(f32::NEG_INFINITY, f32::max);
        if !max.is_finite() {
            continue;
        }
        let sum: f64 = scores.iter().map(|s| f64::from(s[j] - max).exp()).sum();
        let lse = f64::from(max) + sum.ln();
        for s in scores.iter_mut() {
            s[j] = (f64::from(s[j]) - lse) as f32;
        }
    }
}

/// Step (c): each point goes to its best-scoring VAE (`log α_j` added to the
/// scores when `priors` is given). A VAE that would end up with fewer than
/// `min_points` points keeps its previous points instead (load balancing).
/// Returns the new assignment and the number of VAEs held that way.
pub fn reassign(
    scores: &[Vec<f32>],
    previous: &[usize],
    priors: Option<&[f64]>,
    min_points: usize,
) -> (Vec<usize>, usize) {
    let k = scores.first().map_or(0, Vec::len);
    let log_prior: Vec<f32> = match priors {
        Some(p) => p.iter().map(|&a| (a.max(1e-12)).ln() as f32).collect(),
        None => vec![0.0; k],
    };
    let mut next: Vec<usize> = scores
        .iter()
        .map(|s| {
            let mut best = 0;
            for j in 1..k {
                if s[j] + log_prior[j] > s[best] + log_prior[best] {
                    best = j;
                }
            }
            best
        })
        .collect();
    let mut sizes = vec![0usize; k];
    for &a in &next {
        sizes[a] += 1;
    }
    let starved: Vec<bool> = sizes.iter().map(|&s| s < min_points).collect();
    for (n, &p) in next.iter_mut().zip(previous) {
        if starved[p] {
            *n = p;
        }
    }
    (next, starved.iter().filter(|&&s| s).count())
}

/// What steps (b) and (c) of a round did.
#[derive(Debug, Clone, PartialEq)]
pub struct Reassignment {
    /// The new VAE of every point.
    pub assignment: Vec<usize>,
    /// Mean discriminator loss at the end of step (b) (`None` when the
    /// scorer needs no discriminators).
    pub disc_loss: Option<f64>,
    /// Points that changed VAE.
    pub moved: usize,
    /// VAEs whose reassignment load balancing undid.
    pub held: usize,
}

/// Steps (b) and (c) of a round: trains the discriminators (when they
/// score), scores every point against every VAE and moves it to the best
/// one, under `cfg`'s prior and load-balancing rule.
pub fn reassign_round(
    cfg: &KVaeConfig,
    disc: &dyn DiscNet,
    disc_opt: &mut Adam,
    vaes: &dyn VaeNets,
    assignment: &[usize],
    ctx: &mut RoundContext,
) -> Result<Reassignment> {
    let k = vaes.k();
    let min_points = (cfg.min_share * ctx.data.n as f64 / k as f64).ceil() as usize;
    let training = DiscTraining::of(cfg);
    let disc_loss = match cfg.scorer {
        Scorer::Discriminator => Some(train_discriminators(disc, disc_opt, vaes, training, ctx)?),
        Scorer::Classifier => Some(train_generator_classifier(
            disc, disc_opt, vaes, training, ctx.rng, ctx.device,
        )?),
        Scorer::Likelihood { .. } => None,
    };
    let mut s = scores(cfg.scorer, Some(disc), vaes, ctx.data, ctx.rng, ctx.device)?;
    cfg.score_rule.apply(&mut s);
    let priors = cfg.prior.then(|| shares(assignment, k));
    let (next, held) = reassign(&s, assignment, priors.as_deref(), min_points);
    let moved = next.iter().zip(assignment).filter(|(a, b)| a != b).count();
    Ok(Reassignment {
        assignment: next,
        disc_loss,
        moved,
        held,
    })
}

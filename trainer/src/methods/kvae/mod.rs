//! kVAE: k VAEs trained competitively ("Clustering meets implicit generative
//! models"). Each VAE learns only the points assigned to it, and points move
//! to the generator most likely to have produced them.
//!
//! 1. **Pretrain**: every VAE on the whole data, each from its own seed (the
//!    authors' code), or on its part of a uniformly random split.
//! 2. **Rounds**: (a) train each VAE on its points for a fixed number of
//!    steps (the same for every VAE, whatever its cluster's size); (b) update
//!    discriminator D_j, which tells real points (drawn from all the data)
//!    from samples of VAE j; (c) move every point x to
//!    `argmax_j s_j(x)` with `s_j(x) = log((1 − D_j(x)) / D_j(x)) = −logit_j(x)`.
//!    `(1 − D_j)/D_j` estimates `p_gj(x)/p_d(x)`, so the argmax picks the
//!    generator most likely to have produced x.
//!
//! The recipe on MNIST follows the authors' code: the discriminators persist
//! across rounds and are deliberately undertrained (one minibatch of 32 real
//! and 32 generated images per round; trained longer they tell generated
//! images by their blur alone and call every real point "real"), and each
//! model's ratios are normalised over the training set,
//! `s_j(x) − logsumexp_i s_j(x_i)`, which lifts weaker generators so they can
//! compete. A VAE left with no more than a batch of points is no longer
//! trained. Optional levers, off by default: `log α_j` added to the scores,
//! holding a VAE's points when it would fall below a share of `n / k`, and
//! instance noise on the discriminators' inputs.
//! 3. **Gate**: a classifier for new inputs is distilled from the final
//!    assignment (cross-entropy); it is the gate of the exported model, whose
//!    decoders are the k VAEs' decoders (`engine::Method::KVae`).
//!
//! With an identity decoder and a constant encoder, step (a) moves each
//! decoder's offset to the mean of its points and step (c) (with the exact
//! density ratio) assigns each point to the nearest offset: k-means. The
//! tests in `trainer/tests/kvae_kmeans.rs` check both halves.

pub mod config;
pub mod conv;
pub mod method;
pub mod vae;

use std::time::Instant;

use candle_core::{DType, Device, Result, Tensor, D};
use engine::writer::ModelSpec;

use crate::nn::adam::{Adam, AdamConfig};
use crate::nn::layers::{Activation, BatchedMlp, Gate};
use crate::nn::likelihood::bce_with_logits;
use crate::nn::params::Params;
use crate::rng::Rng;
pub use vae::{Observation, VaeNets, VaeShape, VaeStack};

/// Row-major points in host memory (images scaled to [0, 1]).
#[derive(Debug, Clone, PartialEq)]
pub struct Points {
    /// `n * dim` values.
    pub x: Vec<f32>,
    /// Number of points.
    pub n: usize,
    /// Values per point.
    pub dim: usize,
}

impl Points {
    /// Points from a flat vector of `n * dim` values.
    pub fn new(x: Vec<f32>, dim: usize) -> Self {
        assert!(
            dim > 0 && x.len().is_multiple_of(dim),
            "{} values are not rows of {dim}",
            x.len()
        );
        Points {
            n: x.len() / dim,
            x,
            dim,
        }
    }

    /// Greyscale images, bytes scaled by 1/255 (the engine's convention).
    pub fn from_images(images: &crate::data::Images) -> Self {
        Points::from_pixels(&images.pixels, images.pixels_per_image())
    }

    /// Images of `dim` 8-bit pixels one after another, scaled by 1/255.
    pub fn from_pixels(pixels: &[u8], dim: usize) -> Self {
        Points::new(pixels.iter().map(|&p| p as f32 / 255.0).collect(), dim)
    }

    /// Point `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.dim..(i + 1) * self.dim]
    }

    /// Rows `start..start+len` as a `[len, dim]` tensor.
    pub fn slice(&self, start: usize, len: usize, device: &Device) -> Result<Tensor> {
        Tensor::from_slice(
            &self.x[start * self.dim..(start + len) * self.dim],
            (len, self.dim),
            device,
        )
    }

    /// A `[K, B, dim]` tensor whose row k holds the points `index[k]`.
    pub fn gather(&self, index: &[Vec<usize>], device: &Device) -> Result<Tensor> {
        let b = index.first().map_or(0, Vec::len);
        let mut out = Vec::with_capacity(index.len() * b * self.dim);
        for rows in index {
            debug_assert_eq!(rows.len(), b);
            for &i in rows {
                out.extend_from_slice(self.row(i));
            }
        }
        Tensor::from_vec(out, (index.len(), b, self.dim), device)
    }
}

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

/// Where the VAEs start before the first reassignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pretrain {
    /// Every VAE trains on all the points, from its own initial weights
    /// (the authors' code): the first reassignment splits the data.
    Full,
    /// VAE j trains on part j of a uniformly random split.
    RandomSplit,
    /// VAE j trains on part j of the mixture's label-free partition
    /// (autoencoder codes clustered by UMAP, [`crate::init`]): beyond the
    /// paper, which starts at random. `trainer fit` only (it caches the
    /// partition in the run directory).
    Partition,
}

/// Everything that shapes a kVAE run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KVaeConfig {
    /// Number of VAEs k.
    pub k: usize,
    /// Shape of each VAE.
    pub vae: VaeShape,
    /// What the VAEs train on before the first reassignment.
    pub pretrain: Pretrain,
    /// Optimizer steps of every VAE before the first reassignment.
    pub pretrain_steps: usize,
    /// Reassignment rounds.
    pub rounds: usize,
    /// Optimizer steps of every VAE in step (a) of each round, whatever the
    /// size of its cluster.
    pub round_steps: usize,
    /// Hidden widths of each discriminator.
    pub disc_hidden: Vec<usize>,
    /// Discriminator updates in step (b) of each round; the discriminators
    /// persist from round to round.
    pub disc_steps: usize,
    /// Real and generated points per discriminator and update (each).
    pub disc_batch: usize,
    /// Standard deviation of Gaussian noise added to the discriminators'
    /// inputs in training (instance noise; 0 = off).
    pub disc_noise: f64,
    /// How points are scored in step (c).
    pub scorer: Scorer,
    /// Normalise each model's ratios over the training set (subtract
    /// `logsumexp_i s_j(x_i)`), as the authors do.
    pub normalise: bool,
    /// Add `log α_j` to the scores.
    pub prior: bool,
    /// Load balancing: a VAE that would keep fewer than `min_share · n / k`
    /// points keeps its previous points instead (0 = off).
    pub min_share: f64,
    /// A VAE with no more than `batch` points is no longer trained.
    pub freeze_small: bool,
    /// Points per VAE per step.
    pub batch: usize,
    /// Adam learning rate (VAEs, discriminators and gate).
    pub lr: f64,
    /// Hidden widths of the distilled gate (images only).
    pub gate_hidden: Vec<usize>,
    /// Epochs of gate distillation (0 = no gate).
    pub gate_epochs: usize,
    /// Seed of every random draw.
    pub seed: u64,
}

impl KVaeConfig {
    /// Steps of every VAE in the whole run.
    pub fn steps_per_vae(&self) -> usize {
        self.pretrain_steps + self.rounds * self.round_steps
    }
}

/// What happened in one round (round 0 is the pretraining).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RoundRecord {
    /// 0 for the pretraining, then 1..=rounds.
    pub round: usize,
    /// Mean negative ELBO of each VAE on its points in the last epoch.
    pub neg_elbo: Vec<f64>,
    /// Mean discriminator loss (real + generated cross-entropy) in the last
    /// tenth of step (b); `None` in round 0.
    pub disc_loss: Option<f64>,
    /// The discriminators' mean accuracy on real and on generated points
    /// after step (b) ([`mean_accuracy`]); `None` in round 0.
    pub disc_acc: Option<(f64, f64)>,
    /// Points that changed VAE in step (c).
    pub moved: usize,
    /// VAEs whose reassignment was undone by load balancing.
    pub held: usize,
    /// Points per VAE after the round.
    pub sizes: Vec<usize>,
    /// Seconds the round took.
    pub seconds: f64,
}

/// The state handed to an observer after the pretraining and each round.
pub struct Snapshot<'a> {
    /// Round just finished (0 = pretraining).
    pub round: usize,
    /// The VAEs.
    pub vaes: &'a dyn VaeNets,
    /// Current VAE of each training point.
    pub assignment: &'a [usize],
}

/// A trained kVAE.
pub struct KVae {
    /// The configuration it was trained with.
    pub config: KVaeConfig,
    /// The k VAEs.
    pub vaes: Box<dyn VaeNets>,
    /// Their tensors (`encoder.*`, `decoder.*`).
    pub vae_params: Params,
    /// Final VAE of each training point.
    pub assignment: Vec<usize>,
    /// The distilled gate, if `gate_epochs > 0`.
    pub gate: Option<Gate>,
    /// One record per round, pretraining first.
    pub history: Vec<RoundRecord>,
}

/// Members of each of `k` groups.
pub fn members(assignment: &[usize], k: usize) -> Vec<Vec<usize>> {
    let mut m = vec![Vec::new(); k];
    for (i, &a) in assignment.iter().enumerate() {
        m[a].push(i);
    }
    m
}

/// A uniformly random split of `n` points into `k` parts of equal size (±1).
pub fn random_split(n: usize, k: usize, rng: &mut Rng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    let mut assignment = vec![0; n];
    for (pos, &i) in order.iter().enumerate() {
        assignment[i] = pos % k;
    }
    assignment
}

/// Draws batches for each group, reshuffling a group when it runs out.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Batcher {
    order: Vec<Vec<usize>>,
    pos: Vec<usize>,
}

impl Batcher {
    /// A batcher over `groups` (each group's members).
    pub fn new(groups: &[Vec<usize>]) -> Self {
        Batcher {
            order: groups.to_vec(),
            pos: vec![usize::MAX; groups.len()],
        }
    }

    /// Whether group `g` has no members (its loss is masked out).
    pub fn is_empty(&self, g: usize) -> bool {
        self.order.get(g).is_none_or(Vec::is_empty)
    }

    /// Members of group `g`.
    pub fn len(&self, g: usize) -> usize {
        self.order.get(g).map_or(0, Vec::len)
    }

    /// Whether group `g` is trained: it has members, and more than `batch`
    /// of them when `freeze_small` (the authors' balance rule).
    pub fn trains(&self, g: usize, batch: usize, freeze_small: bool) -> bool {
        let n = self.len(g);
        n > 0 && !(freeze_small && n <= batch)
    }

    /// `b` members of group `g` (repeating when the group is smaller); an
    /// empty group yields point 0 (its loss is masked out by the caller).
    pub fn next(&mut self, g: usize, b: usize, rng: &mut Rng) -> Vec<usize> {
        let group = &mut self.order[g];
        if group.is_empty() {
            return vec![0; b];
        }
        let mut out = Vec::with_capacity(b);
        while out.len() < b {
            if self.pos[g] >= group.len() {
                rng.shuffle(group);
                self.pos[g] = 0;
            }
            let take = (b - out.len()).min(group.len() - self.pos[g]);
            out.extend_from_slice(&group[self.pos[g]..self.pos[g] + take]);
            self.pos[g] += take;
        }
        out
    }
}

/// Steps of one VAE epoch when the k VAEs together should see about `n`
/// points: `ceil(n / (k · batch))` steps of `batch` points per VAE.
pub fn vae_steps_per_epoch(n: usize, k: usize, batch: usize) -> usize {
    n.div_ceil(k * batch).max(1)
}

/// The groups the VAEs train on: everyone's points for every VAE (the full
/// pretraining), or each VAE's own.
pub fn training_groups(assignment: &[usize], k: usize, all: bool) -> Vec<Vec<usize>> {
    if all {
        vec![(0..assignment.len()).collect(); k]
    } else {
        members(assignment, k)
    }
}

/// One optimizer step of every VAE on a batch of its own points (a VAE
/// with no points, or with no more than a batch when `freeze_small`, is
/// masked out). Returns each VAE's negative ELBO `[K]` (detached).
#[allow(clippy::too_many_arguments)]
pub fn vae_step(
    vaes: &dyn VaeNets,
    opt: &mut Adam,
    data: &Points,
    batcher: &mut Batcher,
    batch: usize,
    freeze_small: bool,
    rng: &mut Rng,
    device: &Device,
) -> Result<Tensor> {
    let k = vaes.k();
    let mask: Vec<f32> = (0..k)
        .map(|j| {
            if batcher.trains(j, batch, freeze_small) {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let mask = Tensor::from_vec(mask, k, device)?;
    let index: Vec<Vec<usize>> = (0..k).map(|j| batcher.next(j, batch, rng)).collect();
    let x = data.gather(&index, device)?;
    let eps = Tensor::from_vec(
        rng.normals(k * batch * vaes.latent()),
        (k, batch, vaes.latent()),
        device,
    )?;
    let terms = vaes.elbo_terms(&x, &eps)?;
    let per_vae = ((terms.reconstruction + terms.kl)? * &mask)?;
    let grads = per_vae.sum_all()?.backward()?;
    opt.step(&grads)?;
    Ok(per_vae.detach())
}

/// Trains VAE j on `groups[j]` for `steps` steps of `batch` points (every
/// VAE takes the same number of steps, so a VAE with few points sees them
/// more often). Returns the mean negative ELBO of each VAE over the last
/// tenth of the steps.
#[allow(clippy::too_many_arguments)]
pub fn train_vaes(
    vaes: &dyn VaeNets,
    opt: &mut Adam,
    data: &Points,
    groups: &[Vec<usize>],
    steps: usize,
    batch: usize,
    freeze_small: bool,
    rng: &mut Rng,
    device: &Device,
) -> Result<Vec<f64>> {
    let k = vaes.k();
    let mut batcher = Batcher::new(groups);
    let tail = (steps / 10).max(1);
    let mut sum = Tensor::zeros(k, DType::F32, device)?;
    for step in 0..steps {
        let per_vae = vae_step(
            vaes,
            opt,
            data,
            &mut batcher,
            batch,
            freeze_small,
            rng,
            device,
        )?;
        if step + tail >= steps {
            sum = (sum + per_vae)?;
        }
    }
    Ok(sum
        .to_vec1::<f32>()?
        .iter()
        .map(|&v| f64::from(v) / tail as f64)
        .collect())
}

/// The networks step (b) trains for `scorer`: k discriminators, or one
/// K-way classifier (a stack of one MLP with k outputs) for
/// [`Scorer::Classifier`].
pub fn scorer_networks(
    scorer: Scorer,
    k: usize,
    data: usize,
    hidden: &[usize],
    params: &Params,
    device: &Device,
) -> Result<BatchedMlp> {
    let (stack, outputs) = match scorer {
        Scorer::Classifier => (1, k),
        Scorer::Discriminator | Scorer::Likelihood { .. } => (k, 1),
    };
    BatchedMlp::new(
        stack,
        data,
        hidden,
        outputs,
        Activation::Relu,
        params.var_builder(device).pp("disc"),
    )
}

/// Step (b) for [`Scorer::Classifier`]: `steps` steps of cross-entropy on
/// `batch` fresh samples of every VAE, labelled by their VAE. Returns the
/// mean loss over the last tenth of the steps.
pub fn train_generator_classifier(
    net: &BatchedMlp,
    opt: &mut Adam,
    vaes: &dyn VaeNets,
    steps: usize,
    batch: usize,
    rng: &mut Rng,
    device: &Device,
) -> Result<f64> {
    let k = vaes.k();
    let labels: Vec<u32> = (0..k as u32)
        .flat_map(|j| std::iter::repeat_n(j, batch))
        .collect();
    let labels = Tensor::from_vec(labels, k * batch, device)?;
    let tail = (steps / 10).max(1);
    let mut total = 0.0;
    for step in 0..steps {
        let fake =
            vaes.sample(batch, rng, device)?
                .detach()
                .reshape((1, k * batch, vaes.data()))?;
        let logits = net.forward(&fake)?.squeeze(0)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &labels)?;
        opt.step(&loss.backward()?)?;
        if step + tail >= steps {
            total += f64::from(loss.to_scalar::<f32>()?);
        }
    }
    Ok(total / tail as f64)
}

/// k discriminators `data -> hidden -> 1 logit` (logit of "real").
pub fn discriminators(
    k: usize,
    data: usize,
    hidden: &[usize],
    params: &Params,
    device: &Device,
) -> Result<BatchedMlp> {
    scorer_networks(Scorer::Discriminator, k, data, hidden, params, device)
}

/// Step (b): `steps` steps of logistic regression, `batch` real points
/// (drawn uniformly from all the data) against `batch` fresh samples of
/// each VAE, with Gaussian instance noise of std `noise` on both when
/// `noise > 0`. Returns the mean loss per discriminator over the last tenth
/// of the steps.
#[allow(clippy::too_many_arguments)]
pub fn train_discriminators(
    disc: &BatchedMlp,
    opt: &mut Adam,
    vaes: &dyn VaeNets,
    data: &Points,
    steps: usize,
    batch: usize,
    noise: f64,
    rng: &mut Rng,
    device: &Device,
) -> Result<f64> {
    let k = vaes.k();
    let ones = Tensor::ones((k, batch, 1), DType::F32, device)?;
    let zeros = Tensor::zeros((k, batch, 1), DType::F32, device)?;
    let tail = (steps / 10).max(1);
    let mut total = 0.0;
    for step in 0..steps {
        let index: Vec<Vec<usize>> = (0..k)
            .map(|_| (0..batch).map(|_| rng.below(data.n)).collect())
            .collect();
        let mut real = data.gather(&index, device)?;
        let mut fake = vaes.sample(batch, rng, device)?.detach();
        if noise > 0.0 {
            let n = k * batch * data.dim;
            let shape = (k, batch, data.dim);
            real = (real + Tensor::from_vec(rng.normals(n), shape, device)?.affine(noise, 0.0)?)?;
            fake = (fake + Tensor::from_vec(rng.normals(n), shape, device)?.affine(noise, 0.0)?)?;
        }
        let loss_real = bce_with_logits(&disc.forward(&real)?, &ones)?.mean_all()?;
        let loss_fake = bce_with_logits(&disc.forward(&fake)?, &zeros)?.mean_all()?;
        // Means over K·B; scaled by K so each discriminator's own loss is a batch mean.
        let loss = ((loss_real + loss_fake)? * k as f64)?;
        let grads = loss.backward()?;
        opt.step(&grads)?;
        if step + tail >= steps {
            total += f64::from(loss.to_scalar::<f32>()?) / k as f64;
        }
    }
    Ok(total / tail as f64)
}

/// `[n][k]` scores `log p_gj(x)/p_d(x)` (up to a per-point constant) of
/// every point: `−logit_j(x)` from discriminators, or the importance-sampled
/// log-likelihood.
pub fn scores(
    scorer: Scorer,
    disc: Option<&BatchedMlp>,
    vaes: &dyn VaeNets,
    data: &Points,
    rng: &mut Rng,
    device: &Device,
) -> Result<Vec<Vec<f32>>> {
    let k = vaes.k();
    let chunk = match scorer {
        Scorer::Discriminator | Scorer::Classifier => 1024,
        Scorer::Likelihood { .. } => 256,
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

/// The share of `n` real points (drawn uniformly from `data`) each
/// discriminator calls real, and of `n` fresh samples of its VAE it calls
/// generated: `(real, fake)` accuracy per discriminator. A discriminator
/// near 100% on both says "generated" of every real point too confidently
/// for its density ratios to rank points (the failure issue 14 describes).
pub fn discriminator_accuracy(
    disc: &BatchedMlp,
    vaes: &dyn VaeNets,
    data: &Points,
    n: usize,
    rng: &mut Rng,
    device: &Device,
) -> Result<Vec<(f64, f64)>> {
    let k = vaes.k();
    let index: Vec<Vec<usize>> = (0..k)
        .map(|_| (0..n).map(|_| rng.below(data.n)).collect())
        .collect();
    let real = disc.forward(&data.gather(&index, device)?)?;
    let fake = disc.forward(&vaes.sample(n, rng, device)?)?;
    let real: Vec<Vec<f32>> = real.squeeze(D::Minus1)?.to_vec2()?;
    let fake: Vec<Vec<f32>> = fake.squeeze(D::Minus1)?.to_vec2()?;
    let share = |v: &[f32], real: bool| {
        v.iter().filter(|&&l| (l > 0.0) == real).count() as f64 / v.len().max(1) as f64
    };
    Ok(real
        .iter()
        .zip(&fake)
        .map(|(r, f)| (share(r, true), share(f, false)))
        .collect())
}

/// The mean over discriminators of [`discriminator_accuracy`]'s
/// `(real, fake)` pairs.
pub fn mean_accuracy(acc: &[(f64, f64)]) -> (f64, f64) {
    let n = acc.len().max(1) as f64;
    (
        acc.iter().map(|a| a.0).sum::<f64>() / n,
        acc.iter().map(|a| a.1).sum::<f64>() / n,
    )
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
#[allow(clippy::too_many_arguments)]
pub fn reassign_round(
    cfg: &KVaeConfig,
    disc: &BatchedMlp,
    disc_opt: &mut Adam,
    vaes: &dyn VaeNets,
    data: &Points,
    assignment: &[usize],
    rng: &mut Rng,
    device: &Device,
) -> Result<Reassignment> {
    let k = vaes.k();
    let min_points = (cfg.min_share * data.n as f64 / k as f64).ceil() as usize;
    let disc_loss = match cfg.scorer {
        Scorer::Discriminator => Some(train_discriminators(
            disc,
            disc_opt,
            vaes,
            data,
            cfg.disc_steps,
            cfg.disc_batch,
            cfg.disc_noise,
            rng,
            device,
        )?),
        Scorer::Classifier => Some(train_generator_classifier(
            disc,
            disc_opt,
            vaes,
            cfg.disc_steps,
            cfg.disc_batch,
            rng,
            device,
        )?),
        Scorer::Likelihood { .. } => None,
    };
    let mut s = scores(cfg.scorer, Some(disc), vaes, data, rng, device)?;
    if cfg.normalise {
        normalise_per_model(&mut s);
    }
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

/// Share of points held by each of `k` VAEs.
pub fn shares(assignment: &[usize], k: usize) -> Vec<f64> {
    let mut s = vec![0.0; k];
    for &a in assignment {
        s[a] += 1.0;
    }
    let n = assignment.len().max(1) as f64;
    s.iter().map(|c| c / n).collect()
}

fn adam(params: &Params, lr: f64) -> Adam {
    Adam::new(params.vars(), AdamConfig::with_lr(lr))
}

/// Trains k dense VAEs of shape `vae` on a fixed assignment (no
/// reassignment), `steps` steps each: on its own, the "one VAE" (k = 1) and
/// "ensemble" (random split) baselines. Returns the VAEs, their tensors and
/// the per-VAE loss.
#[allow(clippy::too_many_arguments)]
pub fn train_fixed(
    vae: &VaeShape,
    data: &Points,
    assignment: &[usize],
    k: usize,
    steps: usize,
    batch: usize,
    lr: f64,
    seed: u64,
    device: &Device,
) -> Result<(VaeStack, Params, Vec<f64>)> {
    let params = Params::new(seed);
    let vaes = VaeStack::new(k, vae.clone(), params.var_builder(device))?;
    let loss = train_fixed_nets(
        &vaes, &params, data, assignment, steps, batch, lr, seed, device,
    )?;
    Ok((vaes, params, loss))
}

/// [`train_fixed`] for VAEs of any kind, built by the caller on `params`.
#[allow(clippy::too_many_arguments)]
pub fn train_fixed_nets(
    vaes: &dyn VaeNets,
    params: &Params,
    data: &Points,
    assignment: &[usize],
    steps: usize,
    batch: usize,
    lr: f64,
    seed: u64,
    device: &Device,
) -> Result<Vec<f64>> {
    let mut opt = adam(params, lr);
    let mut rng = Rng::new(seed, 0x7A11);
    train_vaes(
        vaes,
        &mut opt,
        data,
        &members(assignment, vaes.k()),
        steps,
        batch,
        false,
        &mut rng,
        device,
    )
}

/// Runs kVAE with dense VAEs of `cfg.vae` on `data`. `observe` sees the
/// state after the pretraining and after every round (for figures);
/// progress goes to stderr.
pub fn fit(
    data: &Points,
    cfg: &KVaeConfig,
    device: &Device,
    observe: &mut dyn FnMut(&Snapshot),
) -> Result<KVae> {
    let vae_params = Params::new(cfg.seed);
    let vaes = VaeStack::new(cfg.k, cfg.vae.clone(), vae_params.var_builder(device))?;
    fit_nets(data, cfg, Box::new(vaes), vae_params, device, observe)
}

/// [`fit`] with VAEs of any kind (`vaes`, built by the caller on
/// `vae_params`; `cfg.vae` is then unused).
pub fn fit_nets(
    data: &Points,
    cfg: &KVaeConfig,
    vaes: Box<dyn VaeNets>,
    vae_params: Params,
    device: &Device,
    observe: &mut dyn FnMut(&Snapshot),
) -> Result<KVae> {
    let k = cfg.k;
    let mut rng = Rng::new(cfg.seed, 0x4B5A);
    let mut vae_opt = adam(&vae_params, cfg.lr);
    let disc_params = Params::new(cfg.seed ^ 0xD15C);
    let disc = scorer_networks(
        cfg.scorer,
        k,
        data.dim,
        &cfg.disc_hidden,
        &disc_params,
        device,
    )?;
    let mut disc_opt = adam(&disc_params, cfg.lr);

    if cfg.pretrain == Pretrain::Partition {
        candle_core::bail!("kVAE's partition start runs in `trainer fit` only");
    }
    let started = Instant::now();
    let mut assignment = random_split(data.n, k, &mut rng);
    let full = cfg.pretrain == Pretrain::Full;
    let neg_elbo = train_vaes(
        vaes.as_ref(),
        &mut vae_opt,
        data,
        &training_groups(&assignment, k, full),
        cfg.pretrain_steps,
        cfg.batch,
        cfg.freeze_small,
        &mut rng,
        device,
    )?;
    let mut history = vec![RoundRecord {
        round: 0,
        neg_elbo,
        disc_loss: None,
        disc_acc: None,
        moved: 0,
        held: 0,
        // With the full pretraining every VAE has seen every point.
        sizes: if full {
            vec![data.n; k]
        } else {
            members(&assignment, k).iter().map(Vec::len).collect()
        },
        seconds: started.elapsed().as_secs_f64(),
    }];
    eprintln!("kvae: pretraining: {}", round_line(&history[0]));
    observe(&Snapshot {
        round: 0,
        vaes: vaes.as_ref(),
        assignment: &assignment,
    });

    // Round R + 1 runs only step (a): the VAEs finish on the final assignment.
    for round in 1..=cfg.rounds + 1 {
        let started = Instant::now();
        let neg_elbo = if round == 1 {
            // The pretraining was step (a) of the first round.
            history[0].neg_elbo.clone()
        } else {
            train_vaes(
                vaes.as_ref(),
                &mut vae_opt,
                data,
                &members(&assignment, k),
                cfg.round_steps,
                cfg.batch,
                cfg.freeze_small,
                &mut rng,
                device,
            )?
        };
        if round > cfg.rounds {
            break;
        }
        let step = reassign_round(
            cfg,
            &disc,
            &mut disc_opt,
            vaes.as_ref(),
            data,
            &assignment,
            &mut rng,
            device,
        )?;
        assignment = step.assignment;
        let disc_acc = match cfg.scorer {
            // On draws of their own, so that measuring changes no run.
            Scorer::Discriminator => Some(mean_accuracy(&discriminator_accuracy(
                &disc,
                vaes.as_ref(),
                data,
                256,
                &mut Rng::new(cfg.seed ^ 0xACC, round as u64),
                device,
            )?)),
            Scorer::Likelihood { .. } | Scorer::Classifier => None,
        };
        history.push(RoundRecord {
            round,
            neg_elbo,
            disc_loss: step.disc_loss,
            disc_acc,
            moved: step.moved,
            held: step.held,
            sizes: members(&assignment, k).iter().map(Vec::len).collect(),
            seconds: started.elapsed().as_secs_f64(),
        });
        eprintln!(
            "kvae: round {round}/{}: {}",
            cfg.rounds,
            round_line(&history[round])
        );
        observe(&Snapshot {
            round,
            vaes: vaes.as_ref(),
            assignment: &assignment,
        });
    }

    let gate = if cfg.gate_epochs > 0 {
        let (gate, agree) = distill_gate(
            data,
            &assignment,
            k,
            &cfg.gate_hidden,
            cfg.gate_epochs,
            cfg.batch,
            cfg.lr,
            cfg.seed,
            device,
        )?;
        eprintln!(
            "kvae: gate distilled; it agrees with the assignment on {:.2}% of training points",
            100.0 * agree
        );
        Some(gate)
    } else {
        None
    };
    Ok(KVae {
        config: cfg.clone(),
        vaes,
        vae_params,
        assignment,
        gate,
        history,
    })
}

fn round_line(r: &RoundRecord) -> String {
    let mean = r.neg_elbo.iter().sum::<f64>() / r.neg_elbo.len().max(1) as f64;
    let min = r.sizes.iter().min().copied().unwrap_or(0);
    let max = r.sizes.iter().max().copied().unwrap_or(0);
    let mut disc = r
        .disc_loss
        .map_or(String::new(), |d| format!(", discriminator loss {d:.3}"));
    if let Some((real, fake)) = r.disc_acc {
        disc.push_str(&format!(
            ", discriminator accuracy {:.0}% real / {:.0}% generated",
            100.0 * real,
            100.0 * fake
        ));
    }
    format!(
        "neg-ELBO {mean:.2}{disc}, moved {} points, {} VAEs held, sizes {min}..{max}, {:.1} s",
        r.moved, r.held, r.seconds
    )
}

/// Distills an assignment into a gate `data -> hidden -> k` by cross-entropy
/// (batch `batch`, Adam `lr`). Returns the gate and its agreement with the
/// assignment on the training points.
#[allow(clippy::too_many_arguments)]
pub fn distill_gate(
    data: &Points,
    assignment: &[usize],
    k: usize,
    hidden: &[usize],
    epochs: usize,
    batch: usize,
    lr: f64,
    seed: u64,
    device: &Device,
) -> Result<(Gate, f64)> {
    let params = Params::new(seed ^ 0x6A7E);
    let gate = Gate::new(
        data.dim,
        hidden,
        k,
        Activation::Relu,
        params.var_builder(device).pp("gate"),
    )?;
    let mut opt = adam(&params, lr);
    let mut rng = Rng::new(seed, 0x6A7E);
    let mut order: Vec<usize> = (0..data.n).collect();
    for _ in 0..epochs {
        rng.shuffle(&mut order);
        for chunk in order.chunks(batch) {
            let x = data.gather(&[chunk.to_vec()], device)?.squeeze(0)?;
            let t: Vec<u32> = chunk.iter().map(|&i| assignment[i] as u32).collect();
            let t = Tensor::from_vec(t, chunk.len(), device)?;
            let loss = candle_nn::loss::cross_entropy(&gate.forward(&x)?, &t)?;
            opt.step(&loss.backward()?)?;
        }
    }
    let pred = gate_predict(&gate, data, device)?;
    let agree =
        pred.iter().zip(assignment).filter(|(a, b)| a == b).count() as f64 / data.n.max(1) as f64;
    Ok((gate, agree))
}

/// The gate's argmax for every point (the trainer's assignment of new inputs).
pub fn gate_predict(gate: &Gate, data: &Points, device: &Device) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(data.n);
    let mut start = 0;
    while start < data.n {
        let len = 2048.min(data.n - start);
        out.extend(gate.classify(&data.slice(start, len, device)?)?);
        start += len;
    }
    Ok(out)
}

impl KVae {
    /// The model file contents: the distilled gate and the k decoders
    /// (Bernoulli VAEs on 28×28 images only).
    pub fn to_spec(
        &self,
        image: engine::ImageShape,
        label_map: Option<Vec<u8>>,
        provenance: String,
    ) -> anyhow::Result<ModelSpec> {
        let gate = self
            .gate
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("kVAE was trained without a gate (gate_epochs = 0)"))?;
        to_spec(
            self.vaes.as_ref(),
            gate,
            &self.assignment,
            image,
            label_map,
            provenance,
        )
    }
}

/// The model file contents: `gate` and the k decoders of `vaes`
/// (Bernoulli VAEs on images only), each VAE's share of `assignment` as its
/// mixture weight.
pub fn to_spec(
    vaes: &dyn VaeNets,
    gate: &Gate,
    assignment: &[usize],
    image: engine::ImageShape,
    label_map: Option<Vec<u8>>,
    provenance: String,
) -> anyhow::Result<ModelSpec> {
    anyhow::ensure!(
        vaes.observation() == Observation::Bernoulli,
        "only Bernoulli VAEs on images can be exported"
    );
    anyhow::ensure!(
        vaes.data() == image.pixels(),
        "the VAEs' data size is not the image size"
    );
    Ok(ModelSpec {
        method: engine::Method::KVae,
        image,
        latent: vaes.latent(),
        likelihood: engine::Likelihood::Bernoulli,
        mixture_weights: shares(assignment, vaes.k())
            .iter()
            .map(|&s| s as f32)
            .collect(),
        label_map,
        provenance,
        gate: gate.export()?,
        decoders: (0..vaes.k())
            .map(|j| vaes.export_decoder(j))
            .collect::<Result<_>>()?,
    })
}

//! Step (b): the networks that score the points — k discriminators
//! telling real points from each VAE's samples, or one K-way classifier of
//! generators — their training, and how well they tell.

use candle_core::{DType, Device, Result, Tensor, D};

use super::config::{DiscKind, KVaeConfig};
use super::conv_disc::ConvDiscriminators;
use super::scoring::Scorer;
use super::training::RoundContext;
use super::vae::VaeNets;
use crate::data::Points;
use crate::nn::adam::Adam;
use crate::nn::layers::{Activation, BatchedMlp};
use crate::nn::likelihood::bce_with_logits;
use crate::nn::params::Params;
use crate::rng::Rng;

/// What step (b) trains and step (c) reads: networks of `[K, B, dim]`
/// points to logits `[K, B, outputs]`.
pub trait DiscNet {
    /// The logits.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;

    /// Points per network [`forward_chunked`] runs at once (memory).
    fn chunk(&self) -> usize {
        1024
    }
}

impl DiscNet for BatchedMlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        BatchedMlp::forward(self, x)
    }
}

impl DiscNet for ConvDiscriminators {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ConvDiscriminators::forward(self, x)
    }

    fn chunk(&self) -> usize {
        64
    }
}

/// `net.forward(x)` for `x: [K, B, dim]`, [`DiscNet::chunk`] points of
/// each network at a time, detached: for scoring, not training.
pub fn forward_chunked(net: &dyn DiscNet, x: &Tensor) -> Result<Tensor> {
    let b = x.dim(1)?;
    let chunk = net.chunk().max(1);
    if b <= chunk {
        return Ok(net.forward(x)?.detach());
    }
    let parts = (0..b)
        .step_by(chunk)
        .map(|first| {
            Ok(net
                .forward(&x.narrow(1, first, chunk.min(b - first))?)?
                .detach())
        })
        .collect::<Result<Vec<_>>>()?;
    Tensor::cat(&parts, 1)
}

/// The scoring networks `cfg` asks for, their tensors under `params`: the
/// authors' convolutional discriminators ([`DiscKind::Conv`], 28×28 images
/// only), else [`scorer_networks`].
pub fn disc_networks(
    cfg: &KVaeConfig,
    data: usize,
    params: &Params,
    device: &Device,
) -> Result<Box<dyn DiscNet>> {
    Ok(match (cfg.disc_kind, cfg.scorer) {
        (DiscKind::Conv, Scorer::Discriminator) => Box::new(ConvDiscriminators::new(
            cfg.k,
            params.var_builder(device).pp("disc"),
        )?),
        _ => Box::new(scorer_networks(
            cfg.scorer,
            cfg.k,
            data,
            &cfg.disc_hidden,
            params,
            device,
        )?),
    })
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
    net: &dyn DiscNet,
    opt: &mut Adam,
    vaes: &dyn VaeNets,
    training: DiscTraining,
    rng: &mut Rng,
    device: &Device,
) -> Result<f64> {
    let DiscTraining { steps, batch, .. } = training;
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

/// Step (b)'s schedule: the discriminators' (or the classifier's) updates
/// per round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiscTraining {
    /// Updates per round.
    pub steps: usize,
    /// Real and generated points per network and update (each).
    pub batch: usize,
    /// Standard deviation of Gaussian instance noise on the
    /// discriminators' inputs (0 = off; the classifier takes none).
    pub noise: f64,
    /// Generated images are `σ(2·logit)`, not the decoder means
    /// (discriminators only).
    pub sharpen: bool,
}

impl DiscTraining {
    /// The schedule `cfg` sets.
    pub fn of(cfg: &KVaeConfig) -> Self {
        DiscTraining {
            steps: cfg.disc_steps,
            batch: cfg.disc_batch,
            noise: cfg.disc_noise,
            sharpen: cfg.sharpen_fakes,
        }
    }
}

/// Step (b): `steps` steps of logistic regression, `batch` real points
/// (drawn uniformly from all the data) against `batch` fresh samples of
/// each VAE, with Gaussian instance noise of std `noise` on both when
/// `noise > 0`. Returns the mean loss per discriminator over the last tenth
/// of the steps.
pub fn train_discriminators(
    disc: &dyn DiscNet,
    opt: &mut Adam,
    vaes: &dyn VaeNets,
    training: DiscTraining,
    ctx: &mut RoundContext,
) -> Result<f64> {
    let DiscTraining {
        steps,
        batch,
        noise,
        sharpen,
    } = training;
    let sharpness = if sharpen { 2.0 } else { 1.0 };
    let (data, device) = (ctx.data, ctx.device);
    let rng = &mut *ctx.rng;
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
        let mut fake = vaes.sample_sharpened(batch, sharpness, rng, device)?;
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

/// The share of `n` real points (drawn uniformly from `data`) each
/// discriminator calls real, and of `n` fresh samples of its VAE it calls
/// generated: `(real, fake)` accuracy per discriminator. A discriminator
/// near 100% on both says "generated" of every real point too confidently
/// for its density ratios to rank points (then every point's scores are
/// near zero and reassignment follows noise).
pub fn discriminator_accuracy(
    disc: &dyn DiscNet,
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
    let real = forward_chunked(disc, &data.gather(&index, device)?)?;
    let fake = forward_chunked(disc, &vaes.sample(n, rng, device)?)?;
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

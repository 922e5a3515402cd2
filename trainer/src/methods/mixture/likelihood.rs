//! The test log-likelihood of a mixture of VAEs, importance-sampled: one
//! estimator for the one-level and the two-level mixture, so their numbers
//! compare.
//!
//! For VAE `e` and image `x`, with `M` draws `z_m ~ q_e(z|x)`,
//! `log p_e(x) ≈ log (1/M) Σ_m p_e(x|z_m) p(z_m) / q_e(z_m|x)` (Burda et
//! al.'s IWAE bound, a lower bound that tightens as `M` grows; `M = 1` is
//! the ELBO in expectation); the mixture's is `log Σ_e π_e p_e(x)` with the
//! prior `π` given (the routing's mean over training images, see
//! [`super::Mixture::routing_log_prior`]). The likelihood is the model's own
//! (Bernoulli on intensities in [0, 1] by default), so only models of the
//! same likelihood compare.

use candle_core::{Device, Tensor, D};

use super::nets::Networks;
use crate::nn::likelihood::{Likelihood, Nll};
use crate::rng::Rng;
use crate::util::log_sum_exp;

/// Mean over `n` images of `pixels` of the importance-sampled `log p(x)`
/// (nats per image) of the mixture `nets` with prior `log_prior` (one
/// entry per VAE), `samples` draws per image and VAE.
#[allow(clippy::too_many_arguments)]
pub fn log_likelihood(
    nets: &Networks,
    device: &Device,
    likelihood: Likelihood,
    pixels: &[u8],
    n: usize,
    log_prior: &[f64],
    samples: usize,
    rng: &mut Rng,
) -> anyhow::Result<f64> {
    let p = pixels.len() / n.max(1);
    let all: Vec<usize> = (0..n).collect();
    let mut total = 0.0;
    for idx in all.chunks(250) {
        let b = idx.len();
        let x = crate::data::images_tensor(pixels, p, idx, device)?;
        // log w of every (VAE, image), one vector of draws each.
        let mut log_w: Vec<Vec<f64>> = Vec::new();
        for group in &nets.groups {
            let count = group.decoders.count();
            let (mean, var) = group.encoders.forward(&x)?;
            let latent = mean.dim(D::Minus1)?;
            let log_var = var.log()?.sum(D::Minus1)?;
            let mut draws: Vec<Vec<f32>> = Vec::with_capacity(samples);
            for _ in 0..samples.max(1) {
                let eps =
                    Tensor::from_vec(rng.normals(count * b * latent), (count, b, latent), device)?;
                let z = (&mean + (var.sqrt()? * &eps)?)?;
                let (h, w, bias) = group.decoders.forward_hidden(&z)?;
                let nll = likelihood.nll_output(&h, w, bias, &x)?;
                // log p(z) − log q(z|x): the 2π terms cancel.
                let log_pz = (z.sqr()?.sum(D::Minus1)? * -0.5)?;
                let log_q = ((eps.sqr()?.sum(D::Minus1)? + &log_var)? * -0.5)?;
                let lw = ((log_pz - log_q)? - nll)?;
                draws.push(lw.flatten_all()?.to_vec1::<f32>()?);
            }
            for i in 0..count * b {
                log_w.push(draws.iter().map(|d| d[i] as f64).collect());
            }
        }
        // Rows are VAE-major: VAE e, image i at e·b + i.
        let m = (samples.max(1) as f64).ln();
        for i in 0..b {
            let per_vae: Vec<f64> = (0..log_prior.len())
                .map(|e| log_prior[e] + log_sum_exp(&log_w[e * b + i]) - m)
                .collect();
            total += log_sum_exp(&per_vae);
        }
    }
    Ok(total / n.max(1) as f64)
}

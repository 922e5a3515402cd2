//! Step (a): the VAEs' optimizer steps, each VAE on batches of its own
//! points, all K in one batched step. (VAEs on a fixed assignment, the
//! experiments' baselines, are kVAE runs of
//! [`super::KVaeConfig::fixed_assignment`] on the one loop.)

use candle_core::{DType, Device, Result, Tensor};

use super::batching::Batcher;
use super::vae::VaeNets;
use crate::data::Points;
use crate::nn::adam::{Adam, AdamConfig};
use crate::nn::params::Params;
use crate::rng::Rng;

/// What every step of a round works on: the training points, the random
/// draws (batches, noise, samples) and the device.
pub struct RoundContext<'a> {
    /// The training points.
    pub data: &'a Points,
    /// The run's generator; every step draws from it in order.
    pub rng: &'a mut Rng,
    /// Where the tensors live.
    pub device: &'a Device,
}

/// How the VAEs take their steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VaeBatches {
    /// Points per VAE per step.
    pub batch: usize,
    /// A VAE with no more than `batch` points is no longer trained.
    pub freeze_small: bool,
}

/// One optimizer step of every VAE on a batch of its own points (a VAE
/// with no points, or with no more than a batch when `freeze_small`, is
/// masked out). Returns each VAE's negative ELBO `[K]` (detached).
pub fn vae_step(
    vaes: &dyn VaeNets,
    opt: &mut Adam,
    batcher: &mut Batcher,
    batches: VaeBatches,
    ctx: &mut RoundContext,
) -> Result<Tensor> {
    let VaeBatches {
        batch,
        freeze_small,
    } = batches;
    let device = ctx.device;
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
    let index: Vec<Vec<usize>> = (0..k).map(|j| batcher.next(j, batch, ctx.rng)).collect();
    let x = ctx.data.gather(&index, device)?;
    let eps = Tensor::from_vec(
        ctx.rng.normals(k * batch * vaes.latent()),
        (k, batch, vaes.latent()),
        device,
    )?;
    let terms = vaes.elbo_terms(&x, &eps)?;
    let per_vae = ((terms.reconstruction + terms.kl)? * &mask)?;
    let grads = per_vae.sum_all()?.backward()?;
    opt.step(&grads)?;
    Ok(per_vae.detach())
}

/// Trains VAE j on `groups[j]` for `steps` steps (every VAE takes the same
/// number of steps, so a VAE with few points sees them more often).
/// Returns the mean negative ELBO of each VAE over the last tenth of the
/// steps.
pub fn train_vaes(
    vaes: &dyn VaeNets,
    opt: &mut Adam,
    groups: &[Vec<usize>],
    steps: usize,
    batches: VaeBatches,
    ctx: &mut RoundContext,
) -> Result<Vec<f64>> {
    let k = vaes.k();
    let mut batcher = Batcher::new(groups);
    let tail = (steps / 10).max(1);
    let mut sum = Tensor::zeros(k, DType::F32, ctx.device)?;
    for step in 0..steps {
        let per_vae = vae_step(vaes, opt, &mut batcher, batches, ctx)?;
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

/// Adam over `params` with learning rate `lr` (every kVAE optimizer).
pub fn adam(params: &Params, lr: f64) -> Adam {
    Adam::new(params.vars(), AdamConfig::with_lr(lr))
}

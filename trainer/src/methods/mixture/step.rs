//! One step of the mixture: the objective of a batch and its gradients,
//! with the expert groups on threads of their own.

use anyhow::{bail, Context};
use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};

use super::config::MixtureConfig;
use super::loss::{
    assignment_loss_part, balance_slope, expert_losses, expert_part, mixture_loss_part,
};
use super::nets::{expert_group, Networks};

/// One batch's objective (the whole batch's, as scalars) and the gradients
/// of its expert groups (each parameter's in one of them).
pub struct StepGradients {
    /// Expected negative ELBO.
    pub elbo: f64,
    /// Its reconstruction part (the experts' negative log-likelihoods,
    /// weighted as in `elbo`); `elbo - recon` is the KL part.
    pub recon: f64,
    /// Balancing term (mixture) or gate cross-entropy (pretraining).
    pub extra: f64,
    /// One gradient store per expert group.
    pub grads: Vec<GradStore>,
}

impl StepGradients {
    /// What is minimized.
    pub fn loss(&self) -> f64 {
        self.elbo + self.extra
    }
}

/// The inputs of one step.
pub struct Batch<'a> {
    /// Indices of the batch's training images.
    pub idx: &'a [usize],
    /// The images `[B, pixels]`.
    pub x: &'a Tensor,
    /// The gate's input (shifted images under augmentation).
    pub xg: &'a Tensor,
    /// Reparameterization noise `[K, B, latent]`.
    pub eps: &'a Tensor,
    /// Pretraining on a fixed assignment: each image's cluster.
    pub assignment: Option<&'a [usize]>,
}

/// The objective of one batch and its gradients. The experts are stored
/// in groups ([`super::nets::EXPERT_GROUPS`], two), and on the CPU each
/// group runs forward and backward on the whole batch on a thread of its
/// own, the gate forward with the first and backward with the last:
/// candle's matmuls gain nothing from a second thread at these sizes, so
/// one group per core is what uses the second core, and every matmul keeps
/// the batch's rows.
///
/// The objective couples the gate and the experts (`Σ_k p_k L_k` and the
/// balancing term), so the groups run forward, then the losses and gate
/// output of all of them make the weights of each expert's loss and the
/// gate's part ([`expert_part`], [`mixture_loss_part`] or
/// [`assignment_loss_part`] on detached losses), and then the groups run
/// backward. Their gradients are the whole objective's (each parameter gets
/// its gradient from one group), and do not depend on the number of cores,
/// so a seed gives the same model on any machine.
pub fn gradients(
    nets: &Networks,
    cfg: &MixtureConfig,
    device: &Device,
    batch: &Batch<'_>,
) -> anyhow::Result<StepGradients> {
    let (b, k) = (batch.idx.len(), nets.vaes());
    let groups = &nets.groups;
    let forward = |g: usize| -> candle_core::Result<(Tensor, Tensor, Option<Tensor>)> {
        let (first, count) = expert_group(k, g);
        let eps = batch.eps.narrow(0, first, count)?.contiguous()?;
        let losses = expert_losses(&groups[g], cfg.likelihood, batch.x, &eps)?;
        let logits = match g {
            0 => Some(nets.logits(batch.xg)?),
            _ => None,
        };
        Ok((losses.total, losses.recon.detach(), logits))
    };
    let outputs = each_group(groups.len(), device, forward)
        .into_iter()
        .collect::<candle_core::Result<Vec<_>>>()?;
    let Some((_, _, Some(logits))) = outputs.first() else {
        bail!("the first expert group runs the gate");
    };
    let losses = outputs
        .iter()
        .map(|(l, _, _)| l.detach())
        .collect::<Vec<_>>();
    let losses = Tensor::cat(&losses, 0)?;
    let recon = outputs
        .iter()
        .map(|(_, r, _)| r.clone())
        .collect::<Vec<_>>();
    let recon = Tensor::cat(&recon, 0)?;
    // Each expert's loss is weighted by the image's one-hot assignment
    // (pretraining) or the gate's probabilities, held fixed; the mixture
    // adds the whole batch's balancing term (value and slope).
    let (weights, balance) = match batch.assignment {
        Some(assignment) => {
            let mut one_hot = vec![0f32; b * k];
            for (r, &i) in batch.idx.iter().enumerate() {
                let c = *assignment
                    .get(i)
                    .context("the partition has fewer images than the training set")?;
                one_hot[r * k + c] = 1.0;
            }
            (Tensor::from_vec(one_hot, (b, k), device)?, None)
        }
        None => {
            let p = candle_nn::ops::softmax(&logits.detach(), candle_core::D::Minus1)?;
            (
                p,
                Some(balance_slope(logits, nets.style_count(), cfg.balance)?),
            )
        }
    };
    // For the record only (no gradient): the reconstruction part of the
    // weighted ELBO.
    let recon = (weights.t()? * recon)?.sum_all()?.to_scalar::<f32>()? as f64 / b as f64;
    // The gate ran forward with the first group; its backward pass (an
    // independent graph) runs with the last, to even out the work.
    let last = groups.len() - 1;
    let backward = |g: usize| -> candle_core::Result<(GradStore, f64, f64)> {
        let (first, count) = expert_group(k, g);
        let group_losses = &outputs[g].0;
        let mut loss = expert_part(&weights.narrow(1, first, count)?, group_losses, b)?;
        let (mut elbo, mut extra) = (0.0, 0.0);
        if g == last {
            let gate = match &balance {
                None => assignment_loss_part(logits, &losses, &weights, b)?,
                Some((_, slope)) => mixture_loss_part(logits, &losses, b, slope)?,
            };
            elbo = gate.elbo.to_scalar::<f32>()? as f64;
            extra = gate.extra.to_scalar::<f32>()? as f64;
            loss = (loss + gate.loss)?;
        }
        Ok((crate::ops::backward(&loss)?, elbo, extra))
    };
    let parts = each_group(groups.len(), device, backward);
    let mut step = StepGradients {
        elbo: 0.0,
        recon,
        extra: 0.0,
        grads: Vec::with_capacity(parts.len()),
    };
    for part in parts {
        let (grads, elbo, extra) = part?;
        step.grads.push(grads);
        step.elbo += elbo;
        step.extra += extra;
    }
    if let Some((value, _)) = balance {
        // The gate part's `extra` only carries the balancing gradient.
        step.extra = value;
    }
    Ok(step)
}

/// `f(g)` for every one of `n` expert groups: on threads of their own on
/// the CPU, one after another elsewhere. Results in group order.
fn each_group<R: Send>(n: usize, device: &Device, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    if crate::ops::cpu_path(device) {
        crate::util::in_parallel(n, f)
    } else {
        (0..n).map(f).collect()
    }
}

//! The mixture's objective: per-expert negative ELBO, the mixture-of-experts
//! loss with its load-balancing term, and the pretraining loss on a fixed
//! assignment. Network shapes live in [`super::nets`].

use super::nets::Experts;
use crate::nn::likelihood::{kl_normal, Likelihood, Nll};
use candle_core::{Result, Tensor, D};

/// Per-expert negative ELBO of a batch.
pub struct ExpertLosses {
    /// `[K, B]`: L_k(x_b) = reconstruction + KL.
    pub total: Tensor,
    /// `[K, B]` reconstruction part.
    pub recon: Tensor,
}

/// Runs a group of K experts on `x` (`[B, P]`, in `[0, 1]`), with
/// reparameterization noise `eps` (`[K, B, latent]`, standard normal).
pub fn expert_losses(
    experts: &Experts,
    likelihood: Likelihood,
    x: &Tensor,
    eps: &Tensor,
) -> Result<ExpertLosses> {
    let (mean, var) = experts.encoders.forward(x)?;
    let z = (mean.clone() + (var.sqrt()? * eps)?)?;
    let (h, w, bias) = experts.decoders.forward_hidden(&z)?;
    let recon = likelihood.nll_output(&h, w, bias, x)?;
    let kl = kl_normal(&mean, &var)?;
    Ok(ExpertLosses {
        total: (&recon + kl)?,
        recon,
    })
}

/// The parts of one batch's objective, as scalars.
pub struct Objective {
    /// What is minimized.
    pub loss: Tensor,
    /// The expected negative ELBO part (batch mean of Σ_k w_k L_k).
    pub elbo: Tensor,
    /// The weighted balancing or classification part.
    pub extra: Tensor,
}

/// Mixture-of-experts loss: batch mean of Σ_k p_k(x) L_k(x), plus `balance`
/// × the population variance across experts of importance_k = Σ_batch p_k(x).
pub fn mixture_loss(gate_logits: &Tensor, losses: &Tensor, balance: f64) -> Result<Objective> {
    let b = gate_logits.dim(0)? as f64;
    // `softmax` (not `softmax_last_dim`, which has no backward pass).
    let p = candle_nn::ops::softmax(gate_logits, D::Minus1)?;
    let elbo = (p.t()? * losses)?.sum_all()?.affine(1.0 / b, 0.0)?;
    let importance = p.sum(0)?;
    let centred = importance.broadcast_sub(&importance.mean_all()?)?;
    let variance = centred.sqr()?.mean_all()?;
    let extra = (variance * balance)?;
    Ok(Objective {
        loss: (&elbo + &extra)?,
        elbo,
        extra,
    })
}

/// The balancing term of a whole batch from its routing logits `[B, E]`:
/// `balance` × the population variance of importance_k = Σ_batch p_k(x)
/// (its value), and its slope with respect to each importance_k,
/// `balance · 2 (importance_k − mean) / K` (`[K]`), for
/// [`mixture_loss_part`]. Computed without gradients.
///
/// With `styles` S > 1 the E = K·S logits are a two-level routing
/// (`log p(c|x) + log p(s|x,c)` at `c·S + s`, see
/// [`super::nets::Networks::logits`]), and the term is applied at both
/// levels: to the digit experts' importance Σ_s importance_{c,s}, and, for
/// each digit expert c, to its styles' importance_{c,s} = Σ_batch
/// p(c|x)·p(s|x,c) (each image's style probabilities weighted by its
/// routing mass to c); the slope is with respect to each importance_{c,s}
/// (`[K·S]`). S = 1 is the one-level term.
pub fn balance_slope(gate_logits: &Tensor, styles: usize, balance: f64) -> Result<(f64, Tensor)> {
    let p = candle_nn::ops::softmax(&gate_logits.detach(), D::Minus1)?;
    let importance = p.sum(0)?;
    if styles <= 1 {
        return variance_slope(&importance, balance);
    }
    let k = importance.dim(0)? / styles;
    let importance = importance.reshape((k, styles))?;
    let (mut value, top) = variance_slope(&importance.sum(1)?, balance)?;
    let mut rows = Vec::with_capacity(k);
    for c in 0..k {
        let (v, slope) = variance_slope(&importance.get(c)?, balance)?;
        value += v;
        rows.push(slope);
    }
    let slope = Tensor::stack(&rows, 0)?.broadcast_add(&top.reshape((k, 1))?)?;
    Ok((value, slope.flatten_all()?))
}

/// `balance` × the population variance of `importance` `[K]`, and its
/// slope `balance · 2 (importance_k − mean) / K`.
fn variance_slope(importance: &Tensor, balance: f64) -> Result<(f64, Tensor)> {
    let k = importance.dim(0)? as f64;
    let centred = importance.broadcast_sub(&importance.mean_all()?)?;
    let value = centred.sqr()?.mean_all()?.to_scalar::<f32>()? as f64 * balance;
    Ok((value, (centred * (2.0 * balance / k))?))
}

/// The gate's share of the [`mixture_loss`] of a batch of `batch` images,
/// or of a slice of one: `Σ_k p_k(x) L_k(x) / batch` over the images of
/// `gate_logits`, plus `Σ_k slope_k · importance_k` of those images, with
/// `slope` from [`balance_slope`] of the whole batch. The balancing term is
/// not a sum over images, but its gradient is `Σ_k slope_k ∇importance_k`,
/// and importance is; so slices' gradients add up to the whole batch's.
/// With `losses` detached it is the gate's part of the objective and
/// [`expert_part`] the experts'; the two parts' gradients are the whole
/// objective's, so they can run on different cores. `elbo` is the images'
/// share of the batch's; `extra` only carries the balancing gradient (the
/// term's value comes from [`balance_slope`]).
pub fn mixture_loss_part(
    gate_logits: &Tensor,
    losses: &Tensor,
    batch: usize,
    slope: &Tensor,
) -> Result<Objective> {
    let p = candle_nn::ops::softmax(gate_logits, D::Minus1)?;
    let elbo = (p.t()? * losses)?
        .sum_all()?
        .affine(1.0 / batch as f64, 0.0)?;
    let extra = (p.sum(0)? * slope)?.sum_all()?;
    Ok(Objective {
        loss: (&elbo + &extra)?,
        elbo,
        extra,
    })
}

/// The experts' part of an objective whose expected loss is
/// `Σ_k w_k(x) L_k(x) / batch`: that sum for a group of experts, with the
/// weights `w` `[B, K]` fixed (the gate's probabilities, detached, for the
/// mixture; the one-hot assignment for pretraining). Its gradient for the
/// experts is the whole objective's; the gate's comes from
/// [`mixture_loss_part`] or [`assignment_loss_part`] with the losses
/// detached.
pub fn expert_part(weights: &Tensor, losses: &Tensor, batch: usize) -> Result<Tensor> {
    (weights.t()? * losses)?
        .sum_all()?
        .affine(1.0 / batch as f64, 0.0)
}

/// Pretraining on a fixed assignment: each expert learns its own cluster
/// (batch mean of L_{c(x)}(x)) and the gate learns to predict the cluster
/// (cross-entropy). `one_hot` is `[B, K]`.
pub fn assignment_loss(
    gate_logits: &Tensor,
    losses: &Tensor,
    one_hot: &Tensor,
) -> Result<Objective> {
    assignment_loss_part(gate_logits, losses, one_hot, gate_logits.dim(0)?)
}

/// One slice's share of the [`assignment_loss`] of a batch of `batch`
/// images (the loss is a sum over images, so the shares add up to it).
/// With `losses` detached it is the gate's part of the objective, and
/// [`expert_part`] with the one-hot weights the experts'.
pub fn assignment_loss_part(
    gate_logits: &Tensor,
    losses: &Tensor,
    one_hot: &Tensor,
    batch: usize,
) -> Result<Objective> {
    let b = batch as f64;
    let elbo = (one_hot.t()? * losses)?.sum_all()?.affine(1.0 / b, 0.0)?;
    let log_p = candle_nn::ops::log_softmax(gate_logits, D::Minus1)?;
    let extra = (log_p * one_hot)?.sum_all()?.affine(-1.0 / b, 0.0)?;
    Ok(Objective {
        loss: (&elbo + &extra)?,
        elbo,
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::likelihood::bce_with_logits;
    use candle_core::Device;

    fn t(v: &[f32], shape: &[usize]) -> Tensor {
        Tensor::from_vec(v.to_vec(), shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn bce_is_stable_and_correct() {
        let l = t(&[-100.0, 0.0, 3.0, 100.0], &[4]);
        let x = t(&[0.0, 1.0, 0.25, 1.0], &[4]);
        let got = bce_with_logits(&l, &x).unwrap().to_vec1::<f32>().unwrap();
        let naive = |l: f32, x: f32| {
            let p = 1.0 / (1.0 + (-l).exp());
            -(x * p.ln() + (1.0 - x) * (1.0 - p).ln())
        };
        assert!(got[0].abs() < 1e-6 && got[3].abs() < 1e-6, "{got:?}");
        assert!((got[1] - naive(0.0, 1.0)).abs() < 1e-5);
        assert!((got[2] - naive(3.0, 0.25)).abs() < 1e-5);
    }

    #[test]
    fn kl_is_zero_at_prior() {
        let m = t(&[0.0, 1.0], &[1, 1, 2]);
        let v = t(&[1.0, 1.0], &[1, 1, 2]);
        let kl = kl_normal(&m, &v)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!((kl[0] - 0.5).abs() < 1e-6);
    }

    #[test]
    fn mixture_loss_weights_and_balances() {
        // Two samples, two experts; the gate is certain: sample 0 → expert 0, 1 → 1.
        let logits = t(&[50.0, -50.0, -50.0, 50.0], &[2, 2]);
        let losses = t(&[1.0, 10.0, 20.0, 3.0], &[2, 2]); // [K, B]
        let o = mixture_loss(&logits, &losses, 0.5).unwrap();
        assert!((o.elbo.to_scalar::<f32>().unwrap() - 2.0).abs() < 1e-5);
        assert!(o.extra.to_scalar::<f32>().unwrap().abs() < 1e-6);
        // Both to expert 0: importance (2, 0), variance 1.
        let logits = t(&[50.0, -50.0, 50.0, -50.0], &[2, 2]);
        let o = mixture_loss(&logits, &losses, 0.5).unwrap();
        assert!((o.extra.to_scalar::<f32>().unwrap() - 0.5).abs() < 1e-5);
        assert!((o.elbo.to_scalar::<f32>().unwrap() - 5.5).abs() < 1e-5);
    }

    /// Gate logits `[b, k]` and per-expert losses `[k, b]` (about 100 nats,
    /// as in training) to differentiate.
    fn logits_and_losses(seed: u64, b: usize, k: usize) -> (candle_core::Var, candle_core::Var) {
        use candle_core::Var;
        let mut rng = crate::rng::Rng::new(seed, 0);
        let logits = Var::from_vec(rng.normals(b * k), (b, k), &Device::Cpu).unwrap();
        let losses = rng
            .normals(k * b)
            .iter()
            .map(|v| 100.0 + 10.0 * v)
            .collect();
        let losses = Var::from_vec(losses, (k, b), &Device::Cpu).unwrap();
        (logits, losses)
    }

    #[test]
    fn slices_add_up_to_the_whole_batch() {
        let (b, k) = (7, 4);
        let (logits, losses) = logits_and_losses(9, b, k);
        let whole = mixture_loss(logits.as_tensor(), losses.as_tensor(), 0.3).unwrap();
        let g_whole = whole.loss.backward().unwrap();
        let (value, slope) = balance_slope(logits.as_tensor(), 1, 0.3).unwrap();
        let close =
            |a: f64, e: f64| assert!((a - e).abs() <= 1e-4 * e.abs().max(1.0), "{a} vs {e}");
        close(value, whole.extra.to_scalar::<f32>().unwrap() as f64);
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let (mut elbo, mut g_logits, mut g_losses) = (0.0, vec![], vec![]);
        for (start, len) in [(0, 3), (3, 4)] {
            let part = mixture_loss_part(
                &logits.as_tensor().narrow(0, start, len).unwrap(),
                &losses.as_tensor().narrow(1, start, len).unwrap(),
                b,
                &slope,
            )
            .unwrap();
            elbo += part.elbo.to_scalar::<f32>().unwrap() as f64;
            let g = part.loss.backward().unwrap();
            let g_l = g.get(logits.as_tensor()).unwrap();
            g_logits.extend(flat(&g_l.narrow(0, start, len).unwrap()));
            g_losses.push(
                g.get(losses.as_tensor())
                    .unwrap()
                    .narrow(1, start, len)
                    .unwrap(),
            );
        }
        close(elbo, whole.elbo.to_scalar::<f32>().unwrap() as f64);
        let g_losses = flat(&Tensor::cat(&g_losses, 1).unwrap());
        for (ours, whole) in [
            (g_logits, logits.as_tensor()),
            (g_losses, losses.as_tensor()),
        ] {
            let expect = flat(g_whole.get(whole).unwrap());
            assert_eq!(ours.len(), expect.len());
            for (a, e) in ours.iter().zip(&expect) {
                close(*a as f64, *e as f64);
            }
        }
    }

    /// The gate's part (on detached losses) and the experts' parts (on
    /// fixed weights, two groups) give the whole objective's gradients,
    /// for the mixture and for pretraining.
    #[test]
    fn gate_and_expert_parts_add_up_to_the_whole() {
        let dev = Device::Cpu;
        let (b, k) = (6, 5);
        let (logits, losses) = logits_and_losses(10, b, k);
        let (logits_t, losses_t) = (logits.as_tensor(), losses.as_tensor());
        let mut one_hot = vec![0f32; b * k];
        for r in 0..b {
            one_hot[r * k + (r * 3) % k] = 1.0;
        }
        let one_hot = Tensor::from_vec(one_hot, (b, k), &dev).unwrap();
        let (_, slope) = balance_slope(logits_t, 1, 0.3).unwrap();
        let p = candle_nn::ops::softmax(&logits_t.detach(), D::Minus1).unwrap();
        let cases = [
            (
                mixture_loss(logits_t, losses_t, 0.3).unwrap(),
                mixture_loss_part(logits_t, &losses_t.detach(), b, &slope).unwrap(),
                p,
            ),
            (
                assignment_loss(logits_t, losses_t, &one_hot).unwrap(),
                assignment_loss_part(logits_t, &losses_t.detach(), &one_hot, b).unwrap(),
                one_hot.clone(),
            ),
        ];
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (whole, gate, weights) in cases {
            let whole = whole.loss.backward().unwrap();
            let mut loss = gate.loss;
            for (first, count) in [(0, 2), (2, 3)] {
                let part = expert_part(
                    &weights.narrow(1, first, count).unwrap(),
                    &losses_t.narrow(0, first, count).unwrap(),
                    b,
                )
                .unwrap();
                loss = (loss + part).unwrap();
            }
            let parts = loss.backward().unwrap();
            for v in [logits_t, losses_t] {
                let (a, e) = (flat(parts.get(v).unwrap()), flat(whole.get(v).unwrap()));
                for (a, e) in a.iter().zip(&e) {
                    assert!((a - e).abs() <= 1e-5 * e.abs().max(1.0), "{a} vs {e}");
                }
            }
        }
    }

    #[test]
    fn assignment_loss_picks_own_expert() {
        let logits = t(&[0.0, 0.0], &[1, 2]);
        let losses = t(&[4.0, 9.0], &[2, 1]);
        let one_hot = t(&[0.0, 1.0], &[1, 2]);
        let o = assignment_loss(&logits, &losses, &one_hot).unwrap();
        assert!((o.elbo.to_scalar::<f32>().unwrap() - 9.0).abs() < 1e-5);
        assert!((o.extra.to_scalar::<f32>().unwrap() - 2f32.ln()).abs() < 1e-5);
    }
}

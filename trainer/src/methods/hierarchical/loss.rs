//! The two-level objective written out plainly, for reference: training
//! computes the same through the one-level mixture's parts
//! ([`crate::methods::mixture::loss`]) on the routing logits
//! `log p(c|x) + log p(s|x,c)` ([`two_level_logits`]), whose softmax is the
//! two-level routing, and the two-level balancing term
//! ([`crate::methods::mixture::loss::balance_slope`] with S styles). The
//! tests check that the two agree, in value and gradients, and the value
//! against one computed by hand.

use candle_core::{Result, Tensor, D};

#[cfg(doc)]
use crate::methods::mixture::nets::two_level_logits;

/// Batch mean of Σ_{c,s} p(c|x)·p(s|x,c)·L_{c,s}(x) (the expected
/// negative ELBO under the two-level routing), plus `balance` × (the
/// population variance across digit experts of importance_c = Σ_batch
/// p(c|x), plus for each digit expert c the population variance across its
/// styles of importance_{c,s} = Σ_batch p(c|x)·p(s|x,c)). `top` is `[B, K]`,
/// `style` `[B, K, S]`, `losses` `[K·S, B]` (VAE `c·S + s`). Returns
/// `(loss, elbo, balancing)`.
pub fn objective(
    top: &Tensor,
    style: &Tensor,
    losses: &Tensor,
    balance: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (b, k, s) = style.dims3()?;
    let p_top = candle_nn::ops::softmax(top, D::Minus1)?;
    let p_style = candle_nn::ops::softmax(style, D::Minus1)?;
    let q = p_style.broadcast_mul(&p_top.reshape((b, k, 1))?)?;
    let l = losses.t()?.reshape((b, k, s))?;
    let elbo = (&q * l)?.sum_all()?.affine(1.0 / b as f64, 0.0)?;
    let variance = |t: &Tensor| -> Result<Tensor> {
        t.broadcast_sub(&t.mean_keepdim(D::Minus1)?)?
            .sqr()?
            .mean(D::Minus1)
    };
    let top_term = variance(&p_top.sum(0)?)?;
    let style_term = variance(&q.sum(0)?)?.sum_all()?;
    let extra = ((top_term + style_term)? * balance)?;
    Ok(((&elbo + &extra)?, elbo, extra))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::mixture::loss::{balance_slope, mixture_loss_part};
    use crate::methods::mixture::nets::two_level_logits;
    use candle_core::{Device, Var};

    /// Two images, two digit experts of two styles each.
    fn tiny() -> (Var, Var, Var) {
        let dev = Device::Cpu;
        let ln3 = 3f32.ln();
        // p(c|x) = (1/2, 1/2) for both images; p(s|x,c): image 0 (3/4, 1/4)
        // under c = 0 and (1/2, 1/2) under c = 1; image 1 (1/2, 1/2) and
        // (1/4, 3/4).
        let top = Var::from_vec(vec![0f32, 0.0, 0.0, 0.0], (2, 2), &dev).unwrap();
        let style = Var::from_vec(
            vec![ln3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, ln3],
            (2, 2, 2),
            &dev,
        )
        .unwrap();
        // L[c·S + s][image]
        let losses = Var::from_vec(
            vec![4f32, 10.0, 8.0, 20.0, 2.0, 30.0, 6.0, 40.0],
            (4, 2),
            &dev,
        )
        .unwrap();
        (top, style, losses)
    }

    #[test]
    fn the_objective_is_the_one_computed_by_hand() {
        let (top, style, losses) = tiny();
        let (loss, elbo, extra) =
            objective(top.as_tensor(), style.as_tensor(), losses.as_tensor(), 2.0).unwrap();
        // Image 0: q = (3/8, 1/8, 1/4, 1/4) over (c0s0, c0s1, c1s0, c1s1):
        // 3/8·4 + 1/8·8 + 1/4·2 + 1/4·6 = 4.5. Image 1: q = (1/4, 1/4,
        // 1/8, 3/8): 2.5 + 5 + 3.75 + 15 = 26.25. Mean 15.375.
        let close = |t: &Tensor, e: f32| {
            let v = t.to_scalar::<f32>().unwrap();
            assert!((v - e).abs() < 1e-5, "{v} vs {e}");
        };
        close(&elbo, 15.375);
        // Importance: digit experts (1, 1), variance 0; styles of c0
        // (5/8, 3/8) and of c1 (3/8, 5/8), variance 1/64 each; × 2.
        close(&extra, 2.0 * (2.0 / 64.0));
        close(&loss, 15.375 + 0.0625);
    }

    /// What training computes (routing logits, the one-level mixture's
    /// loss part, the two-level balancing slope) has the reference's value
    /// and gradients, on random tensors.
    #[test]
    fn training_computes_the_reference_objective() {
        let dev = Device::Cpu;
        let (b, k, s) = (5, 3, 2);
        let mut rng = crate::rng::Rng::new(3, 0);
        let top = Var::from_vec(rng.normals(b * k), (b, k), &dev).unwrap();
        let style = Var::from_vec(rng.normals(b * k * s), (b, k, s), &dev).unwrap();
        let l: Vec<f32> = rng
            .normals(k * s * b)
            .iter()
            .map(|v| 100.0 + 10.0 * v)
            .collect();
        let losses = Var::from_vec(l, (k * s, b), &dev).unwrap();
        let vars = [top.as_tensor(), style.as_tensor(), losses.as_tensor()];
        let (reference, r_elbo, r_extra) = objective(vars[0], vars[1], vars[2], 0.3).unwrap();
        let logits = two_level_logits(vars[0], vars[1]).unwrap();
        let (value, slope) = balance_slope(&logits, s, 0.3).unwrap();
        let part = mixture_loss_part(&logits, vars[2], b, &slope).unwrap();
        let scalar = |t: &Tensor| t.to_scalar::<f32>().unwrap() as f64;
        let close =
            |a: f64, e: f64| assert!((a - e).abs() <= 1e-4 * e.abs().max(1.0), "{a} vs {e}");
        close(scalar(&part.elbo), scalar(&r_elbo));
        close(value, scalar(&r_extra));
        let (g_ref, g_part) = (reference.backward().unwrap(), part.loss.backward().unwrap());
        for v in vars {
            let flat = |g: &candle_core::backprop::GradStore| {
                g.get(v)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
            };
            for (a, e) in flat(&g_part).iter().zip(flat(&g_ref)) {
                close(*a as f64, e as f64);
            }
        }
    }
}

//! Likelihoods of pixels under a decoder's output, and the analytic KL of a
//! diagonal Gaussian posterior: the parts of a VAE's negative ELBO every
//! method shares.

use candle_core::{Result, Tensor, D};

/// What a decoder output means (and how reconstruction is scored): the
/// engine's own description, which a model file records.
pub use engine::Likelihood;

/// How a [`Likelihood`] scores data under a decoder's output, in candle.
pub trait Nll {
    /// [`Nll::nll`] of `x` `[B, P]` under the logits `h · w + bias` of an
    /// output layer (see the implementation).
    fn nll_output(self, h: &Tensor, w: &Tensor, bias: &Tensor, x: &Tensor) -> Result<Tensor>;

    /// Negative log-likelihood of `x` under decoder logits, summed over
    /// pixels.
    fn nll(self, logits: &Tensor, x: &Tensor) -> Result<Tensor>;
}

impl Nll for Likelihood {
    /// [`Nll::nll`] of `x` `[B, P]` under the logits `h · w + bias`
    /// of an output layer, with `h` `[K, B, H]`, `w` `[K, H, P]` and `bias`
    /// `[K, 1, P]` as [`crate::nn::layers::BatchedMlp::forward_hidden`] gives them:
    /// one fused op on the CPU ([`crate::ops::output_nll`]), candle's ops
    /// elsewhere ([`crate::ops::cpu_path`]).
    fn nll_output(self, h: &Tensor, w: &Tensor, bias: &Tensor, x: &Tensor) -> Result<Tensor> {
        if crate::ops::cpu_path(h.device()) {
            crate::ops::output_nll(h, w, bias, x, self)
        } else {
            self.nll(&h.matmul(w)?.broadcast_add(bias)?, &x.unsqueeze(0)?)
        }
    }

    /// Negative log-likelihood of `x` (`[1, B, P]` or broadcastable) under the
    /// decoder logits `[K, B, P]`, summed over pixels: `[K, B]`.
    fn nll(self, logits: &Tensor, x: &Tensor) -> Result<Tensor> {
        match self {
            Likelihood::Bernoulli => bce_with_logits(logits, x)?.sum(D::Minus1),
            Likelihood::Gaussian { std } => {
                let mean = candle_nn::ops::sigmoid(logits)?;
                let pixels = logits.dim(D::Minus1)? as f64;
                let sq = mean.broadcast_sub(x)?.sqr()?.sum(D::Minus1)?;
                let c = pixels * ((std as f64).ln() + 0.5 * (std::f64::consts::TAU).ln());
                sq.affine(1.0 / (2.0 * (std as f64).powi(2)), c)
            }
        }
    }
}

/// Binary cross-entropy with logits, element-wise, written stably:
/// `relu(l) − x·l + log(1 + exp(−|l|))` (candle's own version overflows).
pub fn bce_with_logits(logits: &Tensor, x: &Tensor) -> Result<Tensor> {
    let softplus = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    (logits.relu()? - logits.broadcast_mul(x)?)? + softplus
}

/// Analytic KL(q(z|x) ‖ N(0, I)) summed over the latent: `[K, B]`.
pub fn kl_normal(mean: &Tensor, var: &Tensor) -> Result<Tensor> {
    let t = ((var + mean.sqr()?)? - var.log()?)?;
    ((t - 1.0)? * 0.5)?.sum(D::Minus1)
}

//! Likelihoods of data under a decoder's output, and the analytic KL of a
//! diagonal Gaussian posterior: the parts of a VAE's negative ELBO every
//! method shares.
//!
//! One vocabulary: [`Likelihood`], the engine's (Bernoulli, or a Gaussian of
//! fixed standard deviation around `σ(logit)`), is what a decoder of pixels
//! means in every method and in the model file; [`Observation`] is that, or,
//! for points that are not pixels (kVAE's 2-D experiment and its k-means
//! check), a Gaussian around the decoder's raw output.

use candle_core::{Device, Result, Tensor, D};

use crate::rng::Rng;

/// What a decoder output means (and how reconstruction is scored): the
/// engine's own description, which a model file records.
pub use engine::Likelihood;

/// Log-variances are kept in this range, the posterior's and a decoder's
/// learned ones: a Gaussian fitted to a handful of points would otherwise
/// shrink its variance without bound.
pub const LOGVAR_MIN: f64 = -9.0;
/// See [`LOGVAR_MIN`].
pub const LOGVAR_MAX: f64 = 6.0;

/// What a VAE's decoder output parametrizes: pixels as the engine models
/// them, or real vectors.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(from = "ObservationName", into = "ObservationName")]
pub enum Observation {
    /// Pixels in [0, 1] under the engine's [`Likelihood`] of the decoder's
    /// logits (the mixture's decoders and every model file's); a sample is
    /// the decoder mean `σ(logit)`, which is what the engine generates.
    Pixels(Likelihood),
    /// Real vectors: a Gaussian around the decoder's raw output with this
    /// standard deviation in every dimension, or, with `None`, a learned
    /// one (the decoder gives a mean and a log-variance per dimension); a
    /// sample adds the noise.
    Real {
        /// The fixed standard deviation, or `None` for a learned variance.
        std: Option<f32>,
    },
}

/// [`Observation`] in a configuration file: the names kVAE's configurations
/// have always used (`"bernoulli"`, `"gaussian"` for the learned variance),
/// so that earlier runs' `config.json` read the same.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ObservationName {
    Bernoulli,
    PixelGaussian {
        std: f32,
    },
    Gaussian,
    #[serde(alias = "fixedgaussian")]
    FixedGaussian {
        std: f32,
    },
}

impl From<ObservationName> for Observation {
    fn from(name: ObservationName) -> Self {
        match name {
            ObservationName::Bernoulli => Observation::Pixels(Likelihood::Bernoulli),
            ObservationName::PixelGaussian { std } => {
                Observation::Pixels(Likelihood::Gaussian { std })
            }
            ObservationName::Gaussian => Observation::Real { std: None },
            ObservationName::FixedGaussian { std } => Observation::Real { std: Some(std) },
        }
    }
}

impl From<Observation> for ObservationName {
    fn from(o: Observation) -> Self {
        match o {
            Observation::Pixels(Likelihood::Bernoulli) => ObservationName::Bernoulli,
            Observation::Pixels(Likelihood::Gaussian { std }) => {
                ObservationName::PixelGaussian { std }
            }
            Observation::Real { std: None } => ObservationName::Gaussian,
            Observation::Real { std: Some(std) } => ObservationName::FixedGaussian { std },
        }
    }
}

impl Observation {
    /// Bernoulli pixels: kVAE's MNIST VAEs and the default of every method.
    pub const BERNOULLI: Observation = Observation::Pixels(Likelihood::Bernoulli);

    /// Decoder outputs per data value (2 for a learned variance).
    pub fn outputs_per_dim(self) -> usize {
        match self {
            Observation::Real { std: None } => 2,
            Observation::Pixels(_) | Observation::Real { std: Some(_) } => 1,
        }
    }

    /// `log p(x | out)` summed over the last dimension, from the decoder
    /// output `out` (`[.., outputs_per_dim · d]`) and the data `x`
    /// (`[.., d]`, the same leading shape): pixels through [`Nll::nll`], the
    /// mixture's code.
    pub fn log_likelihood(self, out: &Tensor, x: &Tensor) -> Result<Tensor> {
        let half_log_2pi = 0.5 * std::f64::consts::TAU.ln();
        match self {
            Observation::Pixels(likelihood) => likelihood.nll(out, x)?.neg(),
            Observation::Real { std: None } => {
                let d = x.dim(D::Minus1)?;
                let mean = out.narrow(D::Minus1, 0, d)?;
                let logvar = out.narrow(D::Minus1, d, d)?.clamp(LOGVAR_MIN, LOGVAR_MAX)?;
                let sq = (x - &mean)?.sqr()?;
                let nll = ((sq * logvar.neg()?.exp()?)? + &logvar)?.affine(0.5, half_log_2pi)?;
                nll.sum(D::Minus1)?.neg()
            }
            Observation::Real { std: Some(std) } => {
                let std = f64::from(std);
                let nll = (x - out)?
                    .sqr()?
                    .affine(0.5 / (std * std), std.ln() + half_log_2pi)?;
                nll.sum(D::Minus1)?.neg()
            }
        }
    }

    /// Samples `[k, n, d]` from decoder outputs `out` (`[k, n, outputs_per_dim
    /// · d]`): the decoder mean for pixels, mean plus Gaussian noise drawn
    /// from `rng` for real vectors.
    pub fn sample(self, out: &Tensor, rng: &mut Rng, device: &Device) -> Result<Tensor> {
        let (k, n, outputs) = out.dims3()?;
        let d = outputs / self.outputs_per_dim();
        match self {
            Observation::Pixels(_) => candle_nn::ops::sigmoid(out),
            Observation::Real { std: None } => {
                let mean = out.narrow(D::Minus1, 0, d)?;
                let logvar = out.narrow(D::Minus1, d, d)?.clamp(LOGVAR_MIN, LOGVAR_MAX)?;
                let eps = Tensor::from_vec(rng.normals(k * n * d), (k, n, d), device)?;
                mean + (logvar.affine(0.5, 0.0)?.exp()? * eps)?
            }
            Observation::Real { std: Some(std) } => {
                let eps = Tensor::from_vec(rng.normals(k * n * d), (k, n, d), device)?;
                out + eps.affine(f64::from(std), 0.0)?
            }
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The names of kVAE's configurations from before the shared type read
    /// as they meant, and the two that existed then are written unchanged.
    #[test]
    fn observation_names_read_and_write_as_before() {
        let read = |s: &str| serde_json::from_str::<Observation>(s).unwrap();
        assert_eq!(read(r#""bernoulli""#), Observation::BERNOULLI);
        assert_eq!(read(r#""gaussian""#), Observation::Real { std: None });
        assert_eq!(
            read(r#"{"fixedgaussian":{"std":1.0}}"#),
            Observation::Real { std: Some(1.0) }
        );
        let write = |o: Observation| serde_json::to_string(&o).unwrap();
        assert_eq!(write(Observation::BERNOULLI), r#""bernoulli""#);
        assert_eq!(write(Observation::Real { std: None }), r#""gaussian""#);
        for o in [
            Observation::BERNOULLI,
            Observation::Pixels(Likelihood::Gaussian { std: 0.25 }),
            Observation::Real { std: None },
            Observation::Real { std: Some(0.5) },
        ] {
            assert_eq!(read(&write(o)), o);
        }
    }

    /// Pixels are scored by the mixture's code: the same values as
    /// [`Nll::nll`], with the sign of a log-likelihood.
    #[test]
    fn pixel_observations_score_as_the_mixture_does() {
        let dev = Device::Cpu;
        let logits = Tensor::new(&[[[-2.0f32, 0.5, 3.0]], [[1.0, -1.0, 0.0]]], &dev).unwrap();
        let x = Tensor::new(&[[[0.0f32, 1.0, 0.8]], [[1.0, 0.0, 0.3]]], &dev).unwrap();
        for likelihood in [Likelihood::Bernoulli, Likelihood::Gaussian { std: 0.3 }] {
            let ours: Vec<Vec<f32>> = Observation::Pixels(likelihood)
                .log_likelihood(&logits, &x)
                .unwrap()
                .to_vec2()
                .unwrap();
            let mixture: Vec<Vec<f32>> = likelihood.nll(&logits, &x).unwrap().to_vec2().unwrap();
            for (a, b) in ours.iter().flatten().zip(mixture.iter().flatten()) {
                assert_eq!(*a, -*b);
            }
        }
    }
}

//! The decoders' likelihood of the images, one pass per image and expert.
//!
//! The decoders' output is the biggest tensor of a step (`[K, B, 784]`, ten
//! times any other), and candle would take it through the output bias, the
//! sigmoid, the likelihood's four to eight element-wise ops and a sum, and
//! back through all of them, each pass into a fresh full-size buffer. This
//! op reads the pre-bias output once forward and once backward: per image
//! and expert it forms the logits in a row buffer (L1-sized), takes their
//! sigmoid with the engine's vectorized kernel, and sums the per-pixel
//! negative log-likelihood; the backward pass recomputes the same row and
//! writes the logits' gradient, summing the bias gradient as it goes.

use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use engine::kernels::activate_slice;
use engine::{Activation, Likelihood};

use super::{f32_values, lane_sum, with_values};

/// `y` `[K, B, P]`, `bias` `[K, 1, P]`, `x` `[B, P]`; returns `(K, B, P)`.
fn split(y: &Shape, bias: &Shape, x: &Shape) -> Result<(usize, usize, usize)> {
    match (y.dims(), bias.dims(), x.dims()) {
        (&[k, b, p], &[kb, 1, pb], &[bx, px]) if kb == k && pb == p && bx == b && px == p => {
            Ok((k, b, p))
        }
        _ => bail!("pixel-nll: shapes {y:?}, {bias:?}, {x:?} do not fit"),
    }
}

/// One image's logits `y + bias` into `logits`, their sigmoid into `mean`.
#[inline(always)]
fn row(y: &[f32], bias: &[f32], logits: &mut Vec<f32>, mean: &mut Vec<f32>) {
    logits.clear();
    logits.extend(y.iter().zip(bias).map(|(y, b)| y + b));
    mean.clear();
    mean.extend_from_slice(logits);
    activate_slice(Activation::Sigmoid, mean);
}

struct PixelNll(Likelihood);

impl PixelNll {
    /// The negative log-likelihood of `x` under one row of logits (and their
    /// sigmoid), summed over pixels; `terms` is scratch space.
    fn nll(&self, logits: &[f32], mean: &[f32], x: &[f32], terms: &mut Vec<f32>) -> f32 {
        terms.clear();
        match self.0 {
            Likelihood::Bernoulli => {
                // relu(l) − x·l + log(1 + exp(−|l|)), the last term as
                // −log(sigmoid(|l|)) = −log(max(s, 1 − s)).
                terms.extend(
                    logits
                        .iter()
                        .zip(mean)
                        .zip(x)
                        .map(|((&l, &s), &x)| l.max(0.0) - x * l - s.max(1.0 - s).ln()),
                );
                lane_sum(terms)
            }
            Likelihood::Gaussian { std } => {
                terms.extend(mean.iter().zip(x).map(|(s, x)| (s - x) * (s - x)));
                let std = std as f64;
                let scale = (0.5 / (std * std)) as f32;
                let constant =
                    (x.len() as f64 * (std.ln() + 0.5 * std::f64::consts::TAU.ln())) as f32;
                lane_sum(terms) * scale + constant
            }
        }
    }

    /// d nll / d logit for every pixel of one row, times `g`, appended to `out`.
    fn gradient(&self, mean: &[f32], x: &[f32], g: f32, out: &mut Vec<f32>) {
        match self.0 {
            Likelihood::Bernoulli => out.extend(mean.iter().zip(x).map(|(&s, &x)| g * (s - x))),
            Likelihood::Gaussian { std } => {
                let g = g / (std * std);
                out.extend(
                    mean.iter()
                        .zip(x)
                        .map(|(&s, &x)| g * (s - x) * (s * (1.0 - s))),
                )
            }
        }
    }
}

impl CustomOp3 for PixelNll {
    fn name(&self) -> &'static str {
        "pixel-nll"
    }

    fn cpu_fwd(
        &self,
        y: &CpuStorage,
        y_l: &Layout,
        bias: &CpuStorage,
        bias_l: &Layout,
        x: &CpuStorage,
        x_l: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (k, b, p) = split(y_l.shape(), bias_l.shape(), x_l.shape())?;
        let y = f32_values(y, y_l, self.name())?;
        let bias = f32_values(bias, bias_l, self.name())?;
        let x = f32_values(x, x_l, self.name())?;
        let (mut logits, mut mean, mut terms) = (Vec::new(), Vec::new(), Vec::new());
        let mut out = Vec::with_capacity(k * b);
        for (y_expert, bias) in y.chunks_exact(b * p).zip(bias.chunks_exact(p)) {
            for (y_row, x_row) in y_expert.chunks_exact(p).zip(x.chunks_exact(p)) {
                row(y_row, bias, &mut logits, &mut mean);
                out.push(self.nll(&logits, &mean, x_row, &mut terms));
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((k, b))))
    }

    fn bwd(
        &self,
        y: &Tensor,
        bias: &Tensor,
        x: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (k, b, p) = split(y.shape(), bias.shape(), x.shape())?;
        let (dy, dbias) = with_values([y, bias, x, grad], self.name(), |values| {
            let &[y, bias, x, grad] = values else {
                bail!("pixel-nll: four tensors expected");
            };
            let (mut logits, mut mean) = (Vec::new(), Vec::new());
            let mut dy = Vec::with_capacity(k * b * p);
            let mut dbias = vec![0f32; k * p];
            let experts = y.chunks_exact(b * p).zip(bias.chunks_exact(p));
            let experts = experts.zip(grad.chunks_exact(b));
            for (((y, bias), grad), dbias) in experts.zip(dbias.chunks_exact_mut(p)) {
                let rows = y.chunks_exact(p).zip(x.chunks_exact(p)).zip(grad);
                for ((y_row, x_row), &g) in rows {
                    row(y_row, bias, &mut logits, &mut mean);
                    let start = dy.len();
                    self.gradient(&mean, x_row, g, &mut dy);
                    for (db, d) in dbias.iter_mut().zip(&dy[start..]) {
                        *db += d;
                    }
                }
            }
            Ok((dy, dbias))
        })?;
        let dy = Tensor::from_vec(dy, y.shape(), y.device())?;
        let dbias = Tensor::from_vec(dbias, bias.shape(), bias.device())?;
        // The images are data: no gradient.
        Ok((Some(dy), Some(dbias), None))
    }
}

/// The negative log-likelihood of images `x` `[B, P]` under every expert's
/// decoder output, summed over pixels: `[K, B]`. `y` `[K, B, P]` is the
/// decoders' last matmul before its bias `bias` `[K, 1, P]`; the logits are
/// `y + bias`, the pixel probabilities (Bernoulli) or means (Gaussian) their
/// sigmoid. The same values and gradients (for `y` and `bias`) as
/// `crate::method::Likelihood::nll` of `y.broadcast_add(bias)`, up to
/// rounding. CPU only (`crate::method` falls back to candle ops elsewhere).
pub fn pixel_nll(y: &Tensor, bias: &Tensor, x: &Tensor, likelihood: Likelihood) -> Result<Tensor> {
    y.contiguous()?
        .apply_op3(&bias.contiguous()?, &x.contiguous()?, PixelNll(likelihood))
}

#[cfg(test)]
mod tests {
    use super::super::check::{assert_close, assert_same_gradients, values, var};
    use super::*;
    use crate::method;
    use crate::rng::Rng;
    use candle_core::Device;

    /// Images with exact 0s and 1s (most of MNIST) and grey values between.
    fn images(rng: &mut Rng, b: usize, p: usize) -> Tensor {
        let v = (0..b * p)
            .map(|_| match rng.unit_f64() {
                u if u < 0.4 => 0.0,
                u if u < 0.6 => 1.0,
                u => u as f32,
            })
            .collect();
        Tensor::from_vec(v, (b, p), &Device::Cpu).unwrap()
    }

    #[test]
    fn matches_the_likelihood_in_values_and_gradients() {
        let mut rng = Rng::new(5, 0);
        let (k, b, p) = (3, 4, 53);
        for likelihood in [
            method::Likelihood::Bernoulli,
            method::Likelihood::Gaussian { std: 0.5 },
        ] {
            // Logits up to about ±12 with the bias: the sigmoid saturates on some.
            let y = var(&mut rng, &[k, b, p], 4.0);
            let bias = var(&mut rng, &[k, 1, p], 1.0);
            let x = images(&mut rng, b, p);
            let ours = pixel_nll(y.as_tensor(), bias.as_tensor(), &x, likelihood.engine()).unwrap();
            let logits = y.as_tensor().broadcast_add(bias.as_tensor()).unwrap();
            let theirs = likelihood.nll(&logits, &x.unsqueeze(0).unwrap()).unwrap();
            assert_close(&ours, &theirs, 1e-5, &format!("{likelihood:?} values"));
            assert_same_gradients(&ours, &theirs, &[&y, &bias], &mut rng, 1e-5);
        }
    }

    #[test]
    fn bernoulli_is_stable_for_huge_logits() {
        // logit ±100 against the matching pixel costs (almost) nothing; against
        // the other pixel it costs 100 nats. The naive log(sigmoid) is inf.
        let y =
            Tensor::from_vec(vec![100f32, -100.0, 100.0, -100.0], (1, 1, 4), &Device::Cpu).unwrap();
        let bias = Tensor::zeros((1, 1, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let x = Tensor::from_vec(vec![1f32, 0.0, 0.0, 1.0], (1, 4), &Device::Cpu).unwrap();
        let nll = values(&pixel_nll(&y, &bias, &x, Likelihood::Bernoulli).unwrap());
        assert!((nll[0] - 200.0).abs() < 1e-3, "{nll:?}");
    }

    #[test]
    fn shapes_that_do_not_fit_are_an_error() {
        let mut rng = Rng::new(2, 0);
        let y = var(&mut rng, &[2, 3, 4], 1.0);
        let bias = var(&mut rng, &[2, 1, 4], 1.0);
        let x = images(&mut rng, 3, 5);
        let err = pixel_nll(y.as_tensor(), bias.as_tensor(), &x, Likelihood::Bernoulli);
        assert!(err.unwrap_err().to_string().contains("do not fit"));
    }
}

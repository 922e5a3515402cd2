//! The decoders' output layer and the likelihood of the images, fused.
//!
//! The decoders' output is the biggest tensor of a step (`[K, B, 784]`, ten
//! times any other), and candle would take it through the output bias, the
//! sigmoid, the likelihood's four to eight element-wise ops and a sum, and
//! back through all of them, each pass into a fresh full-size buffer, plus
//! a zeroed buffer and an addition for its gradient and for the output
//! weights' gradient. This op runs the output layer's matmul (candle's own
//! CPU call, so the same bits), then per image and expert adds the bias,
//! takes the sigmoid with the engine's vectorized kernel and sums the
//! per-pixel negative log-likelihood; it keeps the sigmoid for the backward
//! pass, which writes the logits' gradient once and multiplies it into the
//! gradients of the hidden layer and of the weights (the latter handed to
//! [`super::backward`] when it runs).

use std::sync::OnceLock;

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use engine::kernels::activate_slice;
use engine::{Activation, Likelihood};

use super::sink::offer;
use super::{f32_values, lane_sum, with_values};

/// The sizes `(K, B, H, P)` of `h` `[K, B, H]`, `w` `[K, H, P]`, `bias`
/// (`K·P` elements) and `x` `[B, P]`; `K = 1` for 2-D `h` `[B, H]` and `w`
/// `[H, P]`.
fn sizes(h: &Shape, w: &Shape, bias: &Shape, x: &Shape) -> Result<(usize, usize, usize, usize)> {
    let (k, b, hidden, p) = match (h.dims(), w.dims()) {
        (&[k, b, hh], &[kw, hw, p]) if kw == k && hw == hh => (k, b, hh, p),
        (&[b, hh], &[hw, p]) if hw == hh => (1, b, hh, p),
        _ => bail!("output-nll: hidden {h:?} and weights {w:?} do not fit"),
    };
    if bias.elem_count() != k * p || x.dims() != [b, p] {
        bail!("output-nll: bias {bias:?} or images {x:?} do not fit {h:?} · {w:?}");
    }
    Ok((k, b, hidden, p))
}

/// One image's logits `y + bias` into `logits`, and their sigmoid in place
/// of `y`.
#[inline(always)]
fn row(y: &mut [f32], bias: &[f32], logits: &mut Vec<f32>) {
    logits.clear();
    logits.extend(y.iter().zip(bias).map(|(y, b)| y + b));
    y.copy_from_slice(logits);
    activate_slice(Activation::Sigmoid, y);
}

struct OutputNll {
    likelihood: Likelihood,
    /// The images `[B, P]` (data: no gradient).
    x: Tensor,
    /// The sigmoid of the logits, `[K, B, P]`, from the forward pass.
    mean: OnceLock<Vec<f32>>,
}

impl OutputNll {
    /// The negative log-likelihood of `x` under one row of logits (and their
    /// sigmoid), summed over pixels; `terms` is scratch space.
    fn nll(&self, logits: &[f32], mean: &[f32], x: &[f32], terms: &mut Vec<f32>) -> f32 {
        terms.clear();
        match self.likelihood {
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
        match self.likelihood {
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

impl CustomOp3 for OutputNll {
    fn name(&self) -> &'static str {
        "output-nll"
    }

    fn cpu_fwd(
        &self,
        h: &CpuStorage,
        h_l: &Layout,
        w: &CpuStorage,
        w_l: &Layout,
        bias: &CpuStorage,
        bias_l: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (k, b, hidden, p) = sizes(h_l.shape(), w_l.shape(), bias_l.shape(), self.x.shape())?;
        // The very call `Tensor::matmul` makes; its fresh buffer is turned
        // into the sigmoid row by row and kept for the backward pass.
        let CpuStorage::F32(mut mean) = h.matmul(w, (k, b, p, hidden), h_l, w_l)? else {
            bail!("output-nll: f32 tensors only");
        };
        if mean.len() != k * b * p {
            bail!("output-nll: unexpected matmul output");
        }
        let bias = f32_values(bias, bias_l, self.name())?;
        let out = with_values([&self.x], self.name(), |values| {
            let &[x] = values else {
                bail!("output-nll: one image tensor expected");
            };
            let (mut logits, mut terms) = (Vec::new(), Vec::new());
            let mut out = Vec::with_capacity(k * b);
            for (y, bias) in mean.chunks_exact_mut(b * p).zip(bias.chunks_exact(p)) {
                for (y_row, x_row) in y.chunks_exact_mut(p).zip(x.chunks_exact(p)) {
                    row(y_row, bias, &mut logits);
                    out.push(self.nll(&logits, y_row, x_row, &mut terms));
                }
            }
            Ok(out)
        })?;
        if self.mean.set(mean).is_err() {
            bail!("output-nll: the op ran forward twice");
        }
        Ok((CpuStorage::F32(out), Shape::from((k, b))))
    }

    fn bwd(
        &self,
        h: &Tensor,
        w: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (k, b, _, p) = sizes(h.shape(), w.shape(), bias.shape(), self.x.shape())?;
        let Some(mean) = self.mean.get() else {
            bail!("output-nll: backward pass before the forward pass");
        };
        let (dy, dbias) = with_values([&self.x, grad], self.name(), |values| {
            let &[x, grad] = values else {
                bail!("output-nll: two tensors expected");
            };
            let mut dy = Vec::with_capacity(k * b * p);
            let mut dbias = vec![0f32; k * p];
            let experts = mean.chunks_exact(b * p).zip(grad.chunks_exact(b));
            for ((mean, grad), dbias) in experts.zip(dbias.chunks_exact_mut(p)) {
                let rows = mean.chunks_exact(p).zip(x.chunks_exact(p)).zip(grad);
                for ((mean_row, x_row), &g) in rows {
                    let start = dy.len();
                    self.gradient(mean_row, x_row, g, &mut dy);
                    for (db, d) in dbias.iter_mut().zip(&dy[start..]) {
                        *db += d;
                    }
                }
            }
            Ok((dy, dbias))
        })?;
        let dy_shape = if h.rank() == 3 {
            Shape::from((k, b, p))
        } else {
            Shape::from((b, p))
        };
        let dy = Tensor::from_vec(dy, dy_shape, h.device())?;
        // candle's own `Op::Matmul` backward pass, on the logits' gradient.
        let dh = dy.matmul(&w.t()?)?;
        let dw = h.t()?.matmul(&dy)?;
        let dbias = Tensor::from_vec(dbias, bias.shape(), bias.device())?;
        Ok((Some(dh), offer(w, dw), offer(bias, dbias)))
    }
}

/// The negative log-likelihood of images `x` `[B, P]` under every expert's
/// decoder output, summed over pixels: `[K, B]`. The output layer is `h`
/// `[K, B, H]` (the last hidden layer) times `w` `[K, H, P]` plus `bias`
/// `[K, 1, P]`, whose sigmoid is the pixel probabilities (Bernoulli) or
/// means (Gaussian); 2-D `h` `[B, H]` and `w` `[H, P]` are one expert
/// (`[1, B]`). The same values and gradients (for `h`, `w` and `bias`) as
/// `crate::nn::likelihood::Likelihood::nll` of `h.matmul(w)?.broadcast_add(bias)`,
/// up to rounding. CPU only (`crate::methods::mixture::loss` falls back to candle ops
/// elsewhere).
pub fn output_nll(
    h: &Tensor,
    w: &Tensor,
    bias: &Tensor,
    x: &Tensor,
    likelihood: Likelihood,
) -> Result<Tensor> {
    super::count_fused();
    let op = OutputNll {
        likelihood,
        x: x.contiguous()?,
        mean: OnceLock::new(),
    };
    h.contiguous()?
        .apply_op3(&w.contiguous()?, &bias.contiguous()?, op)
}

#[cfg(test)]
mod tests {
    use super::super::check::{assert_close, assert_same_gradients, both_paths, values, var};
    use super::*;
    use crate::nn::likelihood::{self as method, Nll};
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
    fn matches_the_layer_and_likelihood_in_values_and_gradients() {
        let mut rng = Rng::new(5, 0);
        let (k, b, hidden, p) = (3, 4, 6, 53);
        for likelihood in [
            method::Likelihood::Bernoulli,
            method::Likelihood::Gaussian { std: 0.5 },
        ] {
            // Logits up to about ±12 with the bias: the sigmoid saturates on some.
            let h = var(&mut rng, &[k, b, hidden], 1.0);
            let w = var(&mut rng, &[k, hidden, p], 1.5);
            let bias = var(&mut rng, &[k, 1, p], 1.0);
            let x = images(&mut rng, b, p);
            let (h_t, w_t, bias_t) = (h.as_tensor(), w.as_tensor(), bias.as_tensor());
            let ours = output_nll(h_t, w_t, bias_t, &x, likelihood).unwrap();
            let logits = h_t.matmul(w_t).unwrap().broadcast_add(bias_t).unwrap();
            let theirs = likelihood.nll(&logits, &x.unsqueeze(0).unwrap()).unwrap();
            assert_close(&ours, &theirs, 1e-5, &format!("{likelihood:?} values"));
            assert_same_gradients(&ours, &theirs, &[&h, &w, &bias], &mut rng, 1e-5);
            // `method::Likelihood::nll_output`, which picks this op on the
            // CPU and candle's ops on other devices: both paths agree.
            let (cpu, device) = both_paths(|| likelihood.nll_output(h_t, w_t, bias_t, &x).unwrap());
            assert_close(&cpu, &device, 1e-5, &format!("{likelihood:?} device path"));
            assert_same_gradients(&cpu, &device, &[&h, &w, &bias], &mut rng, 1e-5);
        }
    }

    #[test]
    fn two_dimensional_operands_are_one_expert() {
        let mut rng = Rng::new(8, 0);
        let (b, hidden, p) = (5, 7, 20);
        let h = var(&mut rng, &[b, hidden], 1.0);
        let w = var(&mut rng, &[hidden, p], 1.0);
        let bias = var(&mut rng, &[p], 1.0);
        let x = images(&mut rng, b, p);
        let (h_t, w_t, bias_t) = (h.as_tensor(), w.as_tensor(), bias.as_tensor());
        let ours = output_nll(h_t, w_t, bias_t, &x, Likelihood::Bernoulli).unwrap();
        assert_eq!(ours.dims(), [1, b]);
        let logits = h_t.matmul(w_t).unwrap().broadcast_add(bias_t).unwrap();
        let theirs = method::Likelihood::Bernoulli
            .nll(&logits.unsqueeze(0).unwrap(), &x.unsqueeze(0).unwrap())
            .unwrap();
        assert_close(&ours, &theirs, 1e-5, "values");
        assert_same_gradients(&ours, &theirs, &[&h, &w, &bias], &mut rng, 1e-5);
    }

    /// Through [`crate::ops::backward`] the weights' gradients skip candle's
    /// store during the pass, and come out the same.
    #[test]
    fn the_collected_weight_gradients_are_the_same() {
        let mut rng = Rng::new(6, 0);
        let (k, b, hidden, p) = (2, 3, 4, 17);
        let h = var(&mut rng, &[k, b, hidden], 1.0);
        let w = var(&mut rng, &[k, hidden, p], 1.0);
        let bias = var(&mut rng, &[k, 1, p], 1.0);
        let x = images(&mut rng, b, p);
        let loss = || {
            let nll = output_nll(
                &candle_nn::ops::sigmoid(h.as_tensor()).unwrap(),
                w.as_tensor(),
                bias.as_tensor(),
                &x,
                Likelihood::Bernoulli,
            )
            .unwrap();
            (nll.sqr().unwrap()).sum_all().unwrap()
        };
        let plain = loss().backward().unwrap();
        let collected = crate::ops::backward(&loss()).unwrap();
        for v in [&h, &w, &bias] {
            let a = values(plain.get(v.as_tensor()).expect("plain gradient"));
            let e = values(collected.get(v.as_tensor()).expect("collected gradient"));
            assert_eq!(a, e);
        }
    }

    #[test]
    fn bernoulli_is_stable_for_huge_logits() {
        // logit ±100 against the matching pixel costs (almost) nothing; against
        // the other pixel it costs 100 nats. The naive log(sigmoid) is inf.
        let h = Tensor::ones((1, 1, 1), candle_core::DType::F32, &Device::Cpu).unwrap();
        let w =
            Tensor::from_vec(vec![100f32, -100.0, 100.0, -100.0], (1, 1, 4), &Device::Cpu).unwrap();
        let bias = Tensor::zeros((1, 1, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let x = Tensor::from_vec(vec![1f32, 0.0, 0.0, 1.0], (1, 4), &Device::Cpu).unwrap();
        let nll = values(&output_nll(&h, &w, &bias, &x, Likelihood::Bernoulli).unwrap());
        assert!((nll[0] - 200.0).abs() < 1e-3, "{nll:?}");
    }

    #[test]
    fn shapes_that_do_not_fit_are_an_error() {
        let mut rng = Rng::new(2, 0);
        let h = var(&mut rng, &[2, 3, 4], 1.0);
        let bias = var(&mut rng, &[2, 1, 5], 1.0);
        // Images one pixel too wide; then weights with the wrong inner size.
        for (w, x) in [([2, 4, 5], (3, 6)), ([2, 3, 5], (3, 5))] {
            let w = var(&mut rng, &w, 1.0);
            let x = images(&mut rng, x.0, x.1);
            let (h, w, bias) = (h.as_tensor(), w.as_tensor(), bias.as_tensor());
            let err = output_nll(h, w, bias, &x, Likelihood::Bernoulli);
            assert!(err.unwrap_err().to_string().contains("do not fit"));
        }
    }
}

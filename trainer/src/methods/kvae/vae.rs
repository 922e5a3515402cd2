//! K independent VAEs trained side by side, each on its own points.
//!
//! The networks are the trainer's batched stacks ([`BatchedMlp`]: K MLPs whose
//! layers are `[K, in, out]` tensors run as one batched matmul); here one
//! stack is the K encoders and another the K decoders. Unlike the mixture's
//! encoders, which all read the same batch, each VAE here reads its own batch
//! `x[k]`, because kVAE trains VAE k only on the points assigned to it.
//!
//! [`VaeNets`] is what the algorithm needs of K VAEs (an encoder and a
//! decoder over `[K, B, ·]` tensors); the ELBO, sampling and the
//! importance-sampled likelihood are written once on top of it, for these
//! dense VAEs and for the convolutional ones of [`super::conv`].

use candle_core::{Device, Result, Tensor, D};
use candle_nn::VarBuilder;

use crate::nn::layers::{Activation, BatchedMlp};
use crate::nn::likelihood::{kl_normal, Observation, LOGVAR_MAX, LOGVAR_MIN};
use crate::rng::Rng;

/// Shape of each VAE.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VaeShape {
    /// Data dimension.
    pub data: usize,
    /// Latent dimension.
    pub latent: usize,
    /// Hidden widths of the encoder; the decoder mirrors them.
    pub hidden: Vec<usize>,
    /// Likelihood of the data given the decoder output.
    pub observation: Observation,
}

impl VaeShape {
    /// Weights and biases of one VAE (encoder and decoder).
    pub fn parameters(&self) -> usize {
        let count = |w: &[usize]| w.windows(2).map(|p| p[0] * p[1] + p[1]).sum::<usize>();
        let mut enc = vec![self.data];
        enc.extend(&self.hidden);
        enc.push(2 * self.latent);
        let mut dec = vec![self.latent];
        dec.extend(self.hidden.iter().rev());
        dec.push(self.observation.outputs_per_dim() * self.data);
        count(&enc) + count(&dec)
    }
}

/// K VAEs of the same shape with independent weights.
pub struct VaeStack {
    /// The shape of every VAE.
    pub shape: VaeShape,
    /// `data -> hidden -> 2*latent` (mean, log-variance of q(z|x)).
    pub encoder: BatchedMlp,
    /// `latent -> hidden -> data` (or `2*data` for learned variances).
    pub decoder: BatchedMlp,
    k: usize,
}

/// Per-VAE negative ELBO of one batch, `[K]` each (batch means).
pub struct ElboTerms {
    /// Reconstruction negative log-likelihood.
    pub reconstruction: Tensor,
    /// KL divergence of q(z|x) from the prior.
    pub kl: Tensor,
}

impl VaeStack {
    /// K VAEs whose tensors are `encoder.*` and `decoder.*` under `vb`;
    /// hidden layers use ReLU.
    pub fn new(k: usize, shape: VaeShape, vb: VarBuilder) -> Result<Self> {
        let mut reversed = shape.hidden.clone();
        reversed.reverse();
        let encoder = BatchedMlp::new(
            k,
            shape.data,
            &shape.hidden,
            2 * shape.latent,
            Activation::Relu,
            vb.pp("encoder"),
        )?;
        let decoder = BatchedMlp::new(
            k,
            shape.latent,
            &reversed,
            shape.observation.outputs_per_dim() * shape.data,
            Activation::Relu,
            vb.pp("decoder"),
        )?;
        Ok(VaeStack {
            shape,
            encoder,
            decoder,
            k,
        })
    }
}

impl VaeNets for VaeStack {
    fn k(&self) -> usize {
        self.k
    }

    fn data(&self) -> usize {
        self.shape.data
    }

    fn latent(&self) -> usize {
        self.shape.latent
    }

    fn observation(&self) -> Observation {
        self.shape.observation
    }

    fn parameters(&self) -> usize {
        self.shape.parameters()
    }

    fn encode(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        split_posterior(&self.encoder.forward(x)?, self.shape.latent)
    }

    fn decode(&self, z: &Tensor) -> Result<Tensor> {
        self.decoder.forward(z)
    }

    fn export_decoder(&self, j: usize) -> Result<Vec<engine::writer::DenseF32>> {
        self.decoder.export(j)
    }
}

/// Mean and clamped log-variance from an encoder's `[.., 2·latent]` output.
pub fn split_posterior(h: &Tensor, latent: usize) -> Result<(Tensor, Tensor)> {
    let mu = h.narrow(D::Minus1, 0, latent)?;
    let logvar = h
        .narrow(D::Minus1, latent, latent)?
        .clamp(LOGVAR_MIN, LOGVAR_MAX)?;
    Ok((mu, logvar))
}

/// K VAEs side by side: what kVAE needs of its generators. Tensors are
/// `[K, B, ·]`: row k of the batch goes through VAE k.
pub trait VaeNets {
    /// Number of VAEs.
    fn k(&self) -> usize;

    /// Values per data point.
    fn data(&self) -> usize;

    /// Latent size.
    fn latent(&self) -> usize;

    /// Likelihood of a point given the decoder output.
    fn observation(&self) -> Observation;

    /// Weights and biases of one VAE (encoder and decoder).
    fn parameters(&self) -> usize;

    /// Mean and clamped log-variance of q(z|x), `[K, B, latent]` each, for
    /// `x: [K, B, data]`.
    fn encode(&self, x: &Tensor) -> Result<(Tensor, Tensor)>;

    /// Decoder outputs `[K, N, outputs]` for `z: [K, N, latent]` (Bernoulli
    /// logits, or Gaussian means and log-variances).
    fn decode(&self, z: &Tensor) -> Result<Tensor>;

    /// VAE `j`'s decoder as dense layers for a model file, ending in a
    /// sigmoid; decoders the engine cannot run say so.
    fn export_decoder(&self, j: usize) -> Result<Vec<engine::writer::DenseF32>> {
        let _ = j;
        candle_core::bail!("these VAEs' decoders are not dense layers; the engine cannot run them")
    }

    /// `log p(x | z)` summed over dimensions, `[K, B]`, from the decoder
    /// output `out` and the data `x` (same leading shape).
    fn log_likelihood(&self, out: &Tensor, x: &Tensor) -> Result<Tensor> {
        self.observation().log_likelihood(out, x)
    }

    /// Negative ELBO terms of `x: [K, B, data]` with reparametrization noise
    /// `eps: [K, B, latent]`.
    fn elbo_terms(&self, x: &Tensor, eps: &Tensor) -> Result<ElboTerms> {
        let (mu, logvar) = self.encode(x)?;
        let z = (&mu + (logvar.affine(0.5, 0.0)?.exp()? * eps)?)?;
        let out = self.decode(&z)?;
        let reconstruction = self.log_likelihood(&out, x)?.neg()?.mean(D::Minus1)?;
        let kl = kl_normal(&mu, &logvar.exp()?)?.mean(D::Minus1)?;
        Ok(ElboTerms { reconstruction, kl })
    }

    /// `n` samples from every VAE, `[K, n, data]`: decoder means for
    /// pixels, mean plus Gaussian noise for real vectors
    /// ([`Observation::sample`]).
    fn sample(&self, n: usize, rng: &mut Rng, device: &Device) -> Result<Tensor> {
        let k = self.k();
        let z = Tensor::from_vec(
            rng.normals(k * n * self.latent()),
            (k, n, self.latent()),
            device,
        )?;
        let out = self.decode(&z)?;
        self.observation().sample(&out, rng, device)
    }

    /// [`sample`](Self::sample)'s draws, detached, with Bernoulli logits
    /// scaled by `sharpness` before the sigmoid (`σ(2·logit)` for 2: the
    /// authors' generated images for the discriminators); other
    /// observations, and a sharpness of 1, sample as `sample` does.
    fn sample_sharpened(
        &self,
        n: usize,
        sharpness: f64,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Tensor> {
        if sharpness == 1.0 || self.observation() != Observation::BERNOULLI {
            return Ok(self.sample(n, rng, device)?.detach());
        }
        let (k, l) = (self.k(), self.latent());
        let z = Tensor::from_vec(rng.normals(k * n * l), (k, n, l), device)?;
        candle_nn::ops::sigmoid(&self.decode(&z)?.detach().affine(sharpness, 0.0)?)
    }

    /// Importance-sampled `log p_k(x)` of every point under every VAE:
    /// host values `[k][b]` for `x: [B, data]`.
    ///
    /// The estimator is the importance-weighted bound of Burda et al. (2016)
    /// with the encoder as proposal, `log (1/S) Σ_s p(x|z_s) p(z_s) / q(z_s|x)`
    /// with `z_s ~ q(z|x)`; it rises to `log p(x)` as `S` grows. Samples are
    /// drawn in chunks so memory stays near `K * 4096` latent codes.
    fn log_likelihood_is(
        &self,
        x: &Tensor,
        samples: usize,
        rng: &mut Rng,
    ) -> Result<Vec<Vec<f64>>> {
        let k = self.k();
        let (b, d) = x.dims2()?;
        let l = self.latent();
        let xk = x.unsqueeze(0)?.broadcast_as((k, b, d))?.contiguous()?;
        let (mu, logvar) = self.encode(&xk)?;
        let std = logvar.affine(0.5, 0.0)?.exp()?;
        let log_norm = -0.5 * l as f64 * std::f64::consts::TAU.ln();
        let chunk = (4096 / b.max(1)).clamp(1, samples);
        let mut log_weights: Vec<Tensor> = Vec::new();
        let mut done = 0;
        while done < samples {
            let s = chunk.min(samples - done);
            let eps = Tensor::from_vec(rng.normals(k * s * b * l), (k, s, b, l), x.device())?;
            let z = eps
                .broadcast_mul(&std.unsqueeze(1)?)?
                .broadcast_add(&mu.unsqueeze(1)?)?;
            let out = self.decode(&z.reshape((k, s * b, l))?)?;
            let xs = xk
                .unsqueeze(1)?
                .broadcast_as((k, s, b, d))?
                .reshape((k, s * b, d))?;
            let log_px_z = self.log_likelihood(&out, &xs)?.reshape((k, s, b))?;
            let log_pz = z.sqr()?.sum(D::Minus1)?.affine(-0.5, log_norm)?;
            // log q(z|x) = log N(eps; 0, I) - 0.5 Σ logvar.
            let log_qz = eps
                .sqr()?
                .sum(D::Minus1)?
                .affine(-0.5, log_norm)?
                .broadcast_sub(&logvar.sum(D::Minus1)?.affine(0.5, 0.0)?.unsqueeze(1)?)?;
            log_weights.push(((log_px_z + log_pz)? - log_qz)?);
            done += s;
        }
        let all = Tensor::cat(&log_weights, 1)?
            .transpose(1, 2)?
            .contiguous()?; // [K, B, S]
        let est = log_mean_exp_last(&all)?;
        est.to_dtype(candle_core::DType::F64)?.to_vec2::<f64>()
    }
}

/// `log (1/n) Σ exp(x)` over the last dimension, max-subtracted.
pub fn log_mean_exp_last(x: &Tensor) -> Result<Tensor> {
    let n = x.dim(D::Minus1)? as f64;
    let max = x.max_keepdim(D::Minus1)?;
    let sum = x.broadcast_sub(&max)?.exp()?.sum_keepdim(D::Minus1)?;
    (sum.log()? + max)?.affine(1.0, -n.ln())?.squeeze(D::Minus1)
}

//! Convolutional VAEs for kVAE: the paper's MNIST VAE, with the number of
//! filters as a parameter ([`ConvShape`]).
//!
//! - Encoder: four 4×4 convolutions of stride 2 and padding 1, each followed
//!   by a ReLU (channels `1 → f0 → f1 → f2 → f3`, sides `28 → 14 → 7 → 3 →
//!   1`), then a dense layer `f3 → 2·latent` (mean and log-variance).
//! - Decoder: a dense layer `latent → 7·7·f3` and a ReLU, two 4×4 transposed
//!   convolutions of stride 2 and padding 1 with ReLUs (`7 → 14 → 28`,
//!   channels `f3 → f2 → f1`), then a 3×3 convolution of stride 1 and
//!   padding 1 to one channel: Bernoulli logits of the 784 pixels.
//!
//! Batch normalisation is an option ([`ConvShape::batch_norm`], the
//! authors' architecture, off by default): after every convolution but the
//! encoder's first and the output, and after the decoder's dense layer,
//! always with the batch's own statistics ([`BatchNorm`]). kVAE trains each
//! VAE on batches drawn from its own cluster only, so those statistics
//! differ between VAEs holding different kinds of digits, and sampling
//! normalises over its batch of codes.
//!
//! All K VAEs run together, like the dense [`super::VaeStack`]: every weight
//! is a `[K, ·, ·]` tensor and every layer is one batched matmul over K,
//! on channels-last activations `[K, B·H·W, C]`. [`crate::nn::conv`] holds the layers: a convolution gathers its input
//! patches (im2col) and meets its kernel in one matmul, a transposed
//! convolution multiplies first and scatter-adds. On the CPU this runs a
//! K = 15 training step several times faster than candle's own `conv2d` /
//! `conv_transpose2d` called once per VAE.
//!
//! Memory: the transposed convolutions' products are `16·Cout` numbers per
//! input pixel, and since the weights are variables every intermediate
//! tensor stays alive as long as the decoder's output, so decoding many
//! codes at once is heavy (about 0.3 GB per VAE per 500 codes with the small
//! filters). [`ConvVaeStack::sample`] therefore decodes in detached chunks;
//! the trait's importance-sampled likelihood, which decodes up to 4096
//! codes per VAE at once, does not.

use candle_core::{Device, Result, Tensor};
use candle_nn::VarBuilder;

use super::conv_disc::BatchNorm;
use super::vae::{split_posterior, VaeNets};
use crate::data::{PIXELS, SIDE};
use crate::nn::conv::{BatchedConv2d, BatchedConvTranspose2d, ConvGeometry, ConvPlan};
use crate::nn::layers::{Activation, BatchedDense};
use crate::nn::likelihood::Observation;
use crate::rng::Rng;

/// Side of the decoder's first feature map (the dense layer's output).
const SEED_SIDE: usize = 7;
/// Codes per VAE that [`ConvVaeStack::sample`] decodes at a time.
const SAMPLE_CHUNK: usize = 256;

/// Shape of each convolutional VAE.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConvShape {
    /// Channels after each of the encoder's four convolutions; the decoder
    /// starts from `filters[3]` and goes back through `filters[2]` and
    /// `filters[1]`.
    pub filters: [usize; 4],
    /// Latent dimension.
    pub latent: usize,
    /// Batch normalisation before the hidden layers' ReLUs.
    #[serde(default)]
    pub batch_norm: bool,
}

impl ConvShape {
    /// The small network: filters `[8, 16, 32, 64]`.
    pub fn small(latent: usize) -> Self {
        ConvShape {
            filters: [8, 16, 32, 64],
            latent,
            batch_norm: false,
        }
    }

    /// The big network: filters `[32, 64, 128, 256]`.
    pub fn big(latent: usize) -> Self {
        ConvShape {
            filters: [32, 64, 128, 256],
            latent,
            batch_norm: false,
        }
    }

    /// Weights and biases of one VAE (encoder and decoder).
    pub fn parameters(&self) -> usize {
        let [f0, f1, f2, f3] = self.filters;
        let l = self.latent;
        let conv = |taps: usize, cin: usize, cout: usize| taps * cin * cout + cout;
        let encoder = conv(16, 1, f0)
            + conv(16, f0, f1)
            + conv(16, f1, f2)
            + conv(16, f2, f3)
            + conv(1, f3, 2 * l);
        let seed = SEED_SIDE * SEED_SIDE * f3;
        let decoder = conv(1, l, seed) + conv(16, f3, f2) + conv(16, f2, f1) + conv(9, f1, 1);
        let norms = if self.batch_norm {
            2 * (f1 + f2 + f3 + f3 + f2 + f1)
        } else {
            0
        };
        encoder + decoder + norms
    }
}

/// K convolutional VAEs of the same [`ConvShape`] with independent weights,
/// on 28×28 greyscale images with Bernoulli pixels.
pub struct ConvVaeStack {
    /// The shape of every VAE.
    pub shape: ConvShape,
    encoder: [BatchedConv2d; 4],
    posterior: BatchedDense,
    seed: BatchedDense,
    decoder: [BatchedConvTranspose2d; 2],
    output: BatchedConv2d,
    /// Batch norms of the encoder's convolutions (none for the first) and
    /// of the decoder's dense layer and transposed convolutions.
    norms: Option<([BatchNorm; 3], [BatchNorm; 3])>,
    k: usize,
    /// VAEs run together; see [`ConvVaeStack::with_group`].
    group: usize,
}

impl ConvVaeStack {
    /// K VAEs whose tensors are `encoder.*` and `decoder.*` under `vb`.
    pub fn new(k: usize, shape: ConvShape, vb: VarBuilder) -> Result<Self> {
        let [f0, f1, f2, f3] = shape.filters;
        let enc = vb.pp("encoder");
        let dec = vb.pp("decoder");
        // 4×4 kernels of stride 2 and padding 1 on `side × side` inputs.
        let halving = |side: usize| ConvGeometry {
            kernel: 4,
            stride: 2,
            pad: 1,
            side,
        };
        let conv = |i: usize, cin: usize, cout: usize, side: usize| {
            let vb = enc.pp(format!("conv{i}"));
            BatchedConv2d::new(k, cin, cout, halving(side), ConvPlan::Im2col, vb)
        };
        let encoder = [
            conv(0, 1, f0, SIDE)?,
            conv(1, f0, f1, 14)?,
            conv(2, f1, f2, 7)?,
            conv(3, f2, f3, 3)?,
        ];
        let posterior = BatchedDense::new(k, f3, 2 * shape.latent, enc.pp("posterior"))?;
        let seed = BatchedDense::new(k, shape.latent, SEED_SIDE * SEED_SIDE * f3, dec.pp("seed"))?;
        let decoder = [
            BatchedConvTranspose2d::new(k, f3, f2, halving(SEED_SIDE), dec.pp("deconv0"))?,
            BatchedConvTranspose2d::new(k, f2, f1, halving(2 * SEED_SIDE), dec.pp("deconv1"))?,
        ];
        let same = ConvGeometry {
            kernel: 3,
            stride: 1,
            pad: 1,
            side: SIDE,
        };
        let output = BatchedConv2d::new(k, f1, 1, same, ConvPlan::MatmulFirst, dec.pp("output"))?;
        let norms = if shape.batch_norm {
            let norm = |vb: &VarBuilder, i: usize, c: usize| {
                BatchNorm::new(k, c, vb.pp(format!("norm{i}")))
            };
            Some((
                [norm(&enc, 1, f1)?, norm(&enc, 2, f2)?, norm(&enc, 3, f3)?],
                [norm(&dec, 0, f3)?, norm(&dec, 1, f2)?, norm(&dec, 2, f1)?],
            ))
        } else {
            None
        };
        Ok(ConvVaeStack {
            norms,
            shape,
            encoder,
            posterior,
            seed,
            decoder,
            output,
            k,
            group: if vb.device().is_cpu() { 1 } else { k },
        })
    }

    /// Runs the VAEs `group` at a time (each group still one batched matmul
    /// per layer). The default is one at a time on the CPU, where a K = 15
    /// training step (B = 32, small filters, one thread as the trainer
    /// binary runs) took 210–250 ms that way against 580–650 ms with all 15
    /// at once (one VAE's tensors stay in cache), and all K at once
    /// elsewhere (a GPU wants few, large kernels).
    pub fn with_group(mut self, group: usize) -> Self {
        self.group = group.max(1);
        self
    }

    /// `f(first, n)` for groups of at most `self.group` consecutive VAEs,
    /// concatenated over dimension 0.
    fn by_groups(&self, k: usize, f: impl Fn(usize, usize) -> Result<Tensor>) -> Result<Tensor> {
        if k != self.k {
            candle_core::bail!("{k} batches for {} VAEs", self.k);
        }
        let group = self.group.clamp(1, k.max(1));
        if group >= k {
            return f(0, k);
        }
        let parts = (0..k)
            .step_by(group)
            .map(|first| f(first, group.min(k - first)))
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&parts, 0)
    }
}

/// `layer(ReLU)`, or with a batch norm `ReLU(norm(layer(identity)))`.
fn normed_relu(
    norm: Option<&BatchNorm>,
    first: usize,
    layer: impl FnOnce(Activation) -> Result<Tensor>,
) -> Result<Tensor> {
    match norm {
        None => layer(Activation::Relu),
        Some(norm) => norm.forward(&layer(Activation::Identity)?, first)?.relu(),
    }
}

impl VaeNets for ConvVaeStack {
    fn k(&self) -> usize {
        self.k
    }

    fn data(&self) -> usize {
        PIXELS
    }

    fn latent(&self) -> usize {
        self.shape.latent
    }

    fn observation(&self) -> Observation {
        Observation::BERNOULLI
    }

    fn parameters(&self) -> usize {
        self.shape.parameters()
    }

    fn encode(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (k, b, d) = x.dims3()?;
        if d != PIXELS {
            candle_core::bail!("convolutional VAEs read 28×28 images, not {d} values");
        }
        let h = self.by_groups(k, |first, n| {
            let mut h = x.narrow(0, first, n)?.reshape((n, b * PIXELS, 1))?;
            for (i, layer) in self.encoder.iter().enumerate() {
                let norm = self
                    .norms
                    .as_ref()
                    .and_then(|(e, _)| i.checked_sub(1).map(|i| &e[i]));
                h = normed_relu(norm, first, |act| layer.forward(&h, first, act))?;
            }
            // The last convolution leaves one pixel per image.
            let h = h.reshape((n, b, self.shape.filters[3]))?;
            self.posterior
                .forward_group(&h, first, Activation::Identity)
        })?;
        split_posterior(&h, self.shape.latent)
    }

    fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let (k, b, _) = z.dims3()?;
        let f3 = self.shape.filters[3];
        self.by_groups(k, |first, n| {
            // The dense layer's outputs are read pixel-major, channels last.
            let z = z.narrow(0, first, n)?;
            let seed_norm = self.norms.as_ref().map(|(_, d)| &d[0]);
            let mut h = normed_relu(seed_norm, first, |act| {
                self.seed
                    .forward_group(&z, first, act)?
                    .reshape((n, b * SEED_SIDE * SEED_SIDE, f3))
            })?;
            for (i, layer) in self.decoder.iter().enumerate() {
                let norm = self.norms.as_ref().map(|(_, d)| &d[i + 1]);
                h = normed_relu(norm, first, |act| layer.forward(&h, first, act))?;
            }
            self.output
                .forward(&h, first, Activation::Identity)?
                .reshape((n, b, PIXELS))
        })
    }

    /// The trait's sampling (the same draws), decoded `SAMPLE_CHUNK` codes
    /// at a time and detached: the weights are variables, so a decoded
    /// batch keeps every intermediate tensor for a backward pass that
    /// sampling never takes, about 0.3 GB per VAE for 500 codes with the
    /// small filters.
    fn sample(&self, n: usize, rng: &mut Rng, device: &Device) -> Result<Tensor> {
        let (k, l) = (self.k, self.shape.latent);
        let z = Tensor::from_vec(rng.normals(k * n * l), (k, n, l), device)?;
        let parts = (0..n)
            .step_by(SAMPLE_CHUNK)
            .map(|first| {
                let m = SAMPLE_CHUNK.min(n - first);
                Ok(self.decode(&z.narrow(1, first, m)?)?.detach())
            })
            .collect::<Result<Vec<_>>>()?;
        candle_nn::ops::sigmoid(&Tensor::cat(&parts, 1)?)
    }
}

#[cfg(test)]
#[path = "conv_tests.rs"]
mod tests;

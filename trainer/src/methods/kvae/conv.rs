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
//! There is no batch normalization: kVAE trains each VAE on batches drawn
//! from its own cluster only, and samples from it with no batch at all, so
//! batch statistics would differ between training and sampling (and between
//! VAEs holding different kinds of digits).
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

use super::vae::{split_posterior, Observation, VaeNets};
use crate::data::{PIXELS, SIDE};
use crate::nn::conv::{BatchedConv2d, BatchedConvTranspose2d, ConvGeometry, ConvPlan};
use crate::nn::layers::{Activation, BatchedDense};
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
}

impl ConvShape {
    /// The small network: filters `[8, 16, 32, 64]`.
    pub fn small(latent: usize) -> Self {
        ConvShape {
            filters: [8, 16, 32, 64],
            latent,
        }
    }

    /// The big network: filters `[32, 64, 128, 256]`.
    pub fn big(latent: usize) -> Self {
        ConvShape {
            filters: [32, 64, 128, 256],
            latent,
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
        encoder + decoder
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
        Ok(ConvVaeStack {
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
        Observation::Bernoulli
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
            for layer in &self.encoder {
                h = layer.forward(&h, first, Activation::Relu)?;
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
            let mut h = self
                .seed
                .forward_group(&z.narrow(0, first, n)?, first, Activation::Relu)?
                .reshape((n, b * SEED_SIDE * SEED_SIDE, f3))?;
            for layer in &self.decoder {
                h = layer.forward(&h, first, Activation::Relu)?;
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
#[cfg(test)]
mod tests {
    use std::time::Instant;

    use candle_core::{Device, Tensor};

    use super::*;
    use crate::nn::adam::{Adam, AdamConfig};
    use crate::nn::conv::timing::{median_time, Timing};
    use crate::nn::params::Params;
    use crate::ops::check::assert_close;
    use crate::rng::Rng;

    fn normals(rng: &mut Rng, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec(rng.normals(n), shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn shapes_and_parameter_count() {
        let device = Device::Cpu;
        let mut rng = Rng::new(3, 0);
        for shape in [
            ConvShape {
                filters: [2, 3, 4, 5],
                latent: 6,
            },
            ConvShape::small(8),
            ConvShape::big(16),
        ] {
            let k = 3;
            let params = Params::new(1);
            let vaes = ConvVaeStack::new(k, shape.clone(), params.var_builder(&device)).unwrap();
            assert_eq!(params.count(), k * vaes.parameters(), "{shape:?}");
            let x = Tensor::from_vec(
                (0..k * 5 * PIXELS)
                    .map(|_| rng.uniform(0.0, 1.0) as f32)
                    .collect(),
                (k, 5, PIXELS),
                &device,
            )
            .unwrap();
            let (mu, logvar) = vaes.encode(&x).unwrap();
            assert_eq!(mu.dims(), &[k, 5, shape.latent]);
            assert_eq!(logvar.dims(), &[k, 5, shape.latent]);
            let z = normals(&mut rng, &[k, 7, shape.latent]);
            assert_eq!(vaes.decode(&z).unwrap().dims(), &[k, 7, PIXELS]);
            // The same VAEs run all at once (the GPU default) and two at a
            // time compute the same (the default on the CPU is one at a time).
            let out = vaes.decode(&z).unwrap();
            for group in [k, 2] {
                let again = ConvVaeStack::new(k, shape.clone(), params.var_builder(&device))
                    .unwrap()
                    .with_group(group);
                assert_eq!(params.count(), k * vaes.parameters(), "no new tensors");
                assert_close(&again.decode(&z).unwrap(), &out, 1e-5, "decode by groups");
                let (mu2, logvar2) = again.encode(&x).unwrap();
                assert_close(&mu2, &mu, 1e-5, "means by groups");
                assert_close(&logvar2, &logvar, 1e-5, "log-variances by groups");
            }
        }
        // The paper's small network, counted by hand.
        let small = ConvShape::small(8).parameters();
        let encoder = (16 * 8 + 8) + (16 * 8 * 16 + 16) + (16 * 16 * 32 + 32) + (16 * 32 * 64 + 64);
        let encoder = encoder + 64 * 16 + 16;
        let decoder =
            (8 * 49 * 64 + 49 * 64) + (16 * 64 * 32 + 32) + (16 * 32 * 16 + 16) + (9 * 16 + 1);
        assert_eq!(small, encoder + decoder);
    }

    #[test]
    fn sampling_decodes_the_trait_draws_in_chunks() {
        let device = Device::Cpu;
        let (k, n, latent) = (2, SAMPLE_CHUNK + 44, 3);
        let params = Params::new(2);
        let shape = ConvShape {
            filters: [2, 3, 4, 5],
            latent,
        };
        let vaes = ConvVaeStack::new(k, shape, params.var_builder(&device)).unwrap();
        let sample = vaes.sample(n, &mut Rng::new(9, 0), &device).unwrap();
        let z = normals(&mut Rng::new(9, 0), &[k, n, latent]);
        let expected = candle_nn::ops::sigmoid(&vaes.decode(&z).unwrap()).unwrap();
        assert_close(&sample, &expected, 1e-6, "samples");
    }

    /// Eight 28×28 binary images per VAE: bars and boxes at a few places.
    fn synthetic_images(k: usize, per_vae: usize) -> Tensor {
        let mut x = vec![0f32; k * per_vae * PIXELS];
        for j in 0..k {
            for i in 0..per_vae {
                let image = &mut x[(j * per_vae + i) * PIXELS..][..PIXELS];
                let at = 4 + 3 * i;
                for r in 0..SIDE {
                    for c in 0..SIDE {
                        let on = if j % 2 == 0 {
                            // Vertical bars.
                            (at..at + 3).contains(&c) && (4..24).contains(&r)
                        } else {
                            // Hollow boxes of growing size.
                            let (lo, hi) = (14 - i - 2, 14 + i + 2);
                            (r == lo || r == hi) && (lo..=hi).contains(&c)
                                || (c == lo || c == hi) && (lo..=hi).contains(&r)
                        };
                        image[r * SIDE + c] = if on { 1.0 } else { 0.0 };
                    }
                }
            }
        }
        Tensor::from_vec(x, (k, per_vae, PIXELS), &Device::Cpu).unwrap()
    }

    #[test]
    fn adam_lowers_the_negative_elbo() {
        let device = Device::Cpu;
        let (k, b) = (2, 8);
        let params = Params::new(7);
        let vaes = ConvVaeStack::new(k, ConvShape::small(4), params.var_builder(&device)).unwrap();
        let mut opt = Adam::new(params.vars(), AdamConfig::with_lr(2e-3));
        let x = synthetic_images(k, b);
        let mut rng = Rng::new(7, 1);
        let mut losses = Vec::new();
        let start = Instant::now();
        for _ in 0..200 {
            let eps = normals(&mut rng, &[k, b, 4]);
            let terms = vaes.elbo_terms(&x, &eps).unwrap();
            let per_vae = (terms.reconstruction + terms.kl).unwrap();
            let grads = per_vae.sum_all().unwrap().backward().unwrap();
            opt.step(&grads).unwrap();
            losses.push(per_vae.to_vec1::<f32>().unwrap());
        }
        let mean = |rows: &[Vec<f32>], j: usize| {
            rows.iter().map(|r| r[j]).sum::<f32>() / rows.len() as f32
        };
        for j in 0..k {
            let first = losses[0][j];
            let last = mean(&losses[losses.len() - 10..], j);
            eprintln!("VAE {j}: negative ELBO {first:.1} -> {last:.1}");
            assert!(last < 0.7 * first, "VAE {j}: {first} -> {last}");
        }
        eprintln!("200 steps in {:.2?}", start.elapsed());
    }

    /// One optimizer step like `vae_step`: ELBO, backward, Adam.
    fn step_time(k: usize, b: usize, shape: ConvShape, group: usize) -> Timing {
        let device = Device::Cpu;
        let params = Params::new(1);
        let vaes = ConvVaeStack::new(k, shape, params.var_builder(&device))
            .unwrap()
            .with_group(group);
        let mut opt = Adam::new(params.vars(), AdamConfig::with_lr(1e-3));
        let mut rng = Rng::new(2, 0);
        let x = Tensor::from_vec(
            (0..k * b * PIXELS)
                .map(|_| rng.uniform(0.0, 1.0) as f32)
                .collect(),
            (k, b, PIXELS),
            &device,
        )
        .unwrap();
        let latent = vaes.latent();
        median_time(10, || {
            let eps = normals(&mut rng, &[k, b, latent]);
            let terms = vaes.elbo_terms(&x, &eps).unwrap();
            let loss = (terms.reconstruction + terms.kl)
                .unwrap()
                .sum_all()
                .unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
        })
    }

    /// Timings for the report: `RAYON_NUM_THREADS=1 CANDLE_NUM_THREADS=1
    /// cargo test --release -p trainer --lib kvae::conv::tests::timings --
    /// --ignored --nocapture` (one thread, as `main` sets them; the CPU
    /// times are the work done whatever else the machine runs). The layers'
    /// own timings are `nn::conv::tests::timings`.
    #[test]
    #[ignore]
    fn timings() {
        for (k, b, shape, name, group) in [
            (15, 32, ConvShape::small(16), "small", 1),
            (15, 32, ConvShape::small(16), "small", 15),
            (1, 32, ConvShape::small(16), "small", 1),
            (1, 32, ConvShape::big(16), "big", 1),
        ] {
            let t = step_time(k, b, shape, group);
            eprintln!("step K={k} B={b} {name}, {group} VAE(s) at a time: {t}");
        }
        let device = Device::Cpu;
        for group in [1, 15] {
            let params = Params::new(1);
            let vaes = ConvVaeStack::new(15, ConvShape::small(16), params.var_builder(&device))
                .unwrap()
                .with_group(group);
            let mut rng = Rng::new(3, 0);
            let decode = median_time(10, || {
                let z = normals(&mut rng, &[15, 500, 16]);
                vaes.decode(&z).unwrap();
            });
            eprintln!("decode K=15 N=500 small, {group} VAE(s) at a time: {decode}");
            let sample = median_time(10, || {
                vaes.sample(500, &mut rng, &device).unwrap();
            });
            eprintln!("sample K=15 N=500 small, {group} VAE(s) at a time: {sample}");
        }
    }
}

//! A fully connected autoencoder (ReLU hidden layers, linear code, Bernoulli
//! decoder) whose codes the partition clusters. Weights are drawn from the
//! crate's seeded generator (candle's CPU generator cannot be seeded) and
//! trained with the crate's in-place Adam ([`crate::nn::adam`]).

use anyhow::{ensure, Result};
use candle_core::{DType, Device, Tensor, Var};

use engine::{Activation, Likelihood};

use crate::nn::adam::{Adam, AdamConfig};
use crate::ops;
use crate::rng::Rng;

/// Settings for [`Autoencoder::train`].
#[derive(Debug, Clone, PartialEq)]
pub struct AutoencoderConfig {
    /// Widths of the encoder's hidden layers (the decoder mirrors them).
    pub hidden: Vec<usize>,
    /// Width of the code (the clustering space).
    pub code: usize,
    /// Passes over the images.
    pub epochs: usize,
    /// Images per Adam step.
    pub batch: usize,
    /// Adam step size.
    pub lr: f64,
    /// Augmentation: every training image shifted by up to `shift` pixels
    /// in x and y (zeros fill in), input and target alike; 0 = none. The
    /// shifts come from a generator of their own, so 0 leaves every other
    /// draw, and so the codes, as they were.
    pub shift: usize,
    /// The images' `(width, height)`, which `shift` needs (their product
    /// must be the pixels of an image).
    pub image: (usize, usize),
}

impl Default for AutoencoderConfig {
    fn default() -> Self {
        Self {
            hidden: vec![500, 500],
            code: 10,
            epochs: 10,
            batch: 256,
            lr: 1e-3,
            shift: 0,
            image: (28, 28),
        }
    }
}

/// One dense layer, `y = x W + b` with `W` stored `inputs × outputs` so the
/// forward matmul needs no transpose.
struct Dense {
    w: Var,
    b: Var,
}

impl Dense {
    fn new(inputs: usize, outputs: usize, rng: &mut Rng, dev: &Device) -> Result<Self> {
        // PyTorch's default: U(-1/√fan_in, 1/√fan_in) for weights and biases.
        let bound = 1.0 / (inputs as f64).sqrt();
        let mut draw = |len: usize| -> Vec<f32> {
            (0..len)
                .map(|_| ((rng.unit_f64() * 2.0 - 1.0) * bound) as f32)
                .collect()
        };
        let w = Var::from_vec(draw(inputs * outputs), (inputs, outputs), dev)?;
        let b = Var::from_vec(draw(outputs), outputs, dev)?;
        Ok(Self { w, b })
    }

    /// `act(x W + b)`: the bias and activation in one pass
    /// ([`crate::ops::bias_act`]). `images`: `x` is the image batch, whose
    /// gradient nobody needs ([`crate::ops::matmul_no_lhs_grad`]).
    fn forward(&self, x: &Tensor, act: Activation, images: bool) -> Result<Tensor> {
        let y = if images {
            ops::matmul_no_lhs_grad(x, self.w.as_tensor())?
        } else {
            x.matmul(self.w.as_tensor())?
        };
        Ok(ops::bias_act(&y, self.b.as_tensor(), act)?)
    }
}

/// A trained autoencoder; only the encoder matters once trained.
pub struct Autoencoder {
    /// Pixels per input image.
    pixels: usize,
    encoder: Vec<Dense>,
    decoder: Vec<Dense>,
    code: usize,
    device: Device,
}

/// Image bytes of rows `rows` (`pixels` each) as a `len × pixels` tensor
/// scaled to `[0, 1]` (the data module's [`crate::data::batch_pixels`],
/// unshifted).
fn batch_tensor(images: &[u8], pixels: usize, rows: &[usize], dev: &Device) -> Result<Tensor> {
    let v = crate::data::batch_pixels(images, (pixels, 1), rows, 0, None);
    Ok(Tensor::from_vec(v, (rows.len(), pixels), dev)?)
}

impl Autoencoder {
    /// Trains on the `n` images (row-major bytes, any one size: `images`
    /// holds `n` of them) for `cfg.epochs` passes, reporting the mean loss
    /// of each epoch through `progress`.
    pub fn train(
        images: &[u8],
        n: usize,
        cfg: &AutoencoderConfig,
        rng: &mut Rng,
        progress: &dyn Fn(&str),
    ) -> Result<Self> {
        ensure!(
            n > 0 && cfg.batch > 0 && cfg.code > 0,
            "autoencoder: empty data or zero size"
        );
        ensure!(
            !images.is_empty() && images.len().is_multiple_of(n),
            "autoencoder: {} bytes for {n} images",
            images.len()
        );
        let pixels = images.len() / n;
        ensure!(
            cfg.shift == 0 || cfg.image.0 * cfg.image.1 == pixels,
            "autoencoder: shifts of {}x{} images, but an image has {pixels} pixels",
            cfg.image.0,
            cfg.image.1
        );
        let dev = Device::Cpu;
        let mut widths = vec![pixels];
        widths.extend(&cfg.hidden);
        widths.push(cfg.code);
        let mut init = rng.fork(1);
        let encoder = widths
            .windows(2)
            .map(|w| Dense::new(w[0], w[1], &mut init, &dev))
            .collect::<Result<Vec<_>>>()?;
        let decoder = widths
            .windows(2)
            .rev()
            .map(|w| Dense::new(w[1], w[0], &mut init, &dev))
            .collect::<Result<Vec<_>>>()?;
        let ae = Self {
            pixels,
            encoder,
            decoder,
            code: cfg.code,
            device: dev,
        };
        // The crate's Adam: in place, and it flushes moments that would
        // become denormal (the weights of always-black border pixels get
        // zero gradients, so their moments decay geometrically). With an
        // Adam that did not flush, every epoch after the first took twice
        // as long as the first (29 s against 15 s; with it, 11-13 s each on
        // one thread).
        let params = ae
            .encoder
            .iter()
            .zip(std::iter::repeat("encoder"))
            .chain(ae.decoder.iter().zip(std::iter::repeat("decoder")))
            .enumerate()
            .flat_map(|(i, (l, part))| {
                [
                    (format!("{part}.{i}.w"), l.w.clone()),
                    (format!("{part}.{i}.b"), l.b.clone()),
                ]
            })
            .collect();
        let mut adam = Adam::new(params, AdamConfig::with_lr(cfg.lr));
        let mut order: Vec<usize> = (0..n).collect();
        let mut shuffle = rng.fork(2);
        let mut shifts = rng.fork(3);
        for epoch in 0..cfg.epochs {
            shuffle.shuffle(&mut order);
            let (mut total, mut count) = (0.0, 0usize);
            for rows in order.chunks(cfg.batch) {
                // Two halves of the batch, forward and backward on a thread
                // each (the loss is a sum over images, so the halves'
                // gradients add up to the batch's; Adam adds them). candle's
                // matmuls gain nothing from a second thread at these sizes.
                let batch = rows.len() as f64;
                // Shifted images are drawn here, before the halves split,
                // so that the draws do not depend on the threads.
                // (Unshifted: one row of `pixels`, and no draws.)
                let shape = if cfg.shift > 0 {
                    cfg.image
                } else {
                    (pixels, 1)
                };
                let x_all =
                    crate::data::batch_pixels(images, shape, rows, cfg.shift, Some(&mut shifts));
                let half = |range: std::ops::Range<usize>| -> Result<(candle_core::backprop::GradStore, f64)> {
                    let x = Tensor::from_slice(
                        &x_all[range.start * pixels..range.end * pixels],
                        (range.len(), pixels),
                        &ae.device,
                    )?;
                    let loss = (ae.nll(&x)?.sum_all()? / batch)?;
                    Ok((ops::backward(&loss)?, loss.to_scalar::<f32>()? as f64))
                };
                let mid = rows.len() / 2;
                let halves: Vec<_> = [0..mid, mid..rows.len()]
                    .into_iter()
                    .filter(|range| !range.is_empty())
                    .collect();
                let mut grads = Vec::with_capacity(2);
                let mut loss = 0.0;
                for part in crate::util::in_parallel(halves.len(), |i| half(halves[i].clone())) {
                    let (g, l) = part?;
                    grads.push(g);
                    loss += l;
                }
                adam.step_sum(&grads)?;
                total += loss * batch;
                count += rows.len();
            }
            let mean = total / count as f64;
            ensure!(
                mean.is_finite(),
                "autoencoder: loss became {mean} in epoch {}",
                epoch + 1
            );
            progress(&format!(
                "autoencoder epoch {}/{}: reconstruction loss {mean:.2} nats/image",
                epoch + 1,
                cfg.epochs
            ));
        }
        Ok(ae)
    }

    fn encode_tensor(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for (i, layer) in self.encoder.iter().enumerate() {
            let act = if i + 1 < self.encoder.len() {
                Activation::Relu
            } else {
                Activation::Identity
            };
            h = layer.forward(&h, act, i == 0)?;
        }
        Ok(h)
    }

    /// The Bernoulli negative log-likelihood of every image of `x` under its
    /// reconstruction, `[1, B]`: the last layer, the sigmoid and the
    /// likelihood fused ([`crate::ops::output_nll`]).
    fn nll(&self, x: &Tensor) -> Result<Tensor> {
        let Some((last, hidden)) = self.decoder.split_last() else {
            anyhow::bail!("autoencoder: no decoder layers");
        };
        let mut h = self.encode_tensor(x)?;
        for layer in hidden {
            h = layer.forward(&h, Activation::Relu, false)?;
        }
        let (w, bias) = (last.w.as_tensor(), last.b.as_tensor());
        Ok(ops::output_nll(&h, w, bias, x, Likelihood::Bernoulli)?)
    }

    /// Width of the code.
    pub fn code_dim(&self) -> usize {
        self.code
    }

    /// The codes of the `n` images, row-major `n × code_dim()`.
    pub fn encode(&self, images: &[u8], n: usize) -> Result<Vec<f32>> {
        ensure!(
            images.len() == n * self.pixels,
            "autoencoder: {} bytes for {n} images",
            images.len()
        );
        let mut out = Vec::with_capacity(n * self.code);
        let rows: Vec<usize> = (0..n).collect();
        for chunk in rows.chunks(2048) {
            let x = batch_tensor(images, self.pixels, chunk, &self.device)?;
            let z = self.encode_tensor(&x)?.to_dtype(DType::F32)?;
            out.extend(z.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(out)
    }

    /// Mean Bernoulli reconstruction loss (nats per image) on the `n` images.
    pub fn reconstruction_loss(&self, images: &[u8], n: usize) -> Result<f64> {
        ensure!(
            images.len() == n * self.pixels && n > 0,
            "autoencoder: {} bytes for {n} images",
            images.len()
        );
        let rows: Vec<usize> = (0..n).collect();
        let mut total = 0.0;
        for chunk in rows.chunks(2048) {
            let x = batch_tensor(images, self.pixels, chunk, &self.device)?;
            total += self.nll(&x)?.sum_all()?.to_scalar::<f32>()? as f64;
        }
        Ok(total / n as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testdata::toy_images;
    use super::*;

    #[test]
    fn training_lowers_the_loss_and_codes_separate_kinds() {
        let n = 300;
        let (images, kinds) = toy_images(n, 1);
        let cfg = AutoencoderConfig {
            hidden: vec![64],
            code: 4,
            epochs: 0,
            batch: 32,
            lr: 3e-3,
            ..AutoencoderConfig::default()
        };
        let untrained =
            Autoencoder::train(&images, n, &cfg, &mut Rng::from_state(3), &|_| {}).unwrap();
        let before = untrained.reconstruction_loss(&images, n).unwrap();
        let trained = Autoencoder::train(
            &images,
            n,
            &AutoencoderConfig { epochs: 8, ..cfg },
            &mut Rng::from_state(3),
            &|_| {},
        )
        .unwrap();
        let after = trained.reconstruction_loss(&images, n).unwrap();
        assert!(after < 0.5 * before, "loss {before} -> {after}");
        let codes = trained.encode(&images, n).unwrap();
        assert_eq!(codes.len(), n * 4);
        // Codes keep kinds apart: a code's nearest other code is of its kind.
        let nb = super::super::knn::knn(&codes, &codes, 4, 1, true);
        let same = (0..n)
            .filter(|&i| kinds[nb.of(i)[0] as usize] == kinds[i])
            .count();
        let acc = same as f64 / n as f64;
        assert!(acc > 0.95, "nearest-neighbour purity {acc}");
    }

    /// A small autoencoder, unshifted, for the seeding tests.
    fn tiny() -> AutoencoderConfig {
        AutoencoderConfig {
            hidden: vec![32],
            code: 3,
            epochs: 2,
            batch: 16,
            lr: 1e-3,
            ..AutoencoderConfig::default()
        }
    }

    #[test]
    fn same_seed_same_codes() {
        let n = 64;
        let (images, _) = toy_images(n, 2);
        let cfg = tiny();
        let a = Autoencoder::train(&images, n, &cfg, &mut Rng::from_state(9), &|_| {}).unwrap();
        let b = Autoencoder::train(&images, n, &cfg, &mut Rng::from_state(9), &|_| {}).unwrap();
        let c = Autoencoder::train(&images, n, &cfg, &mut Rng::from_state(10), &|_| {}).unwrap();
        let (ca, cb, cc) = (
            a.encode(&images, n).unwrap(),
            b.encode(&images, n).unwrap(),
            c.encode(&images, n).unwrap(),
        );
        assert_eq!(ca, cb);
        assert_ne!(ca, cc);
    }

    #[test]
    fn shifted_training_is_seeded_and_checks_the_image_shape() {
        let n = 64;
        let (images, _) = toy_images(n, 2);
        let pixels = images.len() / n;
        let side = (pixels as f64).sqrt() as usize;
        assert_eq!(side * side, pixels, "toy images are square");
        let plain = AutoencoderConfig {
            image: (side, side),
            ..tiny()
        };
        let shifted = AutoencoderConfig {
            shift: 1,
            ..plain.clone()
        };
        let codes = |cfg: &AutoencoderConfig| {
            Autoencoder::train(&images, n, cfg, &mut Rng::from_state(9), &|_| {})
                .unwrap()
                .encode(&images, n)
                .unwrap()
        };
        assert_eq!(codes(&shifted), codes(&shifted));
        assert_ne!(codes(&shifted), codes(&plain));
        let wrong = AutoencoderConfig {
            image: (side + 1, side),
            ..shifted
        };
        let err = Autoencoder::train(&images, n, &wrong, &mut Rng::from_state(9), &|_| {})
            .err()
            .unwrap();
        assert!(err.to_string().contains("shifts of"), "{err}");
    }
}

//! A fully connected autoencoder (ReLU hidden layers, linear code, Bernoulli
//! decoder) whose codes the partition clusters. Weights are drawn from the
//! crate's seeded generator (candle's CPU generator cannot be seeded) and
//! trained with an in-place Adam: candle-nn's AdamW builds about a dozen
//! full-size temporaries per parameter per step.

use std::sync::Mutex;

use anyhow::{ensure, Result};
use candle_core::{CpuStorage, DType, Device, InplaceOp2, Layout, Tensor, Var};

use super::rng::Rng;

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
}

impl Default for AutoencoderConfig {
    fn default() -> Self {
        Self {
            hidden: vec![500, 500],
            code: 10,
            epochs: 10,
            batch: 256,
            lr: 1e-3,
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
                .map(|_| ((rng.next_f64() * 2.0 - 1.0) * bound) as f32)
                .collect()
        };
        let w = Var::from_vec(draw(inputs * outputs), (inputs, outputs), dev)?;
        let b = Var::from_vec(draw(outputs), outputs, dev)?;
        Ok(Self { w, b })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.matmul(self.w.as_tensor())?
            .broadcast_add(self.b.as_tensor())?)
    }

    /// [`Dense::forward`] for the images themselves: the same bits, without
    /// computing their (unused) gradient.
    fn forward_images(&self, x: &Tensor) -> Result<Tensor> {
        Ok(crate::ops::matmul_no_lhs_grad(x, self.w.as_tensor())?
            .broadcast_add(self.b.as_tensor())?)
    }
}

/// A trained autoencoder; only the encoder matters once trained.
pub struct Autoencoder {
    encoder: Vec<Dense>,
    decoder: Vec<Dense>,
    code: usize,
    device: Device,
}

/// Image bytes of rows `rows` as an `len × 784` tensor scaled to `[0, 1]`.
fn batch_tensor(images: &[u8], rows: &[usize], dev: &Device) -> Result<Tensor> {
    let mut v = Vec::with_capacity(rows.len() * PIXELS);
    for &r in rows {
        v.extend(
            images[r * PIXELS..(r + 1) * PIXELS]
                .iter()
                .map(|&p| p as f32 / 255.0),
        );
    }
    Ok(Tensor::from_vec(v, (rows.len(), PIXELS), dev)?)
}

const PIXELS: usize = 28 * 28;

impl Autoencoder {
    /// Trains on the `n` images (row-major 28×28 bytes) for `cfg.epochs`
    /// passes, reporting the mean loss of each epoch through `progress`.
    pub fn train(
        images: &[u8],
        n: usize,
        cfg: &AutoencoderConfig,
        rng: &mut Rng,
        progress: &dyn Fn(&str),
    ) -> Result<Self> {
        ensure!(
            images.len() == n * PIXELS,
            "autoencoder: {} bytes for {n} images",
            images.len()
        );
        ensure!(
            n > 0 && cfg.batch > 0 && cfg.code > 0,
            "autoencoder: empty data or zero size"
        );
        let dev = Device::Cpu;
        let mut widths = vec![PIXELS];
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
            encoder,
            decoder,
            code: cfg.code,
            device: dev,
        };
        let params: Vec<&Var> = ae
            .encoder
            .iter()
            .chain(&ae.decoder)
            .flat_map(|l| [&l.w, &l.b])
            .collect();
        let adam: Vec<Mutex<AdamState>> = params
            .iter()
            .map(|p| Mutex::new(AdamState::new(p.elem_count())))
            .collect();
        let mut order: Vec<usize> = (0..n).collect();
        let mut shuffle = rng.fork(2);
        let mut t = 0;
        for epoch in 0..cfg.epochs {
            shuffle.shuffle(&mut order);
            let (mut total, mut count) = (0.0, 0usize);
            for rows in order.chunks(cfg.batch) {
                let x = batch_tensor(images, rows, &ae.device)?;
                let logits = ae.reconstruct_logits(&x)?;
                // Bernoulli NLL from logits, stably: relu(l) − x·l + log(1 + e^−|l|).
                let nll = (logits.relu()? - (&x * &logits)?)?
                    + logits.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
                let loss = (nll?.sum_all()? / rows.len() as f64)?;
                let grads = loss.backward()?;
                t += 1;
                for (p, state) in params.iter().zip(&adam) {
                    let g = grads
                        .get(p.as_tensor())
                        .ok_or_else(|| anyhow::anyhow!("autoencoder: missing gradient"))?
                        .contiguous()?;
                    p.as_tensor().inplace_op2(
                        &g,
                        &AdamStep {
                            state,
                            lr: cfg.lr as f32,
                            t,
                        },
                    )?;
                }
                total += loss.to_scalar::<f32>()? as f64 * rows.len() as f64;
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
            h = if i == 0 {
                layer.forward_images(&h)?
            } else {
                layer.forward(&h)?
            };
            if i + 1 < self.encoder.len() {
                h = h.relu()?;
            }
        }
        Ok(h)
    }

    fn reconstruct_logits(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.encode_tensor(x)?;
        for (i, layer) in self.decoder.iter().enumerate() {
            h = layer.forward(&h)?;
            if i + 1 < self.decoder.len() {
                h = h.relu()?;
            }
        }
        Ok(h)
    }

    /// Width of the code.
    pub fn code_dim(&self) -> usize {
        self.code
    }

    /// The codes of the `n` images, row-major `n × code_dim()`.
    pub fn encode(&self, images: &[u8], n: usize) -> Result<Vec<f32>> {
        ensure!(
            images.len() == n * PIXELS,
            "autoencoder: {} bytes for {n} images",
            images.len()
        );
        let mut out = Vec::with_capacity(n * self.code);
        let rows: Vec<usize> = (0..n).collect();
        for chunk in rows.chunks(2048) {
            let x = batch_tensor(images, chunk, &self.device)?;
            let z = self.encode_tensor(&x)?.to_dtype(DType::F32)?;
            out.extend(z.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(out)
    }

    /// Mean Bernoulli reconstruction loss (nats per image) on the `n` images.
    pub fn reconstruction_loss(&self, images: &[u8], n: usize) -> Result<f64> {
        ensure!(
            images.len() == n * PIXELS && n > 0,
            "autoencoder: {} bytes for {n} images",
            images.len()
        );
        let rows: Vec<usize> = (0..n).collect();
        let mut total = 0.0;
        for chunk in rows.chunks(2048) {
            let x = batch_tensor(images, chunk, &self.device)?;
            let l = self.reconstruct_logits(&x)?;
            let nll =
                ((l.relu()? - (&x * &l)?)? + l.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?)?;
            total += nll.sum_all()?.to_scalar::<f32>()? as f64;
        }
        Ok(total / n as f64)
    }
}

/// First and second moment estimates of one parameter tensor.
struct AdamState {
    m: Vec<f32>,
    v: Vec<f32>,
}

impl AdamState {
    fn new(len: usize) -> Self {
        Self {
            m: vec![0.0; len],
            v: vec![0.0; len],
        }
    }
}

/// One Adam step (β₁ = 0.9, β₂ = 0.999, ε = 1e-8, no weight decay) applied in
/// place to a parameter's storage, given its gradient.
struct AdamStep<'a> {
    state: &'a Mutex<AdamState>,
    lr: f32,
    t: i32,
}

impl InplaceOp2 for AdamStep<'_> {
    fn name(&self) -> &'static str {
        "adam-step"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let (CpuStorage::F32(param), CpuStorage::F32(grad)) = (s1, s2) else {
            candle_core::bail!("adam-step: f32 tensors expected");
        };
        let (Some((p0, p1)), Some((g0, g1))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("adam-step: contiguous tensors expected");
        };
        let mut state = self
            .state
            .lock()
            .map_err(|_| candle_core::Error::Msg("adam-step: poisoned state".into()))?;
        let AdamState { m, v } = &mut *state;
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        let c1 = 1.0 - b1.powi(self.t);
        let c2 = 1.0 - b2.powi(self.t);
        let step = self.lr / c1;
        let c2_sqrt = c2.sqrt();
        for (((p, &g), m), v) in param[p0..p1]
            .iter_mut()
            .zip(&grad[g0..g1])
            .zip(m.iter_mut())
            .zip(v.iter_mut())
        {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p -= step * *m / ((*v).sqrt() / c2_sqrt + eps);
        }
        Ok(())
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
        };
        let untrained = Autoencoder::train(&images, n, &cfg, &mut Rng::new(3), &|_| {}).unwrap();
        let before = untrained.reconstruction_loss(&images, n).unwrap();
        let trained = Autoencoder::train(
            &images,
            n,
            &AutoencoderConfig { epochs: 8, ..cfg },
            &mut Rng::new(3),
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

    #[test]
    fn same_seed_same_codes() {
        let n = 64;
        let (images, _) = toy_images(n, 2);
        let cfg = AutoencoderConfig {
            hidden: vec![32],
            code: 3,
            epochs: 2,
            batch: 16,
            lr: 1e-3,
        };
        let a = Autoencoder::train(&images, n, &cfg, &mut Rng::new(9), &|_| {}).unwrap();
        let b = Autoencoder::train(&images, n, &cfg, &mut Rng::new(9), &|_| {}).unwrap();
        let c = Autoencoder::train(&images, n, &cfg, &mut Rng::new(10), &|_| {}).unwrap();
        let (ca, cb, cc) = (
            a.encode(&images, n).unwrap(),
            b.encode(&images, n).unwrap(),
            c.encode(&images, n).unwrap(),
        );
        assert_eq!(ca, cb);
        assert_ne!(ca, cc);
    }
}

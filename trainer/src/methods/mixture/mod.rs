//! The mixture of VAE experts: a gate (the manager) softly routes each
//! image to K VAE experts, trained with the mixture-of-experts loss and a
//! load-balancing term ([`loss`]), started from a label-free partition
//! ([`partition`]) on which the experts and the gate are pretrained.
//!
//! | file | what |
//! |---|---|
//! | [`config`] | `MixtureConfig` (`config.json`), the `default` and `blog` presets |
//! | [`nets`] | the gate, the encoders, the decoders, stored in two expert groups |
//! | [`likelihood`] | the importance-sampled test log-likelihood, one estimator for both mixtures |
//! | [`loss`] | per-expert negative ELBO, the mixture loss, the balancing term |
//! | [`step`] | one batch's gradients, the expert groups on two cores |
//! | [`checkpoint`] | per-expert checkpoint names, whatever the grouping |
//! | [`partition`] | the label-free start, cached in `partition.json` |
//! | [`export`] | the gate and decoders as the engine's `ModelSpec` |

pub mod checkpoint;
pub mod config;
pub mod export;
pub mod likelihood;
pub mod loss;
pub mod nets;
pub mod partition;
pub mod step;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use engine::writer::TwoLevelSpec;
use serde::{Deserialize, Serialize};

use crate::data::augment::augmented_pixels;
use crate::data::batch_pixels;
use crate::nn::adam::{Adam, AdamConfig};
use crate::nn::params::Params;
use crate::rng::Rng;
use crate::train::{Data, EpochPlan, Method, RunContext, StepLoss, GRID_ROWS};
pub use config::{MixtureConfig, Phase, Preset, Start};
use nets::Networks;
use step::{gradients, Batch};

/// A mixture being trained: its networks, optimizer and generators.
pub struct Mixture {
    cfg: MixtureConfig,
    device: Device,
    params: Params,
    nets: Networks,
    adam: Adam,
    /// The label-free partition the pretraining epochs fit, if any.
    assignment: Option<Vec<usize>>,
    /// The gate's own argmax of the clean training images, which the
    /// current self-training epoch fits (made at its start).
    self_labels: Option<Vec<usize>>,
    /// The shuffling generator as it was at the start of the current epoch.
    epoch_rng: Rng,
    /// The same after shuffling this epoch (the next epoch's start).
    next_epoch_rng: Rng,
    /// Reparameterization noise and augmentation.
    noise_rng: Rng,
    /// This epoch's order of the training images.
    order: Vec<usize>,
}

/// The mixture's part of `state.json`.
/// Test images the report's importance-sampled log-likelihood reads.
pub const LIKELIHOOD_IMAGES: usize = 2_000;

/// Draws per image and VAE of that estimate.
pub const LIKELIHOOD_SAMPLES: usize = 16;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MixtureState {
    epoch_rng: Rng,
    noise_rng: Rng,
    adam_steps: u64,
}

impl Mixture {
    /// A mixture of `cfg`'s shapes with `styles` style experts under each
    /// of the gate's experts (1: the one-level mixture; more: the two-level
    /// mixture of [`crate::methods::hierarchical`], whose style gates have
    /// `style_hidden` hidden units), pretrained, if
    /// `assignment` is given, on that cluster (of the K·S experts) of each
    /// training image.
    pub fn build(
        cfg: &MixtureConfig,
        styles: usize,
        style_hidden: usize,
        assignment: Option<Vec<usize>>,
        device: &Device,
    ) -> anyhow::Result<Self> {
        let params = Params::new(cfg.seed);
        let nets =
            Networks::with_styles(&cfg.arch, styles, style_hidden, params.var_builder(device))?;
        let adam = Adam::new(params.vars(), AdamConfig::with_lr(cfg.lr));
        Ok(Mixture {
            cfg: cfg.clone(),
            device: device.clone(),
            params,
            nets,
            adam,
            assignment,
            self_labels: None,
            epoch_rng: Rng::new(cfg.seed, 1),
            next_epoch_rng: Rng::new(cfg.seed, 1),
            noise_rng: Rng::new(cfg.seed, 2),
            order: Vec::new(),
        })
    }

    /// The routing logits ([`Networks::logits`]) of `n` images of 8-bit
    /// pixels, one row per image, 1,000 images at a time.
    pub fn routing_logits(&self, pixels: &[u8], n: usize) -> anyhow::Result<Vec<Vec<f32>>> {
        let p = self.cfg.arch.pixels;
        let all: Vec<usize> = (0..n).collect();
        let mut out = Vec::with_capacity(n);
        for idx in all.chunks(1000) {
            let x = crate::data::images_tensor(pixels, p, idx, &self.device)?;
            out.extend(self.nets.logits(&x)?.to_vec2::<f32>()?);
        }
        Ok(out)
    }

    /// The model's loss on `n` images (nats per image, one draw of the
    /// latent noise from a fixed seed): `(expected, bound)`, the expected
    /// negative ELBO under the routing, Σ_e q_e(x) L_e(x) (the objective's
    /// ELBO part), and the bound on −log p(x) of the mixture with a uniform
    /// prior over its E experts, Σ_e q_e(x) (L_e(x) + log q_e(x) + log E).
    pub fn test_loss(&self, pixels: &[u8], n: usize) -> anyhow::Result<(f64, f64)> {
        let (p, e) = (self.cfg.arch.pixels, self.nets.vaes());
        let mut rng = Rng::new(self.cfg.seed, 4);
        let all: Vec<usize> = (0..n).collect();
        let (mut expected, mut bound) = (0.0, 0.0);
        for idx in all.chunks(500) {
            let x = crate::data::images_tensor(pixels, p, idx, &self.device)?;
            let log_q =
                candle_nn::ops::log_softmax(&self.nets.logits(&x)?, candle_core::D::Minus1)?;
            let q = log_q.exp()?;
            let losses = self.vae_losses(&x, &mut rng)?.t()?;
            expected += (&q * &losses)?.sum_all()?.to_scalar::<f32>()? as f64;
            let extra = (&q * (log_q + (e as f64).ln())?)?;
            bound += (&q * &losses)?.add(&extra)?.sum_all()?.to_scalar::<f32>()? as f64;
        }
        let n = n.max(1) as f64;
        Ok((expected / n, bound / n))
    }

    /// Every VAE's negative ELBO `[VAEs, B]` on images `x` `[B, pixels]`,
    /// one latent draw each from `rng` (group by group).
    fn vae_losses(&self, x: &Tensor, rng: &mut Rng) -> anyhow::Result<Tensor> {
        let (b, latent) = (x.dim(0)?, self.cfg.arch.latent);
        let mut losses = Vec::with_capacity(self.nets.groups.len());
        for group in &self.nets.groups {
            let count = group.decoders.count();
            let eps = Tensor::from_vec(
                rng.normals(count * b * latent),
                (count, b, latent),
                &self.device,
            )?;
            losses.push(loss::expert_losses(group, self.cfg.likelihood, x, &eps)?.total);
        }
        Ok(Tensor::cat(&losses, 0)?)
    }

    /// Every VAE's ELBO (nats, the mean of `draws` latent draws from a
    /// fixed seed) on each of `n` images: one row per image, one column per
    /// VAE.
    pub fn expert_elbos(
        &self,
        pixels: &[u8],
        n: usize,
        draws: usize,
    ) -> anyhow::Result<Vec<Vec<f32>>> {
        let p = self.cfg.arch.pixels;
        let mut rng = Rng::new(self.cfg.seed, 6);
        let all: Vec<usize> = (0..n).collect();
        let mut out = Vec::with_capacity(n);
        for idx in all.chunks(500) {
            let x = crate::data::images_tensor(pixels, p, idx, &self.device)?;
            let mut sum: Option<Tensor> = None;
            for _ in 0..draws.max(1) {
                let losses = self.vae_losses(&x, &mut rng)?;
                sum = Some(match sum {
                    Some(s) => (s + losses)?,
                    None => losses,
                });
            }
            if let Some(sum) = sum {
                let elbo = sum.affine(-1.0 / draws.max(1) as f64, 0.0)?.t()?;
                out.extend(elbo.to_vec2::<f32>()?);
            }
        }
        Ok(out)
    }

    /// The log of the routing's mean over `n` images (one entry per VAE):
    /// the prior weights of the mixture the gate's routing implies.
    pub fn routing_log_prior(&self, pixels: &[u8], n: usize) -> anyhow::Result<Vec<f64>> {
        let logits = self.routing_logits(pixels, n)?;
        let mut mean = vec![0.0f64; self.nets.vaes()];
        for row in &logits {
            let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let z: f64 = row.iter().map(|&v| ((v - m) as f64).exp()).sum();
            for (acc, &v) in mean.iter_mut().zip(row) {
                *acc += ((v - m) as f64).exp() / z;
            }
        }
        Ok(mean
            .iter()
            .map(|&v| (v / n.max(1) as f64).max(1e-12).ln())
            .collect())
    }

    /// The importance-sampled test log-likelihood ([`likelihood`]) of `n`
    /// images under the mixture with prior `log_prior`, `samples` draws per
    /// image and VAE, from a fixed seed.
    pub fn log_likelihood(
        &self,
        pixels: &[u8],
        n: usize,
        log_prior: &[f64],
        samples: usize,
    ) -> anyhow::Result<f64> {
        likelihood::log_likelihood(
            &self.nets,
            &self.device,
            self.cfg.likelihood,
            pixels,
            n,
            log_prior,
            samples,
            &mut Rng::new(self.cfg.seed, 7),
        )
    }

    /// The configuration.
    pub fn cfg(&self) -> &MixtureConfig {
        &self.cfg
    }

    /// The networks.
    pub fn nets(&self) -> &Networks {
        &self.nets
    }

    /// The trainable parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    fn batch_size(&self, n: usize) -> usize {
        self.cfg.batch.min(n).max(1)
    }

    /// One pass over `n` images, or `min_epoch_steps` if that is more.
    fn steps_per_epoch(&self, n: usize) -> usize {
        (n / self.batch_size(n))
            .max(self.cfg.min_epoch_steps)
            .max(1)
    }
}

impl Method for Mixture {
    type Config = MixtureConfig;
    const NAME: &'static str = "mixture";

    fn new(cfg: &MixtureConfig, data: &Data, ctx: &RunContext) -> anyhow::Result<Self> {
        let assignment = if cfg.needs_partition() && cfg.pretrain_epochs() > 0 {
            Some(partition::partition(
                cfg,
                &data.train,
                &ctx.run_dir,
                ctx.verbose,
            )?)
        } else {
            None
        };
        Mixture::build(cfg, 1, 0, assignment, &ctx.device)
    }

    fn epochs(&self) -> usize {
        self.cfg.total_epochs()
    }

    fn plan(&self, epoch: usize, data: &Data) -> EpochPlan {
        let n = data.train.n;
        EpochPlan {
            phase: self.cfg.phase(epoch).name().into(),
            steps: self.steps_per_epoch(n),
        }
    }

    fn begin_epoch(&mut self, epoch: usize, data: &Data) -> anyhow::Result<()> {
        let mut shuffle = self.epoch_rng;
        let n = data.train.n;
        // Relabelled from the model itself, so a resumed run makes the
        // same labels.
        // The argmax over all VAEs (K·S under the two-level mixture), the
        // experts the one-hot targets of `step::gradients` index.
        self.self_labels = match self.cfg.phase(epoch) {
            Phase::SelfTrain => Some(
                self.routing_logits(&data.train.pixels, n)?
                    .iter()
                    .map(|row| engine::kernels::argmax(row))
                    .collect(),
            ),
            _ => None,
        };
        let needed = self.steps_per_epoch(n) * self.batch_size(n);
        // As many freshly shuffled passes as the epoch's steps need (one
        // on MNIST).
        self.order = Vec::with_capacity(needed.max(n));
        while self.order.len() < needed.max(1) {
            let mut pass: Vec<usize> = (0..n).collect();
            shuffle.shuffle(&mut pass);
            self.order.extend(pass);
        }
        self.next_epoch_rng = shuffle;
        Ok(())
    }

    fn step(&mut self, epoch: usize, step: usize, data: &Data) -> anyhow::Result<StepLoss> {
        let train = &data.train;
        let (k, latent) = (self.nets.vaes(), self.cfg.arch.latent);
        let b = self.batch_size(train.n);
        let phase = self.cfg.phase(epoch);
        let idx = &self.order[step * b..(step + 1) * b];
        let size = (
            self.cfg.image.width as usize,
            self.cfg.image.height as usize,
        );
        let pixels = self.cfg.arch.pixels;
        let x = Tensor::from_vec(
            batch_pixels(&train.pixels, size, idx, 0, None),
            (b, pixels),
            &self.device,
        )?;
        let distortion = self.cfg.distortion();
        let xg = if distortion.is_none() {
            x.clone()
        } else {
            Tensor::from_vec(
                augmented_pixels(&train.pixels, size, idx, distortion, &mut self.noise_rng),
                (b, pixels),
                &self.device,
            )?
        };
        let eps = Tensor::from_vec(
            self.noise_rng.normals(k * b * latent),
            (k, b, latent),
            &self.device,
        )?;
        let assignment = match phase {
            Phase::Pretrain => Some(
                self.assignment
                    .as_deref()
                    .ok_or_else(|| anyhow::anyhow!("pretraining needs the initial partition"))?,
            ),
            Phase::Mixture => None,
            Phase::SelfTrain => Some(
                self.self_labels
                    .as_deref()
                    .ok_or_else(|| anyhow::anyhow!("self-training starts by relabelling"))?,
            ),
        };
        let grads = gradients(
            &self.nets,
            &self.cfg,
            &self.device,
            &Batch {
                idx,
                x: &x,
                xg: &xg,
                eps: &eps,
                assignment,
            },
        )?;
        let loss = grads.loss();
        if loss.is_finite() {
            let steps = self.steps_per_epoch(train.n);
            self.adam.set_lr(self.cfg.experts_lr_at(epoch, step, steps));
            let routing_lr = self.cfg.lr_at(epoch, step, steps);
            for net in nets::ROUTING {
                self.adam.set_lr_of(net, routing_lr);
            }
            self.adam.step_sum(&grads.grads)?;
        }
        Ok(StepLoss {
            loss,
            terms: vec![
                ("elbo", grads.elbo),
                ("recon", grads.recon),
                ("kl", grads.elbo - grads.recon),
                (
                    if phase == Phase::Mixture {
                        "balance"
                    } else {
                        "gate_ce"
                    },
                    grads.extra,
                ),
            ],
            samples: b,
        })
    }

    fn end_epoch(
        &mut self,
        _epoch: usize,
        _data: &Data,
    ) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
        self.epoch_rng = self.next_epoch_rng;
        Ok(serde_json::Map::new())
    }

    fn experts(&self) -> usize {
        self.cfg.arch.experts
    }

    fn parameters(&self) -> usize {
        self.params.count()
    }

    fn predict(&self, pixels: &[u8], n: usize) -> anyhow::Result<Option<Vec<usize>>> {
        Ok(Some(self.nets.gate.classify_images(
            pixels,
            n,
            &self.device,
        )?))
    }

    fn sample_tiles(&self) -> anyhow::Result<Vec<Vec<f32>>> {
        let (k, l) = (self.nets.vaes(), self.cfg.arch.latent);
        let mut rng = Rng::new(self.cfg.seed, 3);
        let z = Tensor::from_vec(
            rng.normals(k * GRID_ROWS * l),
            (k, GRID_ROWS, l),
            &self.device,
        )?;
        let img = candle_nn::ops::sigmoid(&self.nets.decode(&z)?)?;
        let img: Vec<Vec<Vec<f32>>> = img.to_vec3()?;
        let mut tiles = Vec::with_capacity(k * GRID_ROWS);
        for r in 0..GRID_ROWS {
            for expert in img.iter() {
                tiles.push(expert[r].clone());
            }
        }
        Ok(tiles)
    }

    fn report_notes(
        &self,
        data: &Data,
        _run_dir: &Path,
        _label_map: Option<&[u8]>,
    ) -> anyhow::Result<String> {
        let (expected, bound) = self.test_loss(&data.test.pixels, data.test.n)?;
        let prior = self.routing_log_prior(&data.train.pixels, data.train.n)?;
        let n = data.test.n.min(LIKELIHOOD_IMAGES);
        let ll = self.log_likelihood(
            &data.test.pixels[..n * self.cfg.arch.pixels],
            n,
            &prior,
            LIKELIHOOD_SAMPLES,
        )?;
        Ok(format!(
            "- parameters trained: {} (encoders included)\n- test set, f32 model: expected negative ELBO under the routing {expected:.2} nats/image; bound on −log p(x) with a uniform prior over the {} experts {bound:.2} nats/image\n- test log-likelihood, importance-sampled ({LIKELIHOOD_SAMPLES} draws per image and VAE, the first {n} test images, prior = the routing's mean over the training images): {ll:.2} nats/image\n",
            self.parameters(),
            self.nets.vaes()
        ))
    }

    fn to_spec(&self, sizes: &[usize], label_map: Option<Vec<u8>>) -> anyhow::Result<TwoLevelSpec> {
        let n = sizes.iter().sum::<usize>().max(1) as f32;
        let weights: Vec<f32> = sizes.iter().map(|&s| s as f32 / n).collect();
        Ok(export::to_spec(&self.nets, &self.cfg, weights, label_map)?.into())
    }

    fn checkpoint(&self) -> anyhow::Result<(HashMap<String, Tensor>, serde_json::Value)> {
        let mut tensors = self.params.tensors();
        tensors.extend(self.adam.state_tensors()?);
        let state = MixtureState {
            epoch_rng: self.epoch_rng,
            noise_rng: self.noise_rng,
            adam_steps: self.adam.steps(),
        };
        Ok((
            checkpoint::split_groups(tensors, self.nets.vaes())?,
            serde_json::to_value(state)?,
        ))
    }

    fn restore(
        &mut self,
        tensors: &HashMap<String, Tensor>,
        state: serde_json::Value,
        file: &Path,
    ) -> anyhow::Result<()> {
        let state: MixtureState = serde_json::from_value(state)
            .map_err(|e| anyhow::anyhow!("{}: not a mixture's state: {e}", file.display()))?;
        let mut wanted = Vec::new();
        for (name, var) in self.params.vars() {
            let dims = var.dims().to_vec();
            wanted.push((format!("adam.m.{name}"), dims.clone()));
            wanted.push((format!("adam.v.{name}"), dims.clone()));
            wanted.push((name, dims));
        }
        let joined = checkpoint::join_groups(tensors, &wanted, self.nets.vaes())
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        self.params.load_from(&joined, file)?;
        self.adam
            .load_state(&joined, state.adam_steps)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        self.epoch_rng = state.epoch_rng;
        self.next_epoch_rng = state.epoch_rng;
        self.noise_rng = state.noise_rng;
        Ok(())
    }
}

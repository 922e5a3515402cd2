//! kVAE on the one training loop: its epochs are the pretraining (one
//! epoch of `pretrain_steps` steps per VAE), then one epoch per round (the
//! `round_steps` VAE steps after a reassignment), then the gate's
//! distillation. The reassignment (steps (b) and (c):
//! discriminators, scores, moves) runs between epochs, in
//! [`Method::end_epoch`]; everything that it and the steps draw from is
//! saved in the checkpoint, so a run resumes exactly.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use candle_core::{Device, Tensor};
use engine::writer::TwoLevelSpec;
use serde::{Deserialize, Serialize};

use super::batching::{members, Batcher};
use super::config::{KVaeFitConfig, ScoreRule};
use super::discriminators::{discriminator_accuracy, mean_accuracy, DiscNet};
use super::gate::gate_predict;
use super::scoring::{reassign_round, Scorer};
use super::training::{vae_step, RoundContext, VaeBatches};
use super::vae::VaeNets;
use crate::data::Points;
use crate::eval::metrics::evaluate;
use crate::nn::adam::Adam;
use crate::nn::layers::Gate;
use crate::nn::params::Params;
use crate::rng::Rng;
use crate::train::{Data, EpochPlan, Method, RunContext, StepLoss, GRID_ROWS};

/// What an epoch of kVAE does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// VAE steps before the first reassignment.
    Pretrain,
    /// VAE steps after reassignment `r` (1-based).
    Round(usize),
    /// Gate distillation from the final assignment.
    Gate,
}

/// A kVAE run: k VAEs, their discriminators and the gate, with their
/// optimizers and the assignment of the training points.
pub struct KVae {
    pub(super) cfg: KVaeFitConfig,
    pub(super) device: Device,
    pub(super) points: Points,
    /// Labels of the training points, to score the assignment in the log.
    pub(super) labels: Option<Vec<u8>>,
    pub(super) vae_params: Params,
    pub(super) vaes: Box<dyn VaeNets>,
    pub(super) vae_opt: Adam,
    pub(super) disc_params: Params,
    pub(super) disc: Box<dyn DiscNet>,
    pub(super) disc_opt: Adam,
    pub(super) gate_params: Params,
    pub(super) gate: Gate,
    pub(super) gate_opt: Adam,
    pub(super) state: KVaeState,
    /// This gate epoch's order of the training points.
    pub(super) gate_order: Vec<usize>,
    /// The gate's shuffling generator after this epoch's shuffle.
    pub(super) gate_rng_next: Rng,
}

/// kVAE's part of `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct KVaeState {
    /// Batches, noise, discriminator draws.
    pub(super) rng: Rng,
    /// The gate's shuffling generator at the start of the current epoch.
    pub(super) gate_rng: Rng,
    /// The gate's order before the current epoch's shuffle.
    pub(super) gate_order_before: Vec<usize>,
    /// The VAE of every training point.
    pub(super) assignment: Vec<usize>,
    /// Where each VAE's batches stand.
    pub(super) batcher: Batcher,
    /// Gate epochs finished.
    pub(super) gate_epochs_done: usize,
    /// Optimizer steps of the VAEs, the discriminators and the gate.
    pub(super) adam_steps: [u64; 3],
}

impl KVae {
    fn phase(&self, epoch: usize) -> Phase {
        match epoch {
            0 => Phase::Pretrain,
            r if r <= self.cfg.kvae.rounds => Phase::Round(r),
            _ => Phase::Gate,
        }
    }

    /// The reassignment (1-based) that follows epoch `epoch`, if any: after
    /// the pretraining and after each round's VAE steps but the last.
    fn reassignment_after(&self, epoch: usize) -> Option<usize> {
        (epoch < self.cfg.kvae.rounds).then_some(epoch + 1)
    }

    fn provenance(&self) -> String {
        let c = &self.cfg.kvae;
        let base = format!(
            "trainer {} kvae k={} latent={} hidden={:?} gate={:?} pretrain={:?} steps={}+{}x{} disc_steps={}x{} disc_noise={} scorer={:?} normalise={} prior={} min_share={} freeze_small={} batch={} lr={} seed={} limit={}",
            env!("CARGO_PKG_VERSION"),
            c.k,
            c.vae.latent,
            c.vae.hidden,
            c.gate_hidden,
            c.pretrain,
            c.pretrain_steps,
            c.rounds,
            c.round_steps,
            c.disc_steps,
            c.disc_batch,
            c.disc_noise,
            c.scorer,
            c.score_rule == ScoreRule::Normalised,
            c.prior,
            c.min_share,
            c.freeze_small,
            c.batch,
            c.lr,
            c.seed,
            self.cfg.limit.map_or("none".to_string(), |l| l.to_string())
        );
        // Options from after the first kVAE models, named only when used, so
        // that those models' bytes stay as they were.
        let mut extra = String::new();
        if c.score_rule == ScoreRule::Confused {
            extra.push_str(" score_rule=confused");
        }
        if c.disc_warmup_epochs > 0 {
            extra.push_str(&format!(" disc_warmup_epochs={}", c.disc_warmup_epochs));
        }
        if c.sharpen_fakes {
            extra.push_str(" sharpen_fakes=true");
        }
        (base + &extra).to_lowercase()
    }
}

impl Method for KVae {
    type Config = KVaeFitConfig;
    const NAME: &'static str = "kvae";

    fn new(cfg: &KVaeFitConfig, data: &Data, ctx: &RunContext) -> anyhow::Result<Self> {
        let points = Points::from_pixels(&data.train.pixels, data.pixels());
        KVae::on_points(cfg, points, data.train.labels.clone(), data, ctx, None)
    }

    fn epochs(&self) -> usize {
        self.cfg.total_epochs()
    }

    fn plan(&self, epoch: usize, _data: &Data) -> EpochPlan {
        let c = &self.cfg.kvae;
        let n = self.points.n;
        match self.phase(epoch) {
            Phase::Pretrain => EpochPlan {
                phase: "pretrain".into(),
                steps: c.pretrain_steps,
            },
            Phase::Round(r) => EpochPlan {
                phase: format!("round {r}"),
                steps: c.round_steps,
            },
            Phase::Gate => EpochPlan {
                phase: "gate".into(),
                steps: n.div_ceil(c.batch).max(1),
            },
        }
    }

    fn begin_epoch(&mut self, epoch: usize, _data: &Data) -> anyhow::Result<()> {
        if self.phase(epoch) == Phase::Gate {
            let mut rng = self.state.gate_rng;
            self.gate_order = self.state.gate_order_before.clone();
            rng.shuffle(&mut self.gate_order);
            self.gate_rng_next = rng;
        }
        Ok(())
    }

    fn step(&mut self, epoch: usize, step: usize, _data: &Data) -> anyhow::Result<StepLoss> {
        let c = &self.cfg.kvae;
        match self.phase(epoch) {
            Phase::Pretrain | Phase::Round(_) => {
                let batches = VaeBatches {
                    batch: c.batch,
                    freeze_small: c.freeze_small,
                };
                let per_vae = vae_step(
                    self.vaes.as_ref(),
                    &mut self.vae_opt,
                    &mut self.state.batcher,
                    batches,
                    &mut RoundContext {
                        data: &self.points,
                        rng: &mut self.state.rng,
                        device: &self.device,
                    },
                )?;
                let active = (0..c.k)
                    .filter(|&j| self.state.batcher.trains(j, c.batch, c.freeze_small))
                    .count();
                let loss = f64::from(per_vae.sum_all()?.to_scalar::<f32>()?) / active.max(1) as f64;
                Ok(StepLoss {
                    loss,
                    terms: vec![("neg_elbo", loss)],
                    samples: c.k * c.batch,
                })
            }
            Phase::Gate => {
                let from = (step * c.batch).min(self.gate_order.len());
                let to = ((step + 1) * c.batch).min(self.gate_order.len());
                let chunk = self.gate_order[from..to].to_vec();
                let x = self
                    .points
                    .gather(std::slice::from_ref(&chunk), &self.device)?
                    .squeeze(0)?;
                let t: Vec<u32> = chunk
                    .iter()
                    .map(|&i| self.state.assignment[i] as u32)
                    .collect();
                let t = Tensor::from_vec(t, chunk.len(), &self.device)?;
                let loss = candle_nn::loss::cross_entropy(&self.gate.forward(&x)?, &t)?;
                let value = f64::from(loss.to_scalar::<f32>()?);
                if value.is_finite() {
                    self.gate_opt.step(&loss.backward()?)?;
                }
                Ok(StepLoss {
                    loss: value,
                    terms: vec![("gate_ce", value)],
                    samples: chunk.len(),
                })
            }
        }
    }

    fn end_epoch(
        &mut self,
        epoch: usize,
        _data: &Data,
    ) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
        let k = self.cfg.kvae.k;
        let mut notes = serde_json::Map::new();
        if self.phase(epoch) == Phase::Gate {
            self.state.gate_order_before = std::mem::take(&mut self.gate_order);
            self.state.gate_rng = self.gate_rng_next;
            self.state.gate_epochs_done += 1;
            let pred = gate_predict(&self.gate, &self.points, &self.device)?;
            let agree = pred
                .iter()
                .zip(&self.state.assignment)
                .filter(|(a, b)| a == b)
                .count() as f64
                / self.points.n.max(1) as f64;
            notes.insert("gate_agreement".into(), agree.into());
            return Ok(notes);
        }
        if let Some(round) = self.reassignment_after(epoch) {
            let outcome = reassign_round(
                &self.round_config(round),
                self.disc.as_ref(),
                &mut self.disc_opt,
                self.vaes.as_ref(),
                &self.state.assignment,
                &mut RoundContext {
                    data: &self.points,
                    rng: &mut self.state.rng,
                    device: &self.device,
                },
            )?;
            self.state.assignment = outcome.assignment;
            self.state.batcher = Batcher::new(&members(&self.state.assignment, k));
            notes.insert("reassignment".into(), round.into());
            if self.cfg.kvae.scorer == Scorer::Discriminator {
                // On draws of their own, so that measuring changes no run.
                let mut rng = Rng::new(self.cfg.kvae.seed ^ 0xACC, round as u64);
                let acc = discriminator_accuracy(
                    self.disc.as_ref(),
                    self.vaes.as_ref(),
                    &self.points,
                    256,
                    &mut rng,
                    &self.device,
                )?;
                let (real, fake) = mean_accuracy(&acc);
                notes.insert("disc_acc_real".into(), real.into());
                notes.insert("disc_acc_fake".into(), fake.into());
            }
            if let Some(d) = outcome.disc_loss {
                notes.insert("disc_loss".into(), d.into());
            }
            notes.insert("moved".into(), outcome.moved.into());
            notes.insert("held".into(), outcome.held.into());
        }
        // Labels score the assignment for the log; they do not change it.
        if let Some(labels) = &self.labels {
            let ev = evaluate(&self.state.assignment, labels, k);
            notes.insert("train_acc".into(), ev.acc.into());
            notes.insert("train_purity".into(), ev.purity().into());
            notes.insert("train_nmi".into(), ev.nmi.into());
        }
        notes.insert(
            "sizes".into(),
            members(&self.state.assignment, k)
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>()
                .into(),
        );
        Ok(notes)
    }

    fn experts(&self) -> usize {
        self.cfg.kvae.k
    }

    fn parameters(&self) -> usize {
        self.vae_params.count() + self.disc_params.count() + self.gate_params.count()
    }

    fn predict(&self, pixels: &[u8], n: usize) -> anyhow::Result<Option<Vec<usize>>> {
        if self.state.gate_epochs_done == 0 {
            return Ok(None);
        }
        Ok(Some(self.gate.classify_images(pixels, n, &self.device)?))
    }

    fn sample_tiles(&self) -> anyhow::Result<Vec<Vec<f32>>> {
        let k = self.cfg.kvae.k;
        let mut rng = Rng::new(self.cfg.kvae.seed, 0x5A3);
        let samples = self.vaes.sample(GRID_ROWS, &mut rng, &self.device)?; // [K, rows, 784]
        let samples: Vec<Vec<Vec<f32>>> = samples.to_vec3()?;
        let mut tiles = Vec::with_capacity(GRID_ROWS * k);
        for r in 0..GRID_ROWS {
            for vae in &samples {
                tiles.push(vae[r].clone());
            }
        }
        Ok(tiles)
    }

    fn to_spec(
        &self,
        _sizes: &[usize],
        label_map: Option<Vec<u8>>,
    ) -> anyhow::Result<TwoLevelSpec> {
        Ok(super::to_spec(
            self.vaes.as_ref(),
            &self.gate,
            &self.state.assignment,
            self.cfg.image,
            label_map,
            self.provenance(),
        )?
        .into())
    }

    fn checkpoint(&self) -> anyhow::Result<(HashMap<String, Tensor>, serde_json::Value)> {
        let mut tensors = self.vae_params.tensors();
        tensors.extend(self.disc_params.tensors());
        tensors.extend(self.gate_params.tensors());
        for opt in [&self.vae_opt, &self.disc_opt, &self.gate_opt] {
            tensors.extend(opt.state_tensors()?);
        }
        let mut state = self.state.clone();
        state.adam_steps = [
            self.vae_opt.steps(),
            self.disc_opt.steps(),
            self.gate_opt.steps(),
        ];
        Ok((tensors, serde_json::to_value(state)?))
    }

    fn restore(
        &mut self,
        tensors: &HashMap<String, Tensor>,
        state: serde_json::Value,
        file: &Path,
    ) -> anyhow::Result<()> {
        let state: KVaeState = serde_json::from_value(state)
            .map_err(|e| anyhow::anyhow!("{}: not a kVAE state: {e}", file.display()))?;
        anyhow::ensure!(
            state.assignment.len() == self.points.n
                && state.assignment.iter().all(|&a| a < self.cfg.kvae.k),
            "{}: the saved assignment does not match this run's data",
            file.display()
        );
        for params in [&self.vae_params, &self.disc_params, &self.gate_params] {
            params.load_from(tensors, file)?;
        }
        for (opt, steps) in [
            (&mut self.vae_opt, state.adam_steps[0]),
            (&mut self.disc_opt, state.adam_steps[1]),
            (&mut self.gate_opt, state.adam_steps[2]),
        ] {
            opt.load_state(tensors, steps)
                .with_context(|| format!("{}", file.display()))?;
        }
        self.state = state;
        Ok(())
    }
}

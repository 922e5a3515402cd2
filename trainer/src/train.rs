//! The training loop: batches, phases, checkpoints, resume, Ctrl-C, NaN guard,
//! and the per-epoch outputs of a run directory.
//!
//! Run directory layout: `config.json`, `partition.json` (label-free initial
//! clusters, when used), `checkpoint.safetensors` + `state.json` (written
//! atomically after every epoch and on Ctrl-C), `metrics.jsonl` (one line per
//! epoch), `samples/epoch-NNN.png`, then at the end `loss.png`, `report.md`
//! and `model.bin`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::adam::{Adam, AdamConfig};
use crate::config::{FitConfig, Start};
use crate::data::{PIXELS, SIDE};
use crate::method::{
    assignment_loss_part, balance_slope, expert_losses, expert_part, mixture_loss_part,
};
use crate::metrics::{evaluate, Evaluation};
use crate::nets::{expert_group, Mixture};
use crate::params::Params;
use crate::rng::Rng;
use crate::util::{append_line, write_atomic};

/// Rows of the per-epoch sample grid.
pub const GRID_ROWS: usize = 8;

/// Images and labels as the loop needs them (labels only for evaluation).
pub struct Split {
    /// Number of images.
    pub n: usize,
    /// `n * 784` bytes.
    pub pixels: Vec<u8>,
    /// Digit labels: used for evaluation and the label map, never in training.
    pub labels: Vec<u8>,
}

/// One batch's objective (the whole batch's, as scalars) and the gradients
/// of its expert groups (each parameter's in one of them).
struct StepGradients {
    elbo: f64,
    extra: f64,
    grads: Vec<GradStore>,
}

impl StepGradients {
    /// What is minimized.
    fn loss(&self) -> f64 {
        self.elbo + self.extra
    }
}

/// Sums of one epoch's step losses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochSums {
    /// Σ loss × batch size.
    pub loss: f64,
    /// Σ expected negative ELBO × batch size.
    pub elbo: f64,
    /// Σ balancing (or gate cross-entropy) term × batch size.
    pub extra: f64,
    /// Samples seen.
    pub samples: usize,
    /// Seconds spent stepping.
    pub seconds: f64,
}

/// Where training stands; with the checkpoint it resumes a run exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Current epoch (0-based); equals the total when done.
    pub epoch: usize,
    /// Steps already taken in the current epoch.
    pub step_in_epoch: usize,
    /// The shuffling generator as it was at the start of the current epoch.
    pub epoch_rng: Rng,
    /// Generator for reparameterization noise and augmentation.
    pub noise_rng: Rng,
    /// Adam steps so far.
    pub adam_steps: u64,
    /// Partial sums of the current epoch.
    pub sums: EpochSums,
    /// (global step, loss) every few steps, for the loss curve.
    pub trace: Vec<(u64, f64)>,
    /// Per-epoch mean loss, for the loss curve.
    pub epoch_losses: Vec<f64>,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// "pretrain" or "mixture".
    pub phase: String,
    /// Mean loss.
    pub loss: f64,
    /// Mean expected negative ELBO.
    pub elbo: f64,
    /// Mean balancing term (mixture) or gate cross-entropy (pretrain).
    pub extra: f64,
    /// Training throughput.
    pub samples_per_s: f64,
    /// Seconds of stepping this epoch.
    pub seconds: f64,
    /// Test ACC of the gate's argmax (labels used only to score).
    pub test_acc: f64,
    /// Test NMI.
    pub test_nmi: f64,
    /// Test ARI.
    pub test_ari: f64,
    /// Test images per cluster.
    pub test_sizes: Vec<usize>,
}

/// How a call to [`Trainer::run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// All epochs done.
    Finished,
    /// Stopped by Ctrl-C after saving a checkpoint.
    Interrupted,
}

/// A model being trained, with its optimizer, data and run directory.
pub struct Trainer {
    /// The configuration.
    pub cfg: FitConfig,
    /// Where tensors live.
    pub device: Device,
    /// Trainable parameters.
    pub params: Params,
    /// The networks.
    pub model: Mixture,
    adam: Adam,
    /// Progress.
    pub state: TrainState,
    /// Training images (and labels, for evaluation only).
    pub train: Split,
    /// Test images and labels.
    pub test: Split,
    /// Label-free initial clusters of the training images, if any.
    pub assignment: Option<Vec<usize>>,
    /// The run directory.
    pub run_dir: PathBuf,
    /// Set from the Ctrl-C handler.
    pub stop: Arc<AtomicBool>,
    /// Print per-epoch lines and progress bars.
    pub verbose: bool,
}

const CHECKPOINT: &str = "checkpoint.safetensors";
const STATE: &str = "state.json";

/// Images `idx` as f32 in `[0, 1]`, each shifted by up to `shift` pixels in
/// x and y (zeros fill in) when an RNG is given.
pub fn batch_pixels(pixels: &[u8], idx: &[usize], shift: usize, rng: Option<&mut Rng>) -> Vec<f32> {
    let mut out = vec![0f32; idx.len() * PIXELS];
    match rng {
        Some(rng) if shift > 0 => {
            let s = shift as i64;
            for (o, &i) in out.chunks_exact_mut(PIXELS).zip(idx) {
                let dx = rng.below(2 * shift + 1) as i64 - s;
                let dy = rng.below(2 * shift + 1) as i64 - s;
                let img = &pixels[i * PIXELS..(i + 1) * PIXELS];
                for y in 0..SIDE as i64 {
                    let sy = y - dy;
                    if !(0..SIDE as i64).contains(&sy) {
                        continue;
                    }
                    for x in 0..SIDE as i64 {
                        let sx = x - dx;
                        if (0..SIDE as i64).contains(&sx) {
                            o[(y * SIDE as i64 + x) as usize] =
                                img[(sy * SIDE as i64 + sx) as usize] as f32 / 255.0;
                        }
                    }
                }
            }
        }
        _ => {
            for (o, &i) in out.chunks_exact_mut(PIXELS).zip(idx) {
                for (d, &p) in o.iter_mut().zip(&pixels[i * PIXELS..(i + 1) * PIXELS]) {
                    *d = p as f32 / 255.0;
                }
            }
        }
    }
    out
}

impl Trainer {
    /// A fresh trainer (weights from `cfg.seed`), or, with `resume`, one
    /// restored from the run directory's checkpoint.
    pub fn new(
        cfg: FitConfig,
        device: Device,
        train: Split,
        test: Split,
        assignment: Option<Vec<usize>>,
        run_dir: PathBuf,
        resume: bool,
    ) -> anyhow::Result<Self> {
        let params = Params::new(cfg.seed);
        let model = Mixture::new(&cfg.arch, params.var_builder(&device))?;
        let mut adam = Adam::new(params.vars(), AdamConfig::with_lr(cfg.lr));
        let mut state = TrainState {
            epoch: 0,
            step_in_epoch: 0,
            epoch_rng: Rng::new(cfg.seed, 1),
            noise_rng: Rng::new(cfg.seed, 2),
            adam_steps: 0,
            sums: EpochSums::default(),
            trace: Vec::new(),
            epoch_losses: Vec::new(),
        };
        if resume {
            let ck = run_dir.join(CHECKPOINT);
            let st = run_dir.join(STATE);
            let tensors = candle_core::safetensors::load(&ck, &Device::Cpu)
                .map_err(|e| anyhow::anyhow!("{}: cannot load checkpoint: {e}", ck.display()))?;
            params.load_from(&tensors, &ck)?;
            let text = std::fs::read_to_string(&st)
                .with_context(|| format!("{}: cannot read", st.display()))?;
            state = serde_json::from_str(&text)
                .with_context(|| format!("{}: not a training state", st.display()))?;
            adam.load_state(&tensors, state.adam_steps)
                .with_context(|| format!("{}", ck.display()))?;
        }
        Ok(Trainer {
            cfg,
            device,
            params,
            model,
            adam,
            state,
            train,
            test,
            assignment,
            run_dir,
            stop: Arc::new(AtomicBool::new(false)),
            verbose: true,
        })
    }

    /// Saves weights, optimizer moments and progress, atomically.
    pub fn save_checkpoint(&self) -> anyhow::Result<()> {
        let mut tensors: HashMap<String, Tensor> = self
            .params
            .tensors()
            .into_iter()
            .map(|(k, t)| Ok((k, t.to_device(&Device::Cpu)?)))
            .collect::<candle_core::Result<_>>()?;
        tensors.extend(self.adam.state_tensors()?);
        let ck = self.run_dir.join(CHECKPOINT);
        let tmp = crate::util::temp_path(&ck);
        candle_core::safetensors::save(&tensors, &tmp)
            .map_err(|e| anyhow::anyhow!("{}: cannot write checkpoint: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &ck).with_context(|| format!("{}: cannot write", ck.display()))?;
        let mut state = self.state.clone();
        state.adam_steps = self.adam.steps();
        write_atomic(
            &self.run_dir.join(STATE),
            serde_json::to_string(&state)?.as_bytes(),
        )
    }

    fn steps_per_epoch(&self) -> usize {
        (self.train.n / self.cfg.batch.min(self.train.n).max(1)).max(1)
    }

    fn batch_size(&self) -> usize {
        self.cfg.batch.min(self.train.n).max(1)
    }

    /// Gate argmax for every image of `split`, with the f32 model.
    pub fn predict(&self, split: &Split) -> anyhow::Result<Vec<usize>> {
        let mut out = Vec::with_capacity(split.n);
        let chunk = 1000;
        let all: Vec<usize> = (0..split.n).collect();
        for idx in all.chunks(chunk) {
            let x = Tensor::from_vec(
                batch_pixels(&split.pixels, idx, 0, None),
                (idx.len(), PIXELS),
                &self.device,
            )?;
            let logits = self.model.gate.forward(&x)?;
            out.extend(
                logits
                    .argmax(1)?
                    .to_vec1::<u32>()?
                    .into_iter()
                    .map(|c| c as usize),
            );
        }
        Ok(out)
    }

    /// Scores the gate on the test set (labels used only for scoring).
    pub fn evaluate_test(&self) -> anyhow::Result<Evaluation> {
        let pred = self.predict(&self.test)?;
        Ok(evaluate(&pred, &self.test.labels, self.cfg.arch.experts))
    }

    /// Decodes `GRID_ROWS` fixed latent draws with every expert: tiles in
    /// row-major order, one column per expert.
    pub fn sample_tiles(&self, seed: u64) -> anyhow::Result<Vec<Vec<f32>>> {
        let (k, l) = (self.cfg.arch.experts, self.cfg.arch.latent);
        let mut rng = Rng::new(seed, 3);
        let z = Tensor::from_vec(
            rng.normals(k * GRID_ROWS * l),
            (k, GRID_ROWS, l),
            &self.device,
        )?;
        let img = candle_nn::ops::sigmoid(&self.model.decode(&z)?)?;
        let img: Vec<Vec<Vec<f32>>> = img.to_vec3()?;
        let mut tiles = Vec::with_capacity(k * GRID_ROWS);
        for r in 0..GRID_ROWS {
            for expert in img.iter() {
                tiles.push(expert[r].clone());
            }
        }
        Ok(tiles)
    }

    /// Trains until every epoch is done or Ctrl-C is pressed.
    pub fn run(&mut self) -> anyhow::Result<Outcome> {
        std::fs::create_dir_all(self.run_dir.join("samples"))
            .with_context(|| format!("{}: cannot create", self.run_dir.display()))?;
        let total = self.cfg.total_epochs();
        let pretrain = self.cfg.pretrain_epochs();
        let (k, latent) = (self.cfg.arch.experts, self.cfg.arch.latent);
        let b = self.batch_size();
        let steps = self.steps_per_epoch();
        while self.state.epoch < total {
            let epoch = self.state.epoch;
            let pretraining = epoch < pretrain;
            let mut shuffle = self.state.epoch_rng;
            let mut order: Vec<usize> = (0..self.train.n).collect();
            shuffle.shuffle(&mut order);
            let bar = if self.verbose {
                indicatif::ProgressBar::new(steps as u64)
            } else {
                indicatif::ProgressBar::hidden()
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            bar.set_prefix(format!("epoch {}/{}", epoch + 1, total));
            bar.set_position(self.state.step_in_epoch as u64);
            while self.state.step_in_epoch < steps {
                if self.stop.load(Ordering::SeqCst) {
                    bar.abandon();
                    self.save_checkpoint()?;
                    return Ok(Outcome::Interrupted);
                }
                let start = Instant::now();
                let s = self.state.step_in_epoch;
                let idx = &order[s * b..(s + 1) * b];
                let x = Tensor::from_vec(
                    batch_pixels(&self.train.pixels, idx, 0, None),
                    (b, PIXELS),
                    &self.device,
                )?;
                let xg = if self.cfg.shift > 0 {
                    Tensor::from_vec(
                        batch_pixels(
                            &self.train.pixels,
                            idx,
                            self.cfg.shift,
                            Some(&mut self.state.noise_rng),
                        ),
                        (b, PIXELS),
                        &self.device,
                    )?
                } else {
                    x.clone()
                };
                let eps = Tensor::from_vec(
                    self.state.noise_rng.normals(k * b * latent),
                    (k, b, latent),
                    &self.device,
                )?;
                let step = self.gradients(pretraining, idx, &x, &xg, &eps)?;
                let loss = step.loss();
                if !loss.is_finite() {
                    bar.abandon();
                    let kept = if Self::has_checkpoint(&self.run_dir) {
                        format!(
                            "the last good checkpoint is kept in {}",
                            self.run_dir.join(CHECKPOINT).display()
                        )
                    } else {
                        "no epoch had finished, so there is no checkpoint".to_string()
                    };
                    bail!(
                        "loss became {loss} at epoch {} step {}; training stopped, {kept} (try a lower --lr)",
                        epoch + 1,
                        s + 1,
                    );
                }
                self.adam.step_sum(&step.grads)?;
                let sums = &mut self.state.sums;
                sums.loss += loss * b as f64;
                sums.elbo += step.elbo * b as f64;
                sums.extra += step.extra * b as f64;
                sums.samples += b;
                sums.seconds += start.elapsed().as_secs_f64();
                self.state.step_in_epoch += 1;
                let global = self.adam.steps();
                if global.is_multiple_of(10) {
                    self.state.trace.push((global, loss));
                }
                bar.set_message(format!("loss {:.2}", sums.loss / sums.samples as f64));
                bar.inc(1);
            }
            bar.finish_and_clear();
            self.finish_epoch(pretraining)?;
        }
        Ok(Outcome::Finished)
    }

    /// The objective of one batch and its gradients. The experts are stored
    /// in groups ([`crate::nets::EXPERT_GROUPS`], two), and on the CPU each
    /// group runs forward and backward on the whole batch on a thread of
    /// its own, the gate forward with the first and backward with the
    /// last: candle's matmuls gain nothing from
    /// a second thread at these sizes, so one group per core is what uses
    /// the second core, and every matmul keeps the batch's rows.
    ///
    /// The objective couples the gate and the experts (`Σ_k p_k L_k` and the
    /// balancing term), so the groups run forward, then the losses and gate
    /// output of all of them make the weights of each expert's loss and the
    /// gate's part ([`expert_part`], [`mixture_loss_part`] or
    /// [`assignment_loss_part`] on detached losses), and then the groups run
    /// backward. Their gradients are the whole objective's (each parameter
    /// gets its gradient from one group), and do not depend on the number
    /// of cores, so a seed gives the same model on any machine.
    fn gradients(
        &self,
        pretraining: bool,
        idx: &[usize],
        x: &Tensor,
        xg: &Tensor,
        eps: &Tensor,
    ) -> anyhow::Result<StepGradients> {
        let (b, k) = (idx.len(), self.cfg.arch.experts);
        let groups = &self.model.groups;
        let forward = |g: usize| -> candle_core::Result<(Tensor, Option<Tensor>)> {
            let (first, count) = expert_group(k, g);
            let eps = eps.narrow(0, first, count)?.contiguous()?;
            let losses = expert_losses(&groups[g], self.cfg.likelihood, x, &eps)?;
            let logits = match g {
                0 => Some(self.model.gate.forward(xg)?),
                _ => None,
            };
            Ok((losses.total, logits))
        };
        let outputs = self
            .each_group(forward)
            .into_iter()
            .collect::<candle_core::Result<Vec<_>>>()?;
        let Some((_, Some(logits))) = outputs.first() else {
            bail!("the first expert group runs the gate");
        };
        let losses = outputs.iter().map(|(l, _)| l.detach()).collect::<Vec<_>>();
        let losses = Tensor::cat(&losses, 0)?;
        // Each expert's loss is weighted by the image's one-hot assignment
        // (pretraining) or the gate's probabilities, held fixed; the mixture
        // adds the whole batch's balancing term (value and slope).
        let (weights, balance) = if pretraining {
            let assignment = self
                .assignment
                .as_ref()
                .context("pretraining needs the initial partition")?;
            let mut one_hot = vec![0f32; b * k];
            for (r, &i) in idx.iter().enumerate() {
                one_hot[r * k + assignment[i]] = 1.0;
            }
            (Tensor::from_vec(one_hot, (b, k), &self.device)?, None)
        } else {
            let p = candle_nn::ops::softmax(&logits.detach(), candle_core::D::Minus1)?;
            (p, Some(balance_slope(logits, self.cfg.balance)?))
        };
        // The gate ran forward with the first group; its backward pass
        // (an independent graph) runs with the last, to even out the work.
        let last = groups.len() - 1;
        let backward = |g: usize| -> candle_core::Result<(GradStore, f64, f64)> {
            let (first, count) = expert_group(k, g);
            let group_losses = &outputs[g].0;
            let mut loss = expert_part(&weights.narrow(1, first, count)?, group_losses, b)?;
            let (mut elbo, mut extra) = (0.0, 0.0);
            if g == last {
                let gate = match &balance {
                    None => assignment_loss_part(logits, &losses, &weights, b)?,
                    Some((_, slope)) => mixture_loss_part(logits, &losses, b, slope)?,
                };
                elbo = gate.elbo.to_scalar::<f32>()? as f64;
                extra = gate.extra.to_scalar::<f32>()? as f64;
                loss = (loss + gate.loss)?;
            }
            Ok((crate::ops::backward(&loss)?, elbo, extra))
        };
        let parts = self.each_group(backward);
        let mut step = StepGradients {
            elbo: 0.0,
            extra: 0.0,
            grads: Vec::with_capacity(parts.len()),
        };
        for part in parts {
            let (grads, elbo, extra) = part?;
            step.grads.push(grads);
            step.elbo += elbo;
            step.extra += extra;
        }
        if let Some((value, _)) = balance {
            // The gate part's `extra` only carries the balancing gradient.
            step.extra = value;
        }
        Ok(step)
    }

    /// `f(g)` for every expert group: on threads of their own on the CPU,
    /// one after another elsewhere. Results in group order.
    fn each_group<R: Send>(&self, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
        let n = self.model.groups.len();
        if crate::ops::cpu_path(&self.device) {
            crate::util::in_parallel(n, f)
        } else {
            (0..n).map(f).collect()
        }
    }

    fn finish_epoch(&mut self, pretraining: bool) -> anyhow::Result<()> {
        let sums = self.state.sums.clone();
        let n = sums.samples.max(1) as f64;
        let ev = self.evaluate_test()?;
        let record = EpochRecord {
            epoch: self.state.epoch + 1,
            phase: if pretraining { "pretrain" } else { "mixture" }.into(),
            loss: sums.loss / n,
            elbo: sums.elbo / n,
            extra: sums.extra / n,
            samples_per_s: n / sums.seconds.max(1e-9),
            seconds: sums.seconds,
            test_acc: ev.acc,
            test_nmi: ev.nmi,
            test_ari: ev.ari,
            test_sizes: ev.sizes.clone(),
        };
        if self.verbose {
            println!(
                "epoch {:>3}/{} {:<8} loss {:9.3} (elbo {:9.3}, {} {:7.3})  test ACC {:.4} NMI {:.4}  {:7.0} samples/s  {:5.1} s",
                record.epoch,
                self.cfg.total_epochs(),
                record.phase,
                record.loss,
                record.elbo,
                if pretraining { "gate CE" } else { "balance" },
                record.extra,
                record.test_acc,
                record.test_nmi,
                record.samples_per_s,
                record.seconds
            );
        }
        append_line(
            &self.run_dir.join("metrics.jsonl"),
            &serde_json::to_string(&record)?,
        )?;
        let tiles = self.sample_tiles(self.cfg.seed)?;
        crate::pictures::save_grid(
            &self
                .run_dir
                .join("samples")
                .join(format!("epoch-{:03}.png", record.epoch)),
            &tiles,
            self.cfg.arch.experts,
            SIDE,
        )?;
        self.state.epoch_losses.push(record.loss);
        // Advance the shuffling generator past this epoch's permutation.
        let mut shuffle = self.state.epoch_rng;
        let mut order: Vec<usize> = (0..self.train.n).collect();
        shuffle.shuffle(&mut order);
        self.state.epoch_rng = shuffle;
        self.state.epoch += 1;
        self.state.step_in_epoch = 0;
        self.state.sums = EpochSums::default();
        self.save_checkpoint()
    }

    /// Writes `loss.png` from the step trace and per-epoch means.
    pub fn save_loss_curve(&self) -> anyhow::Result<()> {
        let trace: Vec<(f64, f64)> = self
            .state
            .trace
            .iter()
            .map(|&(s, l)| (s as f64, l))
            .collect();
        let steps = self.steps_per_epoch() as f64;
        let epochs: Vec<(f64, f64)> = self
            .state
            .epoch_losses
            .iter()
            .enumerate()
            .map(|(i, &l)| ((i as f64 + 1.0) * steps, l))
            .collect();
        crate::pictures::save_curves(
            &self.run_dir.join("loss.png"),
            &[(&trace, [150, 170, 230]), (&epochs, [200, 30, 30])],
        )
    }

    /// Whether a run directory holds a checkpoint to resume from.
    pub fn has_checkpoint(run_dir: &Path) -> bool {
        run_dir.join(CHECKPOINT).is_file() && run_dir.join(STATE).is_file()
    }

    /// Epochs a run directory's checkpoint has completed.
    pub fn epochs_done(run_dir: &Path) -> anyhow::Result<usize> {
        let st = run_dir.join(STATE);
        let text = std::fs::read_to_string(&st)
            .with_context(|| format!("{}: cannot read", st.display()))?;
        let state: TrainState = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a training state", st.display()))?;
        Ok(state.epoch)
    }

    /// Uses the f32 model's clusters of `assignment`-free training images to
    /// check the pretraining target exists when needed.
    pub fn needs_partition(cfg: &FitConfig) -> bool {
        matches!(cfg.start, Start::Partition { .. })
    }
}

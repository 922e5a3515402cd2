//! The one training loop, for every method: epochs of steps, progress bars,
//! checkpoints and exact resume, Ctrl-C, the NaN stop, `metrics.jsonl` and
//! the per-epoch sample grids.
//!
//! Run directory layout: `config.json`, whatever the method caches there
//! (the mixture's `partition.json`), `checkpoint.safetensors` + `state.json`
//! (written atomically after every epoch and on Ctrl-C), `metrics.jsonl`
//! (one line per epoch), `samples/epoch-NNN.png`, then at the end
//! (see [`super::report`]) `loss.png`, `samples.png`, `report.md`,
//! `model.bin` and `model-int8.bin`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::method::{Data, Method, MethodConfig};
use crate::eval::metrics::evaluate;
use crate::util::{append_line, write_atomic};

/// Rows of the per-epoch sample grid.
pub const GRID_ROWS: usize = 8;

/// The checkpoint's tensors.
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// The loop's and the method's state beside them.
pub const STATE: &str = "state.json";

/// Sums of one epoch's step losses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochSums {
    /// Σ loss × samples.
    pub loss: f64,
    /// Σ term × samples, by name, in the method's order.
    pub terms: Vec<(String, f64)>,
    /// Samples seen.
    pub samples: usize,
    /// Seconds spent stepping.
    pub seconds: f64,
}

/// Where the loop stands; with the method's state and the checkpoint's
/// tensors it resumes a run exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopState {
    /// Current epoch (0-based); equals the total when done.
    pub epoch: usize,
    /// Steps already taken in the current epoch.
    pub step_in_epoch: usize,
    /// Steps taken in all.
    pub steps: u64,
    /// Partial sums of the current epoch.
    pub sums: EpochSums,
    /// (global step, loss) every few steps, for the loss curve.
    pub trace: Vec<(u64, f64)>,
    /// (global step at the epoch's end, mean loss), for the loss curve.
    pub epoch_losses: Vec<(u64, f64)>,
}

/// `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StateFile {
    #[serde(rename = "loop")]
    looping: LoopState,
    method: serde_json::Value,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// The method's phase.
    pub phase: String,
    /// Mean loss.
    pub loss: f64,
    /// Mean of each named term of the loss.
    pub terms: BTreeMap<String, f64>,
    /// Training throughput.
    pub samples_per_s: f64,
    /// Seconds of stepping this epoch.
    pub seconds: f64,
    /// Test ACC of the classifier's argmax (labels used only to score);
    /// absent while the method has no classifier.
    pub test_acc: Option<f64>,
    /// Test NMI.
    pub test_nmi: Option<f64>,
    /// Test ARI.
    pub test_ari: Option<f64>,
    /// Test images per cluster.
    pub test_sizes: Option<Vec<usize>>,
    /// What the method did between epochs (kVAE's reassignment).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub notes: serde_json::Map<String, serde_json::Value>,
}

/// How a call to [`Trainer::run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// All epochs done.
    Finished,
    /// Stopped by Ctrl-C after saving a checkpoint.
    Interrupted,
}

/// A method being trained, with its data and run directory.
pub struct Trainer<M: Method> {
    /// The configuration.
    pub cfg: M::Config,
    /// The method: networks, optimizers, its own state.
    pub method: M,
    /// Progress.
    pub state: LoopState,
    /// Training and test images.
    pub data: Data,
    /// The run directory.
    pub run_dir: PathBuf,
    /// Set from the Ctrl-C handler.
    pub stop: Arc<AtomicBool>,
    /// Print per-epoch lines and progress bars.
    pub verbose: bool,
    /// Draw the per-epoch progress bar even when not `verbose` (indicatif
    /// draws it only on a terminal): for callers that print their own
    /// per-epoch lines, such as the kVAE experiments, whose epochs last
    /// many minutes.
    pub progress_bar: bool,
    /// Write `samples/epoch-NNN.png` after every epoch (off for data that
    /// are not images, such as the 2-D points of `kvae-synthetic`).
    pub sample_grids: bool,
}

/// Called after every epoch's record is written (before its checkpoint),
/// with the method's state: per-epoch figures and tables of a caller's own
/// (the kVAE experiments' rounds).
pub type Observer<'a, M> = dyn FnMut(&M, &EpochRecord) -> anyhow::Result<()> + 'a;

impl<M: Method> Trainer<M> {
    /// A fresh run, or with `resume` one restored from the run directory's
    /// checkpoint.
    pub fn new(
        cfg: M::Config,
        method: M,
        data: Data,
        run_dir: PathBuf,
        resume: bool,
    ) -> anyhow::Result<Self> {
        let mut t = Trainer {
            cfg,
            method,
            state: LoopState {
                epoch: 0,
                step_in_epoch: 0,
                steps: 0,
                sums: EpochSums::default(),
                trace: Vec::new(),
                epoch_losses: Vec::new(),
            },
            data,
            run_dir,
            stop: Arc::new(AtomicBool::new(false)),
            verbose: true,
            progress_bar: false,
            sample_grids: true,
        };
        if resume {
            t.restore()?;
        }
        Ok(t)
    }

    fn restore(&mut self) -> anyhow::Result<()> {
        let ck = self.run_dir.join(CHECKPOINT);
        let st = self.run_dir.join(STATE);
        let state = read_state(&st)?;
        let tensors = candle_core::safetensors::load(&ck, &Device::Cpu)
            .map_err(|e| anyhow::anyhow!("{}: cannot load checkpoint: {e}", ck.display()))?;
        self.method.restore(&tensors, state.method, &ck)?;
        self.state = state.looping;
        Ok(())
    }

    /// Saves weights, optimizer state and progress, atomically.
    pub fn save_checkpoint(&self) -> anyhow::Result<()> {
        let (tensors, method) = self.method.checkpoint()?;
        let tensors: HashMap<String, Tensor> = tensors
            .into_iter()
            .map(|(k, t)| Ok((k, t.to_device(&Device::Cpu)?)))
            .collect::<candle_core::Result<_>>()?;
        let ck = self.run_dir.join(CHECKPOINT);
        let tmp = crate::util::temp_path(&ck);
        candle_core::safetensors::save(&tensors, &tmp)
            .map_err(|e| anyhow::anyhow!("{}: cannot write checkpoint: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &ck).with_context(|| format!("{}: cannot write", ck.display()))?;
        let state = StateFile {
            looping: self.state.clone(),
            method,
        };
        write_atomic(
            &self.run_dir.join(STATE),
            serde_json::to_string(&state)?.as_bytes(),
        )
    }

    /// Trains until every epoch is done or Ctrl-C is pressed.
    pub fn run(&mut self) -> anyhow::Result<Outcome> {
        self.run_observed(&mut |_, _| Ok(()))
    }

    /// [`run`](Self::run), calling `observe` after every epoch.
    pub fn run_observed(&mut self, observe: &mut Observer<M>) -> anyhow::Result<Outcome> {
        std::fs::create_dir_all(self.run_dir.join("samples"))
            .with_context(|| format!("{}: cannot create", self.run_dir.display()))?;
        let total = self.method.epochs();
        while self.state.epoch < total {
            let epoch = self.state.epoch;
            let plan = self.method.plan(epoch, &self.data);
            self.method.begin_epoch(epoch, &self.data)?;
            let bar = if self.verbose || self.progress_bar {
                indicatif::ProgressBar::new(plan.steps as u64)
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
            while self.state.step_in_epoch < plan.steps {
                if self.stop.load(Ordering::SeqCst) {
                    bar.abandon();
                    self.save_checkpoint()?;
                    return Ok(Outcome::Interrupted);
                }
                let start = Instant::now();
                let s = self.state.step_in_epoch;
                let step = self.method.step(epoch, s, &self.data)?;
                let loss = step.loss;
                if !loss.is_finite() {
                    bar.abandon();
                    let kept = if has_checkpoint(&self.run_dir) {
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
                let n = step.samples as f64;
                let sums = &mut self.state.sums;
                sums.loss += loss * n;
                for (name, v) in &step.terms {
                    match sums.terms.iter_mut().find(|(k, _)| k == name) {
                        Some((_, sum)) => *sum += v * n,
                        None => sums.terms.push(((*name).to_string(), v * n)),
                    }
                }
                sums.samples += step.samples;
                sums.seconds += start.elapsed().as_secs_f64();
                self.state.step_in_epoch += 1;
                self.state.steps += 1;
                if self.state.steps.is_multiple_of(10) {
                    self.state.trace.push((self.state.steps, loss));
                }
                bar.set_message(format!(
                    "loss {:.2}",
                    sums.loss / sums.samples.max(1) as f64
                ));
                bar.inc(1);
            }
            bar.finish_and_clear();
            self.finish_epoch(&plan.phase, observe)?;
        }
        Ok(Outcome::Finished)
    }

    fn finish_epoch(&mut self, phase: &str, observe: &mut Observer<M>) -> anyhow::Result<()> {
        let epoch = self.state.epoch;
        let notes = self.method.end_epoch(epoch, &self.data)?;
        let sums = self.state.sums.clone();
        let n = sums.samples.max(1) as f64;
        let test = &self.data.test;
        let ev = self
            .method
            .predict(&test.pixels, test.n)?
            .zip(test.labels.as_ref())
            .map(|(pred, labels)| evaluate(&pred, labels, self.method.experts()));
        let record = EpochRecord {
            epoch: epoch + 1,
            phase: phase.to_string(),
            loss: sums.loss / n,
            terms: sums.terms.iter().map(|(k, v)| (k.clone(), v / n)).collect(),
            samples_per_s: n / sums.seconds.max(1e-9),
            seconds: sums.seconds,
            test_acc: ev.as_ref().map(|e| e.acc),
            test_nmi: ev.as_ref().map(|e| e.nmi),
            test_ari: ev.as_ref().map(|e| e.ari),
            test_sizes: ev.as_ref().map(|e| e.sizes.clone()),
            notes,
        };
        if self.verbose {
            println!("{}", epoch_line(&record, &sums, self.method.epochs()));
        }
        append_line(
            &self.run_dir.join("metrics.jsonl"),
            &serde_json::to_string(&record)?,
        )?;
        observe(&self.method, &record)?;
        if self.sample_grids {
            self.save_grid(record.epoch)?;
        }
        self.state
            .epoch_losses
            .push((self.state.steps, record.loss));
        self.state.epoch += 1;
        self.state.step_in_epoch = 0;
        self.state.sums = EpochSums::default();
        self.save_checkpoint()
    }

    fn save_grid(&self, epoch: usize) -> anyhow::Result<()> {
        let tiles = self.method.sample_tiles()?;
        let k = self.method.experts();
        crate::eval::pictures::save_labelled_grid(
            &self
                .run_dir
                .join("samples")
                .join(format!("epoch-{epoch:03}.png")),
            &format!("Epoch {epoch}: decoder samples, one column per expert"),
            &tiles,
            k,
            (
                self.data.image.width as usize,
                self.data.image.height as usize,
            ),
            &crate::eval::pictures::cluster_headers(k, None, None),
        )
    }

    /// Writes `loss.png`: the step trace, the epoch means and each named
    /// term of the loss per epoch (from `metrics.jsonl`), and the test
    /// scores when there are labels (see [`super::curves`]).
    pub fn save_loss_curve(&self) -> anyhow::Result<()> {
        let records = super::curves::read_records(&self.run_dir.join("metrics.jsonl"));
        super::curves::save_loss_picture(
            &self.run_dir.join("loss.png"),
            &format!("Training loss: {}", self.cfg.describe()),
            &self.state,
            &records,
        )
    }
}

/// The per-epoch line: phase, loss and its terms (in the method's order),
/// test scores, speed, and what the method did between epochs.
fn epoch_line(r: &EpochRecord, sums: &EpochSums, total: usize) -> String {
    let terms = sums
        .terms
        .iter()
        .filter_map(|(k, _)| r.terms.get(k).map(|v| format!("{k} {v:.3}")))
        .collect::<Vec<_>>()
        .join(", ");
    let test = match (r.test_acc, r.test_nmi) {
        (Some(acc), Some(nmi)) => format!("  test ACC {acc:.4} NMI {nmi:.4}"),
        _ => String::new(),
    };
    let notes = r
        .notes
        .iter()
        .filter(|(_, v)| !v.is_array())
        .map(|(k, v)| match v.as_f64() {
            Some(x) if !v.is_u64() && !v.is_i64() => format!("{k} {x:.4}"),
            _ => format!("{k} {v}"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let notes = if notes.is_empty() {
        notes
    } else {
        format!("  [{notes}]")
    };
    format!(
        "epoch {:>3}/{total} {:<8} loss {:9.3} ({terms}){test}  {:7.0} samples/s  {:5.1} s{notes}",
        r.epoch, r.phase, r.loss, r.samples_per_s, r.seconds
    )
}

/// Whether a run directory holds a checkpoint to resume from.
pub fn has_checkpoint(run_dir: &Path) -> bool {
    run_dir.join(CHECKPOINT).is_file() && run_dir.join(STATE).is_file()
}

fn read_state(path: &Path) -> anyhow::Result<StateFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a training state", path.display()))?;
    if value.get("loop").is_none() && value.get("adam_steps").is_some() {
        bail!(
            "{}: written by a trainer from before 2026-12-02, whose checkpoints named tensors by the thread that computed them; it cannot be resumed, start a new run",
            path.display()
        );
    }
    serde_json::from_value(value)
        .with_context(|| format!("{}: not a training state", path.display()))
}

/// Epochs a run directory's checkpoint has completed.
pub fn epochs_done(run_dir: &Path) -> anyhow::Result<usize> {
    Ok(read_state(&run_dir.join(STATE))?.looping.epoch)
}

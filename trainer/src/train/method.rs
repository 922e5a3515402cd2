//! What a training method supplies to the one training loop
//! ([`crate::train::Trainer`]): its networks, its epochs and steps, its
//! per-epoch phases, its classifier and decoders, its checkpoint and its
//! export. Everything else (batches of progress, checkpoints on disk,
//! resume, Ctrl-C, the NaN stop, `metrics.jsonl`, sample grids, the loss
//! curve, the report, the atomic export and the engine cross-check) is the
//! loop's, once for every method.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use engine::writer::TwoLevelSpec;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::data::Split;

/// The training and test images (labels only for evaluation).
pub struct Data {
    /// Training images.
    pub train: Split,
    /// Test images.
    pub test: Split,
    /// Every image's shape.
    pub image: engine::ImageShape,
    /// Names of the label classes, when they are not their numbers (a
    /// folder of images in named sub-folders).
    pub class_names: Option<Vec<String>>,
    /// What the training set is, for the report (`data/mnist/train-images…`).
    pub train_source: String,
    /// What the test set is (`…t10k-images…`, `--test PATH`, or the
    /// held-out fraction of the training data).
    pub test_source: String,
}

impl Data {
    /// Whether both sets have labels, so that clusters can be scored.
    pub fn labelled(&self) -> bool {
        self.train.labels.is_some() && self.test.labels.is_some()
    }

    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.image.pixels()
    }

    /// `(width, height)` of every image.
    pub fn size(&self) -> (usize, usize) {
        (self.image.width as usize, self.image.height as usize)
    }
}

/// Where and how a run happens, for a method that prepares files of its own
/// (the mixture's label-free partition is cached in the run directory).
pub struct RunContext {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Where tensors live.
    pub device: Device,
    /// Print progress.
    pub verbose: bool,
}

/// One epoch as the method plans it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochPlan {
    /// Name of the phase (`pretrain`, `mixture`, `round 2`, `gate`…), as
    /// printed and written to `metrics.jsonl`.
    pub phase: String,
    /// Optimizer steps in the epoch.
    pub steps: usize,
}

/// What one step did.
#[derive(Debug, Clone, PartialEq)]
pub struct StepLoss {
    /// The minimized objective (per sample); a non-finite value stops the run.
    pub loss: f64,
    /// Named parts of it, for the epoch's record (`elbo`, `balance`…).
    pub terms: Vec<(&'static str, f64)>,
    /// Samples the step saw (for means and samples/s).
    pub samples: usize,
}

/// A method's configuration: what `config.json` holds.
pub trait MethodConfig: Clone + Serialize + DeserializeOwned + std::fmt::Debug {
    /// Refuses, with a one-line message naming the flag, any value the
    /// method or the engine cannot run, before any data is read.
    fn validate(&self) -> anyhow::Result<()>;
    /// Train on the first N training images only.
    fn limit(&self) -> Option<usize>;
    /// The images' shape the configuration was made for (from the data).
    fn image(&self) -> engine::ImageShape;
    /// Sets the images' shape (and every layer width that follows from it)
    /// to the training data's, before [`validate`](Self::validate).
    fn set_image(&mut self, image: engine::ImageShape);
    /// Number of experts (clusters) the configuration asks for.
    fn experts(&self) -> usize;
    /// Seed of every random draw.
    fn seed(&self) -> u64;
    /// Base name of a fresh run directory (`runs/<name>-N`).
    fn run_name(&self) -> String;
    /// One line for the report and the run's first line of output.
    fn describe(&self) -> String;
}

/// A training method plugged into the one loop.
pub trait Method: Sized {
    /// Its configuration.
    type Config: MethodConfig;

    /// Its name on the command line (`--method`) and in `config.json`.
    const NAME: &'static str;

    /// Builds the networks and optimizers from the configuration's seed
    /// (and whatever the method prepares before training, in `ctx.run_dir`).
    fn new(cfg: &Self::Config, data: &Data, ctx: &RunContext) -> anyhow::Result<Self>;

    /// Number of epochs, all phases together.
    fn epochs(&self) -> usize;

    /// The phase and step count of `epoch`.
    fn plan(&self, epoch: usize, data: &Data) -> EpochPlan;

    /// Called before the first step of an epoch, and again when a run
    /// resumes in the middle of one (so it must not change the state).
    fn begin_epoch(&mut self, epoch: usize, data: &Data) -> anyhow::Result<()>;

    /// Step `step` of `epoch`: the method draws its batch, computes the
    /// objective and updates its weights.
    fn step(&mut self, epoch: usize, step: usize, data: &Data) -> anyhow::Result<StepLoss>;

    /// Called after the last step of an epoch (before its checkpoint):
    /// work between epochs (kVAE's reassignment) and what to record of it.
    fn end_epoch(
        &mut self,
        epoch: usize,
        data: &Data,
    ) -> anyhow::Result<serde_json::Map<String, serde_json::Value>>;

    /// Number of clusters (experts).
    fn experts(&self) -> usize;

    /// Trainable parameters.
    fn parameters(&self) -> usize;

    /// The cluster of each of `n` images (`n * pixels` bytes) with the f32
    /// model; `None` while the method has no classifier yet.
    fn predict(&self, pixels: &[u8], n: usize) -> anyhow::Result<Option<Vec<usize>>>;

    /// [`crate::train::GRID_ROWS`] samples of every expert, row-major, one
    /// column per expert, intensities in [0, 1].
    fn sample_tiles(&self) -> anyhow::Result<Vec<Vec<f32>>>;

    /// Markdown the report adds after its scores (`-` lines, then any
    /// sections of the method's own; pictures it draws go to `run_dir`).
    /// `label_map` names the clusters (from labels, after training).
    fn report_notes(
        &self,
        _data: &Data,
        _run_dir: &Path,
        _label_map: Option<&[u8]>,
    ) -> anyhow::Result<String> {
        Ok(String::new())
    }

    /// The model for the engine (a flat model is one whose clusters have
    /// one style each: `TwoLevelSpec::from(ModelSpec)`). `sizes` counts
    /// the training images the classifier puts in each cluster; `label_map`
    /// names clusters (from labels, after training; `None` for an
    /// unlabelled set).
    fn to_spec(&self, sizes: &[usize], label_map: Option<Vec<u8>>) -> anyhow::Result<TwoLevelSpec>;

    /// Tensors (weights and optimizer moments, named by what they are) and
    /// the rest of the state, for `checkpoint.safetensors` and `state.json`.
    fn checkpoint(&self) -> anyhow::Result<(HashMap<String, Tensor>, serde_json::Value)>;

    /// Restores what [`checkpoint`](Self::checkpoint) saved; `file` names
    /// the checkpoint in errors.
    fn restore(
        &mut self,
        tensors: &HashMap<String, Tensor>,
        state: serde_json::Value,
        file: &Path,
    ) -> anyhow::Result<()>;
}

//! kVAE outside `trainer fit`: the experiments train [`KVae`] on the one
//! training loop ([`crate::train::Trainer`]) on points of any dimension,
//! with checkpoints after every epoch, resume, and an observer for their
//! per-round figures; no model file is written. Besides `fit`'s starts they
//! may hand over one of their own ([`RunOptions::start`] with
//! [`Pretrain::Given`]): with [`KVaeConfig::fixed_assignment`] that is VAEs
//! trained on a fixed assignment, their baselines and probes.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use candle_core::Device;

use super::batching::{random_split, training_groups, Batcher};
use super::config::{DiscKind, KVaeConfig, KVaeFitConfig, Pretrain, VaeKind};
use super::conv::{ConvShape, ConvVaeStack};
use super::conv_disc;
use super::discriminators::disc_networks;
use super::method::{KVae, KVaeState};
use super::training::adam;
use super::vae::{VaeNets, VaeStack};
use crate::data::{Points, Split};
use crate::nn::adam::Adam;
use crate::nn::layers::{Activation, Gate};
use crate::nn::params::Params;
use crate::rng::Rng;
use crate::train::{Data, EpochRecord, Observer, Outcome, RunContext, Trainer};

impl KVae {
    /// A kVAE run on `points` (any dimension), with `labels` of them to
    /// score the assignment in the log; `data` is read only by the
    /// partition start, which clusters its training images, and `start`
    /// only by the given start ([`Pretrain::Given`]), which it must come
    /// with.
    pub fn on_points(
        cfg: &KVaeFitConfig,
        points: Points,
        labels: Option<Vec<u8>>,
        data: &Data,
        ctx: &RunContext,
        start: Option<Vec<usize>>,
    ) -> anyhow::Result<Self> {
        let c = &cfg.kvae;
        let device = ctx.device.clone();
        let mut rng = Rng::new(c.seed, 0x4B5A);
        let vae_params = Params::new(c.seed);
        let vaes = build_vaes(c, &vae_params, &device)?;
        let disc_params = Params::new(c.seed ^ 0xD15C);
        anyhow::ensure!(
            c.disc_kind == DiscKind::Dense || points.dim == crate::data::PIXELS,
            "convolutional discriminators read 28×28 images, not points of {} values",
            points.dim
        );
        let disc = disc_networks(c, points.dim, &disc_params, &device)?;
        let gate_params = Params::new(c.seed ^ 0x6A7E);
        let gate = Gate::new(
            points.dim,
            &c.gate_hidden,
            c.k,
            Activation::Relu,
            gate_params.var_builder(&device).pp("gate"),
        )?;
        anyhow::ensure!(
            start.is_some() == (c.pretrain == Pretrain::Given),
            "a given start goes with `pretrain: given`, and only with it"
        );
        let assignment = if let Some(start) = start {
            anyhow::ensure!(
                start.len() == points.n && start.iter().all(|&j| j < c.k),
                "the given start assigns {} points to VAEs 0..{}, not the run's {} to 0..{}",
                start.len(),
                start.iter().max().map_or(0, |&j| j + 1),
                points.n,
                c.k
            );
            start
        } else if c.pretrain == Pretrain::Partition {
            anyhow::ensure!(
                data.train.n == points.n,
                "kVAE's partition start clusters the training images: it needs them"
            );
            // The mixture's default start (`--preset default`).
            let pcfg = crate::init::PartitionConfig {
                k: c.k,
                seed: c.seed,
                ae_epochs: 20,
                max_points: 20_000,
                clustering: crate::init::Clustering::Umap,
                ..Default::default()
            };
            crate::init::cache::cached_partition(&pcfg, &data.train, &ctx.run_dir, ctx.verbose)?
        } else {
            random_split(points.n, c.k, &mut rng)
        };
        let batcher = Batcher::new(&training_groups(
            &assignment,
            c.k,
            c.pretrain == Pretrain::Full,
        ));
        Ok(KVae {
            vae_opt: adam(&vae_params, c.lr),
            disc_opt: match c.disc_kind {
                DiscKind::Dense => adam(&disc_params, c.lr),
                DiscKind::Conv => Adam::new(disc_params.vars(), conv_disc::adam_config()),
            },
            gate_opt: adam(&gate_params, c.lr),
            state: KVaeState {
                rng,
                gate_rng: Rng::new(c.seed, 0x6A7E),
                gate_order_before: (0..points.n).collect(),
                assignment,
                batcher,
                gate_epochs_done: 0,
                adam_steps: [0; 3],
            },
            cfg: cfg.clone(),
            device,
            points,
            labels,
            vae_params,
            vaes,
            disc_params,
            disc,
            gate_params,
            gate,
            gate_order: Vec::new(),
            gate_rng_next: Rng::new(0, 0),
        })
    }

    /// The VAE of every training point.
    pub fn assignment(&self) -> &[usize] {
        &self.state.assignment
    }

    /// The k VAEs.
    pub fn vaes(&self) -> &dyn VaeNets {
        self.vaes.as_ref()
    }

    /// The distilled gate, once it has trained an epoch.
    pub fn gate(&self) -> Option<&Gate> {
        (self.state.gate_epochs_done > 0).then_some(&self.gate)
    }

    /// The training points.
    pub fn points(&self) -> &Points {
        &self.points
    }

    /// The configuration.
    pub fn config(&self) -> &KVaeFitConfig {
        &self.cfg
    }

    /// `cfg` for reassignment `round`: the first also takes the
    /// discriminators' warm-up passes over the data.
    pub(super) fn round_config(&self, round: usize) -> KVaeConfig {
        let mut c = self.cfg.kvae.clone();
        if round == 1 && c.disc_warmup_epochs > 0 {
            c.disc_steps += c.disc_warmup_epochs * self.points.n.div_ceil(c.disc_batch.max(1));
        }
        c
    }
}

/// The VAEs `c.vae_kind` names, their tensors under `params`.
fn build_vaes(
    c: &KVaeConfig,
    params: &Params,
    device: &Device,
) -> candle_core::Result<Box<dyn VaeNets>> {
    let vb = params.var_builder(device);
    Ok(match &c.vae_kind {
        VaeKind::Dense => Box::new(VaeStack::new(c.k, c.vae.clone(), vb)?),
        VaeKind::Conv {
            filters,
            batch_norm,
        } => {
            let shape = ConvShape {
                batch_norm: *batch_norm,
                filters: *filters,
                latent: c.vae.latent,
            };
            Box::new(ConvVaeStack::new(c.k, shape, vb)?)
        }
    })
}

/// The flag Ctrl-C (SIGINT) sets, for every run of the process: one
/// handler a process, installed at the first call.
fn interrupted() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let set = flag.clone();
        // A process that has a handler already (a test calling `trainer
        // fit` first) keeps it; Ctrl-C then ends it as before.
        let _ = ctrlc::set_handler(move || set.store(true, Ordering::SeqCst));
        flag
    })
    .clone()
}

/// Where and how an experiment runs kVAE.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run directory: `config.json`, `checkpoint.safetensors`,
    /// `state.json`, `metrics.jsonl` (and `samples/` for images).
    pub dir: PathBuf,
    /// Continue the run in `dir` from its checkpoint when it has one (the
    /// configuration must be the same); otherwise `dir` starts afresh.
    pub resume: bool,
    /// Where to train.
    pub device: Device,
    /// Print the loop's per-epoch lines.
    pub verbose: bool,
    /// The assignment the VAEs start from with [`Pretrain::Given`] (point i
    /// to VAE `start[i]`); `None` for every other start.
    pub start: Option<Vec<usize>>,
}

/// Images for [`train`]: none, for points that are not images.
pub fn no_images(dim: usize) -> Data {
    let empty = || Split {
        n: 0,
        pixels: Vec::new(),
        labels: None,
    };
    Data {
        train: empty(),
        test: empty(),
        image: engine::ImageShape {
            width: dim as u16,
            height: 1,
        },
        class_names: None,
        train_source: "points".into(),
        test_source: "none".into(),
    }
}

/// Trains kVAE on `points` (with `labels` to score the assignment) through
/// the one training loop in `opts.dir`; `data` holds the images the points
/// came from when they are images (the partition start, the test scores
/// and the sample grids read them), else [`no_images`]. `observe` sees the
/// method after every epoch of this call. Returns the trained method and
/// the records of every epoch of the run, resumed ones included.
pub fn train(
    cfg: &KVaeFitConfig,
    points: Points,
    labels: Option<Vec<u8>>,
    data: Data,
    opts: &RunOptions,
    observe: &mut Observer<KVae>,
) -> anyhow::Result<(KVae, Vec<EpochRecord>)> {
    let dir = &opts.dir;
    let config = serde_json::to_string_pretty(cfg)?;
    let resume = opts.resume && crate::train::has_checkpoint(dir);
    if resume {
        let saved = std::fs::read_to_string(dir.join("config.json")).unwrap_or_default();
        anyhow::ensure!(
            saved == config,
            "{}: holds a run of another configuration; leave out --resume to start afresh",
            dir.display()
        );
    } else if dir.exists() {
        std::fs::remove_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("{}: cannot clear: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    crate::util::write_atomic(&dir.join("config.json"), config.as_bytes())?;
    let ctx = RunContext {
        run_dir: dir.clone(),
        device: opts.device.clone(),
        verbose: opts.verbose,
    };
    let grids = data.train.n == points.n && data.pixels() == points.dim;
    let method = KVae::on_points(cfg, points, labels, &data, &ctx, opts.start.clone())?;
    let mut trainer = Trainer::new(cfg.clone(), method, data, dir.clone(), resume)?;
    trainer.verbose = opts.verbose;
    // The experiments print a line per round; a pretraining epoch can
    // take many minutes, so the bar shows where it is.
    trainer.progress_bar = true;
    trainer.sample_grids = grids;
    trainer.stop = interrupted();
    if trainer.run_observed(observe)? == Outcome::Interrupted {
        anyhow::bail!(
            "interrupted: the kVAE run in {} saved its checkpoint; continue it with --resume",
            dir.display()
        );
    }
    let records = crate::train::curves::read_records(&dir.join("metrics.jsonl"))
        .into_values()
        .collect();
    Ok((trainer.method, records))
}

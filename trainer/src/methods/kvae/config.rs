//! kVAE's configuration: the algorithm's ([`KVaeConfig`], with the
//! authors' MNIST recipe in [`KVaeConfig::recipe`], the one place its
//! defaults are written), and `trainer fit --method kvae`'s
//! ([`KVaeFitConfig`], on MNIST by default, on any image set's size;
//! `config.json`).

use serde::{Deserialize, Serialize};

use super::scoring::Scorer;
use super::vae::VaeShape;
use crate::data::PIXELS;
use crate::nn::likelihood::Observation;

/// Where the VAEs start before the first reassignment.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Pretrain {
    /// Every VAE trains on all the points, from its own initial weights
    /// (the authors' code): the first reassignment splits the data.
    Full,
    /// VAE j trains on part j of a uniformly random split.
    RandomSplit,
    /// VAE j trains on part j of the mixture's label-free partition
    /// (autoencoder codes clustered by UMAP, [`crate::init`]): beyond the
    /// paper, which starts at random. `trainer fit` only (it caches the
    /// partition in the run directory).
    Partition,
    /// VAE j trains on part j of an assignment the caller hands over
    /// ([`super::RunOptions::start`]): the experiments' probes and
    /// fixed-assignment baselines (`kvae-fixed-point` starts from the true
    /// digit partition). Not a flag: a command line has no assignment to give.
    #[value(skip)]
    Given,
}

/// Which VAEs kVAE trains.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VaeKind {
    /// Dense VAEs of [`KVaeConfig::vae`] ([`super::VaeStack`]); the only
    /// kind the engine runs, so `trainer fit`'s.
    #[default]
    Dense,
    /// The paper's convolutional VAEs on 28×28 images
    /// ([`super::conv::ConvVaeStack`]) with these encoder filters and the
    /// latent size of [`KVaeConfig::vae`]; `trainer experiment kvae-mnist`'s.
    Conv {
        /// Channels after each of the encoder's four convolutions.
        filters: [usize; 4],
        /// Batch normalisation in the hidden layers (the authors').
        #[serde(default)]
        batch_norm: bool,
    },
}

/// Which discriminators step (b) trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiscKind {
    /// Dense `dim → disc_hidden → 1` networks with ReLU (PyTorch's
    /// initialisation, the VAEs' Adam).
    #[default]
    Dense,
    /// The authors' convolutional discriminators of 28×28 images
    /// ([`super::conv_disc`]: 64-128-256 with batch norm and leaky ReLU 0.3,
    /// N(0, 0.01) weights, Adam 5e-3 with β1 = 0.5).
    Conv,
}

/// How step (c) turns the scores `s_j(x) = log r_j(x)` into a choice.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum ScoreRule {
    /// Each model's ratios normalised over the training set (the authors'
    /// `p_j(x) / Σ_i p_j(x_i)`): `argmax_j s_j(x) − logsumexp_i s_j(x_i)`.
    #[default]
    Normalised,
    /// The raw ratio: `argmax_j s_j(x)`.
    Raw,
    /// The most confused discriminator: `argmax_j −|1 − r_j(x)|`.
    Confused,
}

impl ScoreRule {
    /// Applies the rule to `[n][k]` scores in place.
    pub fn apply(self, scores: &mut [Vec<f32>]) {
        match self {
            ScoreRule::Normalised => super::scoring::normalise_per_model(scores),
            ScoreRule::Raw => {}
            ScoreRule::Confused => {
                for row in scores.iter_mut() {
                    for v in row.iter_mut() {
                        *v = -(1.0 - v.exp()).abs();
                    }
                }
            }
        }
    }
}

/// Everything that shapes a kVAE run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KVaeConfig {
    /// Number of VAEs k.
    pub k: usize,
    /// Shape of each VAE.
    pub vae: VaeShape,
    /// What the VAEs train on before the first reassignment.
    pub pretrain: Pretrain,
    /// Optimizer steps of every VAE before the first reassignment.
    pub pretrain_steps: usize,
    /// Reassignment rounds.
    pub rounds: usize,
    /// Optimizer steps of every VAE in step (a) of each round, whatever the
    /// size of its cluster.
    pub round_steps: usize,
    /// Hidden widths of each discriminator.
    pub disc_hidden: Vec<usize>,
    /// Discriminator updates in step (b) of each round; the discriminators
    /// persist from round to round.
    pub disc_steps: usize,
    /// Real and generated points per discriminator and update (each).
    pub disc_batch: usize,
    /// Standard deviation of Gaussian noise added to the discriminators'
    /// inputs in training (instance noise; 0 = off).
    pub disc_noise: f64,
    /// How points are scored in step (c).
    pub scorer: Scorer,
    /// How scores choose a VAE ([`ScoreRule::Normalised`], the authors',
    /// unless told otherwise; `normalise: false` in configurations written
    /// before the rule had a name is [`ScoreRule::Raw`]).
    #[serde(default, alias = "normalise", deserialize_with = "score_rule_or_bool")]
    pub score_rule: ScoreRule,
    /// Add `log α_j` to the scores.
    pub prior: bool,
    /// Load balancing: a VAE that would keep fewer than `min_share · n / k`
    /// points keeps its previous points instead (0 = off).
    pub min_share: f64,
    /// A VAE with no more than `batch` points is no longer trained.
    pub freeze_small: bool,
    /// Points per VAE per step.
    pub batch: usize,
    /// Adam learning rate (VAEs, discriminators and gate).
    pub lr: f64,
    /// Hidden widths of the distilled gate (images only).
    pub gate_hidden: Vec<usize>,
    /// Epochs of gate distillation (0 = no gate).
    pub gate_epochs: usize,
    /// Seed of every random draw.
    pub seed: u64,
    /// Dense or convolutional VAEs.
    #[serde(default)]
    pub vae_kind: VaeKind,
    /// Discriminators trained this many full passes over the data (of
    /// `disc_batch` real and generated points a step) before the first
    /// reassignment, on top of its `disc_steps` (0 = none).
    #[serde(default)]
    pub disc_warmup_epochs: usize,
    /// The discriminators' generated images are `σ(2·logit)` of the
    /// decoders' Bernoulli logits (sharper than the decoder means `σ(logit)`),
    /// as in the authors' code.
    #[serde(default)]
    pub sharpen_fakes: bool,
    /// Dense or convolutional discriminators.
    #[serde(default)]
    pub disc_kind: DiscKind,
}

/// `score_rule` from a rule's name, or from the `normalise` flag of
/// configurations written before the rule had a name.
fn score_rule_or_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ScoreRule, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Either {
        Rule(ScoreRule),
        Normalise(bool),
    }
    Ok(match Either::deserialize(d)? {
        Either::Rule(r) => r,
        Either::Normalise(true) => ScoreRule::Normalised,
        Either::Normalise(false) => ScoreRule::Raw,
    })
}

impl KVaeConfig {
    /// Steps of every VAE in the whole run.
    pub fn steps_per_vae(&self) -> usize {
        self.pretrain_steps + self.rounds * self.round_steps
    }

    /// This configuration's VAEs trained on a fixed assignment: `steps`
    /// steps of every VAE (a VAE with few points sees them more often, and
    /// none is frozen) from a given start ([`Pretrain::Given`]), with no
    /// reassignment and no gate. The experiments' baselines and probes
    /// (one VAE, an ensemble on a random split, the true partition) are
    /// kVAE runs of this configuration on the one loop.
    pub fn fixed_assignment(self, steps: usize) -> Self {
        KVaeConfig {
            pretrain: Pretrain::Given,
            pretrain_steps: steps,
            rounds: 0,
            round_steps: 0,
            freeze_small: false,
            gate_epochs: 0,
            ..self
        }
    }
}

impl KVaeConfig {
    /// The authors' MNIST recipe, sized for two CPU cores: 15 VAEs 784-64-8,
    /// every VAE pretrained on all the data for 1,000 steps, then 20 rounds
    /// of 150 steps per VAE; discriminators 784-64-1 that persist and take
    /// one update of 32 real + 32 generated images per round; per-model
    /// normalised ratios; a VAE with no more than a batch of points stops
    /// training; a gate 784-64-15 distilled in 3 epochs; batch 32 per VAE,
    /// Adam 1e-3, seed 1. `trainer fit --method kvae` starts from it, and
    /// so does `trainer experiment kvae-mnist` (with its own sizes).
    pub fn recipe() -> Self {
        KVaeConfig {
            k: 15,
            vae: VaeShape {
                data: PIXELS,
                latent: 8,
                hidden: vec![64],
                observation: Observation::BERNOULLI,
            },
            pretrain: Pretrain::Full,
            pretrain_steps: 1000,
            rounds: 20,
            round_steps: 150,
            disc_hidden: vec![64],
            disc_steps: 1,
            disc_batch: 32,
            disc_noise: 0.0,
            scorer: Scorer::Discriminator,
            score_rule: ScoreRule::Normalised,
            prior: false,
            min_share: 0.0,
            freeze_small: true,
            batch: 32,
            lr: 1e-3,
            gate_hidden: vec![64],
            gate_epochs: 3,
            seed: 1,
            vae_kind: VaeKind::Dense,
            disc_warmup_epochs: 0,
            sharpen_fakes: false,
            disc_kind: DiscKind::Dense,
        }
    }
}

/// A kVAE run on MNIST: the algorithm's configuration and the data limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KVaeFitConfig {
    /// The algorithm's configuration.
    #[serde(flatten)]
    pub kvae: KVaeConfig,
    /// Train on the first N training images only.
    pub limit: Option<usize>,
    /// The images' shape, from the training data (`kvae.vae.data` is its
    /// area); configurations from before other sizes were read are MNIST's.
    #[serde(default = "mnist_shape")]
    pub image: engine::ImageShape,
}

fn mnist_shape() -> engine::ImageShape {
    crate::data::IMAGE_SHAPE
}

impl Default for KVaeFitConfig {
    /// [`KVaeConfig::recipe`] on all of MNIST's training images.
    fn default() -> Self {
        KVaeFitConfig {
            kvae: KVaeConfig::recipe(),
            limit: None,
            image: mnist_shape(),
        }
    }
}

impl KVaeFitConfig {
    /// The loop's epochs: the pretraining, one per round, then the gate's.
    pub fn total_epochs(&self) -> usize {
        1 + self.kvae.rounds + self.kvae.gate_epochs
    }
}

impl crate::train::MethodConfig for KVaeFitConfig {
    fn validate(&self) -> anyhow::Result<()> {
        let c = &self.kvae;
        anyhow::ensure!(
            (0.0..1.0).contains(&c.min_share),
            "--min-share must be in [0, 1), got {}",
            c.min_share
        );
        anyhow::ensure!(
            c.vae_kind == VaeKind::Dense,
            "the engine runs dense decoders only: `trainer fit --method kvae` trains dense VAEs"
        );
        anyhow::ensure!(
            c.gate_epochs > 0,
            "--gate-epochs must be at least 1: the exported model needs a gate"
        );
        anyhow::ensure!(
            c.pretrain_steps > 0,
            "--pretrain-steps must be at least 1 for --method kvae"
        );
        anyhow::ensure!(
            c.rounds == 0 || c.round_steps > 0,
            "--round-steps must be at least 1 when there are rounds"
        );
        anyhow::ensure!(c.disc_batch > 0, "--disc-batch must be positive");
        anyhow::ensure!(
            c.disc_noise >= 0.0 && c.disc_noise.is_finite(),
            "--disc-noise must be a non-negative number, got {}",
            c.disc_noise
        );
        anyhow::ensure!(
            c.vae.latent > 0 && !c.vae.hidden.contains(&0) && !c.gate_hidden.contains(&0),
            "layer widths and --latent must be positive"
        );
        anyhow::ensure!(c.batch > 0, "--batch must be positive");
        anyhow::ensure!(
            c.lr > 0.0 && c.lr.is_finite(),
            "--lr must be a positive number, got {}",
            c.lr
        );
        anyhow::ensure!(
            c.vae.data == self.image.pixels(),
            "the configuration's VAEs have {} inputs, its images {}x{}",
            c.vae.data,
            self.image.width,
            self.image.height
        );
        crate::export::check_engine_shape(
            self.image,
            c.vae.latent,
            c.k,
            &c.gate_hidden,
            &c.vae.hidden,
            crate::export::ShapeFlags {
                experts: "--experts",
                latent: "--latent",
                gate: "--gate-hidden",
                decoder: "--hidden",
            },
        )?;
        if let Some(0) = self.limit {
            anyhow::bail!("--limit must be positive");
        }
        Ok(())
    }

    fn limit(&self) -> Option<usize> {
        self.limit
    }

    fn image(&self) -> engine::ImageShape {
        self.image
    }

    fn set_image(&mut self, image: engine::ImageShape) {
        self.image = image;
        self.kvae.vae.data = image.pixels();
    }

    fn experts(&self) -> usize {
        self.kvae.k
    }

    fn seed(&self) -> u64 {
        self.kvae.seed
    }

    fn run_name(&self) -> String {
        "kvae".into()
    }

    fn describe(&self) -> String {
        let c = &self.kvae;
        format!(
            "kvae, {} VAEs {}-{:?}-{}, {} + {}x{} steps per VAE, {} gate epochs, seed {}",
            c.k,
            c.vae.data,
            c.vae.hidden,
            c.vae.latent,
            c.pretrain_steps,
            c.rounds,
            c.round_steps,
            c.gate_epochs,
            c.seed
        )
    }
}

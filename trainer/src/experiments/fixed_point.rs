//! `trainer experiment kvae-fixed-point`: does kVAE's reassignment rule
//! keep digit clusters, whatever the training budget?
//!
//! A probe that **uses the labels to build its start** (and says so): K = 10
//! convolutional VAEs, VAE d trained on the training images of digit d
//! only (every VAE the same steps) — kVAE on the one training loop
//! ([`kvae::run::train`]) from the given start ([`kvae::Pretrain::Given`]: the
//! true partition), its pretraining epoch and no round, the run in
//! `run-vaes/` under the output directory; discriminators trained against
//! them; then **one** reassignment of the scored images with each scoring
//! rule, and the purity before (1 by construction) and after. A rule that does not
//! hold the true partition as a fixed point cannot be expected to find it
//! from a random start, with any budget.
//!
//! The rules, over the discriminators' scores `s_j(x) = −logit_j(x) =
//! log((1 − D_j(x)) / D_j(x))`, an estimate of `log p_gj(x) / p_d(x)`:
//! per-model normalised ratio (`s_j(x) − logsumexp_i s_j(x_i)`, this
//! project's and one of the authors'), raw ratio (`s_j(x)`), and "most
//! confused discriminator" (`−|1 − exp s_j(x)|`, the authors' third);
//! and the limit of a perfect discriminator, the importance-sampled
//! `log p_gj(x)`, raw and normalised. The discriminators are this project's
//! (dense 784-64-1, Adam at the VAEs' rate), trained two ways: the recipe's
//! one update of 32 + 32 images, and one epoch of updates over the training
//! images (one of the authors' warm-ups).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use candle_core::Device;

use crate::data::{Mnist, Points};
use crate::eval::metrics::{self, Evaluation};
use crate::methods::kvae::{
    self, normalise_per_model, reassign, scorer_networks, train_discriminators, DiscTraining,
    KVaeConfig, KVaeFitConfig, RoundContext, RunOptions, ScoreRule, Scorer, VaeKind,
};
use crate::nn::adam::{Adam, AdamConfig};
use crate::nn::params::Params;
use crate::rng::Rng;

/// Number of VAEs: one a digit.
const K: usize = 10;

/// Sizes and budgets of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Training images (the first ones of the 60,000); the VAEs and the
    /// discriminators train on them.
    pub train: usize,
    /// Training images reassigned and scored (the first ones).
    pub scored: usize,
    /// Latent size of every VAE.
    pub latent: usize,
    /// Encoder filters of each VAE (the decoder mirrors them).
    pub filters: [usize; 4],
    /// Optimizer steps of every VAE on its digit.
    pub vae_steps: usize,
    /// Points per VAE per step.
    pub batch: usize,
    /// Adam learning rate (VAEs and discriminators).
    pub lr: f64,
    /// Real and generated images per discriminator and update.
    pub disc_batch: usize,
    /// Importance samples per point and VAE for the likelihood rule.
    pub ll_samples: usize,
}

impl Settings {
    /// The README's table.
    pub fn full() -> Self {
        Settings {
            train: 10_000,
            scored: 1_000,
            latent: 8,
            filters: [8, 16, 32, 64],
            vae_steps: 1_500,
            batch: 32,
            lr: 1e-3,
            disc_batch: 32,
            ll_samples: 16,
        }
    }

    /// kVAE's configuration for the VAEs: K convolutional VAEs without
    /// batch norm (as this probe was first measured) trained `vae_steps`
    /// steps each on a fixed assignment ([`KVaeConfig::fixed_assignment`]:
    /// the true partition, given to the run).
    pub fn kvae(&self, seed: u64) -> KVaeFitConfig {
        let recipe = KVaeConfig::recipe();
        let kvae = KVaeConfig {
            k: K,
            vae: kvae::VaeShape {
                latent: self.latent,
                hidden: vec![],
                ..recipe.vae
            },
            vae_kind: VaeKind::Conv {
                filters: self.filters,
                batch_norm: false,
            },
            batch: self.batch,
            lr: self.lr,
            seed,
            ..recipe
        };
        KVaeFitConfig {
            kvae: kvae.fixed_assignment(self.vae_steps),
            limit: Some(self.train),
            image: crate::data::IMAGE_SHAPE,
        }
    }

    /// A small run for the test suite.
    pub fn quick() -> Self {
        Settings {
            train: 1_000,
            scored: 200,
            latent: 8,
            filters: [4, 8, 8, 16],
            vae_steps: 40,
            batch: 16,
            lr: 1e-3,
            disc_batch: 32,
            ll_samples: 4,
        }
    }
}

/// One reassignment of the true partition.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The scoring rule.
    pub rule: String,
    /// How the discriminators were trained (`-` for the likelihood).
    pub discriminators: String,
    /// The scored images' clusters after the reassignment, against the labels.
    pub after: Evaluation,
    /// Share of the scored images that changed VAE.
    pub moved: f64,
}

/// What the experiment found.
#[derive(Debug, Clone)]
pub struct Report {
    /// Purity of the start on the scored images (1 by construction).
    pub purity_before: f64,
    /// One row a rule and discriminator training.
    pub rows: Vec<Row>,
    /// The markdown written to `fixed_point.md`.
    pub markdown: String,
}

/// The three rules over discriminator scores `s` (`[n][k]`, `−logit`).
fn ratio_rules(s: &[Vec<f32>]) -> [(&'static str, Vec<Vec<f32>>); 3] {
    let ruled = |rule: ScoreRule| {
        let mut v = s.to_vec();
        rule.apply(&mut v);
        v
    };
    [
        ("normalised ratio", ruled(ScoreRule::Normalised)),
        ("raw ratio", ruled(ScoreRule::Raw)),
        ("most confused, −abs(1 − r)", ruled(ScoreRule::Confused)),
    ]
}

/// Runs the probe on MNIST in `data`, writing `fixed_point.md` into `out`.
pub fn run(
    out: &Path,
    data: &Path,
    settings: &Settings,
    seed: u64,
    device: &Device,
) -> anyhow::Result<Report> {
    std::fs::create_dir_all(out)?;
    let s = settings;
    let mut mnist = Mnist::load(data)?;
    mnist.limit_train(s.train);
    let train = Points::from_images(&mnist.train_images);
    let labels = &mnist.train_labels;
    // The start: the true partition (labels used as a probe).
    let truth: Vec<usize> = labels.iter().map(|&l| l as usize).collect();
    let scored = s.scored.min(train.n);
    let scored_points = Points::new(train.x[..scored * train.dim].to_vec(), train.dim);
    let scored_labels = &labels[..scored];
    let before = &truth[..scored];
    let purity_before = metrics::evaluate(before, scored_labels, K).purity();

    // The VAEs train on the one loop: kVAE started from the true partition,
    // its pretraining epoch only (no reassignment rounds, no gate).
    let started = Instant::now();
    let run = RunOptions {
        dir: out.join("run-vaes"),
        resume: false,
        device: device.clone(),
        verbose: false,
        start: Some(truth.clone()),
    };
    let (model, records) = kvae::run::train(
        &s.kvae(seed),
        train.clone(),
        Some(labels.clone()),
        super::mnist::mnist_data(&mnist),
        &run,
        &mut |_, _| Ok(()),
    )?;
    let vaes = model.vaes();
    let vae_seconds = started.elapsed().as_secs_f64();
    let neg_elbo = records
        .first()
        .and_then(|r| r.terms.get("neg_elbo"))
        .copied()
        .unwrap_or(f64::NAN);
    eprintln!(
        "kvae-fixed-point: {K} VAEs trained on their digits in {vae_seconds:.1} s (negative ELBO {neg_elbo:.1}, the mean over the steps and VAEs)"
    );

    let mut rows = Vec::new();
    let mut push = |rule: &str, discriminators: &str, scores: &[Vec<f32>]| {
        let (next, _) = reassign(scores, before, None, 0);
        let moved = next.iter().zip(before).filter(|(a, b)| a != b).count();
        rows.push(Row {
            rule: rule.into(),
            discriminators: discriminators.into(),
            after: metrics::evaluate(&next, scored_labels, K),
            moved: moved as f64 / scored.max(1) as f64,
        });
    };

    // The discriminators, two ways, each from the same initial weights.
    let epoch = train.n.div_ceil(s.disc_batch).max(1);
    for (steps, how) in [
        (1, "recipe: one update".to_string()),
        (epoch, format!("one epoch ({epoch} updates)")),
    ] {
        let disc_params = Params::new(seed ^ 0xD15C);
        let disc = scorer_networks(
            Scorer::Discriminator,
            K,
            train.dim,
            &[64],
            &disc_params,
            device,
        )?;
        let mut opt = Adam::new(disc_params.vars(), AdamConfig::with_lr(s.lr));
        let mut rng = Rng::new(seed, 0xF1C5);
        let training = DiscTraining {
            steps,
            batch: s.disc_batch,
            noise: 0.0,
            sharpen: false,
        };
        let mut ctx = RoundContext {
            data: &train,
            rng: &mut rng,
            device,
        };
        train_discriminators(&disc, &mut opt, vaes, training, &mut ctx)?;
        let raw = kvae::scores(
            Scorer::Discriminator,
            Some(&disc),
            vaes,
            &scored_points,
            &mut rng,
            device,
        )?;
        for (rule, scores) in ratio_rules(&raw) {
            push(rule, &how, &scores);
        }
    }

    // The limit of a perfect discriminator: log p_gj(x), a few points at a
    // time (a conv decoder's activations for K VAEs × samples must fit).
    let started = Instant::now();
    let mut rng = Rng::new(seed, 0x11);
    let mut ll = vec![vec![0f32; K]; scored];
    for start in (0..scored).step_by(8) {
        let len = 8.min(scored - start);
        let x = scored_points.slice(start, len, device)?;
        for (j, row) in vaes
            .log_likelihood_is(&x, s.ll_samples, &mut rng)?
            .iter()
            .enumerate()
        {
            for (b, &v) in row.iter().enumerate() {
                ll[start + b][j] = v as f32;
            }
        }
    }
    eprintln!(
        "kvae-fixed-point: likelihoods of {scored} images in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut normalised = ll.clone();
    normalise_per_model(&mut normalised);
    let samples = format!("− ({} importance samples)", s.ll_samples);
    push("likelihood log p_j(x)", &samples, &ll);
    push("likelihood, normalised", &samples, &normalised);

    let markdown = markdown(s, seed, purity_before, &rows);
    std::fs::write(out.join("fixed_point.md"), &markdown)?;
    Ok(Report {
        purity_before,
        rows,
        markdown,
    })
}

fn markdown(s: &Settings, seed: u64, purity_before: f64, rows: &[Row]) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## kVAE fixed point: one reassignment of the true digit partition\n\n\
         The labels build the start (a probe, not a clustering): {K} convolutional VAEs \
         (filters {:?}, latent {}), VAE d trained {} steps of {} on the first {} training \
         images' digit d; then one reassignment of the first {} of them. Seed {seed}.\n\n\
         Purity before: {purity_before:.4}.\n",
        s.filters, s.latent, s.vae_steps, s.batch, s.train, s.scored
    );
    let _ = writeln!(
        md,
        "| rule | discriminators | purity after | ACC after | NMI after | moved |\n|---|---|---|---|---|---|"
    );
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {:.4} | {:.4} | {:.4} | {:.1}% |",
            r.rule,
            r.discriminators,
            r.after.purity(),
            r.after.acc,
            r.after.nmi,
            100.0 * r.moved
        );
    }
    md
}

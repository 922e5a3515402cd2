//! `trainer experiment kvae-synthetic`: 2-D data from five well-separated
//! modes (four Gaussians and a ring), fitted by kVAE with 5 small VAEs, one
//! large VAE, and 5 small VAEs bagged on random splits; scored by the
//! importance-sampled log-likelihood of held-out points.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use candle_core::Device;

use super::plot::{scatter_grid, Panel};
use crate::data::Points;
use crate::eval::metrics;
use crate::methods::kvae::{
    self, KVaeConfig, KVaeFitConfig, Pretrain, RunOptions, ScoreRule, Scorer, VaeKind, VaeNets,
    VaeShape,
};
use crate::nn::likelihood::Observation;
use crate::rng::Rng;
use crate::train::EpochRecord;

/// Sizes and budgets of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Training points.
    pub train: usize,
    /// Held-out points for the likelihood.
    pub test: usize,
    /// Epochs of VAE training on the random split (all models get
    /// `pretrain + rounds · per_round + per_round` epochs in total).
    pub pretrain: usize,
    /// kVAE reassignment rounds.
    pub rounds: usize,
    /// VAE epochs per round.
    pub per_round: usize,
    /// Discriminator steps per round.
    pub disc_steps: usize,
    /// Importance samples per test point.
    pub is_samples: usize,
    /// Width of the small VAEs' two hidden layers.
    pub small: usize,
    /// Width of the large VAE's two hidden layers.
    pub large: usize,
}

impl Settings {
    /// The full experiment (a few minutes on two cores).
    pub fn full() -> Self {
        Settings {
            train: 5000,
            test: 2000,
            pretrain: 40,
            rounds: 5,
            per_round: 15,
            disc_steps: 500,
            is_samples: 1000,
            small: 50,
            large: 150,
        }
    }

    /// A small run for the test suite.
    pub fn quick() -> Self {
        Settings {
            train: 1000,
            test: 300,
            pretrain: 30,
            rounds: 2,
            per_round: 10,
            disc_steps: 200,
            is_samples: 64,
            small: 50,
            large: 150,
        }
    }

    fn total_epochs(&self) -> usize {
        self.pretrain
            + self.rounds * self.per_round
            + if self.rounds > 0 { self.per_round } else { 0 }
    }
}

/// Modes of the synthetic data.
pub const MODES: usize = 5;

/// `n` points from five modes with equal weight: Gaussians (sd 0.5) at
/// (±5, ±5) and a ring of radius 2.5 (radial sd 0.15) around the origin.
/// Returns the points and the mode of each.
pub fn five_modes(n: usize, rng: &mut Rng) -> (Points, Vec<u8>) {
    let mut x = Vec::with_capacity(2 * n);
    let mut modes = Vec::with_capacity(n);
    for i in 0..n {
        let mode = i % MODES;
        let (px, py) = match mode {
            4 => {
                let angle = rng.uniform(0.0, std::f64::consts::TAU);
                let r = 2.5 + 0.15 * rng.normal();
                (r * angle.cos(), r * angle.sin())
            }
            m => {
                let cx = if m % 2 == 0 { -5.0 } else { 5.0 };
                let cy = if m < 2 { -5.0 } else { 5.0 };
                (cx + 0.5 * rng.normal(), cy + 0.5 * rng.normal())
            }
        };
        x.push(px as f32);
        x.push(py as f32);
        modes.push(mode as u8);
    }
    (Points::new(x, 2), modes)
}

/// One row of the results table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Which model.
    pub model: String,
    /// Parameters in total.
    pub parameters: usize,
    /// Mean test log-likelihood (nats per point).
    pub log_likelihood: f64,
    /// Training seconds.
    pub seconds: f64,
}

/// What the experiment measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// kVAE, one large VAE, bagging.
    pub rows: Vec<Row>,
    /// Agreement of kVAE's clusters (test points, posterior argmax) with the
    /// true modes.
    pub kvae_clusters: metrics::Evaluation,
    /// The markdown written to `synthetic.md`.
    pub markdown: String,
}

fn shape(width: usize) -> VaeShape {
    VaeShape {
        data: 2,
        latent: 2,
        hidden: vec![width, width],
        observation: Observation::Real { std: None },
    }
}

/// Per-point log-likelihood of a mixture of the VAEs in `vaes` with weights
/// `weights`, and the most likely component of each point.
pub fn mixture_log_likelihood(
    vaes: &dyn VaeNets,
    weights: &[f64],
    test: &Points,
    samples: usize,
    rng: &mut Rng,
    device: &Device,
) -> anyhow::Result<(Vec<f64>, Vec<usize>)> {
    let mut ll = Vec::with_capacity(test.n);
    let mut best = Vec::with_capacity(test.n);
    let mut start = 0;
    while start < test.n {
        let len = 100.min(test.n - start);
        let per = vaes.log_likelihood_is(&test.slice(start, len, device)?, samples, rng)?; // [k][b]
        for b in 0..len {
            let terms: Vec<f64> = weights
                .iter()
                .zip(&per)
                .map(|(w, row)| w.ln() + row[b])
                .collect();
            ll.push(crate::util::log_sum_exp(&terms));
            best.push(
                terms
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(0, |(j, _)| j),
            );
        }
        start += len;
    }
    Ok((ll, best))
}

fn flatten_samples(samples: &candle_core::Tensor) -> anyhow::Result<(Vec<f32>, Vec<usize>)> {
    let (k, n, _) = samples.dims3()?;
    let points = samples.flatten_all()?.to_vec1::<f32>()?;
    let groups = (0..k).flat_map(|j| std::iter::repeat_n(j, n)).collect();
    Ok((points, groups))
}

/// Runs the experiment, writing `synthetic.md`, `synthetic_rounds.png` and
/// `synthetic_models.png` into `out`.
pub fn run(out: &Path, settings: &Settings, seed: u64, device: &Device) -> anyhow::Result<Report> {
    std::fs::create_dir_all(out)?;
    let mut rng = Rng::new(seed, 0x5E7);
    let (train, _) = five_modes(settings.train, &mut rng);
    let (test, test_modes) = five_modes(settings.test, &mut rng);
    let k = MODES;
    let batch = 32;
    let lr = 2e-3;
    let epochs = settings.total_epochs();
    let per_epoch = |k: usize| kvae::vae_steps_per_epoch(train.n, k, batch);
    let mut rows = Vec::new();

    // (a) kVAE with 5 small VAEs; every round's state goes into the figure.
    let cfg = KVaeConfig {
        k,
        vae: shape(settings.small),
        // The 2-D setting as it was published here: a random split,
        // discriminators trained many steps, raw ratios with log α_j, held
        // VAEs. Steps are whole epochs of `n / (k · batch)` steps per VAE.
        pretrain: Pretrain::RandomSplit,
        pretrain_steps: settings.pretrain * per_epoch(k),
        rounds: settings.rounds,
        round_steps: settings.per_round * per_epoch(k),
        disc_hidden: vec![64, 64],
        disc_steps: settings.disc_steps,
        disc_batch: batch,
        disc_noise: 0.0,
        scorer: Scorer::Discriminator,
        score_rule: ScoreRule::Raw,
        prior: true,
        min_share: 0.2,
        freeze_small: false,
        batch,
        lr,
        gate_hidden: vec![],
        gate_epochs: 0,
        seed,
        vae_kind: VaeKind::Dense,
        disc_warmup_epochs: 0,
        sharpen_fakes: false,
        disc_kind: kvae::DiscKind::Dense,
    };
    // Per round: training points, their VAE, samples, the VAE of each sample.
    type FigureRow = (Vec<f32>, Vec<usize>, Vec<f32>, Vec<usize>);
    let mut figure_rows: Vec<FigureRow> = Vec::new();
    let mut sample_rng = Rng::new(seed, 0x5A);
    let started = Instant::now();
    // On the one training loop, in `out/run-kvae`; no gate, no model file.
    let run = RunOptions {
        dir: out.join("run-kvae"),
        resume: false,
        device: device.clone(),
        verbose: false,
        start: None,
    };
    let fit_cfg = KVaeFitConfig {
        kvae: cfg.clone(),
        limit: None,
        image: kvae::no_images(2).image,
    };
    let (model, records) = kvae::run::train(
        &fit_cfg,
        train.clone(),
        None,
        kvae::no_images(2),
        &run,
        &mut |m, _| {
            let (p, g) = flatten_samples(&m.vaes().sample(300, &mut sample_rng, device)?)?;
            figure_rows.push((train.x.clone(), m.assignment().to_vec(), p, g));
            Ok(())
        },
    )?;
    let kvae_seconds = started.elapsed().as_secs_f64();
    let weights = kvae::shares(model.assignment(), k);
    let mut likelihood = |vaes: &dyn VaeNets, weights: &[f64]| {
        mixture_log_likelihood(vaes, weights, &test, settings.is_samples, &mut rng, device)
    };
    let (ll, clusters) = likelihood(model.vaes(), &weights)?;
    rows.push(Row {
        model: format!("(a) kVAE, {k} VAEs of 2×{} units", settings.small),
        parameters: k * cfg.vae.parameters(),
        log_likelihood: ll.iter().sum::<f64>() / ll.len() as f64,
        seconds: kvae_seconds,
    });
    let kvae_clusters = metrics::evaluate(&clusters, &test_modes, k);

    // The baselines on the one loop too: kVAE's VAEs on a fixed assignment
    // (`run-{tag}/`), the same epochs as kVAE.
    let fixed = |parts: usize, width: usize, seed: u64, split: Vec<usize>, tag: &str| {
        let cfg = KVaeFitConfig {
            kvae: KVaeConfig {
                k: parts,
                vae: shape(width),
                seed,
                ..cfg.clone()
            }
            .fixed_assignment(epochs * per_epoch(parts)),
            ..fit_cfg.clone()
        };
        let run = RunOptions {
            dir: out.join(format!("run-{tag}")),
            start: Some(split),
            ..run.clone()
        };
        let started = Instant::now();
        let (model, _) = kvae::run::train(
            &cfg,
            train.clone(),
            None,
            kvae::no_images(2),
            &run,
            &mut |_, _| Ok(()),
        )?;
        anyhow::Ok((model, started.elapsed().as_secs_f64()))
    };

    // (b) one large VAE on all points, same epochs.
    let (large, seconds) = fixed(1, settings.large, seed ^ 1, vec![0; train.n], "large")?;
    let (ll, _) = likelihood(large.vaes(), &[1.0])?;
    rows.push(Row {
        model: format!("(b) one VAE of 2×{} units", settings.large),
        parameters: shape(settings.large).parameters(),
        log_likelihood: ll.iter().sum::<f64>() / ll.len() as f64,
        seconds,
    });

    // (c) bagging: 5 small VAEs on a random split, same epochs.
    let split = kvae::random_split(train.n, k, &mut Rng::new(seed, 0xBA6));
    let (bagged, seconds) = fixed(k, settings.small, seed ^ 2, split, "bagging")?;
    let (ll, _) = likelihood(bagged.vaes(), &vec![1.0 / k as f64; k])?;
    rows.push(Row {
        model: format!(
            "(c) bagging, {k} VAEs of 2×{} units on random splits",
            settings.small
        ),
        parameters: k * shape(settings.small).parameters(),
        log_likelihood: ll.iter().sum::<f64>() / ll.len() as f64,
        seconds,
    });

    // Figures.
    let panels: Vec<Vec<Panel>> = figure_rows
        .iter()
        .map(|(x, a, s, g)| {
            vec![
                Panel {
                    points: x,
                    groups: Some(a),
                },
                Panel {
                    points: s,
                    groups: Some(g),
                },
            ]
        })
        .collect();
    scatter_grid(&out.join("synthetic_rounds.png"), &panels, 256, 7.5)?;
    let n = 1000.min(test.n);
    let kvae_samples = flatten_samples(&model.vaes().sample(n / k, &mut rng, device)?)?;
    let large_samples = flatten_samples(&large.vaes().sample(n, &mut rng, device)?)?;
    let bag_samples = flatten_samples(&bagged.vaes().sample(n / k, &mut rng, device)?)?;
    let test_modes_usize: Vec<usize> = test_modes.iter().map(|&m| m as usize).collect();
    let models = vec![vec![
        Panel {
            points: &test.x[..2 * n],
            groups: Some(&test_modes_usize[..n]),
        },
        Panel {
            points: &kvae_samples.0,
            groups: Some(&kvae_samples.1),
        },
        Panel {
            points: &large_samples.0,
            groups: None,
        },
        Panel {
            points: &bag_samples.0,
            groups: Some(&bag_samples.1),
        },
    ]];
    scatter_grid(&out.join("synthetic_models.png"), &models, 256, 7.5)?;

    let markdown = markdown(settings, seed, &rows, &kvae_clusters, &records);
    std::fs::write(out.join("synthetic.md"), &markdown)?;
    Ok(Report {
        rows,
        kvae_clusters,
        markdown,
    })
}

fn markdown(
    s: &Settings,
    seed: u64,
    rows: &[Row],
    clusters: &metrics::Evaluation,
    records: &[EpochRecord],
) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "# kVAE on 2-D synthetic data\n");
    let _ = writeln!(
        m,
        "Five equally likely modes: Gaussians (sd 0.5) at (±5, ±5) and a ring of radius 2.5 (radial sd 0.15). \
         {} training and {} test points, seed {seed}. Every VAE has a 2-D latent, ReLU layers and a Gaussian decoder \
         with learned per-dimension variance; each model trains {} epochs (batch 32 per VAE, Adam 2e-3). kVAE: \
         {} pretraining epochs on a random split, then {} rounds (discriminators 2×64 ReLU, {} steps per round, \
         log α_j prior, load-balancing threshold 0.2·n/k).\n",
        s.train,
        s.test,
        s.total_epochs(),
        s.pretrain,
        s.rounds,
        s.disc_steps
    );
    let _ = writeln!(
        m,
        "Test log-likelihood: mean over test points of log Σ_j w_j p_j(x), each log p_j(x) estimated by importance \
         sampling with the encoder as proposal (IWAE bound, {} samples per point); w_j = share of training points \
         (kVAE), 1/5 (bagging), 1 (single VAE).\n",
        s.is_samples
    );
    let _ = writeln!(
        m,
        "| model | parameters | test log-likelihood (nats) | training time (s) |"
    );
    let _ = writeln!(m, "|---|---:|---:|---:|");
    for r in rows {
        let _ = writeln!(
            m,
            "| {} | {} | {:.3} | {:.1} |",
            r.model, r.parameters, r.log_likelihood, r.seconds
        );
    }
    let _ = writeln!(
        m,
        "\nkVAE's clusters on the test points (argmax_j of log α_j + log p_j(x)) against the true modes: {}\n",
        clusters.summary()
    );
    let _ = writeln!(
        m,
        "| round | negative ELBO | moved points | VAEs held | sizes | discriminator loss |"
    );
    let _ = writeln!(m, "|---:|---:|---:|---:|---|---:|");
    for r in records {
        let note = |name: &str| r.notes.get(name).map_or("–".to_string(), |v| v.to_string());
        let d = r
            .notes
            .get("disc_loss")
            .and_then(serde_json::Value::as_f64)
            .map_or("–".to_string(), |d| format!("{d:.3}"));
        let _ = writeln!(
            m,
            "| {} | {:.3} | {} | {} | {} | {d} |",
            r.epoch - 1,
            r.loss,
            note("moved"),
            note("held"),
            note("sizes")
        );
    }
    let _ = writeln!(
        m,
        "\nEach row is an epoch of the one training loop (round 0 the pretraining) and the reassignment that \
         follows it (none after the last).\n\n\
         `synthetic_rounds.png`: one row per round (row 0 = after pretraining on the random split and the first \
         reassignment); left, the \
         training points coloured by their VAE; right, 300 samples of each VAE in the same colours.\n\
         `synthetic_models.png`: test points coloured by true mode; samples of kVAE (coloured by VAE), of the \
         single large VAE (grey), of the bagged VAEs (coloured by VAE)."
    );
    m
}

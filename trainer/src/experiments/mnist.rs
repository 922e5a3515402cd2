//! `trainer experiment kvae-mnist`: the kVAE paper's MNIST claim, tested
//! with the paper's convolutional VAEs and equal training.
//!
//! Four generators, each VAE of which takes the **same number of optimizer
//! steps** of the same batch size: (a) kVAE with 15 small VAEs, (b) one
//! small VAE, (c) 15 small VAEs on random splits, (d) one big VAE; scored by
//! the FID of their samples and the importance-sampled log-likelihood of
//! test images. Then the clustering of the test images by kVAE's distilled
//! gate, with K = 15 (purity, NMI, ARI) and K = 10 (Hungarian ACC too),
//! against k-means on raw pixels fitted here on the same training images.
//!
//! kVAE follows the authors' recipe ([`crate::methods::kvae`]): every VAE
//! pretrained on all the data from its own seed, persistent discriminators
//! taking one update of 32 + 32 images per round, per-model normalised
//! ratios, and a VAE left with no more than a batch of points frozen.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use candle_core::Device;

use crate::data::Mnist;
use crate::data::Points;
use crate::eval::fid::{self, Classifier};
use crate::eval::metrics::{self, Evaluation};
use crate::eval::pictures::save_grid;
use crate::experiments::synthetic::mixture_log_likelihood;
use crate::init::kmeans::{kmeans, nearest, KMeansConfig};
use crate::methods::kvae::conv::ConvShape;
use crate::methods::kvae::{
    self, DiscKind, KVaeConfig, KVaeFitConfig, Pretrain, RunOptions, ScoreRule, VaeKind, VaeNets,
};
use crate::rng::Rng;
use crate::train::{Data, EpochRecord};

/// Sizes and budgets of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Training images used (the first ones of the 60,000).
    pub train: usize,
    /// Test images used (clustering and the FID's real set).
    pub test: usize,
    /// Generated images per FID.
    pub fid_samples: usize,
    /// Test images whose log-likelihood is estimated.
    pub ll_points: usize,
    /// Importance samples per point and VAE for the log-likelihood.
    pub ll_samples: usize,
    /// Number of VAEs in kVAE and in the ensemble.
    pub k: usize,
    /// The second kVAE's number of VAEs (scored by Hungarian ACC).
    pub k_digits: usize,
    /// Latent size of every VAE.
    pub latent: usize,
    /// Encoder filters of a small VAE (the decoder mirrors them).
    pub small: [usize; 4],
    /// Encoder filters of the big VAE.
    pub big: [usize; 4],
    /// kVAE: steps of every VAE before the first reassignment.
    pub pretrain_steps: usize,
    /// kVAE rounds.
    pub rounds: usize,
    /// kVAE: steps of every VAE per round.
    pub round_steps: usize,
    /// Points per VAE per step.
    pub batch: usize,
    /// Adam learning rate of every model.
    pub lr: f64,
    /// Gate distillation epochs.
    pub gate_epochs: usize,
    /// k-means restarts for the yardstick.
    pub kmeans_restarts: usize,
    /// kVAE: what the VAEs train on before the first reassignment.
    pub pretrain: Pretrain,
    /// kVAE: how scores choose a VAE.
    pub score_rule: ScoreRule,
    /// kVAE: discriminators' full epochs before the first reassignment.
    pub disc_warmup_epochs: usize,
    /// Batch normalisation in every convolutional VAE (the authors').
    pub batch_norm: bool,
    /// kVAE: the authors' convolutional discriminators, not dense 784-64-1.
    pub conv_disc: bool,
    /// kVAE: the discriminators see `σ(2·logit)` of the decoders as
    /// generated images (the authors' code), not the decoder means.
    pub sharpen_fakes: bool,
    /// kVAE: the FID of the mixture after the pretraining and every round
    /// (`fid_samples` images each), in the round table.
    pub round_fid: bool,
    /// Continue the kVAE runs from their checkpoints.
    pub resume: bool,
}

impl Settings {
    /// The full experiment (the README's tables; 27.5 minutes measured on
    /// this 2-core machine, one thread).
    pub fn full() -> Self {
        Settings {
            train: 60_000,
            test: 10_000,
            fid_samples: 10_000,
            ll_points: 500,
            ll_samples: 16,
            k: 15,
            k_digits: 10,
            latent: 8,
            small: [8, 16, 32, 64],
            big: [32, 64, 128, 256],
            pretrain_steps: 1000,
            rounds: 15,
            round_steps: 100,
            batch: 32,
            lr: 1e-3,
            gate_epochs: 3,
            kmeans_restarts: 2,
            pretrain: Pretrain::Full,
            score_rule: ScoreRule::Normalised,
            disc_warmup_epochs: 0,
            batch_norm: true,
            conv_disc: true,
            sharpen_fakes: true,
            round_fid: false,
            resume: false,
        }
    }

    /// The schedule of the authors' 15-VAE run: all the images, every VAE
    /// pretrained 10 epochs (of `60,000 / 32` steps), then 100 rounds of
    /// one epoch, the FID after every round. Far beyond two CPU cores; for
    /// a GPU (`bench/gpu.sh kvae`).
    pub fn paper() -> Self {
        let epoch = 60_000 / 32;
        Settings {
            pretrain_steps: 10 * epoch,
            rounds: 100,
            round_steps: epoch,
            round_fid: true,
            ..Settings::full()
        }
    }

    /// A small run for the test suite.
    pub fn quick() -> Self {
        Settings {
            train: 1500,
            test: 500,
            fid_samples: 500,
            ll_points: 40,
            ll_samples: 4,
            k: 15,
            k_digits: 10,
            latent: 8,
            small: [4, 8, 8, 16],
            big: [8, 16, 16, 32],
            pretrain_steps: 20,
            rounds: 3,
            round_steps: 10,
            batch: 16,
            lr: 1e-3,
            gate_epochs: 3,
            kmeans_restarts: 1,
            pretrain: Pretrain::Full,
            score_rule: ScoreRule::Normalised,
            disc_warmup_epochs: 0,
            batch_norm: true,
            conv_disc: true,
            sharpen_fakes: true,
            round_fid: true,
            resume: false,
        }
    }

    /// Optimizer steps of every VAE of every model.
    pub fn steps(&self) -> usize {
        self.pretrain_steps + self.rounds * self.round_steps
    }

    /// The kVAE configuration with `k` small convolutional VAEs.
    pub fn kvae(&self, k: usize, seed: u64) -> KVaeFitConfig {
        let recipe = KVaeConfig::recipe();
        KVaeFitConfig {
            kvae: KVaeConfig {
                k,
                vae: kvae::VaeShape {
                    latent: self.latent,
                    hidden: vec![],
                    ..recipe.vae
                },
                vae_kind: VaeKind::Conv {
                    filters: self.small,
                    batch_norm: self.batch_norm,
                },
                disc_kind: if self.conv_disc {
                    DiscKind::Conv
                } else {
                    DiscKind::Dense
                },
                pretrain: self.pretrain,
                pretrain_steps: self.pretrain_steps,
                rounds: self.rounds,
                round_steps: self.round_steps,
                batch: self.batch,
                lr: self.lr,
                gate_epochs: self.gate_epochs,
                score_rule: self.score_rule,
                disc_warmup_epochs: self.disc_warmup_epochs,
                sharpen_fakes: self.sharpen_fakes,
                seed,
                ..recipe
            },
            limit: None,
            image: crate::data::IMAGE_SHAPE,
        }
    }

    fn shape(&self, filters: [usize; 4]) -> ConvShape {
        ConvShape {
            batch_norm: self.batch_norm,
            filters,
            latent: self.latent,
        }
    }
}

/// One row of the generator table.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorRow {
    /// Which model.
    pub model: String,
    /// Number of VAEs.
    pub vaes: usize,
    /// Parameters in total (encoders and decoders).
    pub parameters: usize,
    /// Optimizer steps of each VAE.
    pub steps_per_vae: usize,
    /// FID of its samples against the test images.
    pub fid: f64,
    /// Mean importance-sampled log-likelihood of test images (nats).
    pub log_likelihood: f64,
    /// Training seconds.
    pub seconds: f64,
}

/// One row of the clustering table.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRow {
    /// Which method.
    pub method: String,
    /// Its clusters of the test images, scored against the labels.
    pub clusters: Evaluation,
}

/// One epoch of VAE training in a kVAE run (the pretraining, then one a
/// round) and the reassignment that follows it (none after the last).
#[derive(Debug, Clone, PartialEq)]
pub struct RoundRow {
    /// 0 for the pretraining, then 1..=rounds.
    pub round: usize,
    /// Images the following reassignment moved to another VAE.
    pub moved: usize,
    /// Images per VAE after it.
    pub sizes: Vec<usize>,
    /// The discriminators' mean accuracy on real and on generated images
    /// after their update; `None` after the last round.
    pub disc_acc: Option<(f64, f64)>,
    /// Purity of the training assignment after it against the labels
    /// (evaluation only: the labels change nothing).
    pub train_purity: f64,
    /// FID of the mixture's samples after the epoch's VAE training
    /// (`Settings::round_fid`).
    pub fid: Option<f64>,
}

impl RoundRow {
    /// The row of an epoch record of the one loop (`None` for the gate's).
    fn of(r: &EpochRecord, fid: Option<f64>) -> Option<Self> {
        if r.phase == "gate" {
            return None;
        }
        let note = |name: &str| r.notes.get(name).and_then(serde_json::Value::as_f64);
        Some(RoundRow {
            round: r.epoch - 1,
            moved: note("moved").unwrap_or(0.0) as usize,
            sizes: r
                .notes
                .get("sizes")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default(),
            disc_acc: note("disc_acc_real").zip(note("disc_acc_fake")),
            train_purity: note("train_purity").unwrap_or(0.0),
            fid,
        })
    }
}

/// What the experiment measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Generator rows, (a) to (d), then kVAE with `k_digits` VAEs.
    pub generators: Vec<GeneratorRow>,
    /// Clustering rows: k-means and kVAE at K = 15, then at K = 10.
    pub clusters: Vec<ClusterRow>,
    /// kVAE's (K = 15) rounds.
    pub rounds: Vec<RoundRow>,
    /// FID of held-out real training images (the floor of the scale).
    pub real_fid: f64,
    /// The markdown written to `mnist.md`.
    pub markdown: String,
}

/// `n` samples of a mixture: component j gives `round(n · w_j)` of them
/// (the last takes the rounding remainder), drawn in chunks of 500 per VAE.
/// Also returns up to 8 images per component for the figure.
fn mixture_samples(
    vaes: &dyn VaeNets,
    weights: &[f64],
    n: usize,
    rng: &mut Rng,
    device: &Device,
) -> anyhow::Result<(Points, Vec<Vec<Vec<f32>>>)> {
    let mut need: Vec<usize> = weights
        .iter()
        .map(|w| (w * n as f64).round() as usize)
        .collect();
    let total: usize = need.iter().sum();
    let last = need.len() - 1;
    need[last] = (need[last] + n).saturating_sub(total).min(n);
    let mut per: Vec<Vec<f32>> = vec![Vec::new(); need.len()];
    let mut have = vec![0usize; need.len()];
    while have.iter().zip(&need).any(|(h, n)| h < n) {
        let chunk = need
            .iter()
            .zip(&have)
            .map(|(n, h)| n - h.min(n))
            .max()
            .unwrap_or(0)
            .min(500);
        let s = vaes.sample(chunk, rng, device)?; // [K, chunk, 784]
        for j in 0..need.len() {
            let take = (need[j] - have[j].min(need[j])).min(chunk);
            if take > 0 {
                per[j].extend(
                    s.get(j)?
                        .narrow(0, 0, take)?
                        .flatten_all()?
                        .to_vec1::<f32>()?,
                );
                have[j] += take;
            }
        }
    }
    let columns = per
        .iter()
        .map(|v| v.chunks(784).take(8).map(<[f32]>::to_vec).collect())
        .collect();
    Ok((Points::new(per.concat(), 784), columns))
}

/// A PNG with one column per VAE (`columns[j]` holds its images).
fn grid(path: &Path, columns: &[Vec<Vec<f32>>]) -> anyhow::Result<()> {
    let rows = columns.iter().map(Vec::len).max().unwrap_or(0);
    let mut tiles = Vec::with_capacity(rows * columns.len());
    for r in 0..rows {
        for c in columns {
            tiles.push(c.get(r).cloned().unwrap_or_else(|| vec![0.0; 784]));
        }
    }
    save_grid(path, &tiles, columns.len().max(1), 28, 28)
}

/// What the experiment shares between models.
struct Bench<'a> {
    settings: &'a Settings,
    train: Points,
    test: Points,
    classifier: Classifier,
    real: Vec<Vec<f64>>,
    rng: Rng,
    device: &'a Device,
    out: &'a Path,
}

impl Bench<'_> {
    /// FID and log-likelihood of a mixture of `vaes` with `weights`, and its
    /// sample grid.
    fn score(
        &mut self,
        vaes: &dyn VaeNets,
        weights: &[f64],
        figure: &str,
    ) -> anyhow::Result<(f64, f64)> {
        let s = self.settings;
        let (samples, columns) =
            mixture_samples(vaes, weights, s.fid_samples, &mut self.rng, self.device)?;
        grid(&self.out.join(figure), &columns)?;
        let fid = fid::fid(&self.classifier, &self.real, &samples, self.device)?;
        let n = s.ll_points.min(self.test.n);
        // Chunks of a few points: a conv decoder's activations for K VAEs ×
        // samples × points must fit in memory.
        let mut ll = Vec::with_capacity(n);
        let mut start = 0;
        while start < n {
            let len = 8.min(n - start);
            let chunk = Points::new(self.test.x[start * 784..(start + len) * 784].to_vec(), 784);
            let (l, _) = mixture_log_likelihood(
                vaes,
                weights,
                &chunk,
                s.ll_samples,
                &mut self.rng,
                self.device,
            )?;
            ll.extend(l);
            start += len;
        }
        Ok((fid, ll.iter().sum::<f64>() / ll.len().max(1) as f64))
    }
}

/// Runs the experiment on MNIST in `data`, writing `mnist.md` and sample
/// grids into `out`.
pub fn run(
    out: &Path,
    data: &Path,
    settings: &Settings,
    seed: u64,
    device: &Device,
) -> anyhow::Result<Report> {
    std::fs::create_dir_all(out)?;
    let mut mnist = Mnist::load(data)?;
    mnist.limit_train(settings.train);
    mnist.test_images.truncate(settings.test);
    mnist.test_labels.truncate(mnist.test_images.n);
    let train = Points::from_images(&mnist.train_images);
    let test = Points::from_images(&mnist.test_images);
    let classifier = Classifier::committed(device)?;
    let real = classifier.features_of(&test, device)?;
    // Floor of the scale: held-out real images against the test images.
    let floor_n = settings.fid_samples.min(train.n);
    let floor = Points::new(train.x[train.x.len() - floor_n * 784..].to_vec(), 784);
    let real_fid = fid::fid(&classifier, &real, &floor, device)?;
    let mut bench = Bench {
        settings,
        train,
        test,
        classifier,
        real,
        rng: Rng::new(seed, 0x3A1),
        device,
        out,
    };
    let s = settings;
    let steps = s.steps();
    let mut generators = Vec::new();
    let mut clusters = Vec::new();

    // k-means on raw pixels, fitted on the training images: the yardstick.
    let mut kmeans_rows = Vec::new();
    for k in [s.k, s.k_digits] {
        let started = Instant::now();
        let fit = kmeans(
            &bench.train.x,
            784,
            &KMeansConfig {
                k,
                restarts: s.kmeans_restarts,
                max_iter: 100,
            },
            &mut Rng::new(seed, 0x6EA + k as u64),
        );
        let pred: Vec<usize> = (0..bench.test.n)
            .map(|i| nearest(bench.test.row(i), &fit.centroids, 784).0)
            .collect();
        eprintln!(
            "kvae-mnist: k-means K = {k} in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        kmeans_rows.push(ClusterRow {
            method: format!(
                "k-means on raw pixels ({} restarts, fit on the training images)",
                s.kmeans_restarts
            ),
            clusters: metrics::evaluate(&pred, &mnist.test_labels, k),
        });
    }

    // (a) kVAE, and the same with k_digits VAEs, on the one training loop.
    let mut rounds = Vec::new();
    let mut kvae_rows = Vec::new();
    for (k, tag) in [(s.k, "kvae"), (s.k_digits, "kvae10")] {
        let cfg = s.kvae(k, seed);
        let per_vae = s.shape(s.small).parameters();
        let started = Instant::now();
        let run = RunOptions {
            dir: out.join(format!("run-{tag}")),
            resume: s.resume,
            device: device.clone(),
            verbose: false,
            start: None,
        };
        let fid_log = run.dir.join("round_fid.jsonl");
        let mut fid_rng = Rng::new(seed, 0xF1D);
        let (model, records) = kvae::run::train(
            &cfg,
            bench.train.clone(),
            Some(mnist.train_labels.clone()),
            mnist_data(&mnist),
            &run,
            &mut |m, record| {
                let line = RoundRow::of(record, None)
                    .map_or_else(String::new, |r| round_line(&r, bench.train.n));
                if !line.is_empty() {
                    eprintln!("kvae-mnist: {tag}: {line}");
                }
                if s.round_fid && record.phase != "gate" {
                    let weights = kvae::shares(m.assignment(), k);
                    let (samples, _) =
                        mixture_samples(m.vaes(), &weights, s.fid_samples, &mut fid_rng, device)?;
                    let fid = fid::fid(&bench.classifier, &bench.real, &samples, device)?;
                    eprintln!("kvae-mnist: {tag}: epoch {}: FID {fid:.2}", record.epoch);
                    crate::util::append_line(
                        &fid_log,
                        &serde_json::json!({"epoch": record.epoch, "fid": fid}).to_string(),
                    )?;
                }
                Ok(())
            },
        )?;
        let seconds = started.elapsed().as_secs_f64();
        if k == s.k {
            let fids = round_fids(&fid_log);
            rounds = records
                .iter()
                .filter_map(|r| RoundRow::of(r, fids.get(&r.epoch).copied()))
                .collect();
        }
        let weights = kvae::shares(model.assignment(), k);
        let (fid, ll) = bench.score(model.vaes(), &weights, &format!("mnist_{tag}_samples.png"))?;
        let name = if k == s.k {
            format!("(a) kVAE, {k} small VAEs")
        } else {
            format!("(e) kVAE, {k} small VAEs")
        };
        generators.push(GeneratorRow {
            model: name,
            vaes: k,
            parameters: k * per_vae,
            steps_per_vae: steps,
            fid,
            log_likelihood: ll,
            seconds,
        });
        let gate = model
            .gate()
            .ok_or_else(|| anyhow::anyhow!("kVAE trained without a gate"))?;
        let pred = kvae::gate_predict(gate, &bench.test, device)?;
        kvae_rows.push(ClusterRow {
            method: format!("kVAE, {k} small conv VAEs (distilled gate)"),
            clusters: metrics::evaluate(&pred, &mnist.test_labels, k),
        });
    }
    clusters.extend([
        kmeans_rows[0].clone(),
        kvae_rows[0].clone(),
        kmeans_rows[1].clone(),
        kvae_rows[1].clone(),
    ]);

    // (b) one small VAE, (c) the ensemble, (d) one big VAE: same steps.
    let n = bench.train.n;
    // Name, filters, VAEs, assignment of the training images, figure tag.
    type Baseline<'a> = (String, [usize; 4], usize, Vec<usize>, &'a str);
    let baselines: [Baseline; 3] = [
        ("(b) one small VAE".into(), s.small, 1, vec![0; n], "single"),
        (
            format!("(c) {} small VAEs on random splits", s.k),
            s.small,
            s.k,
            kvae::random_split(n, s.k, &mut Rng::new(seed, 0xBA6)),
            "ensemble",
        ),
        ("(d) one big VAE".into(), s.big, 1, vec![0; n], "big"),
    ];
    for (i, (name, filters, parts, split, tag)) in baselines.into_iter().enumerate() {
        // On the one loop too: kVAE's VAEs on a fixed assignment, in
        // `run-{tag}/`.
        let mut cfg = s.kvae(parts, seed ^ (i as u64 + 1));
        cfg.kvae = cfg.kvae.fixed_assignment(steps);
        cfg.kvae.vae_kind = VaeKind::Conv {
            filters,
            batch_norm: s.batch_norm,
        };
        let run = RunOptions {
            dir: out.join(format!("run-{tag}")),
            resume: s.resume,
            device: device.clone(),
            verbose: false,
            start: Some(split),
        };
        let started = Instant::now();
        let (model, _) = kvae::run::train(
            &cfg,
            bench.train.clone(),
            Some(mnist.train_labels.clone()),
            mnist_data(&mnist),
            &run,
            &mut |_, _| Ok(()),
        )?;
        let seconds = started.elapsed().as_secs_f64();
        eprintln!("kvae-mnist: {name} trained in {seconds:.1} s");
        let vaes = model.vaes();
        let (fid, ll) = bench.score(
            vaes,
            &vec![1.0 / parts as f64; parts],
            &format!("mnist_{tag}_samples.png"),
        )?;
        generators.insert(
            i + 1,
            GeneratorRow {
                model: name,
                vaes: parts,
                parameters: parts * vaes.parameters(),
                steps_per_vae: steps,
                fid,
                log_likelihood: ll,
                seconds,
            },
        );
    }

    let markdown = markdown(s, seed, &generators, real_fid, &clusters, &rounds);
    std::fs::write(out.join("mnist.md"), &markdown)?;
    rounds_picture(&out.join("mnist_rounds.png"), s.k, &rounds, bench.train.n)?;
    Ok(Report {
        generators,
        clusters,
        rounds,
        real_fid,
        markdown,
    })
}

/// The loop's images: MNIST's training and test images, as read.
pub(super) fn mnist_data(mnist: &Mnist) -> Data {
    let split = |images: &crate::data::Images, labels: &[u8]| crate::data::Split {
        n: images.n,
        pixels: images.pixels.clone(),
        labels: Some(labels.to_vec()),
    };
    Data {
        train: split(&mnist.train_images, &mnist.train_labels),
        test: split(&mnist.test_images, &mnist.test_labels),
        image: crate::data::IMAGE_SHAPE,
        class_names: None,
        train_source: "MNIST training images".into(),
        test_source: "MNIST test images".into(),
    }
}

/// The FIDs a run's observer logged, by 1-based epoch (the last of each,
/// should a resumed run have logged an epoch twice).
fn round_fids(path: &Path) -> std::collections::BTreeMap<usize, f64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| Some((v["epoch"].as_u64()? as usize, v["fid"].as_f64()?)))
        .collect()
}

/// One round as the progress line shows it.
fn round_line(r: &RoundRow, images: usize) -> String {
    let acc = r.disc_acc.map_or(String::new(), |(a, b)| {
        format!(
            ", discriminators {:.0}% real / {:.0}% generated",
            100.0 * a,
            100.0 * b
        )
    });
    format!(
        "round {}: moved {} of {images} images{acc}, train purity {:.3}",
        r.round, r.moved, r.train_purity
    )
}

/// kVAE round by round, as a picture beside the table: the training
/// assignment's purity and the share of images that moved, and the
/// discriminators' accuracy on real and on generated images.
fn rounds_picture(path: &Path, k: usize, rounds: &[RoundRow], images: usize) -> anyhow::Result<()> {
    use crate::eval::plot::{panels, Curve, Panel};
    let at = |f: &dyn Fn(&RoundRow) -> Option<f64>| -> Vec<(f64, f64)> {
        rounds
            .iter()
            .filter_map(|r| f(r).map(|y| (r.round as f64, y)))
            .collect()
    };
    // The last round ends without a reassignment (no discriminators ran):
    // nothing moved because nothing was asked, so it is left out.
    let moved = at(&|r| r.disc_acc.map(|_| r.moved as f64 / images.max(1) as f64));
    let purity = at(&|r| Some(r.train_purity));
    let real = at(&|r| r.disc_acc.map(|(real, _)| real));
    let fake = at(&|r| r.disc_acc.map(|(_, fake)| fake));
    let fid = at(&|r| r.fid);
    let title = format!("kVAE with {k} VAEs, round by round (round 0: pretraining)");
    let mut shown = vec![
        Panel {
            y_range: Some((0.0, 1.0)),
            ..Panel::new(
                "share of training images",
                vec![
                    Curve::new("train purity (labels score only)", purity),
                    Curve::new("moved to another VAE", moved),
                ],
            )
        },
        Panel {
            y_range: Some((0.0, 1.0)),
            ..Panel::new(
                "discriminator accuracy",
                vec![
                    Curve::new("on real images", real),
                    Curve::new("on generated images", fake),
                ],
            )
        },
    ];
    // Per-round FID only where the run computed it (`Settings::round_fid`).
    if !fid.is_empty() {
        shown.push(Panel::new(
            "FID of the mixture's samples (lower is better)",
            vec![Curve::new("FID", fid)],
        ));
    }
    panels(path, &title, "round", &shown)
}

fn filters(f: [usize; 4]) -> String {
    f.iter().map(usize::to_string).collect::<Vec<_>>().join("-")
}

fn markdown(
    s: &Settings,
    seed: u64,
    rows: &[GeneratorRow],
    real_fid: f64,
    clusters: &[ClusterRow],
    rounds: &[RoundRow],
) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "# kVAE on MNIST\n");
    let _ = writeln!(
        m,
        "{} training images, {} test images, seed {seed}. Every VAE is the paper's convolutional VAE, scaled: \
         encoder 4 convolutions 4×4 stride 2 (filters {} small, {} big, ReLU, {}) → latent {}; decoder \
         dense → 7×7, two transposed convolutions 4×4 stride 2, a 3×3 convolution to Bernoulli logits. \
         **Every VAE of every model takes {} optimizer steps** of {} images (Adam {}), so kVAE and the ensemble \
         spend {}× the compute of one small VAE, as in the paper. kVAE: every VAE pretrained {} steps on all the \
         images from its own seed, then {} rounds of {} steps; discriminators {} scoring {} images against {} models each round, persistent, one \
         update of 32 real + 32 generated images per round, shown {} as generated images; discriminators \
         first trained {} full epochs; scores chosen by the {} rule; a VAE with no more than a batch of points is \
         frozen; a gate 784-64-K distilled for {} epochs. Start: {}.\n",
        s.train,
        s.test,
        filters(s.small),
        filters(s.big),
        if s.batch_norm {
            "batch norm after every hidden convolution and the decoder's dense layer"
        } else {
            "no batch norm"
        },
        s.latent,
        s.steps(),
        s.batch,
        s.lr,
        s.k,
        s.pretrain_steps,
        s.rounds,
        s.round_steps,
        if s.conv_disc {
            "the authors' convolutional ones (64-128-256, batch norm, leaky ReLU 0.3, N(0, 0.01) weights, Adam 5e-3 \
             β1 0.5)"
        } else {
            "784-64-1 (smaller than the paper's convolutional ones, so that scoring stays cheap)"
        },
        s.train,
        s.k,
        if s.sharpen_fakes {
            "σ(2·logit) of the decoders (the authors' code)"
        } else {
            "the decoder means σ(logit)"
        },
        s.disc_warmup_epochs,
        format!("{:?}", s.score_rule).to_lowercase(),
        s.gate_epochs,
        format!("{:?}", s.pretrain).to_lowercase()
    );
    let _ = writeln!(
        m,
        "FID: {} generated images (decoder means of z ~ N(0, I); a mixture draws from VAE j in proportion to its \
         weight, the share of points for kVAE, equal otherwise) against the {} test images, in the 64-d feature \
         layer of the committed classifier. For scale, {} real training images score {:.2}. Log-likelihood: the \
         first {} test images, importance-sampled with {} samples per VAE (a lower bound that rises with the \
         samples), mixture weights as for the FID.\n",
        s.fid_samples,
        s.test,
        s.fid_samples.min(s.train),
        real_fid,
        s.ll_points.min(s.test),
        s.ll_samples
    );
    let _ = writeln!(
        m,
        "| model | VAEs | parameters | steps per VAE (all VAEs) | FID | test log-likelihood (nats) | training time (s) |"
    );
    let _ = writeln!(m, "|---|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} ({}) | {:.2} | {:.2} | {:.1} |",
            r.model,
            r.vaes,
            r.parameters,
            r.steps_per_vae,
            r.steps_per_vae * r.vaes,
            r.fid,
            r.log_likelihood,
            r.seconds
        );
    }
    let _ = writeln!(
        m,
        "\n| clustering of the test images | K | purity | NMI | ARI | ACC (Hungarian) |"
    );
    let _ = writeln!(m, "|---|---:|---:|---:|---:|---:|");
    for r in clusters {
        let e = &r.clusters;
        let _ = writeln!(
            m,
            "| {} | {} | {:.4} | {:.4} | {:.4} | {:.4} |",
            r.method,
            e.sizes.len(),
            e.purity(),
            e.nmi,
            e.ari,
            e.acc
        );
    }
    let _ = writeln!(
        m,
        "\nPurity (each cluster counted as its majority digit) is the score for K = {}: Hungarian ACC can match \
         only 10 of {} clusters.\n",
        s.k, s.k
    );
    let _ = writeln!(
        m,
        "kVAE with {} VAEs, round by round on the one training loop: round 0 is the pretraining, each row the \
         VAEs' epoch (its FID after it) and the reassignment that follows it (none after the last round); purity \
         of the training assignment is measured against the labels, which the algorithm never sees. Per epoch \
         and with the gate's test scores: `run-kvae/metrics.jsonl`.\n",
        s.k
    );
    let _ = writeln!(
        m,
        "| round | FID | moved images | smallest / largest VAE | discriminator accuracy real / generated | train purity |"
    );
    let _ = writeln!(m, "|---:|---:|---:|---|---|---:|");
    for r in rounds {
        let acc = r.disc_acc.map_or("–".to_string(), |(a, b)| {
            format!("{:.0}% / {:.0}%", 100.0 * a, 100.0 * b)
        });
        let fid = r.fid.map_or("–".to_string(), |f| format!("{f:.2}"));
        let _ = writeln!(
            m,
            "| {} | {fid} | {} | {} / {} | {acc} | {:.3} |",
            r.round,
            r.moved,
            r.sizes.iter().min().unwrap_or(&0),
            r.sizes.iter().max().unwrap_or(&0),
            r.train_purity
        );
    }
    if let Some(kvae) = clusters.get(1) {
        let _ = writeln!(
            m,
            "\nConfusion of kVAE's clusters (K = {}, test images):\n\n{}",
            kvae.clusters.sizes.len(),
            kvae.clusters.confusion_table()
        );
    }
    let _ = writeln!(
        m,
        "Sample grids (one column per VAE, 8 decoder means each): `mnist_kvae_samples.png`, \
         `mnist_kvae10_samples.png`, `mnist_single_samples.png`, `mnist_ensemble_samples.png`, \
         `mnist_big_samples.png`."
    );
    m
}

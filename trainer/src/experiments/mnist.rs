//! `trainer experiment kvae-mnist`: kVAE with 15 small VAEs on MNIST against
//! one VAE of the same per-model size, an ensemble of 15 VAEs on random
//! splits and one big VAE, by the FID of their samples; plus the clustering
//! of kVAE's distilled gate, checked through the engine.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;

use crate::data::Mnist;

use crate::eval::fid::{self, Classifier};
use crate::eval::metrics::{self, Evaluation};
use crate::eval::pictures::save_grid;
use crate::export::{label_map, write_model};
use crate::methods::kvae::{
    self, KVae, KVaeConfig, Observation, Points, Scorer, VaeNets, VaeShape, VaeStack,
};
use crate::rng::Rng;

/// Sizes and budgets of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Training images used (the first ones of the 60,000).
    pub train: usize,
    /// Test images used (clustering and the FID's real set).
    pub test: usize,
    /// Generated images per FID.
    pub fid_samples: usize,
    /// Number of VAEs in kVAE and in the ensemble.
    pub k: usize,
    /// Latent size of every VAE.
    pub latent: usize,
    /// Hidden width of a small VAE (one hidden layer each side).
    pub small: usize,
    /// Hidden width of the big VAE.
    pub big: usize,
    /// Pretraining epochs (every model gets the same total epochs).
    pub pretrain: usize,
    /// kVAE rounds.
    pub rounds: usize,
    /// VAE epochs per round.
    pub per_round: usize,
    /// Discriminator steps per round.
    pub disc_steps: usize,
    /// Gate distillation epochs.
    pub gate_epochs: usize,
    /// Points per VAE per step.
    pub batch: usize,
}

impl Settings {
    /// The full experiment (about 20 minutes on two shared cores).
    pub fn full() -> Self {
        Settings {
            train: 60_000,
            test: 10_000,
            fid_samples: 10_000,
            k: 15,
            latent: 8,
            small: 32,
            big: 256,
            pretrain: 3,
            rounds: 3,
            per_round: 1,
            disc_steps: 150,
            gate_epochs: 3,
            batch: 64,
        }
    }

    /// A small run for the test suite.
    pub fn quick() -> Self {
        Settings {
            train: 1500,
            test: 500,
            fid_samples: 500,
            k: 15,
            latent: 8,
            small: 32,
            big: 128,
            pretrain: 2,
            rounds: 2,
            per_round: 1,
            disc_steps: 40,
            gate_epochs: 3,
            batch: 32,
        }
    }

    fn total_epochs(&self) -> usize {
        self.pretrain
            + self.rounds * self.per_round
            + if self.rounds > 0 { self.per_round } else { 0 }
    }

    fn shape(&self, hidden: usize) -> VaeShape {
        VaeShape {
            data: 784,
            latent: self.latent,
            hidden: vec![hidden],
            observation: Observation::Bernoulli,
        }
    }

    /// The kVAE configuration of this run.
    pub fn kvae(&self, seed: u64) -> KVaeConfig {
        KVaeConfig {
            k: self.k,
            vae: self.shape(self.small),
            pretrain_epochs: self.pretrain,
            rounds: self.rounds,
            epochs_per_round: self.per_round,
            disc_hidden: vec![64],
            disc_steps: self.disc_steps,
            scorer: Scorer::Discriminator,
            prior: true,
            min_share: 0.2,
            batch: self.batch,
            lr: 1e-3,
            gate_hidden: vec![64],
            gate_epochs: self.gate_epochs,
            seed,
        }
    }
}

/// One row of the FID table.
#[derive(Debug, Clone, PartialEq)]
pub struct FidRow {
    /// Which model.
    pub model: String,
    /// Parameters in total (encoders and decoders).
    pub parameters: usize,
    /// FID of its samples against the test images.
    pub fid: f64,
    /// Training seconds.
    pub seconds: f64,
}

/// What the experiment measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// FID rows, (a) to (d).
    pub fid: Vec<FidRow>,
    /// kVAE's clusters on the test images, by the trainer's f32 gate.
    pub kvae_clusters: Evaluation,
    /// Share of test images the engine (f16 model.bin) puts in the same
    /// cluster as the trainer's gate.
    pub engine_agreement: f64,
    /// The mixture of VAEs' clusters, when a model file was given.
    pub mixture_clusters: Option<Evaluation>,
    /// FID of held-out real training images (the floor of the scale).
    pub real_fid: f64,
    /// The exported kVAE model file.
    pub model_file: PathBuf,
    /// The markdown written to `mnist.md`.
    pub markdown: String,
}

/// `n` samples of a mixture: component j gives `round(n · w_j)` of them
/// (the last takes the rounding remainder), drawn in chunks of 500 per VAE.
/// Also returns up to 8 images per component for the figure.
fn mixture_samples(
    vaes: &VaeStack,
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
    save_grid(path, &tiles, columns.len().max(1), 28)
}

/// Runs the experiment on MNIST in `data`, writing `mnist.md`, sample grids
/// and `kvae.bin` into `out`. `mixture_model` is an exported mixture of VAEs
/// to score alongside (its clusters through the engine).
pub fn run(
    out: &Path,
    data: &Path,
    mixture_model: Option<&Path>,
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
    let mut rng = Rng::new(seed, 0x3A1);
    let epochs = settings.total_epochs();
    let k = settings.k;
    let mut rows = Vec::new();

    // Floor of the scale: held-out real images against the test images.
    let floor_n = settings.fid_samples.min(train.n);
    let floor = Points::new(train.x[train.x.len() - floor_n * 784..].to_vec(), 784);
    let real_fid = fid::fid(&classifier, &real, &floor, device)?;

    // (a) kVAE.
    let cfg = settings.kvae(seed);
    let started = Instant::now();
    let model: KVae = kvae::fit(&train, &cfg, device, &mut |_| {})?;
    let seconds = started.elapsed().as_secs_f64();
    let weights = kvae::shares(&model.assignment, k);
    let (samples, columns) = mixture_samples(
        &model.vaes,
        &weights,
        settings.fid_samples,
        &mut rng,
        device,
    )?;
    grid(&out.join("mnist_kvae_samples.png"), &columns)?;
    rows.push(FidRow {
        model: format!(
            "(a) kVAE, {k} VAEs (784-{}-{} each)",
            settings.small, settings.latent
        ),
        parameters: k * cfg.vae.parameters(),
        fid: fid::fid(&classifier, &real, &samples, device)?,
        seconds,
    });
    let gate = model
        .gate
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("kVAE trained without a gate"))?;
    let trainer_clusters = kvae::gate_predict(gate, &test, device)?;
    let kvae_clusters = metrics::evaluate(&trainer_clusters, &mnist.test_labels, k);
    let train_pred = kvae::gate_predict(gate, &train, device)?;
    let label_map = label_map(&metrics::evaluate(&train_pred, &mnist.train_labels, k));
    let spec = model.to_spec(
        engine::ImageShape {
            width: 28,
            height: 28,
        },
        Some(label_map),
        format!(
            "trainer {} experiment kvae-mnist seed {seed}",
            env!("CARGO_PKG_VERSION")
        ),
    )?;
    let model_file = out.join("kvae.bin");
    let bytes = write_model(&spec, &model_file)?;
    let engine_model = crate::eval::host::parse(&bytes, "kvae.bin")?;
    let engine = crate::eval::host::predict(
        &engine_model,
        &mnist.test_images.pixels,
        mnist.test_images.n,
    )?;
    let engine_agreement = engine
        .iter()
        .zip(&trainer_clusters)
        .filter(|(a, b)| a == b)
        .count() as f64
        / test.n as f64;

    // (b) one VAE of the same per-model size, (c) the ensemble, (d) one big VAE.
    let baselines: [(String, usize, usize, Vec<usize>); 3] = [
        (
            format!("(b) one VAE (784-{}-{})", settings.small, settings.latent),
            settings.small,
            1,
            vec![0; train.n],
        ),
        (
            format!(
                "(c) ensemble, {k} VAEs (784-{}-{}) on random splits",
                settings.small, settings.latent
            ),
            settings.small,
            k,
            kvae::random_split(train.n, k, &mut Rng::new(seed, 0xBA6)),
        ),
        (
            format!("(d) one big VAE (784-{}-{})", settings.big, settings.latent),
            settings.big,
            1,
            vec![0; train.n],
        ),
    ];
    for (i, (name, hidden, parts, split)) in baselines.into_iter().enumerate() {
        let started = Instant::now();
        let shape = settings.shape(hidden);
        let (vaes, _, _) = kvae::train_fixed(
            &shape,
            &train,
            &split,
            parts,
            epochs,
            settings.batch,
            1e-3,
            seed ^ (i as u64 + 1),
            device,
        )?;
        let seconds = started.elapsed().as_secs_f64();
        let (samples, columns) = mixture_samples(
            &vaes,
            &vec![1.0 / parts as f64; parts],
            settings.fid_samples,
            &mut rng,
            device,
        )?;
        grid(
            &out.join(format!(
                "mnist_{}_samples.png",
                ["single", "ensemble", "big"][i]
            )),
            &columns,
        )?;
        rows.push(FidRow {
            model: name,
            parameters: parts * shape.parameters(),
            fid: fid::fid(&classifier, &real, &samples, device)?,
            seconds,
        });
    }

    let mixture_clusters = match mixture_model {
        Some(path) => {
            let bytes =
                std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let what = path.display().to_string();
            let model = crate::eval::host::parse(&bytes, &what)?;
            let clusters =
                crate::eval::host::predict(&model, &mnist.test_images.pixels, mnist.test_images.n)?;
            Some(metrics::evaluate(
                &clusters,
                &mnist.test_labels,
                model.experts(),
            ))
        }
        None => None,
    };

    let markdown = markdown(
        settings,
        seed,
        &rows,
        real_fid,
        &kvae_clusters,
        engine_agreement,
        mixture_model.zip(mixture_clusters.as_ref()),
        &model.history,
    );
    std::fs::write(out.join("mnist.md"), &markdown)?;
    Ok(Report {
        fid: rows,
        kvae_clusters,
        engine_agreement,
        mixture_clusters,
        real_fid,
        model_file,
        markdown,
    })
}

#[allow(clippy::too_many_arguments)]
fn markdown(
    s: &Settings,
    seed: u64,
    rows: &[FidRow],
    real_fid: f64,
    kvae: &Evaluation,
    agreement: f64,
    mixture: Option<(&Path, &Evaluation)>,
    history: &[kvae::RoundRecord],
) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "# kVAE on MNIST\n");
    let _ = writeln!(
        m,
        "{} training images, {} test images, seed {seed}. Every VAE: Bernoulli decoder, latent {}, one ReLU hidden \
         layer each side; every model trains {} epochs (batch {} per VAE, Adam 1e-3). kVAE: {} pretraining epochs \
         on a random split, {} rounds of {} epochs, discriminators 784-64-1 ({} steps of {} real + {} generated \
         images per round), log α_j prior, load-balancing threshold 0.2·n/k, gate 784-64-{} distilled for {} epochs.\n",
        s.train, s.test, s.latent, s.total_epochs(), s.batch, s.pretrain, s.rounds, s.per_round, s.disc_steps, s.batch, s.batch, s.k, s.gate_epochs
    );
    let _ = writeln!(
        m,
        "FID: {} generated images (decoder means of z ~ N(0, I); a mixture draws from VAE j in proportion to its \
         weight) against the {} test images, in the 64-d feature layer of the committed classifier \
         (`trainer/src/fid/mod.rs` states the computation). For scale, {} real training images score {:.2}.\n",
        s.fid_samples, s.test, s.fid_samples.min(s.train), real_fid
    );
    let _ = writeln!(m, "| model | parameters | FID | training time (s) |");
    let _ = writeln!(m, "|---|---:|---:|---:|");
    for r in rows {
        let _ = writeln!(
            m,
            "| {} | {} | {:.2} | {:.1} |",
            r.model, r.parameters, r.fid, r.seconds
        );
    }
    let _ = writeln!(
        m,
        "\n| clustering of the test images | K | ACC | NMI | ARI |"
    );
    let _ = writeln!(m, "|---|---:|---:|---:|---:|");
    let _ = writeln!(
        m,
        "| kVAE (distilled gate, trainer f32) | {} | {:.4} | {:.4} | {:.4} |",
        kvae.sizes.len(),
        kvae.acc,
        kvae.nmi,
        kvae.ari
    );
    match mixture {
        Some((path, e)) => {
            let _ = writeln!(
                m,
                "| mixture of VAEs (`{}`, engine) | {} | {:.4} | {:.4} | {:.4} |",
                path.display(),
                e.sizes.len(),
                e.acc,
                e.nmi,
                e.ari
            );
        }
        None => {
            let _ = writeln!(
                m,
                "| mixture of VAEs | – | not run (pass `--mixture-model FILE`) | | |"
            );
        }
    }
    let _ = writeln!(
        m,
        "\nACC is Hungarian one-to-one, so with K = {} > 10 clusters only 10 can count: it is at most the share of \
         images in the 10 matched clusters. The engine (f16 `kvae.bin`) assigns {:.2}% of the test images to the same \
         cluster as the trainer's f32 gate.\n",
        s.k,
        100.0 * agreement
    );
    let _ = writeln!(
        m,
        "| round | moved images | VAEs held | smallest / largest VAE | discriminator loss |"
    );
    let _ = writeln!(m, "|---:|---:|---:|---|---:|");
    for r in history {
        let d = r.disc_loss.map_or("–".to_string(), |d| format!("{d:.3}"));
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} / {} | {d} |",
            r.round,
            r.moved,
            r.held,
            r.sizes.iter().min().unwrap_or(&0),
            r.sizes.iter().max().unwrap_or(&0)
        );
    }
    let _ = writeln!(
        m,
        "\nConfusion of kVAE's clusters (test images):\n\n{}",
        kvae.confusion_table()
    );
    let _ = writeln!(
        m,
        "Sample grids (one column per VAE, 8 decoder means each): `mnist_kvae_samples.png` (columns in proportion to \
         the mixture weights), `mnist_single_samples.png`, `mnist_ensemble_samples.png`, `mnist_big_samples.png`."
    );
    m
}

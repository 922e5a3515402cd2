//! `trainer fit --method kvae`: kVAE on MNIST, exported as a `Method::KVae`
//! model file (distilled gate + the k decoders).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use candle_core::Device;

use super::{KVaeConfig, Observation, Points, Scorer, VaeShape};
use crate::data::Mnist;
use crate::engine_eval;
use crate::export::{label_map, write_model};
use crate::metrics;
use crate::pictures::save_grid;
use crate::rng::Rng;

/// The training method of `trainer fit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FitMethod {
    /// A gate routes each image to K VAE experts (mixture-of-experts loss).
    #[default]
    Mixture,
    /// k VAEs trained competitively, points reassigned by discriminators.
    Kvae,
}

/// How step (c) scores points, on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScorerArg {
    /// Discriminators' density-ratio estimate (the method).
    Discriminator,
    /// Importance-sampled VAE likelihood (64 samples): the perfect-discriminator limit.
    Likelihood,
}

/// Options of `trainer fit` that only kVAE reads.
#[derive(Debug, Clone, clap::Args)]
pub struct KVaeArgs {
    /// Training method.
    #[arg(long, value_enum, default_value = "mixture")]
    pub method: FitMethod,
    /// kVAE: reassignment rounds (train VAEs, train discriminators, reassign).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// kVAE: VAE epochs per round.
    #[arg(long, default_value_t = 1)]
    pub round_epochs: usize,
    /// kVAE: discriminator steps per round.
    #[arg(long, default_value_t = 150)]
    pub disc_steps: usize,
    /// kVAE: load balancing; a VAE that would keep fewer than this share of
    /// n/k points keeps its previous points instead (0 = off).
    #[arg(long, default_value_t = 0.2)]
    pub min_share: f64,
    /// kVAE: do not add log α_j (the VAE's share of points) to the scores.
    #[arg(long)]
    pub no_prior: bool,
    /// kVAE: how points are scored for reassignment.
    #[arg(long, value_enum, default_value = "discriminator")]
    pub scorer: ScorerArg,
    /// kVAE: epochs of gate distillation.
    #[arg(long, default_value_t = 3)]
    pub gate_epochs: usize,
}

/// The `trainer fit` options kVAE shares with the mixture method.
#[derive(Debug, Clone, Default)]
pub struct CommonArgs {
    /// k (default 15).
    pub experts: Option<usize>,
    /// Latent size (default 8).
    pub latent: Option<usize>,
    /// Hidden width of each VAE, one layer each side (default 32).
    pub hidden: Option<usize>,
    /// Gate hidden widths (default 64).
    pub gate_hidden: Option<Vec<usize>>,
    /// Pretraining epochs on the random split (default 3).
    pub pretrain_epochs: Option<usize>,
    /// Points per VAE per step (default 64).
    pub batch: Option<usize>,
    /// Adam learning rate (default 1e-3).
    pub lr: Option<f64>,
    /// Seed (default 1).
    pub seed: Option<u64>,
    /// First N training images only.
    pub limit: Option<usize>,
    /// MNIST directory.
    pub data: PathBuf,
    /// Run directory (default `runs/kvae`).
    pub out: Option<PathBuf>,
    /// Also write the model here.
    pub export: Option<PathBuf>,
    /// Element type of the weights in the `export` file.
    pub weights: crate::quantize::WeightType,
}

/// The kVAE configuration these options describe.
pub fn config(kvae: &KVaeArgs, common: &CommonArgs) -> anyhow::Result<KVaeConfig> {
    let k = common.experts.unwrap_or(15);
    anyhow::ensure!(
        (1..=engine::format::MAX_EXPERTS).contains(&k),
        "--experts must be 1..={}, got {k}",
        engine::format::MAX_EXPERTS
    );
    anyhow::ensure!(
        (0.0..1.0).contains(&kvae.min_share),
        "--min-share must be in [0, 1), got {}",
        kvae.min_share
    );
    anyhow::ensure!(
        kvae.gate_epochs > 0,
        "--gate-epochs must be at least 1: the exported model needs a gate"
    );
    let cfg = KVaeConfig {
        k,
        vae: VaeShape {
            data: 784,
            latent: common.latent.unwrap_or(8),
            hidden: vec![common.hidden.unwrap_or(32)],
            observation: Observation::Bernoulli,
        },
        pretrain_epochs: common.pretrain_epochs.unwrap_or(3),
        rounds: kvae.rounds,
        epochs_per_round: kvae.round_epochs,
        disc_hidden: vec![64],
        disc_steps: kvae.disc_steps,
        scorer: match kvae.scorer {
            ScorerArg::Discriminator => Scorer::Discriminator,
            ScorerArg::Likelihood => Scorer::Likelihood { samples: 64 },
        },
        prior: !kvae.no_prior,
        min_share: kvae.min_share,
        batch: common.batch.unwrap_or(64),
        lr: common.lr.unwrap_or(1e-3),
        gate_hidden: common.gate_hidden.clone().unwrap_or_else(|| vec![64]),
        gate_epochs: kvae.gate_epochs,
        seed: common.seed.unwrap_or(1),
    };
    anyhow::ensure!(
        cfg.vae.latent > 0 && cfg.vae.hidden[0] > 0 && cfg.batch > 0 && cfg.lr > 0.0,
        "sizes, batch and learning rate must be positive"
    );
    Ok(cfg)
}

/// Trains kVAE on MNIST, writes the run directory (`model.bin`,
/// `report.md`, `history.json`, `samples.png`) and the export.
pub fn fit(kvae: &KVaeArgs, common: &CommonArgs) -> anyhow::Result<()> {
    let cfg = config(kvae, common)?;
    let device = Device::Cpu;
    let mut mnist = Mnist::load(&common.data)?;
    if let Some(n) = common.limit {
        mnist.limit_train(n);
    }
    let out = common
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs/kvae"));
    std::fs::create_dir_all(&out)?;
    let train = Points::from_images(&mnist.train_images);
    let test = Points::from_images(&mnist.test_images);
    let started = Instant::now();
    let model = super::fit(&train, &cfg, &device, &mut |_| {})?;
    let seconds = started.elapsed().as_secs_f64();
    let gate = model
        .gate
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no gate was distilled"))?;

    let train_eval = metrics::evaluate(
        &super::gate_predict(gate, &train, &device)?,
        &mnist.train_labels,
        cfg.k,
    );
    let test_pred = super::gate_predict(gate, &test, &device)?;
    let test_eval = metrics::evaluate(&test_pred, &mnist.test_labels, cfg.k);
    let provenance = format!(
        "trainer {} kvae k={} latent={} hidden={:?} gate={:?} epochs={}+{}x{} disc_steps={} scorer={:?} prior={} min_share={} batch={} lr={} seed={} limit={}",
        env!("CARGO_PKG_VERSION"),
        cfg.k,
        cfg.vae.latent,
        cfg.vae.hidden,
        cfg.gate_hidden,
        cfg.pretrain_epochs,
        cfg.rounds,
        cfg.epochs_per_round,
        cfg.disc_steps,
        cfg.scorer,
        cfg.prior,
        cfg.min_share,
        cfg.batch,
        cfg.lr,
        cfg.seed,
        common.limit.map_or("none".to_string(), |l| l.to_string())
    )
    .to_lowercase();
    let spec = model.to_spec(
        engine::ImageShape {
            width: 28,
            height: 28,
        },
        Some(label_map(&train_eval)),
        provenance,
    )?;
    let bytes = write_model(&spec, &out.join("model.bin"))?;
    if let Some(path) = &common.export {
        let chosen = crate::quantize::encode(&spec, common.weights, &mnist.train_images.pixels)?;
        crate::export::write_bytes(&chosen, path)?;
    }
    let engine_model = engine_eval::parse(&bytes, "model.bin")?;
    let engine_pred = engine_eval::predict(
        &engine_model,
        &mnist.test_images.pixels,
        mnist.test_images.n,
    )?;
    let agree = engine_pred
        .iter()
        .zip(&test_pred)
        .filter(|(a, b)| a == b)
        .count() as f64
        / test.n.max(1) as f64;

    let mut rng = Rng::new(cfg.seed, 0x5A3);
    let samples = model.vaes.sample(8, &mut rng, &device)?; // [K, 8, 784]
    let mut tiles = Vec::with_capacity(8 * cfg.k);
    for r in 0..8 {
        for j in 0..cfg.k {
            tiles.push(samples.get(j)?.get(r)?.to_vec1::<f32>()?);
        }
    }
    save_grid(&out.join("samples.png"), &tiles, cfg.k, 28)?;
    std::fs::write(
        out.join("history.json"),
        serde_json::to_string_pretty(&model.history)?,
    )?;

    let mut report = String::new();
    let _ = writeln!(report, "# kVAE run\n\n`{}`\n", spec.provenance);
    let _ = writeln!(report, "Training: {seconds:.1} s on {} images.\n", train.n);
    let _ = writeln!(report, "- training images (gate): {}", train_eval.summary());
    let _ = writeln!(report, "- test images (gate, f32): {}", test_eval.summary());
    let _ = writeln!(
        report,
        "- engine (f16 model.bin) agrees with the f32 gate on {:.2}% of the test images",
        100.0 * agree
    );
    let _ = writeln!(
        report,
        "- model.bin: {} bytes\n\n{}",
        bytes.len(),
        test_eval.confusion_table()
    );
    std::fs::write(out.join("report.md"), &report)?;
    println!("{report}");
    eprintln!("kvae: run directory {}", out.display());
    Ok(())
}

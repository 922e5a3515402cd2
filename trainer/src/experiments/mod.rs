//! `trainer experiment NAME`: reproducible experiments that write markdown
//! tables and PNG figures into a run directory.
//!
//! - `kvae-synthetic`: kVAE against one large VAE and bagging on 2-D data
//!   with five modes (test log-likelihood).
//! - `kvae-mnist`: kVAE with 15 convolutional VAEs against one VAE, an
//!   ensemble and a big VAE on MNIST, every VAE with the same optimizer
//!   steps (FID, test log-likelihood), plus clustering (purity, NMI, ARI,
//!   ACC) against k-means.
//! - `kvae-fixed-point`: K = 10 convolutional VAEs trained on the true
//!   digit partition (labels used as a probe), then one reassignment with
//!   each scoring rule: does the rule keep digit clusters?
//! - `novelty`: four candidate novelty scores of a finished flat run
//!   against out-of-distribution sets made in code (AUROC, share flagged
//!   at a threshold calibrated on training images, cost on a device).
//! - `fid-classifier`: retrains the FID feature classifier (its weights are
//!   committed; rerunning replaces them and changes every FID).

pub mod fixed_point;
pub mod mnist;
pub mod novelty;
pub mod plot;
pub mod synthetic;

use std::path::PathBuf;
use std::time::Instant;

use candle_core::Device;

use crate::data::Mnist;
use crate::data::Points;

/// Which experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Experiment {
    /// 2-D data with five modes: kVAE vs one large VAE vs bagging.
    KvaeSynthetic,
    /// MNIST: kVAE with 15 VAEs vs baselines by FID, and clustering.
    KvaeMnist,
    /// MNIST: one reassignment of the true digit partition with each rule.
    KvaeFixedPoint,
    /// Retrain the FID feature classifier on the MNIST training labels.
    FidClassifier,
    /// A finished flat run: four novelty scores on out-of-distribution sets.
    Novelty,
}

/// Options of `trainer experiment`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExperimentArgs {
    /// The experiment to run.
    #[arg(value_enum)]
    pub name: Experiment,
    /// Run directory for tables and figures (default `runs/<name>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// MNIST directory.
    #[arg(long, default_value = "data/mnist")]
    pub data: PathBuf,
    /// Small data and budgets (what the test suite runs).
    #[arg(long, conflicts_with = "paper_schedule")]
    pub quick: bool,
    /// kvae-mnist: the schedule of the authors' 15-VAE run (all 60,000
    /// images, 10 pretraining epochs, 100 rounds of one epoch; sized for a
    /// GPU, with the FID after every round).
    #[arg(long)]
    pub paper_schedule: bool,
    /// kvae-mnist: this many rounds instead of the schedule's.
    #[arg(long)]
    pub rounds: Option<usize>,
    /// kvae-mnist: what the VAEs train on before the first reassignment [default: full].
    #[arg(long, value_enum)]
    pub pretrain: Option<crate::methods::kvae::Pretrain>,
    /// kvae-mnist: how scores choose a VAE [default: normalised].
    #[arg(long, value_enum)]
    pub score_rule: Option<crate::methods::kvae::ScoreRule>,
    /// kvae-mnist: discriminators trained this many full epochs before the
    /// first reassignment [default: 0].
    #[arg(long)]
    pub disc_warmup_epochs: Option<usize>,
    /// kvae-mnist: VAEs without the authors' batch normalisation.
    #[arg(long)]
    pub no_batch_norm: bool,
    /// kvae-mnist: dense discriminators 784-64-1, not the authors'
    /// convolutional ones.
    #[arg(long)]
    pub dense_disc: bool,
    /// kvae-mnist: give the discriminators the decoder means σ(logit) as
    /// generated images, not the authors' σ(2·logit).
    #[arg(long)]
    pub plain_fakes: bool,
    /// kvae-mnist: continue the kVAE runs from the checkpoints in the run
    /// directory (`run-kvae/`, `run-kvae10/`), where there are any.
    #[arg(long)]
    pub resume: bool,
    /// Where to train: cpu or cuda (kvae-mnist).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// novelty: the finished flat mixture run to read.
    #[arg(long, default_value = "target/hierarchical/flat")]
    pub run: PathBuf,
    /// novelty: scikit-learn's digits as an image folder
    /// (`examples/sklearn_digits.py`), scored as one more set.
    #[arg(long)]
    pub sklearn: Option<PathBuf>,
    /// fid-classifier: where to write the weights.
    #[arg(long, default_value = "trainer/assets/fid_classifier.safetensors")]
    pub weights: PathBuf,
}

/// Runs an experiment, printing its tables; returns the markdown written.
pub fn run(args: &ExperimentArgs) -> anyhow::Result<String> {
    let device = crate::cli::device(&args.device)?;
    let default_name = match args.name {
        Experiment::KvaeSynthetic => "kvae-synthetic",
        Experiment::KvaeMnist => "kvae-mnist",
        Experiment::KvaeFixedPoint => "kvae-fixed-point",
        Experiment::FidClassifier => "fid-classifier",
        Experiment::Novelty => "novelty",
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(default_name));
    let started = Instant::now();
    let mut markdown = match args.name {
        Experiment::KvaeSynthetic => {
            let settings = if args.quick {
                synthetic::Settings::quick()
            } else {
                synthetic::Settings::full()
            };
            synthetic::run(&out, &settings, args.seed, &device)?.markdown
        }
        Experiment::KvaeMnist => {
            let mut settings = if args.quick {
                mnist::Settings::quick()
            } else if args.paper_schedule {
                mnist::Settings::paper()
            } else {
                mnist::Settings::full()
            };
            if let Some(r) = args.rounds {
                settings.rounds = r;
            }
            if let Some(p) = args.pretrain {
                settings.pretrain = p;
            }
            if let Some(r) = args.score_rule {
                settings.score_rule = r;
            }
            if let Some(w) = args.disc_warmup_epochs {
                settings.disc_warmup_epochs = w;
            }
            if args.plain_fakes {
                settings.sharpen_fakes = false;
            }
            if args.no_batch_norm {
                settings.batch_norm = false;
            }
            if args.dense_disc {
                settings.conv_disc = false;
            }
            settings.resume = args.resume;
            mnist::run(&out, &args.data, &settings, args.seed, &device)?.markdown
        }
        Experiment::KvaeFixedPoint => {
            let settings = if args.quick {
                fixed_point::Settings::quick()
            } else {
                fixed_point::Settings::full()
            };
            fixed_point::run(&out, &args.data, &settings, args.seed, &device)?.markdown
        }
        Experiment::FidClassifier => train_fid_classifier(args, &device)?,
        Experiment::Novelty => {
            let settings = if args.quick {
                novelty::Settings::quick()
            } else {
                novelty::Settings::full()
            };
            let md = novelty::run(
                &args.run,
                &args.data,
                args.sklearn.as_deref(),
                &settings,
                args.seed,
            )?;
            std::fs::create_dir_all(&out)?;
            md
        }
    };
    markdown.push_str(&format!(
        "\nWall time of the whole experiment: {:.1} s.\n",
        started.elapsed().as_secs_f64()
    ));
    if args.name != Experiment::FidClassifier {
        std::fs::write(out.join(format!("{default_name}.md")), &markdown)?;
    }
    println!("{markdown}");
    if args.name != Experiment::FidClassifier {
        eprintln!("experiment {default_name}: results in {}", out.display());
    }
    Ok(markdown)
}

fn train_fid_classifier(args: &ExperimentArgs, device: &Device) -> anyhow::Result<String> {
    let mut mnist = Mnist::load(&args.data)?;
    let epochs = if args.quick {
        mnist.limit_train(2000);
        1
    } else {
        2
    };
    let train = Points::from_images(&mnist.train_images);
    let test = Points::from_images(&mnist.test_images);
    let (net, params) = crate::eval::fid::train_classifier(
        &train,
        &mnist.train_labels,
        epochs,
        args.seed,
        device,
        &mut |e, loss| {
            eprintln!(
                "fid-classifier: epoch {}/{epochs}: mean cross-entropy {loss:.4}",
                e + 1
            );
        },
    )?;
    let acc = net.accuracy(&test, &mnist.test_labels, device)?;
    if let Some(dir) = args.weights.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = crate::util::temp_path(&args.weights);
    candle_core::safetensors::save(&params.tensors(), &tmp)?;
    std::fs::rename(&tmp, &args.weights)?;
    Ok(format!(
        "FID classifier: {} training images, {epochs} epochs, seed {}; test accuracy {:.4}; weights in {}\n",
        train.n,
        args.seed,
        acc,
        args.weights.display()
    ))
}

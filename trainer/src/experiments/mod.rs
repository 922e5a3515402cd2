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
//! - `fid-classifier`: retrains the FID feature classifier (its weights are
//!   committed; rerunning replaces them and changes every FID).

pub mod fixed_point;
pub mod mnist;
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
    #[arg(long)]
    pub quick: bool,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// fid-classifier: where to write the weights.
    #[arg(long, default_value = "trainer/assets/fid_classifier.safetensors")]
    pub weights: PathBuf,
}

/// Runs an experiment, printing its tables; returns the markdown written.
pub fn run(args: &ExperimentArgs) -> anyhow::Result<String> {
    let device = Device::Cpu;
    let default_name = match args.name {
        Experiment::KvaeSynthetic => "kvae-synthetic",
        Experiment::KvaeMnist => "kvae-mnist",
        Experiment::KvaeFixedPoint => "kvae-fixed-point",
        Experiment::FidClassifier => "fid-classifier",
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
            let settings = if args.quick {
                mnist::Settings::quick()
            } else {
                mnist::Settings::full()
            };
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

//! `trainer fit` for any method: from a configuration (or a run directory
//! to resume) to a trained, exported, evaluated model.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::Device;

use super::method::{Data, Method, MethodConfig, RunContext};
use super::trainer::{epochs_done, has_checkpoint, Outcome, Trainer};
use crate::data::{Mnist, Split};
use crate::util::write_atomic;

/// Options of a fit that are not part of the model's definition.
#[derive(Debug, Clone)]
pub struct FitOptions {
    /// MNIST directory.
    pub data: PathBuf,
    /// Run directory (None: a fresh `runs/<name>-N`).
    pub out: Option<PathBuf>,
    /// Continue the run in this directory.
    pub resume: Option<PathBuf>,
    /// With `resume`: a new total of epochs (the method says of what).
    pub epochs: Option<usize>,
    /// Also write the model here.
    pub export: Option<PathBuf>,
    /// Element type of the weights written to `export`.
    pub weights: crate::export::quantize::WeightType,
    /// With `resume`: refuse to train, only export and report (the run
    /// must be finished).
    pub export_only: bool,
    /// Where to train.
    pub device: Device,
    /// Print progress and per-epoch lines.
    pub verbose: bool,
}

/// What a finished fit produced.
#[derive(Debug, Clone)]
pub struct FitResult {
    /// The run directory.
    pub run_dir: PathBuf,
    /// How training ended.
    pub outcome: Outcome,
    /// Path of the exported model (in the run directory).
    pub model: Option<PathBuf>,
}

/// The method that made the run in `dir` (`config.json`'s `method`; runs
/// from before methods were recorded are mixtures).
pub fn run_method(dir: &Path) -> anyhow::Result<String> {
    let value = read_config_value(dir)?;
    Ok(value
        .get("method")
        .and_then(|m| m.as_str())
        .unwrap_or("mixture")
        .to_string())
}

fn read_config_value(dir: &Path) -> anyhow::Result<serde_json::Value> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))
}

/// A run directory's configuration for method `M`.
pub fn read_config<M: Method>(dir: &Path) -> anyhow::Result<M::Config> {
    let path = dir.join("config.json");
    let value = read_config_value(dir)?;
    serde_json::from_value(value)
        .with_context(|| format!("{}: not a {} configuration", path.display(), M::NAME))
}

fn write_config<M: Method>(dir: &Path, cfg: &M::Config) -> anyhow::Result<()> {
    let mut value = serde_json::to_value(cfg)?;
    if let Some(map) = value.as_object_mut() {
        map.insert("method".into(), M::NAME.into());
    }
    write_atomic(
        &dir.join("config.json"),
        serde_json::to_string_pretty(&value)?.as_bytes(),
    )
}

fn fresh_run_dir(name: &str) -> PathBuf {
    (1..)
        .map(|i| PathBuf::from("runs").join(format!("{name}-{i}")))
        .find(|p| !p.exists())
        .expect("an unused run directory name")
}

/// The training and test images, the training set cut to `limit`.
pub fn load_data(dir: &Path, limit: Option<usize>) -> anyhow::Result<Data> {
    let mut mnist = Mnist::load(dir)?;
    if let Some(n) = limit {
        if n == 0 {
            bail!("--limit must be positive");
        }
        mnist.limit_train(n);
    }
    Ok(Data {
        train: Split {
            n: mnist.train_images.n,
            pixels: mnist.train_images.pixels,
            labels: mnist.train_labels,
        },
        test: Split {
            n: mnist.test_images.n,
            pixels: mnist.test_images.pixels,
            labels: mnist.test_labels,
        },
    })
}

/// Runs `trainer fit` with method `M`: `cfg` for a new run, `None` with
/// `opts.resume`. `set_epochs` applies `opts.epochs` to a resumed run's
/// configuration.
pub fn fit<M: Method>(
    cfg: Option<M::Config>,
    opts: &FitOptions,
    set_epochs: impl Fn(&mut M::Config, usize),
) -> anyhow::Result<FitResult> {
    let (cfg, run_dir, resume) = match &opts.resume {
        Some(dir) => {
            if !has_checkpoint(dir) {
                bail!(
                    "{}: no checkpoint to resume (needs checkpoint.safetensors and state.json)",
                    dir.display()
                );
            }
            // A run directory from before the one loop gets its one-line
            // hint here, before its configuration (whose names changed too)
            // is read.
            epochs_done(dir)?;
            let mut cfg = read_config::<M>(dir)?;
            if let Some(e) = opts.epochs {
                set_epochs(&mut cfg, e);
            }
            (cfg, dir.clone(), true)
        }
        None => {
            let cfg = cfg.context("no configuration")?;
            let dir = opts
                .out
                .clone()
                .unwrap_or_else(|| fresh_run_dir(&cfg.run_name()));
            if has_checkpoint(&dir) {
                bail!(
                    "{}: already holds a run (continue it with --resume, or choose another --out)",
                    dir.display()
                );
            }
            (cfg, dir, false)
        }
    };
    cfg.validate()?;
    let data = load_data(&opts.data, cfg.limit())?;
    std::fs::create_dir_all(&run_dir)
        .with_context(|| format!("{}: cannot create", run_dir.display()))?;
    write_config::<M>(&run_dir, &cfg)?;
    if opts.verbose {
        println!(
            "run directory {} | {} training images | {}",
            run_dir.display(),
            data.train.n,
            cfg.describe()
        );
    }
    let ctx = RunContext {
        run_dir: run_dir.clone(),
        device: opts.device.clone(),
        verbose: opts.verbose,
    };
    let method = M::new(&cfg, &data, &ctx)?;
    let mut trainer = Trainer::new(cfg, method, data, run_dir.clone(), resume)?;
    trainer.verbose = opts.verbose;
    if opts.export_only {
        let done = trainer.state.epoch;
        let total = trainer.method.epochs();
        if done < total {
            bail!(
                "{}: the run stopped after epoch {done} of {total}: finish it with `trainer fit --resume {}` first",
                run_dir.display(),
                run_dir.display()
            );
        }
    }
    if opts.verbose {
        println!("{} parameters", trainer.method.parameters());
    }
    let stop = trainer.stop.clone();
    // Only one handler per process; a second fit in the same process (tests)
    // keeps the first, which is harmless.
    let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    let started = Instant::now();
    let outcome = trainer.run()?;
    if outcome == Outcome::Interrupted {
        return Ok(FitResult {
            run_dir,
            outcome,
            model: None,
        });
    }
    let model = super::report::finish(
        &trainer,
        started.elapsed().as_secs_f64(),
        opts.export.as_deref(),
        opts.weights,
    )?;
    Ok(FitResult {
        run_dir,
        outcome,
        model: Some(model),
    })
}

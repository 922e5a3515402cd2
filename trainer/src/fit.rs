//! `trainer fit`: from a configuration (or a run directory to resume) to a
//! trained, exported, evaluated model.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::config::{FitConfig, Start};
use crate::data::Mnist;
use crate::metrics::evaluate;
use crate::train::{Outcome, Split, Trainer};
use crate::util::write_atomic;

/// Options of a fit that are not part of the model's definition.
#[derive(Debug, Clone)]
pub struct FitOptions {
    /// MNIST directory.
    pub data: PathBuf,
    /// Run directory (None: a fresh `runs/<preset>-N`).
    pub out: Option<PathBuf>,
    /// Continue the run in this directory.
    pub resume: Option<PathBuf>,
    /// With `resume`: a new total of mixture epochs.
    pub epochs: Option<usize>,
    /// Also write the model here.
    pub export: Option<PathBuf>,
    /// Element type of the weights written to `export`.
    pub weights: crate::quantize::WeightType,
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

/// `partition.json`: a label-free cluster index per training image.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PartitionFile {
    k: usize,
    assignment: Vec<usize>,
}

/// The device named on the command line.
pub fn device(name: &str) -> anyhow::Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" => {
            if !candle_core::utils::cuda_is_available() {
                bail!("--device cuda: this trainer was built without CUDA (rebuild with `--features cuda`)");
            }
            Device::new_cuda(0).map_err(|e| anyhow::anyhow!("--device cuda: {e}"))
        }
        other => bail!("--device must be cpu or cuda, got {other}"),
    }
}

fn fresh_run_dir(cfg: &FitConfig) -> PathBuf {
    let base = format!("{:?}", cfg.preset).to_lowercase();
    (1..)
        .map(|i| PathBuf::from("runs").join(format!("{base}-{i}")))
        .find(|p| !p.exists())
        .expect("an unused run directory name")
}

fn load_data(opts: &FitOptions, cfg: &FitConfig) -> anyhow::Result<(Split, Split)> {
    let mut mnist = Mnist::load(&opts.data)?;
    if let Some(n) = cfg.limit {
        if n == 0 {
            bail!("--limit must be positive");
        }
        mnist.limit_train(n);
    }
    let train = Split {
        n: mnist.train_images.n,
        pixels: mnist.train_images.pixels,
        labels: mnist.train_labels,
    };
    let test = Split {
        n: mnist.test_images.n,
        pixels: mnist.test_images.pixels,
        labels: mnist.test_labels,
    };
    Ok((train, test))
}

fn partition(
    cfg: &FitConfig,
    train: &Split,
    run_dir: &Path,
    verbose: bool,
) -> anyhow::Result<Vec<usize>> {
    let path = run_dir.join("partition.json");
    if path.is_file() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let p: PartitionFile = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a partition", path.display()))?;
        if p.k != cfg.arch.experts
            || p.assignment.len() != train.n
            || p.assignment.iter().any(|&c| c >= p.k)
        {
            bail!(
                "{}: does not match this run's data or experts",
                path.display()
            );
        }
        return Ok(p.assignment);
    }
    let Start::Partition {
        ae_epochs,
        max_points,
        cluster,
        ..
    } = cfg.start
    else {
        bail!("this configuration has no partition step");
    };
    let start = Instant::now();
    let pcfg = crate::partition::PartitionConfig {
        k: cfg.arch.experts,
        seed: cfg.seed,
        ae_epochs,
        max_points,
        method: cluster,
        ..Default::default()
    };
    let progress = |msg: &str| {
        if verbose {
            eprintln!("partition: {msg}");
        }
    };
    let p = crate::partition::initial_partition(&train.pixels, train.n, &pcfg, &progress)?;
    if p.k != cfg.arch.experts
        || p.assignment.len() != train.n
        || p.assignment.iter().any(|&c| c >= p.k)
    {
        bail!("the initial partition returned a malformed assignment");
    }
    if verbose {
        // Labels score the partition for the user; they do not change it.
        let ev = evaluate(&p.assignment, &train.labels, p.k);
        println!(
            "initial partition: {:.1} s, training-set {}",
            start.elapsed().as_secs_f64(),
            ev.summary()
        );
    }
    let file = PartitionFile {
        k: p.k,
        assignment: p.assignment,
    };
    write_atomic(&path, serde_json::to_string(&file)?.as_bytes())?;
    Ok(file.assignment)
}

/// Runs `trainer fit`.
pub fn fit(cfg: Option<FitConfig>, opts: &FitOptions) -> anyhow::Result<FitResult> {
    let (cfg, run_dir, resume) = match &opts.resume {
        Some(dir) => {
            if !Trainer::has_checkpoint(dir) {
                bail!(
                    "{}: no checkpoint to resume (needs checkpoint.safetensors and state.json)",
                    dir.display()
                );
            }
            let path = dir.join("config.json");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("{}: cannot read", path.display()))?;
            let mut cfg: FitConfig = serde_json::from_str(&text)
                .with_context(|| format!("{}: not a trainer configuration", path.display()))?;
            if let Some(e) = opts.epochs {
                cfg.epochs = e;
            }
            if opts.export_only {
                let done = Trainer::epochs_done(dir)?;
                if done < cfg.total_epochs() {
                    bail!(
                        "{}: the run stopped after epoch {done} of {}: finish it with `trainer fit --resume {}` first",
                        dir.display(),
                        cfg.total_epochs(),
                        dir.display()
                    );
                }
            }
            (cfg, dir.clone(), true)
        }
        None => {
            let cfg = cfg.context("no configuration")?;
            let dir = opts.out.clone().unwrap_or_else(|| fresh_run_dir(&cfg));
            if Trainer::has_checkpoint(&dir) {
                bail!(
                    "{}: already holds a run (continue it with --resume, or choose another --out)",
                    dir.display()
                );
            }
            (cfg, dir, false)
        }
    };
    cfg.validate()?;
    let (train, test) = load_data(opts, &cfg)?;
    std::fs::create_dir_all(&run_dir)
        .with_context(|| format!("{}: cannot create", run_dir.display()))?;
    write_atomic(
        &run_dir.join("config.json"),
        serde_json::to_string_pretty(&cfg)?.as_bytes(),
    )?;
    if opts.verbose {
        println!(
            "run directory {} | {} training images | preset {:?} | seed {}",
            run_dir.display(),
            train.n,
            cfg.preset,
            cfg.seed
        );
    }
    let assignment = if Trainer::needs_partition(&cfg) && cfg.pretrain_epochs() > 0 {
        Some(partition(&cfg, &train, &run_dir, opts.verbose)?)
    } else {
        None
    };
    let mut trainer = Trainer::new(
        cfg,
        opts.device.clone(),
        train,
        test,
        assignment,
        run_dir.clone(),
        resume,
    )?;
    trainer.verbose = opts.verbose;
    if opts.verbose {
        println!("{} parameters", trainer.params.count());
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
    let model = crate::report::finish(
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

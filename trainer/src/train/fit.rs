//! `trainer fit` for any method: from a configuration (or a run directory
//! to resume) to a trained, exported, evaluated model.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::Device;

use super::method::{Data, Method, MethodConfig, RunContext};
use super::trainer::{epochs_done, has_checkpoint, Outcome, Trainer};
use crate::data::{holdout, Invert, ReadOptions, Split};
use crate::util::write_atomic;

/// Where a run's images come from and how they are read: `trainer fit`'s
/// data flags, saved in the run directory as `data.json` so that a resumed
/// or re-exported run reads the same images without being told again.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DataOptions {
    /// `--data`: any image set (see [`crate::data`]).
    pub data: PathBuf,
    /// `--test`: a separate test set.
    #[serde(default)]
    pub test: Option<PathBuf>,
    /// `--labels`: labels for an IDX or `.npy` images file.
    #[serde(default)]
    pub labels: Option<PathBuf>,
    /// `--size WxH` of a CSV or 2-D `.npy`.
    #[serde(default)]
    pub size: Option<(usize, usize)>,
    /// `--invert`.
    #[serde(default)]
    pub invert: Invert,
    /// `--test-fraction`: held out for scoring when there is no test set.
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
    /// `--frame mnist` (`--frame-size WxH`): every image framed
    /// MNIST-style into this size, its polarity settled image by image.
    #[serde(default)]
    pub frame: Option<(usize, usize)>,
}

fn default_test_fraction() -> f64 {
    0.1
}

impl Default for DataOptions {
    fn default() -> Self {
        DataOptions {
            data: PathBuf::from("data/mnist"),
            test: None,
            labels: None,
            size: None,
            invert: Invert::Auto,
            test_fraction: default_test_fraction(),
            frame: None,
        }
    }
}

impl DataOptions {
    /// The run directory's `data.json`, if it has one.
    pub fn of_run(dir: &Path) -> anyhow::Result<Option<DataOptions>> {
        let path = dir.join("data.json");
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("{}: not a data description", path.display()))
    }

    fn save(&self, dir: &Path) -> anyhow::Result<()> {
        write_atomic(
            &dir.join("data.json"),
            serde_json::to_string_pretty(self)?.as_bytes(),
        )
    }

    fn read_options(&self) -> ReadOptions {
        ReadOptions {
            labels: self.labels.clone(),
            size: self.size,
            frame: self
                .frame
                .map(|(width, height)| crate::data::framing::Framing {
                    width,
                    height,
                    invert: self.invert,
                }),
        }
    }
}

/// Options of a fit that are not part of the model's definition.
#[derive(Debug, Clone)]
pub struct FitOptions {
    /// The images (`None`: the resumed run's `data.json`, else MNIST).
    pub data: Option<DataOptions>,
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
    /// Fit a novelty score on the training images and write it into the
    /// model files (`engine/FORMAT.md`, *Novelty*).
    pub novelty: bool,
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

/// The training and test images `opts` name, polarity settled, the
/// training set cut to `limit`; `log` receives what was read and decided.
pub fn load_data(
    opts: &DataOptions,
    limit: Option<usize>,
    log: &dyn Fn(&str),
) -> anyhow::Result<Data> {
    if !(opts.test_fraction > 0.0 && opts.test_fraction < 1.0) {
        bail!(
            "--test-fraction must be between 0 and 1 (exclusive), got {}",
            opts.test_fraction
        );
    }
    let sets = crate::data::read_sets(&opts.data, opts.test.as_deref(), &opts.read_options())?;
    let mut train = sets.train;
    let image = train.shape()?;
    log(&train.describe());
    let (inverted, why) = match opts.frame {
        // Framing settled each image's polarity already.
        Some((w, h)) => (
            false,
            format!(
                "settled image by image (--invert {:?}), then framed MNIST-style into {w}x{h}",
                opts.invert
            )
            .to_lowercase(),
        ),
        None => opts.invert.decide(&train.images),
    };
    log(&format!("polarity: {why}"));
    let mut test = sets.test;
    if inverted {
        crate::data::polarity::invert(&mut train.images);
        if let Some(t) = &mut test {
            crate::data::polarity::invert(&mut t.images);
        }
    }
    let class_names = train.labels.as_ref().and_then(|l| l.names.clone());
    let to_split = |set: crate::data::Dataset| Split {
        n: set.images.n,
        pixels: set.images.pixels,
        labels: set.labels.map(|l| l.values),
    };
    let train_source = train.source.display().to_string();
    let (mut train, test, test_source) = match test {
        Some(t) => {
            log(&t.describe());
            let source = t.source.display().to_string();
            (to_split(train), to_split(t), source)
        }
        None => {
            if train.images.n < 2 {
                bail!(
                    "{}: one image cannot be split into training and test images",
                    train.source.display()
                );
            }
            let all = to_split(train);
            let (tr, te) = holdout(&all, opts.test_fraction);
            let source = format!(
                "{} images held out of {train_source} (--test-fraction {})",
                te.n, opts.test_fraction
            );
            log(&format!("test set: {source}"));
            (tr, te, source)
        }
    };
    if let Some(n) = limit {
        if n == 0 {
            bail!("--limit must be positive");
        }
        train.n = train.n.min(n);
        train.pixels.truncate(train.n * image.pixels());
        if let Some(l) = &mut train.labels {
            l.truncate(train.n);
        }
    }
    Ok(Data {
        train,
        test,
        image,
        class_names,
        train_source,
        test_source,
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
    let data_opts = match (&opts.data, resume) {
        (Some(d), _) => d.clone(),
        (None, true) => DataOptions::of_run(&run_dir)?.unwrap_or_default(),
        (None, false) => DataOptions::default(),
    };
    let verbose = opts.verbose;
    let data = load_data(&data_opts, cfg.limit(), &|line| {
        if verbose {
            println!("{line}");
        }
    })?;
    let mut cfg = cfg;
    if resume {
        if cfg.image() != data.image {
            bail!(
                "{}: the run was trained on {}x{} images, {} holds {}x{}",
                run_dir.display(),
                cfg.image().width,
                cfg.image().height,
                data_opts.data.display(),
                data.image.width,
                data.image.height
            );
        }
    } else {
        cfg.set_image(data.image);
    }
    cfg.validate()?;
    if data.train.n < cfg.experts() {
        bail!(
            "{}: {} training images for {} experts (each expert needs images to learn from: lower --experts)",
            data_opts.data.display(),
            data.train.n,
            cfg.experts()
        );
    }
    std::fs::create_dir_all(&run_dir)
        .with_context(|| format!("{}: cannot create", run_dir.display()))?;
    write_config::<M>(&run_dir, &cfg)?;
    data_opts.save(&run_dir)?;
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
        opts.novelty,
    )?;
    Ok(FitResult {
        run_dir,
        outcome,
        model: Some(model),
    })
}

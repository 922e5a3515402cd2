//! The command line of `trainer`: one subcommand per job, `fit`'s flags
//! per method ([`fit`]), every bad input a one-line error.

pub mod fit;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use candle_core::Device;
use clap::{Args, Parser, Subcommand};

use crate::methods::hierarchical::Hierarchical;
use crate::methods::kvae::method::KVae;
use crate::methods::mixture::Mixture;
use crate::methods::MethodName;
use crate::train::{FitOptions, Outcome};
use fit::FitArgs;

#[derive(Parser)]
#[command(
    name = "trainer",
    version,
    about = "Learns, without labels, a mixture of VAE experts that clusters MNIST digits, and exports it as model.bin for the no_std engine."
)]
pub struct Cli {
    #[command(subcommand)]
    /// What to do.
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Train a model: a mixture of VAE experts (the default) or kVAE
    /// (labels are used only to score and to name clusters).
    Fit(Box<FitArgs>),
    /// Score a model.bin (through the engine) on the MNIST test set: ACC, NMI, ARI, sizes, confusion;
    /// given a run directory, score its f32 model beside its f16 and int8 exports.
    Eval(EvalArgs),
    /// Write a PNG grid of generated digits, one column per expert.
    Sample(SampleArgs),
    /// Describe what is inside a model file.
    Inspect(InspectArgs),
    /// Export a finished run again without training (e.g. with int8 weights),
    /// and compare f32, f16 and int8 on the test set.
    Export(ExportArgs),
    /// Run an experiment (kvae-synthetic, kvae-mnist, kvae-fixed-point): tables and figures into a run directory.
    Experiment(crate::experiments::ExperimentArgs),
    /// Read an image set as `fit --data` reads it and describe it: count,
    /// size, labels, the polarity decision, the time it took.
    Data(DataArgs),
}

/// How `trainer eval` and `trainer data` read an image set beyond its path.
#[derive(Args)]
pub struct ReadArgs {
    /// Labels for an IDX or .npy images file.
    #[arg(long, value_name = "PATH")]
    pub labels: Option<PathBuf>,
    /// Image size of a CSV or an N x (H*W) .npy whose rows are not square.
    #[arg(long, value_name = "WxH", value_parser = crate::data::parse_size)]
    pub size: Option<(usize, usize)>,
    /// Polarity (see `trainer fit --help`).
    #[arg(long, value_enum, default_value = "auto")]
    pub invert: crate::data::Invert,
}

impl ReadArgs {
    /// The reader's options (no framing).
    pub fn options(&self) -> crate::data::ReadOptions {
        crate::data::ReadOptions {
            labels: self.labels.clone(),
            size: self.size,
            frame: None,
        }
    }
}

#[derive(Args)]
pub struct DataArgs {
    /// The image set, in any form `trainer fit --data` reads (see `trainer fit --help`).
    pub path: PathBuf,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Args)]
pub struct EvalArgs {
    /// A model.bin, or a run directory (then f32, f16 and int8 side by side).
    #[arg(long)]
    pub model: PathBuf,
    /// The images to score on, in any form `trainer fit --data` reads (a
    /// directory of MNIST's files gives its t10k test set) [default:
    /// data/mnist; for a run directory, the run's own test set].
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Args)]
pub struct SampleArgs {
    /// A model.bin, or a run directory holding one.
    #[arg(long)]
    pub model: PathBuf,
    /// Output PNG.
    #[arg(long)]
    pub out: PathBuf,
    /// Samples per expert (rows; for a two-level model, per style).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub per_expert: u64,
    /// Seed of the first sample.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["run", "model"])))]
pub struct ExportArgs {
    /// A finished run directory (holding checkpoint.safetensors and state.json).
    #[arg(long, value_name = "RUN_DIR")]
    pub run: Option<PathBuf>,
    /// Or a model file with f16 weights, written again with a novelty score
    /// fitted on the training images of --data (default: the bundled
    /// MNIST); its networks are kept exactly (as f16, or quantized to
    /// int8 with --weights int8).
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// The model file to write (atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// Element type of the weights.
    #[arg(long, value_enum, default_value = "f16")]
    pub weights: crate::export::quantize::WeightType,
    /// Write no novelty score (a flat model then stays a version-2 file,
    /// which engines older than the novelty score read).
    #[arg(long)]
    pub no_novelty: bool,
    /// The images for calibration and scoring, as `trainer fit --data`
    /// [default: the run's own, from its data.json].
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// No per-step output.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct InspectArgs {
    /// The model file.
    pub file: PathBuf,
}

/// The device named on the command line.
pub fn device(name: &str) -> anyhow::Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" => {
            if !candle_core::utils::cuda_is_available() {
                bail!("--device cuda: this trainer was built without CUDA (rebuild with `--features cuda`)");
            }
            Device::new_cuda(0)
                .map_err(|e| anyhow::anyhow!("--device cuda: {}", crate::util::candle_message(&e)))
        }
        other => bail!("--device must be cpu or cuda, got {other}"),
    }
}

/// The method that made the run in `dir`.
fn method_of_run(dir: &std::path::Path) -> anyhow::Result<MethodName> {
    let name = crate::train::fit::run_method(dir)?;
    MethodName::parse(&name).with_context(|| {
        format!(
            "{}: made by an unknown method {name:?}",
            dir.join("config.json").display()
        )
    })
}

/// Trains (or, with `export_only`, re-exports) a run with its method.
fn fit_run(
    method: MethodName,
    args: Option<&FitArgs>,
    opts: &FitOptions,
) -> anyhow::Result<crate::train::FitResult> {
    match method {
        MethodName::Mixture => {
            let cfg = args.map(FitArgs::mixture_config).transpose()?;
            crate::train::fit::<Mixture>(cfg, opts, |c, e| c.epochs = e)
        }
        MethodName::Kvae => {
            let cfg = args.map(FitArgs::kvae_config).transpose()?;
            crate::train::fit::<KVae>(cfg, opts, |_, _| {})
        }
        MethodName::Hierarchical => {
            let cfg = args.map(FitArgs::hierarchical_config).transpose()?;
            crate::train::fit::<Hierarchical>(cfg, opts, |c, e| c.mixture.epochs = e)
        }
    }
}

fn model_path(p: PathBuf) -> PathBuf {
    if p.is_dir() {
        p.join("model.bin")
    } else {
        p
    }
}

/// Exports a finished run again from its checkpoint (no training) and
/// writes its report: `trainer export`, and `trainer eval` of a run directory.
fn export_run(
    run: &std::path::Path,
    data: Option<&std::path::Path>,
    export: Option<PathBuf>,
    weights: crate::export::quantize::WeightType,
    novelty: bool,
    verbose: bool,
) -> anyhow::Result<()> {
    // Another set for the run's own: read as the run read its own.
    let data = data.map(|d| {
        let own = crate::train::DataOptions::of_run(run)
            .ok()
            .flatten()
            .unwrap_or_default();
        crate::train::DataOptions {
            data: d.to_path_buf(),
            test: None,
            ..own
        }
    });
    let opts = FitOptions {
        data,
        out: None,
        resume: Some(run.to_path_buf()),
        epochs: None,
        export,
        weights,
        novelty,
        export_only: true,
        device: Device::Cpu,
        verbose,
    };
    fit_run(method_of_run(run)?, None, &opts)?;
    Ok(())
}

/// `trainer export --model FILE`: the file's networks again (f16 exactly,
/// or quantized to int8), with a novelty score fitted on the training
/// images of `--data` unless `--no-novelty`.
fn export_file(a: &ExportArgs) -> anyhow::Result<()> {
    use crate::export::quantize::encode;
    let Some(model) = &a.model else {
        bail!("give --run RUN_DIR or --model FILE");
    };
    let (path, bytes) = read_model(model.clone())?;
    let parsed = crate::eval::host::parse(&bytes, &path.display().to_string())?;
    if parsed.element_type() != engine::ElementType::F16 {
        bail!(
            "{}: has int8 weights; give the f16 file (quantizing int8 weights again would change them)",
            path.display()
        );
    }
    let mut spec = engine::writer::TwoLevelSpec::from_bytes(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let opts = crate::train::DataOptions {
        data: a
            .data
            .clone()
            .unwrap_or_else(|| crate::train::DataOptions::default().data),
        ..Default::default()
    };
    let log = |line: &str| {
        if !a.quiet {
            eprintln!("{line}");
        }
    };
    let data = crate::train::fit::load_data(&opts, None, &log)?;
    if data.image != spec.model.image {
        bail!(
            "{}: images of {}x{}, the model reads {}x{}",
            opts.data.display(),
            data.image.width,
            data.image.height,
            spec.model.image.width,
            spec.model.image.height
        );
    }
    spec.novelty = None;
    if !a.no_novelty {
        log(&format!(
            "novelty score: fitting on {} training images",
            data.train.n
        ));
        let fitted = crate::export::novelty::fit(&spec, &data.train.pixels, data.train.n)?;
        log(&format!(
            "novelty score: {:.2}% of the training images flagged (thresholds at quantile {:.4})",
            100.0 * fitted.flagged,
            fitted.quantile
        ));
        spec.novelty = Some(fitted.spec);
    }
    let out = encode(&spec, a.weights, &data.train.pixels)?;
    crate::export::write_bytes(&out, &a.out)?;
    log(&format!(
        "wrote {} ({} weights, format version {}, {} bytes)",
        a.out.display(),
        a.weights.name(),
        crate::eval::host::parse(&out, "written model")?
            .repr()
            .version(),
        out.len()
    ));
    Ok(())
}

fn read_model(p: PathBuf) -> anyhow::Result<(PathBuf, Vec<u8>)> {
    let p = model_path(p);
    let bytes = std::fs::read(&p).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => anyhow::anyhow!("{}: file not found", p.display()),
        _ => anyhow::anyhow!("{}: cannot read: {e}", p.display()),
    })?;
    Ok((p, bytes))
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Experiment(a) => {
            crate::experiments::run(&a)?;
        }
        Command::Fit(a) => {
            // A resumed run keeps the method it was started with.
            let method = match &a.resume {
                Some(dir) if crate::train::has_checkpoint(dir) => method_of_run(dir)?,
                _ => a.method(),
            };
            a.check_flags_for(method)?;
            let opts = FitOptions {
                data: a.data.options(),
                out: a.out.clone(),
                resume: a.resume.clone(),
                epochs: a.mixture.epochs,
                export: a.export.clone(),
                weights: a.weights,
                novelty: !a.no_novelty,
                export_only: false,
                device: device(&a.device)?,
                verbose: !a.quiet,
            };
            let args = a.resume.is_none().then_some(a.as_ref());
            let r = fit_run(method, args, &opts)?;
            if r.outcome == Outcome::Interrupted {
                eprintln!(
                    "interrupted: checkpoint saved; continue with `trainer fit --resume {}`",
                    r.run_dir.display()
                );
                return Ok(ExitCode::from(130));
            }
        }
        Command::Export(a) if a.model.is_some() => export_file(&a)?,
        Command::Export(a) => {
            let Some(run) = &a.run else {
                bail!("give --run RUN_DIR or --model FILE");
            };
            if !crate::train::has_checkpoint(run) {
                bail!(
                    "{}: not a run directory (needs checkpoint.safetensors and state.json)",
                    run.display()
                );
            }
            export_run(
                run,
                a.data.as_deref(),
                Some(a.out.clone()),
                a.weights,
                !a.no_novelty,
                !a.quiet,
            )?;
        }
        Command::Eval(a) if crate::train::has_checkpoint(&a.model) => {
            // A run directory: its f32 model from the checkpoint, scored
            // beside both of its exports (model.bin, model-int8.bin, written
            // again from that checkpoint: the same bytes).
            export_run(
                &a.model,
                a.data.as_deref(),
                None,
                Default::default(),
                true,
                true,
            )?;
        }
        Command::Eval(a) => {
            let (path, bytes) = read_model(a.model)?;
            let what = path.display().to_string();
            let model = crate::eval::host::parse(&bytes, &what)?;
            let data = a.data.unwrap_or_else(|| PathBuf::from("data/mnist"));
            let read = a.read.options();
            let (set, polarity) = crate::data::read_for_model(
                &data,
                crate::data::Part::Test,
                &read,
                a.read.invert,
                model.header().image,
            )?;
            let images = &set.images;
            let pred = crate::eval::host::predict(&model, &images.pixels, images.n)?;
            println!(
                "{what} on {} test images (engine, {} weights)",
                images.n,
                model.element_type().name()
            );
            println!("{}; polarity: {polarity}", set.describe());
            let Some(labels) = set.labels.map(|l| l.values) else {
                let mut sizes = vec![0usize; model.experts()];
                for &c in &pred {
                    sizes[c] += 1;
                }
                println!("cluster sizes {sizes:?}");
                println!("no labels: nothing to score (give a labelled set, or --labels)");
                return Ok(ExitCode::SUCCESS);
            };
            let ev = crate::eval::metrics::evaluate(&pred, &labels, model.experts());
            println!("{}", ev.summary());
            println!("cluster sizes {:?}", ev.sizes);
            if let Some(map) = &model.header().label_map {
                let correct = pred
                    .iter()
                    .zip(&labels)
                    .filter(|(&c, &l)| map.get(c) == Some(&l))
                    .count();
                println!(
                    "accuracy of the model's own label map: {:.4}",
                    correct as f64 / images.n.max(1) as f64
                );
            }
            println!("\n{}", ev.confusion_table());
        }
        Command::Sample(a) => {
            let (path, bytes) = read_model(a.model)?;
            let model = crate::eval::host::parse(&bytes, &path.display().to_string())?;
            let image = model.header().image;
            let rows = a.per_expert as usize;
            let most = (0..model.experts())
                .map(|c| model.styles(c))
                .max()
                .unwrap_or(1);
            // A two-level model: one column per cluster, its styles beneath.
            let (tiles, title) = if most > 1 {
                (
                    crate::eval::host::style_tiles(&model, rows, a.seed)?,
                    format!("One column per cluster; {rows} rows per style, style 0 on top (blank: the cluster has fewer styles)"),
                )
            } else {
                (
                    crate::eval::host::sample_tiles(&model, rows, a.seed)?,
                    String::new(),
                )
            };
            crate::eval::pictures::save_labelled_grid(
                &a.out,
                &title,
                &tiles,
                model.experts(),
                (image.width as usize, image.height as usize),
                &crate::eval::pictures::cluster_headers(
                    model.experts(),
                    model.header().label_map.as_deref(),
                    None,
                ),
            )
            .with_context(|| format!("{}", a.out.display()))?;
            println!(
                "wrote {} ({} experts x {} samples{})",
                a.out.display(),
                model.experts(),
                a.per_expert,
                if most > 1 { " per style" } else { "" }
            );
        }
        Command::Data(a) => {
            let started = std::time::Instant::now();
            let read = a.read.options();
            let set = crate::data::read_set(&a.path, crate::data::Part::Train, &read)?;
            let seconds = started.elapsed().as_secs_f64();
            println!("{}", set.describe());
            println!("polarity: {}", a.read.invert.decide(&set.images).1);
            if let Some(labels) = &set.labels {
                let mut counts = std::collections::BTreeMap::new();
                for &v in &labels.values {
                    *counts.entry(v).or_insert(0usize) += 1;
                }
                let list: Vec<String> = counts
                    .iter()
                    .map(|(v, n)| format!("{}: {n}", labels.name(*v)))
                    .collect();
                println!("images per label: {}", list.join(", "));
            }
            println!(
                "read in {seconds:.3} s ({:.0} images/s, {} MB of pixels)",
                set.images.n as f64 / seconds.max(1e-9),
                set.images.pixels.len() / 1_000_000
            );
        }
        Command::Inspect(a) => {
            let (path, bytes) = read_model(a.file)?;
            let model = crate::eval::host::parse(&bytes, &path.display().to_string())?;
            print!("{}", crate::eval::host::describe(&model, bytes.len()));
        }
    }
    Ok(ExitCode::SUCCESS)
}

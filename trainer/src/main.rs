//! `trainer`: learn a mixture of VAE experts on MNIST without labels, export
//! it as `model.bin`, evaluate it, sample from it, inspect it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use trainer::config::{FitConfig, Preset, Start};
use trainer::method::Likelihood;
use trainer::nets::Act;
use trainer::partition::Method;
use trainer::train::Outcome;

#[derive(Parser)]
#[command(
    name = "trainer",
    version,
    about = "Learns, without labels, a mixture of VAE experts that clusters MNIST digits, and exports it as model.bin for the no_std engine."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a mixture of VAE experts (labels are used only to score and to name clusters).
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
    /// Run an experiment (kvae-synthetic, kvae-mnist): tables and figures into a run directory.
    Experiment(trainer::experiments::ExperimentArgs),
}

#[derive(Args)]
struct FitArgs {
    /// Starting configuration: `default` (tuned, ≤ 1 MiB export) or `blog` (the published method).
    #[arg(long, value_enum, default_value = "default")]
    preset: Preset,
    /// Number of experts K (clusters).
    #[arg(long, conflicts_with = "resume")]
    experts: Option<usize>,
    /// Latent size of each expert.
    #[arg(long, conflicts_with = "resume")]
    latent: Option<usize>,
    /// Sets every hidden width (gate, encoders, decoders) at once.
    #[arg(long, conflicts_with = "resume")]
    hidden: Option<usize>,
    /// Gate hidden widths, comma-separated (e.g. 256 or 256,64).
    #[arg(long, value_delimiter = ',', conflicts_with = "resume")]
    gate_hidden: Option<Vec<usize>>,
    /// Encoder hidden width (encoders are not exported).
    #[arg(long, conflicts_with = "resume")]
    encoder_hidden: Option<usize>,
    /// Decoder hidden widths, comma-separated.
    #[arg(long, value_delimiter = ',', conflicts_with = "resume")]
    decoder_hidden: Option<Vec<usize>>,
    /// Hidden activation.
    #[arg(long, value_enum, conflicts_with = "resume")]
    act: Option<Act>,
    /// Pixel likelihood: `bernoulli`, or `gaussian:STD` (e.g. gaussian:0.5).
    #[arg(long, value_parser = parse_likelihood, conflicts_with = "resume")]
    likelihood: Option<Likelihood>,
    /// Epochs of the mixture objective (with --resume: the new total).
    #[arg(long)]
    epochs: Option<usize>,
    /// Epochs of pretraining on the initial partition (0 = start from random weights).
    #[arg(long, conflicts_with = "resume")]
    pretrain_epochs: Option<usize>,
    /// Autoencoder epochs inside the initial partition step.
    #[arg(long, conflicts_with = "resume")]
    ae_epochs: Option<usize>,
    /// How the initial partition clusters the autoencoder codes.
    #[arg(long, value_enum, conflicts_with = "resume")]
    cluster: Option<Method>,
    /// Batch size.
    #[arg(long, conflicts_with = "resume")]
    batch: Option<usize>,
    /// Adam learning rate (no weight decay).
    #[arg(long, conflicts_with = "resume")]
    lr: Option<f64>,
    /// Weight of the load-balancing term (variance of expert importance).
    #[arg(long, conflicts_with = "resume")]
    balance: Option<f64>,
    /// Random shift of the gate's input in pixels (augmentation; 0 = off).
    #[arg(long, conflicts_with = "resume")]
    shift: Option<usize>,
    /// Random seed: the same seed on the same machine gives the same model.bin.
    #[arg(long, conflicts_with = "resume")]
    seed: Option<u64>,
    /// Train on the first N training images only.
    #[arg(long, conflicts_with = "resume")]
    limit: Option<usize>,
    /// Directory with the four MNIST IDX files (gzipped or not).
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Run directory (default: a new runs/<preset>-N).
    #[arg(long, conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Also write the trained model to this file (atomically).
    #[arg(long)]
    export: Option<PathBuf>,
    /// Element type of the weights in the --export file: f16 (the default),
    /// or int8 (integer inference for microcontrollers without an FPU;
    /// calibrated on training images, no labels). The run directory gets both.
    #[arg(long, value_enum, default_value = "f16")]
    weights: trainer::quantize::WeightType,
    /// Continue the run in this directory from its last checkpoint.
    #[arg(long, value_name = "RUN_DIR")]
    resume: Option<PathBuf>,
    /// cpu, or cuda (needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// No progress bars or per-epoch lines.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    kvae: trainer::kvae::cli::KVaeArgs,
}

#[derive(Args)]
struct EvalArgs {
    /// A model.bin, or a run directory (then f32, f16 and int8 side by side).
    #[arg(long)]
    model: PathBuf,
    /// Directory with the MNIST test files.
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
}

#[derive(Args)]
struct SampleArgs {
    /// A model.bin, or a run directory holding one.
    #[arg(long)]
    model: PathBuf,
    /// Output PNG.
    #[arg(long)]
    out: PathBuf,
    /// Samples per expert (rows).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=64))]
    per_expert: u64,
    /// Seed of the first sample.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args)]
struct ExportArgs {
    /// A finished run directory (holding checkpoint.safetensors and state.json).
    #[arg(long, value_name = "RUN_DIR")]
    run: PathBuf,
    /// The model file to write (atomically).
    #[arg(long)]
    out: PathBuf,
    /// Element type of the weights.
    #[arg(long, value_enum, default_value = "f16")]
    weights: trainer::quantize::WeightType,
    /// Directory with the four MNIST IDX files (calibration and scoring).
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// No per-step output.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
struct InspectArgs {
    /// The model file.
    file: PathBuf,
}

fn parse_likelihood(s: &str) -> Result<Likelihood, String> {
    if s == "bernoulli" {
        return Ok(Likelihood::Bernoulli);
    }
    if let Some(std) = s.strip_prefix("gaussian:") {
        let std: f32 = std.parse().map_err(|_| format!("bad std in {s:?}"))?;
        if std <= 0.0 || !std.is_finite() {
            return Err("the Gaussian std must be positive".into());
        }
        return Ok(Likelihood::Gaussian { std });
    }
    Err(format!("expected bernoulli or gaussian:STD, got {s:?}"))
}

fn config(a: &FitArgs) -> anyhow::Result<FitConfig> {
    let mut c = FitConfig::preset(a.preset);
    if let Some(v) = a.experts {
        c.arch.experts = v;
    }
    if let Some(v) = a.latent {
        c.arch.latent = v;
    }
    if let Some(h) = a.hidden {
        c.arch.gate_hidden = vec![h; c.arch.gate_hidden.len().max(1)];
        c.arch.encoder_hidden = h;
        c.arch.decoder_hidden = vec![h; c.arch.decoder_hidden.len().max(1)];
    }
    if let Some(v) = &a.gate_hidden {
        c.arch.gate_hidden = v.clone();
    }
    if let Some(v) = a.encoder_hidden {
        c.arch.encoder_hidden = v;
    }
    if let Some(v) = &a.decoder_hidden {
        c.arch.decoder_hidden = v.clone();
    }
    if let Some(v) = a.act {
        c.arch.act = v;
    }
    if let Some(v) = a.likelihood {
        c.likelihood = v;
    }
    if let Some(v) = a.epochs {
        c.epochs = v;
    }
    if let Some(p) = a.pretrain_epochs {
        c.start = match (c.start, p) {
            (_, 0) => Start::Random,
            (
                Start::Partition {
                    ae_epochs,
                    max_points,
                    cluster,
                    ..
                },
                p,
            ) => Start::Partition {
                ae_epochs,
                max_points,
                pretrain_epochs: p,
                cluster,
            },
            (Start::Random, p) => Start::Partition {
                ae_epochs: 20,
                max_points: 20_000,
                pretrain_epochs: p,
                cluster: Method::Umap,
            },
        };
    }
    match &mut c.start {
        Start::Partition {
            cluster, ae_epochs, ..
        } => {
            if let Some(v) = a.cluster {
                *cluster = v;
            }
            if let Some(v) = a.ae_epochs {
                *ae_epochs = v;
            }
        }
        Start::Random if a.cluster.is_some() || a.ae_epochs.is_some() => bail!(
            "--cluster and --ae-epochs shape the initial partition, which this configuration \
             does not use (it starts from random weights; add --pretrain-epochs N to use one)"
        ),
        Start::Random => {}
    }
    if let Some(v) = a.batch {
        c.batch = v;
    }
    if let Some(v) = a.lr {
        c.lr = v;
    }
    if let Some(v) = a.balance {
        c.balance = v;
    }
    if let Some(v) = a.shift {
        c.shift = v;
    }
    if let Some(v) = a.seed {
        c.seed = v;
    }
    c.limit = a.limit;
    Ok(c)
}

fn model_path(p: PathBuf) -> PathBuf {
    if p.is_dir() {
        p.join("model.bin")
    } else {
        p
    }
}

fn read_model(p: PathBuf) -> anyhow::Result<(PathBuf, Vec<u8>)> {
    let p = model_path(p);
    let bytes = std::fs::read(&p).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => anyhow::anyhow!("{}: file not found", p.display()),
        _ => anyhow::anyhow!("{}: cannot read: {e}", p.display()),
    })?;
    Ok((p, bytes))
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Fit(a) if a.kvae.method == trainer::kvae::cli::FitMethod::Kvae => {
            anyhow::ensure!(a.device == "cpu", "--method kvae runs on the CPU only");
            let common = trainer::kvae::cli::CommonArgs {
                experts: a.experts,
                latent: a.latent,
                hidden: a.hidden,
                gate_hidden: a.gate_hidden.clone(),
                pretrain_epochs: a.pretrain_epochs,
                batch: a.batch,
                lr: a.lr,
                seed: a.seed,
                limit: a.limit,
                data: a.data.clone(),
                out: a.out.clone(),
                export: a.export.clone(),
                weights: a.weights,
            };
            trainer::kvae::cli::fit(&a.kvae, &common)?;
        }
        Command::Experiment(a) => {
            trainer::experiments::run(&a)?;
        }
        Command::Fit(a) => {
            let opts = trainer::fit::FitOptions {
                data: a.data.clone(),
                out: a.out.clone(),
                resume: a.resume.clone(),
                epochs: a.epochs,
                export: a.export.clone(),
                weights: a.weights,
                export_only: false,
                device: trainer::fit::device(&a.device)?,
                verbose: !a.quiet,
            };
            let cfg = (a.resume.is_none()).then(|| config(&a)).transpose()?;
            let r = trainer::fit::fit(cfg, &opts)?;
            if r.outcome == Outcome::Interrupted {
                eprintln!(
                    "interrupted: checkpoint saved; continue with `trainer fit --resume {}`",
                    r.run_dir.display()
                );
                return Ok(ExitCode::from(130));
            }
        }
        Command::Export(a) => {
            if !trainer::train::Trainer::has_checkpoint(&a.run) {
                bail!(
                    "{}: not a run directory (needs checkpoint.safetensors and state.json)",
                    a.run.display()
                );
            }
            let opts = trainer::fit::FitOptions {
                data: a.data.clone(),
                out: None,
                resume: Some(a.run.clone()),
                epochs: None,
                export: Some(a.out.clone()),
                weights: a.weights,
                export_only: true,
                device: candle_core::Device::Cpu,
                verbose: !a.quiet,
            };
            trainer::fit::fit(None, &opts)?;
        }
        Command::Eval(a) if trainer::train::Trainer::has_checkpoint(&a.model) => {
            // A run directory: its f32 model from the checkpoint, scored
            // beside both of its exports (model.bin, model-int8.bin, written
            // again from that checkpoint: the same bytes).
            let opts = trainer::fit::FitOptions {
                data: a.data.clone(),
                out: None,
                resume: Some(a.model.clone()),
                epochs: None,
                export: None,
                weights: Default::default(),
                export_only: true,
                device: candle_core::Device::Cpu,
                verbose: true,
            };
            trainer::fit::fit(None, &opts)?;
        }
        Command::Eval(a) => {
            let (path, bytes) = read_model(a.model)?;
            let what = path.display().to_string();
            let model = trainer::engine_eval::parse(&bytes, &what)?;
            let dir = &a.data;
            if !dir.is_dir() {
                bail!("{}: data directory not found", dir.display());
            }
            let images =
                trainer::data::read_images(trainer::data::find(dir, trainer::data::TEST_IMAGES)?)?;
            let labels =
                trainer::data::read_labels(trainer::data::find(dir, trainer::data::TEST_LABELS)?)?;
            if images.n != labels.len() {
                bail!("test set: {} images but {} labels", images.n, labels.len());
            }
            if images.pixels_per_image() != model.pixels() {
                bail!(
                    "{what}: model expects {} pixels, images have {}",
                    model.pixels(),
                    images.pixels_per_image()
                );
            }
            let pred = trainer::engine_eval::predict(&model, &images.pixels, images.n)?;
            let ev = trainer::metrics::evaluate(&pred, &labels, model.experts());
            println!(
                "{what} on {} test images (engine, {} weights)",
                images.n,
                model.element_type().name()
            );
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
            let model = trainer::engine_eval::parse(&bytes, &path.display().to_string())?;
            let side = model.header().image.width as usize;
            if side * side != model.pixels() {
                bail!("{}: images are not square", path.display());
            }
            let tiles = trainer::engine_eval::sample_tiles(&model, a.per_expert as usize, a.seed)?;
            trainer::pictures::save_grid(&a.out, &tiles, model.experts(), side)
                .with_context(|| format!("{}", a.out.display()))?;
            println!(
                "wrote {} ({} experts x {} samples)",
                a.out.display(),
                model.experts(),
                a.per_expert
            );
        }
        Command::Inspect(a) => {
            let (path, bytes) = read_model(a.file)?;
            let model = trainer::engine_eval::parse(&bytes, &path.display().to_string())?;
            print!("{}", trainer::engine_eval::describe(&model, bytes.len()));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Tunes the process for candle's allocation pattern before any tensor exists.
fn tune_runtime() {
    // candle spreads element-wise ops over its own spin-barrier pool; on a
    // 2-core machine that is busy with anything else this costs up to 3x
    // (measured, see README).
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    // Matmuls use rayon's pool; at this trainer's sizes (100-row batches,
    // layers of 10 to 1,280 units) a second gemm thread bought nothing
    // (blog preset: 4,922/4,951, 4,785/4,696, 4,394/4,382 samples/s with
    // two/one), and the trainer runs its two expert groups on threads of
    // its own instead, which a second pool thread only contends with (4,154
    // -4,258 against 5,216-5,912 samples/s, measured with the batch cut in
    // two slices, the way the work was shared before the groups).
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    // candle allocates a fresh buffer per op; by default glibc returns large
    // buffers to the OS after each free, so every step page-faults them back.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator thresholds; it is called before
    // any other thread exists, and invalid values are rejected by returning 0.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}

fn main() -> ExitCode {
    tune_runtime();
    // A bug must still end in one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        eprintln!("error: internal error: {}", msg.replace('\n', " "));
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit();
            }
            // clap's first line names the flag and the problem; the usage
            // block after it is what `--help` shows.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("error: bad arguments");
            eprintln!("{first} (see trainer --help)");
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::from(1)
        }
    }
}

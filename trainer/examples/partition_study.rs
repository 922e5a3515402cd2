//! Ablation study of the initial partition on MNIST's 60,000 training images:
//! autoencoder + spectral clustering vs autoencoder + k-means, per seed, with
//! ACC/NMI/ARI against the training labels (used here for evaluation only)
//! and wall time. Prints a markdown table.
//!
//! ```text
//! cargo run --release -p trainer --example partition_study -- --seeds 0,1,2
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use trainer::eval::metrics::evaluate;
use trainer::init::autoencoder::{Autoencoder, AutoencoderConfig};
use trainer::init::spectral::EdgeWeight;
use trainer::init::{cluster_codes, Clustering, PartitionConfig, PIXELS};
use trainer::rng::Rng;

#[derive(Parser, Debug)]
#[command(about = "Ablation of the unsupervised initial partition on MNIST")]
struct Args {
    /// Directory with train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz.
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Use only the first N training images.
    #[arg(long)]
    limit: Option<usize>,
    /// Seeds, comma-separated (one autoencoder per seed).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    seeds: Vec<u64>,
    /// Autoencoder epochs.
    #[arg(long, default_value_t = PartitionConfig::default().ae_epochs)]
    ae_epochs: usize,
    /// Autoencoder hidden widths, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = PartitionConfig::default().ae_hidden)]
    hidden: Vec<usize>,
    /// Autoencoder batch size.
    #[arg(long, default_value_t = PartitionConfig::default().ae_batch)]
    batch: usize,
    /// Autoencoder Adam step size.
    #[arg(long, default_value_t = PartitionConfig::default().ae_lr)]
    lr: f64,
    /// Autoencoder augmentation: shifts of up to N pixels (0 = none).
    #[arg(long, default_value_t = PartitionConfig::default().ae_shift)]
    ae_shift: usize,
    /// Straighten the images (moment-based deskewing) before the autoencoder.
    #[arg(long)]
    deskew: bool,
    /// Graph points for spectral clustering.
    #[arg(long, default_value_t = PartitionConfig::default().max_points)]
    points: usize,
    /// Spectral or UMAP tries (random subsets; the most evenly sized result is kept).
    #[arg(long, default_value_t = PartitionConfig::default().tries)]
    tries: usize,
    /// Graph neighbours.
    #[arg(long, default_value_t = PartitionConfig::default().spectral.neighbours)]
    neighbours: usize,
    /// Variants to run on each autoencoder's codes: kmeans, spectral, spectral-selftuning, umap, umap-gmm;
    /// a graph variant may name its graph neighbours, e.g. spectral:20 or umap:10.
    #[arg(long, value_delimiter = ',', default_value = "kmeans,spectral")]
    variants: Vec<String>,
    /// Print each stage's progress lines.
    #[arg(long)]
    verbose: bool,
    /// Cache each seed's autoencoder codes in this directory
    /// (`codes-seed<N>-e<EPOCHS>.f32`, little-endian f32, 10 per image): a
    /// later run with the same seed, epochs and data reads them instead of
    /// training the autoencoder again, so clustering variants are cheap to
    /// compare.
    #[arg(long)]
    codes: Option<PathBuf>,
}

fn read_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&raw[..])
        .read_to_end(&mut out)
        .with_context(|| format!("{}: not a valid gzip file", path.display()))?;
    Ok(out)
}

/// Images and labels of an IDX pair (gzipped), checked against each other.
fn load(dir: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let img_path = dir.join("train-images-idx3-ubyte.gz");
    let lab_path = dir.join("train-labels-idx1-ubyte.gz");
    let img = read_gz(&img_path)?;
    let lab = read_gz(&lab_path)?;
    let be =
        |b: &[u8], at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
    ensure!(
        img.len() >= 16 && be(&img, 0) == 0x803,
        "{}: not an IDX image file",
        img_path.display()
    );
    ensure!(
        lab.len() >= 8 && be(&lab, 0) == 0x801,
        "{}: not an IDX label file",
        lab_path.display()
    );
    let (n, rows, cols) = (be(&img, 4), be(&img, 8), be(&img, 12));
    ensure!(
        rows * cols == PIXELS,
        "{}: images are {rows}×{cols}, not 28×28",
        img_path.display()
    );
    ensure!(
        img.len() == 16 + n * PIXELS,
        "{}: truncated",
        img_path.display()
    );
    ensure!(
        be(&lab, 4) == n && lab.len() == 8 + n,
        "{}: {} labels for {n} images",
        lab_path.display(),
        be(&lab, 4)
    );
    Ok((img[16..].to_vec(), lab[8..].to_vec()))
}

/// CPU seconds used by this process so far (user + system, all threads), from
/// `/proc/self/stat`; `None` off Linux. Less sensitive than wall time to other
/// jobs on a shared machine.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesized command name; utime and stime are the
    // 14th and 15th fields of the whole line, in clock ticks (100 per second on Linux).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn read_codes(path: &Path) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    ensure!(bytes.len() % 4 == 0, "{}: not f32 codes", path.display());
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn write_codes(path: &Path, codes: &[f32]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
    }
    let bytes: Vec<u8> = codes.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).with_context(|| format!("{}: cannot write", path.display()))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let (mut images, mut labels) = load(&args.data)?;
    if let Some(limit) = args.limit {
        let n = limit.min(labels.len());
        images.truncate(n * PIXELS);
        labels.truncate(n);
    }
    let n = labels.len();
    if args.deskew {
        images = trainer::init::deskew::deskew_all(&images, 28, 28);
    }
    let verbose = args.verbose;
    let progress = move |line: &str| {
        if verbose {
            eprintln!("  {line}");
        }
    };
    let base = PartitionConfig {
        ae_epochs: args.ae_epochs,
        ae_hidden: args.hidden.clone(),
        ae_batch: args.batch,
        ae_lr: args.lr,
        ae_shift: args.ae_shift,
        deskew: args.deskew,
        max_points: args.points,
        tries: args.tries,
        ..PartitionConfig::default()
    };
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    println!(
        "Initial partition of {n} MNIST training images, autoencoder 784-{}-{}, {} epochs{}, batch {}, lr {}; \
         graph methods: {} graph points, {} neighbours (spectral), {} tries; {threads} threads.\n",
        args.hidden.iter().map(|h| h.to_string()).collect::<Vec<_>>().join("-"),
        base.code_dim,
        args.ae_epochs,
        if args.deskew { " on deskewed images" } else { "" },
        args.batch,
        args.lr,
        args.points,
        args.neighbours,
        args.tries
    );
    println!(
        "| seed | variant | AE loss (nats) | AE wall / CPU (s) | clustering wall / CPU (s) | ACC | NMI | ARI | smallest / largest part |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for &seed in &args.seeds {
        let cfg = PartitionConfig {
            seed,
            ..base.clone()
        };
        let start = Instant::now();
        let cpu_start = cpu_seconds().unwrap_or(0.0);
        let ae_cfg = AutoencoderConfig {
            hidden: cfg.ae_hidden.clone(),
            code: cfg.code_dim,
            epochs: cfg.ae_epochs,
            batch: cfg.ae_batch,
            lr: cfg.ae_lr,
            shift: cfg.ae_shift,
            image: cfg.image,
        };
        let cache = args.codes.as_ref().map(|dir| {
            dir.join(format!(
                "codes-seed{seed}-e{}-n{n}-s{}{}-{}.f32",
                cfg.ae_epochs,
                cfg.ae_shift,
                if cfg.deskew { "-deskew" } else { "" },
                cfg.ae_hidden
                    .iter()
                    .map(|h| h.to_string())
                    .collect::<Vec<_>>()
                    .join("-")
            ))
        });
        let (codes, code_dim, loss) = match cache.as_ref().filter(|p| p.is_file()) {
            Some(path) => (read_codes(path)?, cfg.code_dim, f64::NAN),
            None => {
                // Same stream as `initial_partition` uses for its autoencoder.
                let ae = Autoencoder::train(
                    &images,
                    n,
                    &ae_cfg,
                    &mut Rng::from_state(seed).fork(1),
                    &progress,
                )?;
                let codes = ae.encode(&images, n)?;
                if let Some(path) = &cache {
                    write_codes(path, &codes)?;
                }
                let loss = ae.reconstruction_loss(&images, n)?;
                (codes, ae.code_dim(), loss)
            }
        };
        ensure!(
            codes.len() == n * code_dim,
            "cached codes do not match the data"
        );
        let ae_time = start.elapsed().as_secs_f64();
        let ae_cpu = cpu_seconds().unwrap_or(0.0) - cpu_start;
        for variant in &args.variants {
            let mut vcfg = cfg.clone();
            // `name` or `name:neighbours`.
            let (name, neighbours) = match variant.split_once(':') {
                Some((name, nb)) => (
                    name,
                    nb.parse()
                        .with_context(|| format!("variant {variant:?}: bad neighbour count"))?,
                ),
                None => (variant.as_str(), args.neighbours),
            };
            vcfg.spectral.neighbours = neighbours;
            match name {
                "kmeans" => vcfg.clustering = Clustering::KMeans,
                "spectral" => vcfg.clustering = Clustering::Spectral,
                "umap" | "umap-gmm" => {
                    vcfg.clustering = if name == "umap" {
                        Clustering::Umap
                    } else {
                        Clustering::UmapGmm
                    };
                    vcfg.umap.neighbours = neighbours;
                }
                "spectral-selftuning" => {
                    vcfg.clustering = Clustering::Spectral;
                    vcfg.spectral.weight = EdgeWeight::SelfTuning;
                }
                other => bail!(
                    "unknown variant {other:?} (kmeans, spectral, spectral-selftuning, umap, umap-gmm, optionally :NEIGHBOURS)"
                ),
            }
            let t = Instant::now();
            let cpu_t = cpu_seconds().unwrap_or(0.0);
            let assignment = cluster_codes(&codes, code_dim, &vcfg, &progress)?;
            let secs = t.elapsed().as_secs_f64();
            let cpu = cpu_seconds().unwrap_or(0.0) - cpu_t;
            let e = evaluate(&assignment, &labels, vcfg.k);
            let (min, max) = (
                e.sizes.iter().min().copied().unwrap_or(0),
                e.sizes.iter().max().copied().unwrap_or(0),
            );
            println!(
                "| {seed} | {variant} | {loss:.1} | {ae_time:.0} / {ae_cpu:.0} | {secs:.1} / {cpu:.1} | {:.4} | {:.4} | {:.4} | {min} / {max} |",
                e.acc, e.nmi, e.ari
            );
            if verbose {
                eprintln!("{}", e.confusion_table());
            }
        }
    }
    Ok(())
}

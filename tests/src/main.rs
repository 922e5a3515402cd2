//! `harness`: run a `model.bin` through the no_std engine on the host.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use trainer::data::Part;

/// Run a model file through the engine exactly as a microcontroller would.
#[derive(Parser)]
#[command(name = "harness", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Classify every image of a set; prints CSV
    /// `index,cluster,label,confidence,style,style_confidence,novelty,known`
    /// (`label` is the model's label for the cluster, empty without a label
    /// map; `style` the chosen style within the cluster and
    /// `style_confidence` its probability: 0 and 1 for a flat model;
    /// `novelty` the novelty score in threshold units and `known` whether it
    /// is at most 1: empty for a model without a novelty section).
    Classify {
        /// Model file written by `trainer fit --export`.
        #[arg(long)]
        model: PathBuf,
        #[command(flatten)]
        input: ImagesArgs,
        /// Add a column `probability_bits` after `confidence`: the K
        /// probabilities' f32 bits in hex, space-separated, a column
        /// `style_confidence_bits` after `style_confidence` and a last
        /// column `novelty_bits`, the score's (for bit-for-bit comparisons,
        /// e.g. with the web page).
        #[arg(long)]
        bits: bool,
    },
    /// Generate samples of one expert (of a two-level model: of one of its
    /// styles) and write them as a PNG grid (sample i uses seed S+i).
    Generate {
        /// Model file.
        #[arg(long)]
        model: PathBuf,
        /// Expert index, 0-based.
        #[arg(long)]
        expert: usize,
        /// Style within the expert, 0-based (a two-level model's cluster has
        /// `inspect`'s number of styles; a flat model's only style is 0);
        /// the grid's title names it when given [default: 0].
        #[arg(long)]
        style: Option<usize>,
        /// Number of samples.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
        count: u32,
        /// Seed of the first sample.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output PNG file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Convert a model file of format version 1 to the current version
    /// (the same f16 weights, bit for bit).
    Upgrade {
        /// Version-1 model file.
        #[arg(long)]
        model: PathBuf,
        /// Output file (written atomically).
        #[arg(long)]
        out: PathBuf,
    },
    /// Re-encode an f16 model with int8 weights, calibrated on images (no
    /// labels). `trainer export --run RUN_DIR --weights int8` quantizes from
    /// the run's f32 weights instead, which is what the trainer's reports use.
    Quantize {
        /// f16 model file.
        #[arg(long)]
        model: PathBuf,
        /// Images to calibrate on (the first 10,000), of the model's size, in
        /// any form `classify --images` reads (a directory of MNIST's files
        /// gives its training images), e.g. data/mnist/train-images-idx3-ubyte.gz.
        #[arg(long, value_name = "PATH")]
        images: PathBuf,
        /// Image size of a CSV or an N x (H*W) .npy whose rows are not square.
        #[arg(long, value_name = "WxH", value_parser = trainer::data::parse_size)]
        size: Option<(usize, usize)>,
        /// Polarity, as for `classify`.
        #[arg(long, value_enum, default_value = "auto")]
        invert: trainer::data::Invert,
        /// Output file (written atomically).
        #[arg(long)]
        out: PathBuf,
    },
    /// Describe a model: header, layer shapes, parameters, file size and RAM
    /// needed; of a two-level model, the tree: per cluster its label, weight
    /// and styles, its style gate, each style's weight and decoder.
    Inspect {
        /// Model file.
        #[arg(long)]
        model: PathBuf,
    },
    /// Talk to a device running the model: a board on a serial port
    /// (`--port`), or a device program on a pipe (`--spawn "fw-host serve
    /// --model M"`), in the protocol of firmware-example/PROTOCOL.md. Its
    /// `classify` and `generate` print and write what `harness classify`
    /// and `harness generate` do, computed by the device.
    #[command(after_help = "Examples:\n  \
        harness device --port /dev/ttyACM0 info\n  \
        harness device --spawn \"fw-host serve --model firmware-example/models/default-int8.bin\" \
        classify --images data/mnist/t10k-images-idx3-ubyte.gz --bits\n  \
        harness device --port /dev/ttyUSB0 --timeout-ms 2000 bench --count 50\n")]
    Device {
        #[command(flatten)]
        link: harness::device::LinkArgs,
        #[command(subcommand)]
        action: DeviceAction,
    },
}

/// The images `classify` and `device classify` read, and how.
#[derive(clap::Args)]
struct ImagesArgs {
    /// The images, of the model's size: one image file (PNG, JPEG, BMP,
    /// PGM/PPM); a folder of them, searched recursively, in path order;
    /// an IDX images file of any name, gzipped or not (e.g.
    /// data/mnist/t10k-images-idx3-ubyte.gz); a directory of MNIST's
    /// files (its t10k images); a .csv, one image per row (pixels
    /// 0-255, optional header and `label` column); a .npy of uint8 or
    /// float 0-1, N x H x W or N x (H*W).
    #[arg(long, value_name = "PATH")]
    images: PathBuf,
    /// Image size of a CSV or an N x (H*W) .npy whose rows are not square.
    #[arg(long, value_name = "WxH", value_parser = trainer::data::parse_size)]
    size: Option<(usize, usize)>,
    /// Polarity: models want light ink on dark paper, as MNIST; `auto`
    /// inverts a set whose border pixels are mostly light (scans, photos).
    #[arg(long, value_enum, default_value = "auto")]
    invert: trainer::data::Invert,
    /// `mnist`: frame images of any size the way MNIST's digits were
    /// (ink's box into 20/28 of each side, centre of mass at the centre;
    /// pixels below 1/8 of full ink are paper), as the web page and the
    /// firmware do; for photos or scans of single digits.
    #[arg(long, value_enum, default_value = "none")]
    frame: harness::Frame,
    /// Only the first N images.
    #[arg(long, value_name = "N")]
    first: Option<usize>,
}

impl ImagesArgs {
    /// The images, for a model of `shape` (framing on the host when asked).
    fn read(&self, shape: engine::ImageShape) -> Result<trainer::data::Images> {
        let mut images = harness::read_images(
            &self.images,
            Part::Test,
            self.size,
            self.invert,
            self.frame,
            shape,
        )?;
        if let Some(n) = self.first {
            images.truncate(n);
        }
        Ok(images)
    }
}

#[derive(Subcommand)]
enum DeviceAction {
    /// The device's firmware, protocol version and model summary.
    Info,
    /// Classify every image on the device; prints the CSV `harness classify`
    /// prints (the same bits: the device runs the same engine).
    Classify {
        #[command(flatten)]
        input: ImagesArgs,
        /// Add the column `probability_bits` (the device's f32 bits), as
        /// `harness classify --bits` does.
        #[arg(long)]
        bits: bool,
    },
    /// Generate samples of one expert on the device and write the PNG grid
    /// `harness generate` writes (sample i uses seed S+i).
    Generate {
        /// Expert index, 0-based.
        #[arg(long)]
        expert: u8,
        /// Style within the expert, 0-based (protocol revision 2; a device
        /// refuses a style its model's cluster lacks) [default: 0].
        #[arg(long)]
        style: Option<u8>,
        /// Number of samples.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
        count: u32,
        /// Seed of the first sample.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output PNG file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Round trip and device-side cost of each kind of request: a table.
    Bench {
        /// Requests of each kind.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        count: u32,
        /// Classify these images, in turn (any input `classify --images`
        /// takes, read as it reads them by default), instead of a
        /// synthetic pattern with no black pixel. The engine skips black
        /// input pixels, so digits cost less than the pattern.
        #[arg(long, value_name = "PATH")]
        images: Option<PathBuf>,
    },
    /// The device's counters: the last request's cost, the stack high-water
    /// mark, frames received and rejected.
    Stats,
    /// Robustness: streams random bytes, truncated and corrupted frames
    /// interleaved with valid classify requests of the given images, and
    /// checks that every valid request gets the answer it got on a clean
    /// line, bit for bit. Fails on the first wrong or missing answer.
    Soak {
        #[command(flatten)]
        input: ImagesArgs,
        /// Bytes of damage to send in all (random bytes, cut and corrupted
        /// frames), at least.
        #[arg(long, default_value_t = 1 << 20)]
        bytes: usize,
        /// Seed of the damage.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Classify { model, input, bits } => {
            let bytes = harness::read_model_bytes(&model)?;
            let m = harness::parse_model(&bytes, &model)?;
            let imgs = input.read(m.header().image)?;
            let rows = harness::classify_all(&m, &imgs)
                .with_context(|| input.images.display().to_string())?;
            let csv = harness::rows_to_csv(&rows, bits);
            let mut out = std::io::stdout().lock();
            // A closed pipe (e.g. `| head`) is not an error worth reporting.
            let _ = out.write_all(csv.as_bytes());
        }
        Command::Generate {
            model,
            expert,
            style,
            count,
            seed,
            out,
        } => {
            let bytes = harness::read_model_bytes(&model)?;
            let m = harness::parse_model(&bytes, &model)?;
            let images = harness::generate_style_images(
                &m,
                &model,
                (expert, style.unwrap_or(0)),
                count as usize,
                seed,
            )?;
            let (w, h) = (
                m.header().image.width as usize,
                m.header().image.height as usize,
            );
            let labels = m.header().label_map.as_deref();
            // The title names the style when one was asked for, as `harness
            // device generate`'s does (the device does not say its styles).
            let titled = style;
            harness::save_expert_grid(&out, &images, (w, h), (expert, titled), seed, labels)?;
            let of = match titled {
                Some(s) => format!("expert {expert}, style {s}"),
                None => format!("expert {expert}"),
            };
            eprintln!("wrote {} ({count} samples of {of})", out.display());
        }
        Command::Upgrade { model, out } => {
            let bytes = harness::read_model_bytes(&model)?;
            let spec = engine::writer::ModelSpec::from_v1_bytes(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", model.display()))?;
            let new = spec
                .to_bytes()
                .map_err(|e| anyhow::anyhow!("{}: cannot encode: {e}", model.display()))?;
            trainer::util::write_atomic(&out, &new)?;
            eprintln!(
                "wrote {} (format version {}, {} bytes)",
                out.display(),
                engine::FORMAT_VERSION,
                new.len()
            );
        }
        Command::Quantize {
            model,
            images,
            size,
            invert,
            out,
        } => {
            let bytes = harness::read_model_bytes(&model)?;
            let m = harness::parse_model(&bytes, &model)?;
            if m.element_type() != engine::ElementType::F16 {
                anyhow::bail!("{}: already has int8 weights", model.display());
            }
            let spec = engine::writer::TwoLevelSpec::from_bytes(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", model.display()))?;
            let imgs = harness::read_images(
                &images,
                Part::Train,
                size,
                invert,
                harness::Frame::None,
                m.header().image,
            )?;
            let new = trainer::export::quantize::encode(
                &spec,
                trainer::export::quantize::WeightType::Int8,
                &imgs.pixels,
            )?;
            trainer::util::write_atomic(&out, &new)?;
            eprintln!("wrote {} (int8, {} bytes)", out.display(), new.len());
        }
        Command::Inspect { model } => {
            let bytes = harness::read_model_bytes(&model)?;
            let m = harness::parse_model(&bytes, &model)?;
            print!("{}", harness::describe(&m, bytes.len()));
        }
        Command::Device { link, action } => device(&link, action)?,
    }
    Ok(())
}

fn device(link: &harness::device::LinkArgs, action: DeviceAction) -> Result<()> {
    use device_protocol::{Body, ClassifyRequest, Extensions, GenerateRequest, Request};
    let mut dev = harness::device::Device::open(link)?;
    let info = dev.info()?;
    let (w, h) = (info.width as usize, info.height as usize);
    match action {
        DeviceAction::Info => print!("{}", info.describe()),
        DeviceAction::Classify { input, bits } => {
            let imgs = input.read(info.shape())?;
            if imgs.pixels_per_image() != w * h {
                anyhow::bail!(
                    "{}: images are {}x{}, the device's model takes {w}x{h}",
                    input.images.display(),
                    imgs.cols,
                    imgs.rows
                );
            }
            let mut rows = Vec::with_capacity(imgs.n);
            let start = std::time::Instant::now();
            for index in 0..imgs.n {
                let request = Request::Classify(ClassifyRequest {
                    width: info.width,
                    height: info.height,
                    pixels: imgs.image(index),
                });
                let (row, _) = dev.request(&request, |a| match &a.body {
                    Body::Classify(c) => {
                        // A revision-1 device sends no style: a flat
                        // model's answer, style 0 with probability 1.
                        let (style, style_confidence) = c
                            .style()
                            .map_or((0, 1.0), |s| (usize::from(s.style), s.confidence_f32()));
                        Ok(harness::Row {
                            index,
                            cluster: c.cluster.into(),
                            label: c.label,
                            confidence: c.confidence_f32(),
                            probabilities: c.probabilities_f32().collect(),
                            style,
                            style_confidence,
                            // Revision 3: from a model with a novelty
                            // section only.
                            novelty: c.novelty().map(|n| harness::NoveltyCell {
                                score: n.score_f32(),
                                known: n.known,
                            }),
                        })
                    }
                    other => anyhow::bail!("classify answered with {other:?}"),
                })?;
                rows.push(row);
            }
            eprintln!(
                "{} images classified by {} in {:.2} s",
                imgs.n,
                dev.name(),
                start.elapsed().as_secs_f64()
            );
            let csv = harness::rows_to_csv(&rows, bits);
            let _ = std::io::stdout().lock().write_all(csv.as_bytes());
        }
        DeviceAction::Generate {
            expert,
            style,
            count,
            seed,
            out,
        } => {
            let mut images = Vec::with_capacity(count as usize);
            for i in 0..count {
                let request = Request::Generate(GenerateRequest {
                    expert,
                    seed: seed.wrapping_add(i.into()),
                    extensions: style.map_or(Extensions::EMPTY, Extensions::style_request),
                });
                let (pixels, _) = dev.request(&request, |a| match &a.body {
                    Body::Generate(g) if g.pixels.len() == w * h => Ok(g.pixels.to_vec()),
                    other => anyhow::bail!("generate answered with {other:?}"),
                })?;
                images.push(pixels);
            }
            let labels = info.label_map.as_deref();
            harness::save_expert_grid(
                &out,
                &images,
                (w, h),
                (expert.into(), style.map(usize::from)),
                seed,
                labels,
            )?;
            eprintln!(
                "wrote {} ({count} samples of expert {expert}, generated by {})",
                out.display(),
                dev.name()
            );
        }
        DeviceAction::Bench { count, images } => {
            let images: Vec<Vec<u8>> = match images {
                None => vec![(0..w * h).map(|i| (i * 37 % 256) as u8).collect()],
                Some(path) => {
                    let mut imgs = harness::read_images(
                        &path,
                        Part::Test,
                        None,
                        trainer::data::Invert::Auto,
                        harness::Frame::None,
                        info.shape(),
                    )?;
                    imgs.truncate(count as usize);
                    (0..imgs.n).map(|i| imgs.image(i).to_vec()).collect()
                }
            };
            let table = harness::device::bench(&mut dev, count, &images, &info)?;
            print!("{table}");
        }
        DeviceAction::Stats => print!("{}", harness::device::describe_stats(&dev.stats()?)),
        DeviceAction::Soak { input, bytes, seed } => {
            let imgs = input.read(info.shape())?;
            if imgs.pixels_per_image() != w * h || imgs.n == 0 {
                anyhow::bail!(
                    "{}: images are {}x{} ({} of them), the device's model takes {w}x{h}",
                    input.images.display(),
                    imgs.cols,
                    imgs.rows,
                    imgs.n
                );
            }
            let report = harness::device::soak(&mut dev, &info, &imgs, bytes, seed)?;
            println!("{report}");
        }
    }
    Ok(())
}

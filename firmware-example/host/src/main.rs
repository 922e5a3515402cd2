//! `fw-host`: the host side of the firmware example.
//!
//! ```text
//! fw-host model  --shape default|small|digits8 [--weights f16|int8] --out FILE
//!                                                  deterministic random-weight model (digits8: 8×8 images)
//! fw-host digits --mnist DIR --count N [--model FILE] --out FILE
//!                                                  first N MNIST test digits (label byte + pixels each),
//!                                                  framed into the model's image shape (default 28×28)
//! fw-host expect --model FILE --digits FILE        the boot sequence run on the host: the reference output
//! fw-host size   --elf FILE --model FILE            flash (code, model) and static RAM of a firmware ELF
//! fw-host table  RESULT...                          the cost table (markdown) from per-target result files
//! fw-host traffic --model FILE --digits FILE       model bytes one classification reads, and the XIP-miss estimate
//! fw-host strip-novelty --model FILE --out FILE   a flat model without its novelty section, the same
//!                                                  weights and data bytes (a version-2 file): the cost table's
//!                                                  "without the section" row
//! fw-host serve  --model FILE [--digits FILE] [--firmware NAME] [--banner]
//!                                                  a device on stdin/stdout: the host protocol (../PROTOCOL.md),
//!                                                  binary frames, firmware_common::device::Device over the model
//! ```

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use engine::idx;
use engine::writer::ModelSpec;
use engine::Activation;

/// Workspace size of the host run: the engine's host workspace, wider than
/// any model the firmware embeds.
const HOST_WORKSPACE: usize = engine::host::WORKSPACE_LEN;

type Result<T> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fw-host: {e}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> Result<()> {
    let (command, rest) = args.split_first().ok_or(
        "missing command (model, digits, expect, size, table, traffic, strip-novelty, serve)",
    )?;
    match command.as_str() {
        "model" => {
            let shape = flag(rest, "--shape")?;
            let out = PathBuf::from(flag(rest, "--out")?);
            let spec = random_model(&shape)?;
            let bytes = match optional_flag(rest, "--weights").as_deref() {
                None | Some("f16") => spec.to_bytes(),
                Some("int8") => spec.to_int8_bytes(&spec.calibrate(&calibration_images(&spec), 1)),
                Some(other) => return Err(format!("--weights: {other:?} is not f16 or int8")),
            }
            .map_err(|e| e.to_string())?;
            std::fs::write(&out, &bytes).map_err(|e| format!("{}: {e}", out.display()))?;
            println!("wrote {} ({} bytes)", out.display(), bytes.len());
            Ok(())
        }
        "digits" => {
            let dir = PathBuf::from(flag(rest, "--mnist")?);
            let count: usize = flag(rest, "--count")?
                .parse()
                .map_err(|_| "--count: not a number")?;
            let out = PathBuf::from(flag(rest, "--out")?);
            let shape = match optional_flag(rest, "--model") {
                None => (28, 28),
                Some(path) => {
                    let bytes = read(Path::new(&path))?;
                    let model =
                        engine::Model::from_bytes(&bytes).map_err(|e| format!("{path}: {e}"))?;
                    let image = model.header().image;
                    (image.width as usize, image.height as usize)
                }
            };
            let bytes = mnist_digits(&dir, count, shape)?;
            std::fs::write(&out, &bytes).map_err(|e| format!("{}: {e}", out.display()))?;
            println!("wrote {} ({count} digits)", out.display());
            Ok(())
        }
        "expect" => {
            let path = PathBuf::from(flag(rest, "--model")?);
            let bytes = read(&path)?;
            let digits = read(Path::new(&flag(rest, "--digits")?))?;
            let mut text = String::new();
            // Any workspace at least as wide as the model gives the same bits.
            firmware_common::run::<HOST_WORKSPACE, _, _>(
                &mut text,
                &mut NoCounter,
                &bytes,
                &digits,
            )
            .map_err(|e| format!("{}: {e}", path.display()))?;
            print!("{text}");
            Ok(())
        }
        "size" => {
            let elf = read(Path::new(&flag(rest, "--elf")?))?;
            let model = read(Path::new(&flag(rest, "--model")?))?;
            let (flash, ram) = elf_sizes(&elf)?;
            let code = flash
                .checked_sub(model.len() as u64)
                .ok_or("ELF smaller than its model")?;
            println!(
                "flash={flash}\nflash_model={}\nflash_code={code}\nstatic_ram={ram}",
                model.len()
            );
            Ok(())
        }
        "table" => {
            print!("{}", table(rest)?);
            Ok(())
        }
        "traffic" => {
            let path = PathBuf::from(flag(rest, "--model")?);
            let bytes = read(&path)?;
            let digits = read(Path::new(&flag(rest, "--digits")?))?;
            print!(
                "{}",
                traffic(&bytes, &digits).map_err(|e| format!("{}: {e}", path.display()))?
            );
            Ok(())
        }
        "strip-novelty" => {
            let path = PathBuf::from(flag(rest, "--model")?);
            let out = PathBuf::from(flag(rest, "--out")?);
            let bytes = read(&path)?;
            let stripped = strip_novelty(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            std::fs::write(&out, &stripped).map_err(|e| format!("{}: {e}", out.display()))?;
            // The section's own tensors (means, weights, scales): the
            // bytes it adds to a file beside its few bytes of description.
            let tensors = engine::ModelRepr::parse(&bytes)
                .ok()
                .and_then(|r| {
                    r.novelty().map(|n| match n.gaussians {
                        engine::format::Gaussians::F32 { means, weights } => {
                            means.len() + weights.len()
                        }
                        engine::format::Gaussians::Int8 {
                            means,
                            weights,
                            scales,
                        } => means.len() + weights.len() + scales.len(),
                    })
                })
                .unwrap_or(0);
            println!("wrote {} ({} bytes)", out.display(), stripped.len());
            println!("novelty_tensors={tensors}");
            Ok(())
        }
        "serve" => {
            let path = PathBuf::from(flag(rest, "--model")?);
            let bytes = read(&path)?;
            let digits = match optional_flag(rest, "--digits") {
                Some(d) => Some(read(Path::new(&d))?),
                None => None,
            };
            let firmware = optional_flag(rest, "--firmware")
                .unwrap_or_else(|| format!("fw-host {} serve", env!("CARGO_PKG_VERSION")));
            let banner = rest.iter().any(|a| a == "--banner");
            serve(&bytes, digits.as_deref(), &firmware, banner)
                .map_err(|e| format!("{}: {e}", path.display()))
        }
        other => Err(format!("unknown command {other:?}")),
    }
}

/// A flat model's file without its novelty section: the header, the
/// gate's and the decoders' descriptors and the data section as they are
/// (the section's tensors stay in the data, unreferenced), written as a
/// version-2 file by `engine::format::emit`. So the two files classify
/// with the same weights, bit for bit, the one with the section also
/// scoring the novelty: what the section costs.
fn strip_novelty(bytes: &[u8]) -> Result<Vec<u8>> {
    let repr = engine::ModelRepr::parse(bytes).map_err(|e| e.to_string())?;
    if repr.is_two_level() {
        return Err("a two-level model: only a flat model's section is stripped".into());
    }
    let gate: Vec<_> = engine::format::descriptors(repr.gate()).collect();
    let decoders: Vec<Vec<_>> = repr
        .decoders()
        .map(|d| engine::format::descriptors(d).collect())
        .collect();
    let decoders: Vec<&[_]> = decoders.iter().map(Vec::as_slice).collect();
    let len = engine::format::emitted_len(repr.header(), &gate, &decoders, repr.data().len())
        .map_err(|e| e.to_string())?;
    let mut out = vec![0u8; len];
    let n = engine::format::emit(repr.header(), &gate, &decoders, repr.data(), &mut out)
        .map_err(|e| e.to_string())?;
    out.truncate(n);
    engine::Model::from_bytes(&out).map_err(|e| format!("the stripped file: {e}"))?;
    Ok(out)
}

fn optional_flag(args: &[String], name: &str) -> Option<String> {
    flag(args, name).ok()
}

fn flag(args: &[String], name: &str) -> Result<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .ok_or_else(|| format!("missing {name} VALUE"))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The host's counter: costs are not measured here, only the results matter.
struct NoCounter;

impl firmware_common::Counter for NoCounter {
    fn unit(&self) -> &'static str {
        "host"
    }
    fn hz(&self) -> Option<u32> {
        None
    }
    fn now(&mut self) -> u64 {
        0
    }
}

/// The 8 MNIST test digits the firmware embeds (28×28 records): what
/// `serve`'s selftest classifies when no `--digits` are given.
static EMBEDDED_DIGITS: &[u8] = include_bytes!("../../common/data/digits.bin");

/// Microseconds since the device started: the host's counter for `serve`
/// (the protocol's unit `3`, as the ESP32-C3's SYSTIMER).
struct Microseconds(std::time::Instant);

impl firmware_common::Counter for Microseconds {
    fn unit(&self) -> &'static str {
        "us"
    }
    fn hz(&self) -> Option<u32> {
        Some(1_000_000)
    }
    fn now(&mut self) -> u64 {
        u64::try_from(self.0.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// Requests the host device accepts: any model the engine runs on the host.
const SERVE_REQUEST: usize = device_protocol::request_capacity(device_protocol::MAX_PIXELS);

/// `fw-host serve`: the device side of the protocol on stdin (requests)
/// and stdout (answers, binary frames), the same `firmware_common::device`
/// handler a board runs. Stdout carries nothing but the frames, after an
/// optional one-line banner (which a host's reader skips, as it skips a
/// board's boot text). Ends on end of input, or after answering `shutdown`
/// (honoured here, as on the emulators' test builds).
fn serve(bytes: &[u8], digits: Option<&[u8]>, firmware: &str, banner: bool) -> Result<()> {
    use std::io::Write;
    let model = engine::host::parse(bytes).map_err(|e| e.to_string())?;
    let record = firmware_common::digit_record(&model);
    let digits = match digits {
        Some(d) if !d.len().is_multiple_of(record) => {
            return Err(firmware_common::Failure::Digits {
                len: d.len(),
                record,
            }
            .to_string())
        }
        Some(d) => d,
        None if EMBEDDED_DIGITS.len().is_multiple_of(record) => EMBEDDED_DIGITS,
        None => &[],
    };
    let mut ws = Box::new(engine::Workspace::<HOST_WORKSPACE>::new());
    let mut image = vec![0u8; model.pixels()];
    let summary = format!(
        "fw-host serve: {} experts, {}x{}, {} weights, {} bytes; protocol version {}",
        model.experts(),
        model.header().image.width,
        model.header().image.height,
        model.element_type().name(),
        bytes.len(),
        device_protocol::VERSION
    );
    let clock = Microseconds(std::time::Instant::now());
    let mut device =
        firmware_common::device::Device::new(bytes, model, &mut ws, &mut image, clock, firmware)
            .map_err(|e| e.to_string())?
            .with_digits(digits)
            .allow_shutdown(true);
    let mut server = device_protocol::Server::<SERVE_REQUEST>::new();
    let mut out = vec![0u8; device_protocol::wire_len(device_protocol::MAX_FRAME)];
    let stdout = std::io::stdout();
    let mut stdout = stdout.lock();
    let write_err = |e: std::io::Error| format!("stdout: {e}");
    if banner {
        writeln!(stdout, "{summary}").map_err(write_err)?;
        stdout.flush().map_err(write_err)?;
    }
    let mut stdin = std::io::stdin().lock();
    let mut buffer = [0u8; 4096];
    loop {
        let n = match stdin.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("stdin: {e}")),
        };
        // `receive` (not byte by byte) so that `stats` reports each
        // request's whole cost, as on the boards.
        let mut sent = Ok(());
        server.receive(&buffer[..n], &mut device, &mut out, |answer| {
            if sent.is_ok() {
                sent = stdout.write_all(answer).and_then(|()| stdout.flush());
            }
        });
        sent.map_err(write_err)?;
        if device.shutdown_requested() {
            return Ok(());
        }
    }
}

/// Random weights of the product's shapes (`default`: gate 784→256→10,
/// decoders 10→32→784), of a model small enough for a 256 KiB / 16 KiB
/// micro:bit (`small`: K = 4, gate 784→16→4, decoders 8→16→784), or of 8×8
/// images like scikit-learn's digits (`digits8`: gate 64→32→10, decoders
/// 10→32→64, with a label map), drawn by the engine's
/// `testing::random_spec`.
fn random_model(shape: &str) -> Result<ModelSpec> {
    let (side, experts, hidden, latent, dec_hidden, seed) = match shape {
        "default" => (28, 10, 256, 10, 32, 1),
        "small" => (28, 4, 16, 8, 16, 2),
        "digits8" => (8, 10, 32, 10, 32, 3),
        other => {
            return Err(format!(
                "--shape: {other:?} is not default, small or digits8"
            ))
        }
    };
    let pixels = side * side;
    let mut spec = engine::testing::random_spec(
        &[
            (pixels, hidden, Activation::Relu),
            (hidden, experts, Activation::Identity),
        ],
        &[
            (latent, dec_hidden, Activation::Relu),
            (dec_hidden, pixels, Activation::Sigmoid),
        ],
        experts,
        seed,
    );
    spec.image = engine::ImageShape {
        width: side as u16,
        height: side as u16,
    };
    if side == 28 {
        spec.label_map = None;
    } else {
        // A label map that is not the identity, as a trained model's is:
        // cluster k stands for digit 3k mod 10.
        spec.label_map = Some((0..experts).map(|k| (3 * k % 10) as u8).collect());
    }
    spec.provenance = format!(
        "fw-host model --shape {shape}: random weights (SplitMix64 seed {seed}), untrained"
    );
    Ok(spec)
}

/// Images for an int8 model's calibration, without a data set: 256 images
/// of the model's shape, a third of their pixels inked with random grey
/// levels (SplitMix64, seed 7), so that the gate's scales cover inputs
/// from blank to dense.
fn calibration_images(spec: &ModelSpec) -> Vec<u8> {
    let mut rng = engine::rng::SplitMix64::new(7);
    (0..256 * spec.image.pixels())
        .map(|_| {
            let r = rng.next_u64();
            if r.is_multiple_of(3) {
                (r >> 8) as u8
            } else {
                0
            }
        })
        .collect()
}

fn gunzip(path: &Path) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(read(path)?.as_slice())
        .read_to_end(&mut out)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(out)
}

/// The first `count` test digits as records of a label and `width × height`
/// pixels: MNIST's own 28×28 images, or each framed MNIST-style into
/// another shape (`engine::frame::mnist`).
fn mnist_digits(dir: &Path, count: usize, (width, height): (usize, usize)) -> Result<Vec<u8>> {
    const IMAGES: &str = "t10k-images-idx3-ubyte.gz";
    const LABELS: &str = "t10k-labels-idx1-ubyte.gz";
    let image_bytes = gunzip(&dir.join(IMAGES))?;
    let label_bytes = gunzip(&dir.join(LABELS))?;
    let images = idx::Images::new_checked(&image_bytes[..])
        .and_then(|images| images.check_shape(28, 28).map(|()| images))
        .map_err(|e| format!("{IMAGES}: {e}"))?;
    let labels =
        idx::Labels::new_checked(&label_bytes[..]).map_err(|e| format!("{LABELS}: {e}"))?;
    let available = images.len().min(labels.len());
    if count > available {
        return Err(format!(
            "MNIST test set has {available} digits, {count} asked"
        ));
    }
    let pixels = width * height;
    let mut out = Vec::with_capacity(count * (1 + pixels));
    for (&label, image) in labels.labels().iter().zip(images.iter()).take(count) {
        out.push(label);
        if (width, height) == (28, 28) {
            out.extend_from_slice(image);
        } else {
            let mut framed = vec![0u8; pixels];
            engine::frame::mnist(image, 28, 28, &mut framed, width, height)
                .map_err(|e| format!("{width}x{height}: {e}"))?;
            out.extend_from_slice(&framed);
        }
    }
    Ok(out)
}

/// (flash, static RAM) of an ELF: flash holds every allocated section with
/// contents (code, read-only data, initial values of .data), RAM every
/// writable allocated section except the stack and heap reservations.
fn elf_sizes(elf: &[u8]) -> Result<(u64, u64)> {
    use object::{Object, ObjectSection, SectionFlags};
    const SHF_WRITE: u64 = 1;
    const SHF_ALLOC: u64 = 2;
    let file = object::File::parse(elf).map_err(|e| format!("not an ELF file: {e}"))?;
    let (mut flash, mut ram) = (0, 0);
    for section in file.sections() {
        let SectionFlags::Elf { sh_flags } = section.flags() else {
            continue;
        };
        let name = section.name().unwrap_or("");
        if sh_flags & SHF_ALLOC == 0 || name.starts_with(".stack") || name.starts_with(".heap") {
            continue;
        }
        let nobits = matches!(
            section.kind(),
            object::SectionKind::UninitializedData | object::SectionKind::UninitializedTls
        );
        if !nobits {
            flash += section.size();
        }
        if sh_flags & SHF_WRITE != 0 {
            ram += section.size();
        }
    }
    Ok((flash, ram))
}

/// Reads `key=value` result files written by .ci/firmware.sh.
fn read_results(path: &str) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

fn kib(bytes: &str) -> String {
    match bytes.parse::<u64>() {
        Ok(b) if b < 1024 => format!("{b} B"),
        Ok(b) => format!("{:.1} KiB", b as f64 / 1024.0),
        Err(_) => "—".into(),
    }
}

/// Bytes of the model file one classification of each digit reads (the
/// gate's tensors; a column-major layer only the columns of non-zero
/// inputs), and what streaming them through the RP2040's XIP cache would
/// add if every 8-byte line missed (56–112 cycles a miss, datasheet §2.5.3).
fn traffic(model: &[u8], digits: &[u8]) -> Result<String> {
    let model = engine::Model::from_bytes(model).map_err(|e| e.to_string())?;
    let record = firmware_common::digit_record(&model);
    if !digits.len().is_multiple_of(record) {
        return Err(firmware_common::Failure::Digits {
            len: digits.len(),
            record,
        }
        .to_string());
    }
    let mut lines = String::new();
    let mut total = 0usize;
    let mut n = 0usize;
    for record in digits.chunks_exact(record) {
        let pixels = &record[1..];
        let mut read = 0usize;
        let mut nonzero = pixels.iter().filter(|&&p| p != 0).count();
        for layer in model.gate().layers() {
            read += match layer.weights {
                engine::LayerWeights::Int8(q) if q.layout == engine::Layout::ColumnMajor => {
                    layer.tensor_bytes() - q.weights.len() + nonzero * layer.outputs
                }
                _ => layer.tensor_bytes(),
            };
            nonzero = layer.outputs;
        }
        total += read;
        n += 1;
        lines += &format!("digit {} reads {read} bytes\n", n - 1);
    }
    let mean = total / n.max(1);
    let lo = mean / 8 * 56;
    let hi = mean / 8 * 112;
    lines += &format!(
        "mean {mean} bytes per classification ({} weights); all-miss XIP estimate {lo}-{hi} cycles = {:.1}-{:.1} ms at 125 MHz\n",
        model.element_type().name(),
        lo as f64 / 125e3,
        hi as f64 / 125e3
    );
    Ok(lines)
}

fn table(paths: &[String]) -> Result<String> {
    let mut out = String::from(
        "| target | runs on | model | flash: code | flash: model | static RAM | stack high-water | model check (CRC + parse) | per classification | per generated image |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for path in paths {
        let r = read_results(path)?;
        let get = |k: &str| r.get(k).cloned().unwrap_or_else(|| "—".into());
        let cost = |k: &str| -> String {
            let Ok(count) = get(k).parse::<u64>() else {
                return "—".into();
            };
            let unit = get("unit");
            let mut s = format!("{count} {unit}");
            if let Ok(hz) = get("clock_hz").parse::<f64>() {
                let ms = count as f64 / hz * 1e3;
                let mhz = hz / 1e6;
                s += &if unit == "cycles" {
                    format!(" = {ms:.1} ms at {mhz} MHz")
                } else {
                    format!(" ≈ {ms:.1} ms at {mhz} MHz, if 1 instruction/cycle")
                };
            }
            s
        };
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            get("target"),
            get("emulator"),
            get("model"),
            kib(&get("flash_code")),
            kib(&get("flash_model")),
            kib(&get("static_ram")),
            kib(&get("stack")),
            cost("parse"),
            cost("classify"),
            cost("generate"),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two 28×28 "digits" (a bar and a box) framed MNIST-style into `w × h`,
    /// as `fw-host digits --model` writes them.
    fn framed_digits(w: usize, h: usize) -> Vec<u8> {
        let mut digits = Vec::new();
        for (label, x0, x1) in [(1u8, 13, 15), (0, 8, 20)] {
            let mut img = [0u8; 784];
            for y in 4..24 {
                for x in x0..x1 {
                    img[y * 28 + x] = 255;
                }
            }
            let mut framed = vec![0u8; w * h];
            assert_eq!(
                engine::frame::mnist(&img, 28, 28, &mut framed, w, h),
                Ok(true)
            );
            digits.push(label);
            digits.extend_from_slice(&framed);
        }
        digits
    }

    #[test]
    fn digits8_models_run_the_boot_sequence_on_8x8_digits() {
        let spec = random_model("digits8").unwrap();
        let int8 = spec
            .to_int8_bytes(&spec.calibrate(&calibration_images(&spec), 1))
            .unwrap();
        for bytes in [spec.to_bytes().unwrap(), int8] {
            let model = engine::Model::from_bytes(&bytes).unwrap();
            let image = model.header().image;
            assert_eq!((image.width, image.height, model.pixels()), (8, 8, 64));
            assert!(model.header().label_map.is_some());
            let mut text = String::new();
            let digits = framed_digits(8, 8);
            firmware_common::run::<HOST_WORKSPACE, _, _>(
                &mut text,
                &mut NoCounter,
                &bytes,
                &digits,
            )
            .unwrap();
            assert_eq!(text.lines().filter(|l| l.starts_with("digit ")).count(), 2);
            let art: Vec<&str> = text.lines().filter(|l| l.starts_with("    ")).collect();
            assert_eq!(art.len(), 8 * model.experts(), "{text}");
            assert!(art.iter().all(|l| l.chars().count() == 4 + 8));
            // MNIST's own 28×28 records: refused in one line.
            let err = firmware_common::run::<HOST_WORKSPACE, _, _>(
                &mut String::new(),
                &mut NoCounter,
                &bytes,
                &[0u8; 785],
            )
            .unwrap_err();
            assert_eq!(
                err.to_string(),
                "digits: 785 bytes are not whole records of 65 bytes (label + the model's image)"
            );
            assert!(traffic(&bytes, &digits).is_ok());
            assert!(traffic(&bytes, &[0u8; 785]).is_err());
        }
    }

    #[test]
    fn the_product_shapes_are_still_28x28_without_label_map() {
        for shape in ["default", "small"] {
            let spec = random_model(shape).unwrap();
            assert_eq!((spec.image.width, spec.image.height), (28, 28));
            assert!(spec.label_map.is_none());
        }
        assert!(random_model("huge").unwrap_err().contains("digits8"));
    }

    #[test]
    fn strip_novelty_keeps_the_weights_and_drops_the_section() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../models");
        for name in ["default-int8.bin", "default.bin"] {
            let bytes = std::fs::read(format!("{dir}/{name}")).unwrap();
            let with = engine::Model::from_bytes(&bytes).unwrap();
            assert!(with.repr().novelty().is_some(), "{name} has a section");
            let stripped = strip_novelty(&bytes).unwrap();
            let without = engine::Model::from_bytes(&stripped).unwrap();
            assert!(without.repr().novelty().is_none());
            assert_eq!(without.repr().version(), engine::FORMAT_VERSION);
            let mut ws = engine::host::workspace();
            for step in [0usize, 7, 13, 101] {
                let image: Vec<u8> = (0..784).map(|i| (i * step % 256) as u8).collect();
                let a = with.classify(&mut ws, &image).unwrap();
                let b = without.classify(&mut ws, &image).unwrap();
                assert!(a.novelty.is_some() && b.novelty.is_none());
                let bits = |c: &engine::Classification| {
                    c.probabilities
                        .iter()
                        .map(|p| p.to_bits())
                        .collect::<Vec<_>>()
                };
                assert_eq!(bits(&a), bits(&b), "{name}");
            }
        }
        let two_level = std::fs::read(format!("{dir}/hierarchical-int8.bin")).unwrap();
        assert!(strip_novelty(&two_level).is_err());
    }
}

//! The boot sequence every firmware target runs, written once.
//!
//! [`run`] classifies the embedded MNIST digits, frames each of them the
//! way MNIST was made (`engine::frame::mnist`, what the web page and
//! `harness classify --frame mnist` run; an MNIST digit comes back
//! unchanged), prints one generated sample per expert as ASCII art of the
//! model's image shape (28×28 for the bundled models) and reports what each
//! step cost on the target's [`Counter`]. The output is line-oriented so
//! that a script can compare targets with the host: everything left of
//! ` | ` on `digit`, `frame` and `sample` lines, and the art, must be
//! identical on every target; what is right of it is cost.
//!
//! The model is embedded at build time from the file named by the `MODEL_BIN`
//! environment variable (default `firmware-example/models/default-int8.bin`); the
//! build fails with a one-line message if the engine cannot run it.
//!
//! [`device::Device`] answers the host protocol (`../PROTOCOL.md`) over the
//! same model: the board side of `harness device`, which `fw-host serve`
//! runs on the host.
#![cfg_attr(not(test), no_std)]

use core::fmt::{self, Write};

use engine::{ElementType, Model, Workspace};
pub use line::LineBuffer;

pub mod device;
mod line;
pub mod serve;
pub mod stack;
#[cfg(feature = "cortex-m")]
pub mod systick;

#[cfg(feature = "embed")]
include!(concat!(env!("OUT_DIR"), "/capacity.rs"));

/// The model file embedded at build time (see the crate docs).
#[cfg(feature = "embed")]
pub static MODEL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/model.bin"));

/// Embedded MNIST test digits: records of one label byte then 784 pixels
/// (the first images of the MNIST test set, written by `fw-host digits`).
#[cfg(feature = "embed")]
pub static DIGITS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/digits.bin"));

/// Bytes per record of [`DIGITS`] (28×28 MNIST digits). [`run`] takes
/// records of `1 + model.pixels()` bytes: [`digit_record`].
pub const DIGIT_RECORD: usize = 1 + 784;

/// Bytes per digit record for `model`: a label byte, then one image of the
/// model's shape.
pub fn digit_record(model: &Model<'_>) -> usize {
    1 + model.pixels()
}

/// Expert `k`'s sample is generated with seed `SAMPLE_SEED + k`.
pub const SAMPLE_SEED: u64 = 0x5EED_0000;

/// A monotonic counter of the target's work: cycles, instructions or
/// microseconds.
pub trait Counter {
    /// What one count is ("cycles", "instructions", "us").
    fn unit(&self) -> &'static str;
    /// Counts per second when the unit is time-like (cycles at a known
    /// clock); used to print milliseconds.
    fn hz(&self) -> Option<u32>;
    /// The current count.
    fn now(&mut self) -> u64;
}

/// Total cost of the boot sequence's kinds of work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Costs {
    /// Counts spent checking and parsing the model (its CRC-32 included).
    pub parse: u64,
    /// Digits classified.
    pub digits: u32,
    /// Counts spent classifying them, in total.
    pub classify: u64,
    /// Counts spent framing the digits MNIST-style, in total.
    pub frame: u64,
    /// Images generated.
    pub samples: u32,
    /// Counts spent generating them, in total.
    pub generate: u64,
}

/// Why the boot sequence stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The engine refused the model or an input.
    Engine(engine::Error),
    /// The output sink failed.
    Output,
    /// The framing refused a digit.
    Frame(engine::frame::FrameError),
    /// The digits are not whole records of the model's image shape.
    Digits {
        /// Bytes of digits.
        len: usize,
        /// Bytes per record: 1 + the model's pixels.
        record: usize,
    },
}

impl From<engine::Error> for Failure {
    fn from(e: engine::Error) -> Self {
        Failure::Engine(e)
    }
}

impl From<fmt::Error> for Failure {
    fn from(_: fmt::Error) -> Self {
        Failure::Output
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Engine(e) => write!(f, "{e}"),
            Failure::Frame(e) => write!(f, "frame: {e}"),
            Failure::Output => f.write_str("output failed"),
            Failure::Digits { len, record } => write!(
                f,
                "digits: {len} bytes are not whole records of {record} bytes (label + the model's image)"
            ),
        }
    }
}

/// FNV-1a (64-bit) over the little-endian bits of `values`: a fingerprint
/// that changes if any bit of any value does.
pub fn fingerprint(values: &[f32]) -> u64 {
    fnv1a(values.iter().flat_map(|v| v.to_bits().to_le_bytes()))
}

/// FNV-1a (64-bit) over bytes (an integer model's pixels).
pub fn fingerprint_bytes(bytes: &[u8]) -> u64 {
    fnv1a(bytes.iter().copied())
}

fn fnv1a(bytes: impl Iterator<Item = u8>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn write_cost<W: Write, C: Counter>(out: &mut W, counter: &C, count: u64) -> fmt::Result {
    write!(out, " | {count} {}", counter.unit())?;
    if let Some(hz) = counter.hz() {
        // Whole microseconds, printed as milliseconds with three decimals.
        let us = count * 1_000_000 / hz as u64;
        write!(out, " = {}.{:03} ms", us / 1000, us % 1000)?;
    }
    Ok(())
}

/// Prints an image of intensities in `[0, 1]` as ASCII art, one line per row.
pub fn write_art<W: Write>(out: &mut W, image: &[f32], width: usize) -> fmt::Result {
    for row in image.chunks(width.max(1)) {
        out.write_str("    ")?;
        for &v in row {
            let mut px = [0u8];
            engine::to_pixels(&[v], &mut px);
            out.write_char(shade(px[0]))?;
        }
        out.write_char('\n')?;
    }
    Ok(())
}

/// Prints an image of 8-bit pixels as ASCII art, one line per row.
pub fn write_pixel_art<W: Write>(out: &mut W, image: &[u8], width: usize) -> fmt::Result {
    for row in image.chunks(width.max(1)) {
        out.write_str("    ")?;
        for &p in row {
            out.write_char(shade(p))?;
        }
        out.write_char('\n')?;
    }
    Ok(())
}

fn shade(pixel: u8) -> char {
    const RAMP: &[u8] = b" .:-=+*#%@";
    RAMP[pixel as usize * RAMP.len() / 256] as char
}

/// The boot sequence: describe the model, classify every digit of `digits`
/// (records of [`digit_record`] bytes: a label, then an image of the model's
/// shape), generate one sample per expert.
///
/// `N` is the workspace size: any `N` of at least the model's widest layer
/// gives the same results (firmware passes [`WORKSPACE_LEN`]).
pub fn run<const N: usize, W: Write, C: Counter>(
    out: &mut W,
    counter: &mut C,
    model_bytes: &[u8],
    digits: &[u8],
) -> Result<Costs, Failure> {
    let start = counter.now();
    let model = parse(model_bytes)?;
    let parse_cost = counter.now().wrapping_sub(start);
    let header = model.header();
    writeln!(
        out,
        "model {} bytes, {:?}, {} experts ({} styles), latent {}, {} parameters, {} weights, workspace {} values",
        model_bytes.len(),
        header.method,
        model.experts(),
        (0..model.experts()).map(|c| model.styles(c)).sum::<usize>(),
        model.latent(),
        model.parameters(),
        model.element_type().name(),
        N
    )?;
    writeln!(out, "model provenance: {}", header.provenance)?;
    write!(out, "cost parse")?;
    write_cost(out, counter, parse_cost)?;
    out.write_char('\n')?;
    let mut costs = infer::<N, W, C>(out, counter, &model, digits)?;
    costs.parse = parse_cost;
    if costs.digits > 0 {
        write!(out, "cost classify mean")?;
        write_cost(out, counter, costs.classify / costs.digits as u64)?;
        out.write_char('\n')?;
    }
    if costs.digits > 0 {
        write!(out, "cost frame mean")?;
        write_cost(out, counter, costs.frame / costs.digits as u64)?;
        out.write_char('\n')?;
    }
    if costs.samples > 0 {
        write!(out, "cost generate mean")?;
        write_cost(out, counter, costs.generate / costs.samples as u64)?;
        out.write_char('\n')?;
    }
    Ok(costs)
}

/// [`Model::from_bytes`] in a frame of its own, so that the validation's
/// stack is free again before inference reserves its workspace.
#[inline(never)]
fn parse(bytes: &[u8]) -> Result<Model<'_>, engine::Error> {
    Model::from_bytes(bytes)
}

/// The inference part of [`run`], in a frame of its own: the workspace is
/// only reserved once parsing (whose stack peak is separate) is over.
#[inline(never)]
fn infer<const N: usize, W: Write, C: Counter>(
    out: &mut W,
    counter: &mut C,
    model: &Model<'_>,
    digits: &[u8],
) -> Result<Costs, Failure> {
    let record = digit_record(model);
    if !digits.len().is_multiple_of(record) {
        return Err(Failure::Digits {
            len: digits.len(),
            record,
        });
    }
    let mut ws = Workspace::<N>::new();
    let mut costs = Costs::default();
    let mut correct = 0;
    for (i, record) in digits.chunks_exact(record).enumerate() {
        let (truth, pixels) = (record[0], &record[1..]);
        let start = counter.now();
        let c = model.classify(&mut ws, pixels)?;
        let spent = counter.now().wrapping_sub(start);
        costs.digits += 1;
        costs.classify += spent;
        let conf = c.confidence();
        write!(out, "digit {i} truth {truth} cluster {} label ", c.cluster)?;
        match c.label {
            Some(l) => {
                correct += u32::from(l == truth);
                write!(out, "{l}")?
            }
            None => out.write_char('-')?,
        }
        write!(out, " confidence ")?;
        write_probability(out, conf)?;
        // The style within the cluster (a flat model's is 0, certain).
        write!(out, " style {} style-confidence ", c.style)?;
        write_probability(out, c.style_confidence())?;
        // How unlike the training images it is, for a model with a novelty
        // section (`engine/FORMAT.md`, *Novelty*).
        write_novelty(out, c.novelty)?;
        write_cost(out, counter, spent)?;
        out.write_char('\n')?;
    }
    if model.header().label_map.is_some() {
        writeln!(
            out,
            "labels: {correct} of {} digits named correctly",
            costs.digits
        )?;
    }
    frame_digits(out, counter, &mut costs, model, digits, record)?;
    let width = model.header().image.width as usize;
    for k in 0..model.experts() {
        let seed = SAMPLE_SEED + k as u64;
        match model.element_type() {
            // f32 images: the fingerprint covers every bit of every value.
            ElementType::F16 => {
                let start = counter.now();
                let image = model.generate(&mut ws, k, seed)?;
                let spent = counter.now().wrapping_sub(start);
                sample_line(out, counter, &mut costs, k, fingerprint(image), spent)?;
                write_art(out, image, width)?;
            }
            // Integer models produce pixels: no f32 image buffer at all.
            ElementType::Int8 => {
                let mut buffer = [0u8; MAX_PIXELS];
                let image = pixels_of(&mut buffer, model, "pixels of a generated image")?;
                let start = counter.now();
                model.generate_pixels(&mut ws, k, seed, image)?;
                let spent = counter.now().wrapping_sub(start);
                sample_line(out, counter, &mut costs, k, fingerprint_bytes(image), spent)?;
                write_pixel_art(out, image, width)?;
            }
        }
    }
    Ok(costs)
}

/// A probability as four decimals and its `f32` bits, e.g.
/// `0.9999 (3f7ffc78)`. Four decimals by integer arithmetic: core's float
/// formatting needs 2 KB of stack, an eighth of a micro:bit's RAM.
fn write_probability<W: Write>(out: &mut W, p: f32) -> fmt::Result {
    let ten_thousandths = (p.clamp(0.0, 1.0) * 10_000.0 + 0.5) as u32;
    write!(
        out,
        "{}.{:04} ({:08x})",
        ten_thousandths / 10_000,
        ten_thousandths % 10_000,
        p.to_bits()
    )
}

/// A classification's novelty as ` novelty 0.8123 (3f4ff2e5) known` (or
/// `not-known`), the score in threshold units to four decimals and its
/// `f32` bits; ` novelty none` for a model without a novelty section.
/// Four decimals by integer arithmetic, as [`write_probability`]; a score
/// of 100,000 or more (`+∞` included) prints as `>=100000`, its bits
/// exact all the same.
fn write_novelty<W: Write>(out: &mut W, novelty: Option<engine::Novelty>) -> fmt::Result {
    let Some(n) = novelty else {
        return out.write_str(" novelty none");
    };
    out.write_str(" novelty ")?;
    if n.score < 100_000.0 {
        let ten_thousandths = (n.score.max(0.0) * 10_000.0 + 0.5) as u32;
        write!(
            out,
            "{}.{:04}",
            ten_thousandths / 10_000,
            ten_thousandths % 10_000
        )?;
    } else {
        out.write_str(">=100000")?;
    }
    let verdict = if n.known { "known" } else { "not-known" };
    write!(out, " ({:08x}) {verdict}", n.score.to_bits())
}

/// The most pixels an image of the boot sequence's own buffers holds (an
/// MNIST digit's 784).
const MAX_PIXELS: usize = 784;

/// The first [`Model::pixels`] bytes of `buffer`, or the engine's capacity
/// error naming `what` for a model of larger images.
fn pixels_of<'b>(
    buffer: &'b mut [u8; MAX_PIXELS],
    model: &Model<'_>,
    what: &'static str,
) -> Result<&'b mut [u8], engine::Error> {
    buffer
        .get_mut(..model.pixels())
        .ok_or(engine::Error::Capacity {
            what,
            needed: model.pixels(),
            max: MAX_PIXELS,
        })
}

/// Frames every digit MNIST-style into the model's shape
/// (`engine::frame::mnist`) and prints a `frame` line each: the framed
/// bytes' fingerprint and whether they equal the digit, then the cost.
#[inline(never)]
fn frame_digits<W: Write, C: Counter>(
    out: &mut W,
    counter: &mut C,
    costs: &mut Costs,
    model: &Model<'_>,
    digits: &[u8],
    record: usize,
) -> Result<(), Failure> {
    let image = model.header().image;
    let (w, h) = (image.width as usize, image.height as usize);
    let mut buffer = [0u8; MAX_PIXELS];
    let framed = pixels_of(&mut buffer, model, "pixels of a framed digit")?;
    for (i, record) in digits.chunks_exact(record).enumerate() {
        let pixels = &record[1..];
        let start = counter.now();
        engine::frame::mnist(pixels, w, h, framed, w, h).map_err(Failure::Frame)?;
        let spent = counter.now().wrapping_sub(start);
        costs.frame += spent;
        let same = if *framed == *pixels {
            "unchanged"
        } else {
            "changed"
        };
        write!(
            out,
            "frame {i} fnv1a {:016x} {same}",
            fingerprint_bytes(framed)
        )?;
        write_cost(out, counter, spent)?;
        out.write_char('\n')?;
    }
    Ok(())
}

/// Counts one generated sample and prints its line: fingerprint, then cost.
fn sample_line<W: Write, C: Counter>(
    out: &mut W,
    counter: &C,
    costs: &mut Costs,
    k: usize,
    fingerprint: u64,
    spent: u64,
) -> fmt::Result {
    costs.samples += 1;
    costs.generate += spent;
    write!(out, "sample {k} fnv1a {fingerprint:016x}")?;
    write_cost(out, counter, spent)?;
    out.write_char('\n')
}

/// The whole boot sequence of a firmware: paints the stack, runs [`run`] on
/// the embedded model and digits, then prints the stack high-water mark.
///
/// # Safety
/// `stack` must be the address range of the stack this code runs on (lowest
/// address first), used by nothing else; see [`stack::paint`].
#[cfg(feature = "embed")]
#[inline(never)] // nor the serving's to its own: the peak is the larger of the two
pub unsafe fn boot<W: Write, C: Counter>(
    out: &mut W,
    counter: &mut C,
    stack: core::ops::Range<usize>,
) -> Result<Costs, Failure> {
    // SAFETY: forwarded from the caller.
    unsafe { stack::paint(stack.start) };
    let costs = run::<WORKSPACE_LEN, _, _>(out, counter, MODEL, DIGITS)?;
    // SAFETY: forwarded from the caller; the range is readable memory.
    let used = unsafe { stack::high_water(stack.start, stack.end) };
    writeln!(
        out,
        "stack high-water {used} bytes of {}",
        stack.end - stack.start
    )?;
    Ok(costs)
}

/// Bytes of the largest request frame the embedded model takes: the `R` of
/// each port's [`device_protocol::Server`].
#[cfg(feature = "embed")]
pub const REQUEST_LEN: usize = device_protocol::request_capacity(PIXELS);

/// Bytes of the buffer answers to the embedded model are encoded in.
#[cfg(feature = "embed")]
pub const ANSWER_LEN: usize = {
    let model = device_protocol::wire_len(device_protocol::answer_capacity(PIXELS, EXPERTS));
    if model > device_protocol::MIN_ANSWER_BUFFER {
        model
    } else {
        device_protocol::MIN_ANSWER_BUFFER
    }
};

/// After [`boot`]: serves the embedded model and digits on `ports`
/// ([`serve::serve`], one server each), named `firmware` in `info`, with
/// `stats` reporting the stack high-water mark since boot. Returns only if
/// `allow_shutdown` (a test build) and the host asked for a shutdown.
///
/// The workspace, the generated image, the servers and the answer buffer
/// are this function's locals: its stack frame is the serving state
/// (about 1.1 KiB a port and 1.7 KiB more for a 28×28 model).
///
/// # Safety
/// `stack` must be the stack region [`boot`] painted (the one this code
/// runs on), readable memory.
#[cfg(feature = "embed")]
#[inline(never)] // its frame must not add to the boot sequence's (see the budget in ../README.md)
pub unsafe fn serve_embedded<C: Counter, const P: usize>(
    counter: C,
    mut ports: [&mut dyn serve::Port; P],
    firmware: &str,
    stack: core::ops::Range<usize>,
    allow_shutdown: bool,
) -> Result<(), Failure> {
    let model = parse(MODEL)?;
    let mut ws = Workspace::<WORKSPACE_LEN>::new();
    let mut image = [0u8; PIXELS];
    let device = device::Device::new(MODEL, model, &mut ws, &mut image, counter, firmware)?
        .with_digits(DIGITS)
        .allow_shutdown(allow_shutdown);
    // SAFETY: forwarded from the caller.
    let mut device = unsafe { device.with_stack(stack) };
    // Built in place (a `const` block), not in a temporary then moved.
    let mut servers = [const { device_protocol::Server::<REQUEST_LEN>::new() }; P];
    let mut out = [0u8; ANSWER_LEN];
    serve::serve(&mut device, &mut ports, &mut servers, &mut out);
    Ok(())
}

#[cfg(all(test, feature = "embed"))]
mod tests {
    use super::*;

    struct Steps(u64);
    impl Counter for Steps {
        fn unit(&self) -> &'static str {
            "steps"
        }
        fn hz(&self) -> Option<u32> {
            Some(1000)
        }
        fn now(&mut self) -> u64 {
            self.0 += 7;
            self.0
        }
    }

    #[test]
    fn fingerprint_sees_every_bit() {
        let a = fingerprint(&[1.0, 2.0]);
        assert_ne!(a, fingerprint(&[1.0, f32::from_bits(2.0f32.to_bits() ^ 1)]));
        assert_ne!(a, fingerprint(&[2.0, 1.0]));
    }

    #[test]
    fn runs_the_sequence_on_the_embedded_model() {
        let mut text = String::new();
        let costs = run::<WORKSPACE_LEN, _, _>(&mut text, &mut Steps(0), MODEL, DIGITS).unwrap();
        let model = Model::from_bytes(MODEL).unwrap();
        assert_eq!(costs.digits as usize, DIGITS.len() / DIGIT_RECORD);
        assert_eq!(costs.samples as usize, model.experts());
        // Each measured step is one pair of counter reads, 7 steps apart.
        assert_eq!(costs.classify, 7 * costs.digits as u64);
        assert_eq!(
            text.lines().filter(|l| l.starts_with("digit ")).count(),
            costs.digits as usize
        );
        let art_rows = text.lines().filter(|l| l.starts_with("    ")).count();
        let rows = model.header().image.height as usize;
        assert_eq!(art_rows, rows * model.experts());
        assert!(text.contains("| 7 steps = 7.000 ms"), "{text}");
    }

    #[test]
    fn digits_of_another_shape_are_refused_in_one_line() {
        let mut text = String::new();
        let digits = &DIGITS[..DIGITS.len() - 1];
        let err = run::<WORKSPACE_LEN, _, _>(&mut text, &mut Steps(0), MODEL, digits).unwrap_err();
        let record = 1 + Model::from_bytes(MODEL).unwrap().pixels();
        assert_eq!(
            err,
            Failure::Digits {
                len: digits.len(),
                record
            }
        );
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn a_corrupt_model_is_reported_not_run() {
        let mut bytes = [0u8; 64];
        bytes[..16].copy_from_slice(&MODEL[..16]);
        let mut text = String::new();
        assert!(matches!(
            run::<WORKSPACE_LEN, _, _>(&mut text, &mut Steps(0), &bytes, DIGITS),
            Err(Failure::Engine(_))
        ));
    }

    #[test]
    fn novelty_prints_four_decimals_its_bits_and_the_verdict() {
        let line = |n: Option<engine::Novelty>| {
            let mut text = String::new();
            write_novelty(&mut text, n).unwrap();
            text
        };
        let n = |score: f32| Some(engine::Novelty::new(score, 0.0, 1.0));
        assert_eq!(line(None), " novelty none");
        assert_eq!(line(n(0.5)), " novelty 0.5000 (3f000000) known");
        assert_eq!(line(n(1.0)), " novelty 1.0000 (3f800000) known");
        assert_eq!(line(n(1.25)), " novelty 1.2500 (3fa00000) not-known");
        assert_eq!(line(n(12.34567)), " novelty 12.3457 (414587dd) not-known");
        assert_eq!(
            line(n(f32::INFINITY)),
            " novelty >=100000 (7f800000) not-known"
        );
        assert_eq!(line(n(f32::NAN)), " novelty >=100000 (7f800000) not-known");
    }

    #[test]
    fn the_boot_log_says_novelty_none_for_a_model_without_a_section() {
        let mut text = String::new();
        run::<WORKSPACE_LEN, _, _>(&mut text, &mut Steps(0), MODEL, DIGITS).unwrap();
        let digits: Vec<&str> = text.lines().filter(|l| l.starts_with("digit ")).collect();
        assert!(!digits.is_empty(), "{text}");
        let with_section = engine::ModelRepr::parse(MODEL).unwrap().novelty().is_some();
        for line in digits {
            assert_eq!(line.contains(" novelty none"), !with_section, "{line}");
            if with_section {
                assert!(
                    line.contains(" known") || line.contains(" not-known"),
                    "{line}"
                );
            }
        }
    }
}

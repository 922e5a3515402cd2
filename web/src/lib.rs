//! The engine in a web page: raw `extern "C"` exports over one page state.
//!
//! This is the only file of `web/` that talks to the engine, and it uses only
//! its public inference API (`Model::from_bytes`, `header`, `experts`,
//! `latent`, `pixels`, `workspace_len`, `classify`, `generate`, `decode`,
//! `Workspace`, `Error`'s `Display`; for a two-level model's styles `styles`,
//! `Classification::style` and `style_probabilities`, `generate_style`; for
//! the header text also `parameters`, `element_type`, `ram_bytes`,
//! `repr().version()`, `repr().style_weight` and `repr().novelty()`; for
//! the novelty score `Classification::novelty`), and `engine::frame::mnist` to turn the pad's
//! drawing into the model's input image. The page (`www/app.js`) exchanges data
//! through buffers in the wasm memory: an export returns a buffer's address,
//! JavaScript reads or fills it, another export does the work. Nothing here is
//! `unsafe`: addresses are taken from `Vec`s that live in the state.
//!
//! The same functions run natively (`examples/host_timing.rs`, the tests),
//! where the addresses are simply not used.
//!
//! [`board`] is the page's side of the host ↔ board protocol ("Connect a
//! board"), with the protocol's own crate.

use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};

use engine::{Model, Workspace};

pub mod board;

/// Values per workspace buffer: wider than any model the trainer writes
/// (the harness uses 1,024); a model needing more is refused with a message.
const WIDTH: usize = 4096;

/// Everything the page holds between calls.
struct State {
    /// The loaded model. Its bytes are leaked to get a `'static` borrow: each
    /// model opened stays in memory until the page is reloaded (a few MiB for
    /// a few models), which keeps this file free of `unsafe`.
    model: Option<Model<'static>>,
    file_len: usize,
    upload: Vec<u8>,
    drawing: Vec<u8>,
    pixels: Vec<u8>,
    probabilities: Vec<f32>,
    label: i32,
    /// The last classification's style within its cluster, and `p(s | cluster)`.
    style: i32,
    style_probabilities: Vec<f32>,
    /// The last classification's novelty score (NaN without one) and its
    /// verdict: 1 known, 0 not, -1 no score (a model without a novelty
    /// section, or no classification yet).
    novelty: f32,
    known: i32,
    latent: Vec<f32>,
    output: Vec<f32>,
    text: String,
    ws: Box<Workspace<WIDTH>>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn state() -> MutexGuard<'static, Option<State>> {
    let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    guard.get_or_insert_with(|| State {
        model: None,
        file_len: 0,
        upload: Vec::new(),
        drawing: Vec::new(),
        pixels: Vec::new(),
        probabilities: Vec::new(),
        label: -1,
        style: -1,
        style_probabilities: Vec::new(),
        novelty: f32::NAN,
        known: -1,
        latent: Vec::new(),
        output: Vec::new(),
        text: String::new(),
        ws: Box::new(Workspace::new()),
    });
    guard
}

/// Runs `f` on the state (created on first use).
fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    let mut guard = state();
    f(guard.as_mut().expect("state was just created"))
}

/// A buffer of `len` bytes for a model file; returns its address.
#[no_mangle]
pub extern "C" fn upload(len: usize) -> *mut u8 {
    with(|s| {
        s.upload = vec![0; len];
        s.upload.as_mut_ptr()
    })
}

/// Parses the uploaded bytes as a model. Returns 0 on success, with the
/// header description in the text buffer (see [`describe`]); -1 on failure,
/// with the engine's one-line error in the text buffer and the previous model
/// kept.
#[no_mangle]
pub extern "C" fn load() -> i32 {
    with(|s| {
        let bytes = std::mem::take(&mut s.upload);
        match check(&bytes) {
            Err(message) => {
                s.text = message;
                -1
            }
            Ok(()) => {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                let model = Model::from_bytes(bytes).expect("validated just above");
                s.file_len = bytes.len();
                s.pixels = vec![0; model.pixels()];
                s.probabilities = vec![0.0; model.experts()];
                s.latent = vec![0.0; model.latent()];
                s.output = vec![0.0; model.pixels()];
                s.label = -1;
                s.style = -1;
                s.style_probabilities.clear();
                s.novelty = f32::NAN;
                s.known = -1;
                s.text = describe(&model, bytes);
                s.model = Some(model);
                0
            }
        }
    })
}

/// The largest model file the page opens: 16 MiB. The page runs the files
/// the boards run from flash; the largest flash among the firmware's targets
/// is 4 MiB (the bundled default model is 0.9 MiB), and every model opened
/// stays in the page's memory until it is reloaded (see [`State::model`]).
/// A larger file is refused from its size alone, before it is read.
pub const MAX_MODEL_BYTES: usize = 16 << 20;

/// [`MAX_MODEL_BYTES`], for the page (and its test).
#[no_mangle]
pub extern "C" fn max_model_bytes() -> usize {
    MAX_MODEL_BYTES
}

/// How many of a file's first bytes [`check_head`] reads: the format's fixed
/// frame (magic, version, reserved bits, body length, checksum).
#[no_mangle]
pub extern "C" fn head_len() -> usize {
    engine::format::HEADER_LEN
}

/// Checks a model file before the page reads it whole: its first bytes (at
/// [`head_len`] bytes, fewer only for a shorter file, put in the upload buffer) and its length in bytes
/// (`file_len`, a JavaScript number: a file may be over 4 GiB). Returns 0 if
/// the page should read it, -1 with the reason in the text buffer if not
/// (the engine's own message for a frame it would refuse). The upload
/// buffer is emptied either way.
#[no_mangle]
pub extern "C" fn check_head(file_len: f64) -> i32 {
    with(|s| {
        let head = std::mem::take(&mut s.upload);
        match head_error(&head, file_len) {
            Ok(()) => 0,
            Err(message) => {
                s.text = message;
                -1
            }
        }
    })
}

/// What [`check_head`] checks, in the order the engine checks a whole file
/// (`ModelFile::new_checked`), with the size limit before the body length:
/// the reasons a file's first bytes and its length can give.
pub fn head_error(head: &[u8], file_len: f64) -> Result<(), String> {
    use engine::format::HEADER_LEN;
    use engine::{Error, ModelFile, FORMAT_VERSION, MAGIC, TWO_LEVEL_VERSION};
    // Saturates: a file over usize::MAX bytes is over the limit anyway.
    let len = file_len as usize;
    let available = len.min(head.len());
    let frame = ModelFile::new_unchecked(head);
    let refused = if available < MAGIC.len() {
        Some(Error::Truncated {
            needed: HEADER_LEN,
            available: len,
        })
    } else if frame.magic() != MAGIC {
        Some(Error::BadMagic)
    } else if available < HEADER_LEN {
        Some(Error::Truncated {
            needed: HEADER_LEN,
            available: len,
        })
    } else if !(FORMAT_VERSION..=TWO_LEVEL_VERSION).contains(&frame.version()) {
        // The engine reads flat (version 2) and two-level (version 3) files.
        Some(Error::UnsupportedVersion {
            found: frame.version(),
            supported: TWO_LEVEL_VERSION,
        })
    } else if frame.reserved() != 0 {
        Some(Error::ReservedBits)
    } else {
        None
    };
    if let Some(e) = refused {
        return Err(e.to_string());
    }
    if file_len > MAX_MODEL_BYTES as f64 {
        // Rounded up: a file just over the limit never reads as the limit.
        return Err(format!(
            "{:.1} MiB is over this page's limit of {} MiB (4 times the largest board's flash)",
            (file_len / 1048576.0 * 10.0).ceil() / 10.0,
            MAX_MODEL_BYTES >> 20
        ));
    }
    let needed = HEADER_LEN + frame.body_len() as usize;
    match len.cmp(&needed) {
        std::cmp::Ordering::Less => Err(Error::Truncated {
            needed,
            available: len,
        }
        .to_string()),
        std::cmp::Ordering::Greater => Err(Error::TrailingBytes {
            extra: len - needed,
        }
        .to_string()),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// Whether `bytes` is a model this page can run, or the one-line reason why not.
fn check(bytes: &[u8]) -> Result<(), String> {
    let model = Model::from_bytes(bytes).map_err(|e| e.to_string())?;
    // generate and decode return f32 images from the workspace.
    let needed = model.workspace_len().max(model.pixels());
    if needed > WIDTH {
        return Err(format!(
            "model needs a workspace of {needed} values, this page has {WIDTH}"
        ));
    }
    Ok(())
}

/// The model's header as `harness inspect` shows it, as JSON:
/// `{"experts", "latent", "width", "height", "labels", "crc", "styles",
/// "novelty", "inspect"}` where `inspect` is the text, `labels` the label
/// map (or null), `crc` the file's CRC-32 from its header (what a board's
/// `info` answer reports as `model_crc`), `styles` each cluster's number
/// of styles (all 1 for a flat model) and `novelty` whether the model has
/// a novelty score. Of a two-level model the text has one line per
/// cluster: its styles and their weights; it ends with the novelty line
/// `harness inspect` ends with.
pub fn describe(model: &Model<'_>, bytes: &[u8]) -> String {
    let h = model.header();
    let version = model.repr().version();
    let mut t = String::new();
    let _ = writeln!(
        t,
        "format version {version}, {} bytes ({:.3} MiB)",
        bytes.len(),
        bytes.len() as f64 / 1048576.0
    );
    let _ = writeln!(
        t,
        "method {:?}, image {}x{}, experts {}, latent {}, likelihood {:?}",
        h.method, h.image.width, h.image.height, h.experts, h.latent, h.likelihood
    );
    let weights: Vec<f32> = h
        .mixture_weights
        .iter()
        .map(|w| (w * 1000.0).round() / 1000.0)
        .collect();
    let _ = writeln!(t, "mixture weights {weights:?}");
    match &h.label_map {
        Some(m) => {
            let _ = writeln!(t, "label map (cluster -> digit) {:?}", m.as_slice());
        }
        None => {
            let _ = writeln!(t, "label map: none");
        }
    }
    let _ = writeln!(t, "provenance: {}", h.provenance);
    let _ = writeln!(
        t,
        "parameters {}, {} weights, RAM needed {} bytes (workspace {} slots per buffer)",
        model.parameters(),
        model.element_type().name(),
        model.ram_bytes(),
        model.workspace_len()
    );
    let styles: Vec<usize> = (0..model.experts()).map(|c| model.styles(c)).collect();
    if model.repr().is_two_level() {
        for (c, &n) in styles.iter().enumerate() {
            let weights: Vec<f32> = (0..n)
                .map(|st| {
                    let w = model.repr().style_weight(c, st).unwrap_or(0.0);
                    (w * 1000.0).round() / 1000.0
                })
                .collect();
            let _ = writeln!(t, "cluster {c}: {n} styles, weights {weights:?}");
        }
    }
    // The novelty line of `harness inspect` (trainer::eval::host::describe).
    let novelty = model.repr().novelty();
    let _ = match novelty {
        None => writeln!(t, "novelty score: none (this file has no novelty section)"),
        Some(n) => writeln!(t, "novelty score: {n}"),
    };
    let labels = match &h.label_map {
        Some(m) => format!("{:?}", m.as_slice()),
        None => "null".into(),
    };
    let crc = engine::ModelFile::new_checked_skip_crc(bytes).map_or(0, |f| f.checksum());
    format!(
        "{{\"experts\":{},\"latent\":{},\"width\":{},\"height\":{},\"labels\":{labels},\"crc\":{crc},\"styles\":{styles:?},\"novelty\":{},\"inspect\":{}}}",
        model.experts(),
        model.latent(),
        h.image.width,
        h.image.height,
        novelty.is_some(),
        json_string(&t)
    )
}

/// `s` as a JSON string literal, quoted and escaped.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Address of the text buffer (an error message or the header JSON), UTF-8.
#[no_mangle]
pub extern "C" fn text_ptr() -> *const u8 {
    with(|s| s.text.as_ptr())
}

/// Length in bytes of the text buffer.
#[no_mangle]
pub extern "C" fn text_len() -> usize {
    with(|s| s.text.len())
}

/// A buffer of `width * height` bytes for a drawing (0 = paper, 255 = ink).
#[no_mangle]
pub extern "C" fn drawing(width: usize, height: usize) -> *mut u8 {
    with(|s| {
        s.drawing.resize(width * height, 0);
        s.drawing.as_mut_ptr()
    })
}

/// Turns the drawing into the model's input image, MNIST-style, at the
/// model's image shape (`engine::frame::mnist`). Returns 1 if the drawing
/// has ink, 0 if it is empty, -1 without a model or for a drawing larger
/// than its buffer or than the engine's limit (message in the text buffer).
#[no_mangle]
pub extern "C" fn preprocess(width: usize, height: usize) -> i32 {
    with(|s| {
        let Some(model) = &s.model else { return -1 };
        let image = model.header().image;
        let Some(ink) = width.checked_mul(height).and_then(|n| s.drawing.get(..n)) else {
            s.text = format!("no drawing of {width}x{height} pixels");
            return -1;
        };
        let (w, h) = (image.width as usize, image.height as usize);
        match engine::frame::mnist(ink, width, height, &mut s.pixels, w, h) {
            Ok(has_ink) => i32::from(has_ink),
            Err(e) => {
                s.text = e.to_string();
                -1
            }
        }
    })
}

/// Address of the model's input image (`pixels()` bytes).
#[no_mangle]
pub extern "C" fn pixels_ptr() -> *mut u8 {
    with(|s| s.pixels.as_mut_ptr())
}

/// Classifies the input image: returns the cluster (or -1 without a model);
/// the probabilities are at [`probabilities_ptr`], the label at [`label`].
#[no_mangle]
pub extern "C" fn classify() -> i32 {
    with(|s| {
        let Some(model) = &s.model else { return -1 };
        match model.classify(&mut *s.ws, &s.pixels) {
            Ok(c) => {
                s.probabilities.clear();
                s.probabilities.extend_from_slice(&c.probabilities);
                s.label = c.label.map_or(-1, i32::from);
                s.style = c.style as i32;
                s.style_probabilities.clear();
                s.style_probabilities
                    .extend_from_slice(&c.style_probabilities);
                (s.novelty, s.known) = match c.novelty {
                    Some(n) => (n.score, i32::from(n.known)),
                    None => (f32::NAN, -1),
                };
                c.cluster as i32
            }
            Err(e) => {
                s.text = e.to_string();
                -1
            }
        }
    })
}

/// Address of the last classification's K probabilities (f32).
#[no_mangle]
pub extern "C" fn probabilities_ptr() -> *const f32 {
    with(|s| s.probabilities.as_ptr())
}

/// The last classification's label, or -1 when the model has no label map.
#[no_mangle]
pub extern "C" fn label() -> i32 {
    with(|s| s.label)
}

/// The last classification's style within its cluster (0 for a flat
/// model), or -1 before any.
#[no_mangle]
pub extern "C" fn style() -> i32 {
    with(|s| s.style)
}

/// The last classification's novelty score, in threshold units (1 = at
/// the threshold; `+∞` possible), or NaN when there is none (see
/// [`novelty_known`]).
#[no_mangle]
pub extern "C" fn novelty() -> f32 {
    with(|s| s.novelty)
}

/// The last classification's novelty verdict: 1 known (score at most 1),
/// 0 not known ("this does not look like a digit"), -1 none (a model
/// without a novelty section, or no classification yet).
#[no_mangle]
pub extern "C" fn novelty_known() -> i32 {
    with(|s| s.known)
}

/// Address of the last classification's style probabilities
/// (`p(s | cluster)`, [`style_count`] f32).
#[no_mangle]
pub extern "C" fn style_probabilities_ptr() -> *const f32 {
    with(|s| s.style_probabilities.as_ptr())
}

/// How many style probabilities the last classification has (its cluster's
/// styles; 1 for a flat model).
#[no_mangle]
pub extern "C" fn style_count() -> usize {
    with(|s| s.style_probabilities.len())
}

/// A digit from cluster `k`'s style `style` with `seed`: returns the
/// address of `pixels()` f32 intensities, or null (message in the text
/// buffer, e.g. for a style the cluster does not have).
#[no_mangle]
pub extern "C" fn generate_style(k: usize, style: usize, seed: u32) -> *const f32 {
    with(|s| {
        let Some(model) = &s.model else {
            return std::ptr::null();
        };
        let result = model.generate_style(&mut *s.ws, k, style, u64::from(seed));
        keep(result, &mut s.output, &mut s.text)
    })
}

/// A digit from expert `k` with `seed`: returns the address of `pixels()`
/// f32 intensities, or null (message in the text buffer).
#[no_mangle]
pub extern "C" fn generate(k: usize, seed: u32) -> *const f32 {
    with(|s| {
        let Some(model) = &s.model else {
            return std::ptr::null();
        };
        let result = model.generate(&mut *s.ws, k, u64::from(seed));
        keep(result, &mut s.output, &mut s.text)
    })
}

/// Address of the latent vector [`decode`] reads (`latent()` f32).
#[no_mangle]
pub extern "C" fn latent_ptr() -> *mut f32 {
    with(|s| s.latent.as_mut_ptr())
}

/// Decodes the latent vector with expert `k`'s decoder: returns the address
/// of `pixels()` f32 intensities, or null (message in the text buffer).
#[no_mangle]
pub extern "C" fn decode(k: usize) -> *const f32 {
    with(|s| {
        let Some(model) = &s.model else {
            return std::ptr::null();
        };
        let result = model.decode(&mut *s.ws, k, &s.latent);
        keep(result, &mut s.output, &mut s.text)
    })
}

/// Copies an image out of the workspace and returns its address, or puts the
/// error in the text buffer and returns null.
fn keep(
    result: Result<&[f32], engine::Error>,
    output: &mut Vec<f32>,
    text: &mut String,
) -> *const f32 {
    match result {
        Ok(values) => {
            output.clear();
            output.extend_from_slice(values);
            output.as_ptr()
        }
        Err(e) => {
            *text = e.to_string();
            std::ptr::null()
        }
    }
}

/// Native access for the timing example and tests: loads `bytes`.
pub fn load_bytes(bytes: &[u8]) -> Result<String, String> {
    upload(bytes.len());
    with(|s| s.upload.copy_from_slice(bytes));
    let ok = load() == 0;
    let text = with(|s| s.text.clone());
    if ok {
        Ok(text)
    } else {
        Err(text)
    }
}

/// Native access: sets the input image.
pub fn set_pixels(pixels: &[u8]) {
    with(|s| s.pixels.copy_from_slice(pixels));
}

/// Native access: the last classification's probabilities.
pub fn probabilities() -> Vec<f32> {
    with(|s| s.probabilities.clone())
}

/// Native access: the last classification's style and its probabilities.
pub fn style_answer() -> (i32, Vec<f32>) {
    with(|s| (s.style, s.style_probabilities.clone()))
}

/// Native access: the last classification's novelty score and verdict
/// (`None` for a model without a novelty section).
pub fn novelty_answer() -> Option<(f32, bool)> {
    with(|s| (s.known >= 0).then_some((s.novelty, s.known == 1)))
}

/// Native access: the last generated or decoded image.
pub fn output() -> Vec<f32> {
    with(|s| s.output.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page's state is one global: the tests that load models take
    /// turns.
    static TEST_LOCK: Mutex<()> = Mutex::new(());

    #[test]
    fn head_checks_give_the_engines_reasons_before_the_whole_file() {
        let bytes = engine::testing::tiny_model_bytes();
        let n = bytes.len() as f64;
        let head = &bytes[..engine::format::HEADER_LEN];
        assert_eq!(head_error(head, n), Ok(()));
        // Each refusal as the engine words it for the whole file.
        let whole = |b: &[u8]| Model::from_bytes(b).map(|_| ()).map_err(|e| e.to_string());
        let mut bad = bytes.clone();
        bad[0] ^= 1;
        assert_eq!(head_error(&bad[..20], n), whole(&bad));
        assert!(whole(&bad).unwrap_err().contains("bad magic"));
        let mut newer = bytes.clone();
        newer[8] = 4;
        assert_eq!(head_error(&newer[..20], n), whole(&newer));
        let mut reserved = bytes.clone();
        reserved[10] = 1;
        assert_eq!(head_error(&reserved[..20], n), whole(&reserved));
        for cut in [3, 8, 19, 20, 1000.min(bytes.len() - 1)] {
            let short = &bytes[..cut];
            assert_eq!(
                head_error(&short[..cut.min(20)], cut as f64),
                whole(short),
                "{cut}"
            );
        }
        let mut long = bytes.to_vec();
        long.extend_from_slice(&[0; 5]);
        assert_eq!(head_error(head, long.len() as f64), whole(&long));
        // Over the limit: refused from the length alone, with the limit named.
        let big = head_error(head, 300e6).unwrap_err();
        assert!(
            big.contains("286.2 MiB is over this page's limit of 16 MiB"),
            "{big}"
        );
        let just_over = head_error(head, (MAX_MODEL_BYTES + 1) as f64).unwrap_err();
        assert!(
            just_over.starts_with("16.1 MiB is over this page's limit of 16 MiB"),
            "{just_over}"
        );
        assert!(head_error(b"not a model", 300e6)
            .unwrap_err()
            .contains("bad magic"));
    }

    #[test]
    fn exports_classify_generate_and_report_errors() {
        let _guard = TEST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // One test: the state is global. The engine's own tiny model
        // follows its format whatever the version.
        let bytes = engine::testing::tiny_model_bytes();
        assert!(load_bytes(&bytes[..bytes.len() - 1])
            .unwrap_err()
            .starts_with("truncated model"));
        assert_eq!(classify(), -1, "no model loaded yet");
        let info = load_bytes(&bytes).unwrap();
        let model = Model::from_bytes(&bytes).unwrap();
        let k = model.experts();
        assert!(info.contains(&format!("\"experts\":{k},")), "{info}");
        let crc = engine::ModelFile::new_checked_skip_crc(&bytes[..])
            .unwrap()
            .checksum();
        assert!(info.contains(&format!("\"crc\":{crc},")), "{info}");
        let mut ws = Box::new(Workspace::<WIDTH>::new());
        // The pad's input path: a drawing framed into the model's shape.
        drawing(10, 10);
        with(|s| s.drawing[55] = 255);
        assert_eq!(preprocess(10, 10), 1);
        let shape = model.header().image;
        let mut framed = vec![0u8; model.pixels()];
        let d = with(|s| s.drawing.clone());
        let (w, h) = (shape.width as usize, shape.height as usize);
        assert_eq!(
            engine::frame::mnist(&d, 10, 10, &mut framed, w, h),
            Ok(true)
        );
        assert_eq!(with(|s| s.pixels.clone()), framed);
        assert_eq!(preprocess(11, 10), -1, "larger than the drawing buffer");
        let image: Vec<u8> = (0..model.pixels()).map(|i| (i * 7) as u8).collect();
        set_pixels(&image);
        let c = model.classify(&mut *ws, &image).unwrap();
        assert_eq!(classify(), c.cluster as i32);
        assert_eq!(probabilities(), c.probabilities.to_vec());
        assert_eq!(label(), c.label.map_or(-1, i32::from));
        assert!(!generate(1, 9).is_null());
        assert_eq!(output(), model.generate(&mut *ws, 1, 9).unwrap());
        assert!(generate(k, 9).is_null());
        assert_eq!(
            with(|s| s.text.clone()),
            format!("no expert {k}: model has {k} experts")
        );
        // The page's check of a file's first bytes, through the upload buffer.
        let head = &bytes[..head_len()];
        upload(head.len());
        with(|s| s.upload.copy_from_slice(head));
        assert_eq!(check_head(bytes.len() as f64), 0);
        upload(20);
        with(|s| s.upload[..4].copy_from_slice(b"PK\x03\x04"));
        assert_eq!(check_head(300e6), -1);
        assert!(with(|s| s.text.contains("bad magic")));
        assert_eq!(classify(), c.cluster as i32, "the model is kept");
        assert_eq!(style_answer(), (0, vec![1.0]), "a flat model: style 0");
        assert_eq!(novelty_answer(), None, "no novelty section: no score");
        assert_eq!((novelty_known(), novelty().is_nan()), (-1, true));
        assert!(info.contains("\"novelty\":false"), "{info}");
        assert!(
            info.contains("novelty score: none (this file has no novelty section)"),
            "{info}"
        );
        assert!(info.contains("\"styles\":[1, 1, 1]"), "{info}");

        // A two-level model: the style and its probabilities are the
        // engine's, and generate_style draws each style.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../firmware-example/models/hierarchical-int8.bin"
        );
        let bytes = std::fs::read(path).unwrap();
        let info = load_bytes(&bytes).unwrap();
        let model = Model::from_bytes(&bytes).unwrap();
        assert!(info.contains("format version 3,"), "{info}");
        let styles: Vec<usize> = (0..model.experts()).map(|c| model.styles(c)).collect();
        assert!(info.contains(&format!("\"styles\":{styles:?}")), "{info}");
        for step in [7usize, 13, 29] {
            let image: Vec<u8> = (0..model.pixels()).map(|i| (i * step) as u8).collect();
            set_pixels(&image);
            let c = model.classify(&mut *ws, &image).unwrap();
            assert_eq!(classify(), c.cluster as i32);
            assert_eq!(
                style_answer(),
                (c.style as i32, c.style_probabilities.to_vec())
            );
            assert_eq!(style_count(), model.styles(c.cluster));
        }
        let last = model.styles(0) - 1;
        assert!(!generate_style(0, last, 4).is_null());
        assert_eq!(
            output(),
            model.generate_style(&mut *ws, 0, last, 4).unwrap()
        );
        assert!(generate_style(0, last + 1, 4).is_null());
        assert!(with(|s| s.text.starts_with("no style")));
    }

    #[test]
    fn the_novelty_is_the_engines() {
        // The shipped models (with a novelty section once the trainer
        // writes one, without before): the answer is the engine's, and
        // the header says whether there is one.
        let _guard = TEST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        for name in ["default.bin", "default-int8.bin", "small.bin"] {
            let path = format!(
                "{}/../firmware-example/models/{name}",
                env!("CARGO_MANIFEST_DIR")
            );
            let bytes = std::fs::read(path).unwrap();
            let info = load_bytes(&bytes).unwrap();
            let model = Model::from_bytes(&bytes).unwrap();
            let has = model.repr().novelty().is_some();
            assert!(info.contains(&format!("\"novelty\":{has}")), "{info}");
            let mut ws = Box::new(Workspace::<WIDTH>::new());
            for step in [0usize, 7, 13, 255] {
                let image: Vec<u8> = (0..model.pixels()).map(|i| (i * step) as u8).collect();
                set_pixels(&image);
                let c = model.classify(&mut *ws, &image).unwrap();
                assert_eq!(classify(), c.cluster as i32);
                let want = c.novelty.map(|n| (n.score, n.known));
                let got = novelty_answer();
                assert_eq!(
                    got.map(|(s, k)| (s.to_bits(), k)),
                    want.map(|(s, k)| (s.to_bits(), k)),
                    "{name}"
                );
                assert_eq!(novelty_known(), want.map_or(-1, |(_, k)| i32::from(k)));
            }
        }
    }
}

//! "Connect a board": the page's side of the host ↔ board protocol
//! (`firmware-example/PROTOCOL.md`), with the protocol's own crate
//! (`device-protocol`, the code the boards and the harness run), not a
//! JavaScript copy of it.
//!
//! The page (`www/app.js`) talks to a board over Web Serial; this module
//! only turns messages into bytes and bytes into messages:
//!
//! - [`board_info`] and [`board_classify`] encode a request (`info`, or
//!   `classify` of the page's current input image at the model's shape)
//!   into the wire buffer at [`board_wire_ptr`]; JavaScript writes those
//!   bytes to the port. [`board_id`] is the request's id, which its answer
//!   echoes.
//! - Bytes read from the port go into the buffer [`board_rx`] returns;
//!   [`board_feed`] runs them through one `FrameReader` (which drops
//!   whatever came before the first `0x00`: a board's boot banner, kept
//!   here as text for the page) and leaves what completed as a JSON array
//!   in the board text buffer ([`board_text_ptr`], [`board_text_len`]).
//!   Each element is an answer (`"event":"answer"`, see [`answer_json`]),
//!   a frame the reader dropped (`"event":"rejected"`), or a valid frame
//!   whose payload did not parse (`"event":"invalid"`).
//! - [`board_reset`] starts afresh (a new port).
//!
//! Nothing here panics on any bytes: indices from JavaScript are checked,
//! the reader and the parser are the protocol crate's (fuzzed, proptested),
//! and there is no `unsafe`. `f32` values travel as their bits (`u32`), so
//! the page compares the board's answer with its own bit for bit.

use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};

use device_protocol::{
    encode_request, parse_answer, wire_len, Body, ClassifyRequest, CounterUnit, ElementType, Frame,
    FrameReader, Method, Request, Status, MAX_FRAME,
};

use crate::json_string;

/// Bytes of board text kept from before the first frame (a boot banner).
const BANNER: usize = 256;

/// The page's connection state, apart from the engine's.
struct Board {
    /// Received bytes to frames; sized for any answer of any model the
    /// protocol serves ([`MAX_FRAME`]).
    reader: Box<FrameReader<MAX_FRAME>>,
    /// Whether a `0x00` was seen (the reader is synchronised).
    synced: bool,
    /// What the board sent before its first delimiter, up to [`BANNER`] bytes.
    banner: Vec<u8>,
    /// Frames the reader dropped since the last reset.
    rejected: u32,
    /// Received bytes, written by JavaScript.
    rx: Vec<u8>,
    /// The last request on the wire.
    wire: Vec<u8>,
    /// Its id.
    id: u16,
    /// What [`board_feed`] completed, as JSON, or an error message.
    text: String,
}

impl Board {
    #[inline(never)]
    fn new() -> Board {
        Board {
            reader: Box::new(FrameReader::new()),
            synced: false,
            banner: Vec::new(),
            rejected: 0,
            rx: Vec::new(),
            wire: vec![0; wire_len(MAX_FRAME)],
            id: 0,
            text: String::new(),
        }
    }

    /// Encodes `request` with the next id into the wire buffer; returns its
    /// length on the wire.
    fn encode(&mut self, request: &Request<'_>) -> Result<usize, device_protocol::Error> {
        // Ids run 1, 2, … 65535, 1: never 0, which the page uses for "none".
        let id = self.id.checked_add(1).unwrap_or(1);
        let n = encode_request(id, request, &mut self.wire)?;
        self.id = id;
        Ok(n)
    }

    /// Takes received bytes; appends to `out` one JSON object per frame
    /// they completed, each followed by a comma; returns how many.
    fn feed(&mut self, mut bytes: &[u8], out: &mut String) -> usize {
        if !self.synced {
            let text = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            let room = BANNER.saturating_sub(self.banner.len());
            self.banner.extend_from_slice(&bytes[..text.min(room)]);
            self.synced = text < bytes.len();
        }
        let mut events = 0;
        while !bytes.is_empty() {
            let (used, event) = self.reader.feed(bytes);
            bytes = bytes.get(used..).unwrap_or(&[]);
            let json = match event {
                None => continue,
                Some(Ok(frame)) => answer_json(&frame),
                Some(Err(rejected)) => {
                    self.rejected = self.rejected.saturating_add(1);
                    let mut j = Json::new("rejected");
                    j.text("error", &rejected.error.to_string());
                    j.end()
                }
            };
            out.push_str(&json);
            out.push(',');
            events += 1;
        }
        events
    }

    /// The connection's state as JSON: `{"event":"status", "banner",
    /// "skipped", "rejected", "synced"}`.
    fn status_json(&self) -> String {
        let mut j = Json::new("status");
        j.key("banner");
        printable(&self.banner, &mut j.0);
        j.num("skipped", self.reader.skipped().into());
        j.num("rejected", self.rejected.into());
        j.raw("synced", if self.synced { "true" } else { "false" });
        j.end()
    }
}

/// A JSON object written field by field: one copy of the number and
/// string formatting for every field (smaller wasm than a `format!` each).
struct Json(String);

impl Json {
    /// `{"event":"<event>"`.
    fn new(event: &str) -> Json {
        let mut j = Json(String::with_capacity(128));
        j.text("event", event);
        j
    }

    /// `,"<key>":` (no comma after the opening brace).
    #[inline(never)]
    fn key(&mut self, key: &str) {
        self.0.push(if self.0.is_empty() { '{' } else { ',' });
        self.0.push('"');
        self.0.push_str(key);
        self.0.push_str("\":");
    }

    /// A number.
    #[inline(never)]
    fn num(&mut self, key: &str, value: u64) {
        self.key(key);
        let _ = write!(self.0, "{value}");
    }

    /// A string, escaped.
    #[inline(never)]
    fn text(&mut self, key: &str, value: &str) {
        self.key(key);
        self.0.push_str(&json_string(value));
    }

    /// JSON as it is (`null`, `true`).
    fn raw(&mut self, key: &str, value: &str) {
        self.key(key);
        self.0.push_str(value);
    }

    /// An array of numbers, or `null`.
    #[inline(never)]
    fn nums(&mut self, key: &str, values: Option<&mut dyn Iterator<Item = u64>>) {
        let Some(values) = values else {
            return self.raw(key, "null");
        };
        self.key(key);
        self.0.push('[');
        for (i, v) in values.enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            let _ = write!(self.0, "{v}");
        }
        self.0.push(']');
    }

    /// `}`: the object.
    fn end(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// A board's text as a JSON string, appended to `out`: printable ASCII and
/// line breaks kept (`\r` dropped, a tab a space), every other byte a `?` (a banner is ASCII; what is not
/// is noise or another encoding, not worth a UTF-8 decoder in the wasm).
fn printable(bytes: &[u8], out: &mut String) {
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            b'\n' => out.push_str("\\n"),
            b'\r' => {}
            b'\t' => out.push(' '),
            b' '..=b'~' => out.push(char::from(b)),
            _ => out.push('?'),
        }
    }
    out.push('"');
}

/// One received frame as a JSON object, whatever it holds.
///
/// An answer: `{"event":"answer", "id", "kind", "status", "unit", "cycles"}`
/// where `kind` names the body (`info`, `classify`, `generate`, `selftest`,
/// `stats`, `shutdown`, or `failure` for a refused request), `status` is the
/// status's name (`Ok`, `ImageSize`, …), `unit` what `cycles` counts
/// (`cycles`, `instructions`, `us`, `none`, or `unit N` for a newer code),
/// and `cycles` the device-side cost (a JSON number: exact below 2^53). Then
/// by kind:
///
/// - `classify`: `cluster`, `label` (a digit, or null without a label map),
///   `confidence` (its f32 bits, a `u32`), `probabilities` (each an f32's bits);
/// - `info`: `version`, `revision`, `max_request`, `method`, `element`
///   (`f16`, `int8`), `width`, `height`, `experts`, `latent`, `model_len`,
///   `model_crc`, `labels` (the label map, or null), `firmware`;
/// - `failure`: `request` (the refused kind byte), `expected`, `got`, `text`.
///
/// A frame whose payload does not parse: `{"event":"invalid", "id",
/// "kind", "error"}`.
pub fn answer_json(frame: &Frame<&[u8]>) -> String {
    let answer = match parse_answer(frame) {
        Ok(answer) => answer,
        Err(e) => {
            let mut j = Json::new("invalid");
            j.num("id", frame.id().into());
            j.num("kind", frame.kind().into());
            j.text("error", &e.to_string());
            return j.end();
        }
    };
    let mut j = Json::new("answer");
    j.num("id", frame.id().into());
    j.text(
        "kind",
        match &answer.body {
            Body::Info(_) => "info",
            Body::Classify(_) => "classify",
            Body::Generate(_) => "generate",
            Body::Selftest(_) => "selftest",
            Body::Stats(_) => "stats",
            Body::Shutdown => "shutdown",
            Body::Failed { .. } => "failure",
        },
    );
    j.text("status", &status_name(answer.status()));
    let unit = match answer.unit {
        CounterUnit::None => "none".into(),
        CounterUnit::Cycles => "cycles".into(),
        CounterUnit::Instructions => "instructions".into(),
        CounterUnit::Microseconds => "us".into(),
        CounterUnit::Other(u) => format!("unit {u}"),
    };
    j.text("unit", &unit);
    j.num("cycles", answer.cycles);
    match &answer.body {
        Body::Classify(c) => {
            j.num("cluster", c.cluster.into());
            match c.label {
                Some(label) => j.num("label", label.into()),
                None => j.raw("label", "null"),
            }
            j.num("confidence", c.confidence.into());
            j.nums(
                "probabilities",
                Some(&mut c.probabilities.iter().map(|&p| p.into())),
            );
        }
        Body::Info(i) => {
            j.num("version", i.version.into());
            j.num("revision", i.revision.into());
            j.num("max_request", i.max_request.into());
            let method = match i.method {
                Method::MixtureOfVaes => "mixture of VAEs".into(),
                Method::KVae => "kVAE".into(),
                Method::Other(m) => format!("method {m}"),
            };
            j.text("method", &method);
            let element = match i.element_type {
                ElementType::F16 => "f16".into(),
                ElementType::Int8 => "int8".into(),
                ElementType::Other(e) => format!("type {e}"),
            };
            j.text("element", &element);
            j.num("width", i.width.into());
            j.num("height", i.height.into());
            j.num("experts", i.experts.into());
            j.num("latent", i.latent.into());
            j.num("model_len", i.model_len.into());
            j.num("model_crc", i.model_crc.into());
            let mut labels = i.label_map.map(|m| m.iter().map(|&l| u64::from(l)));
            j.nums(
                "labels",
                labels.as_mut().map(|l| l as &mut dyn Iterator<Item = u64>),
            );
            j.text("firmware", i.firmware);
        }
        Body::Failed { request, failure } => {
            j.num("request", (*request).into());
            j.num("expected", failure.expected.into());
            j.num("got", failure.got.into());
            j.text("text", failure.text);
        }
        Body::Generate(_) | Body::Selftest(_) | Body::Stats(_) | Body::Shutdown => {}
    }
    j.end()
}

/// A status's name, as PROTOCOL.md's table writes it (`Status 11` for a
/// code of a later revision).
fn status_name(status: Status) -> String {
    match status {
        Status::Ok => "Ok",
        Status::BadCrc => "BadCrc",
        Status::Malformed => "Malformed",
        Status::UnknownKind => "UnknownKind",
        Status::VersionMismatch => "VersionMismatch",
        Status::Oversize => "Oversize",
        Status::ImageSize => "ImageSize",
        Status::ExpertRange => "ExpertRange",
        Status::Busy => "Busy",
        Status::Unsupported => "Unsupported",
        Status::Internal => "Internal",
        Status::Other(code) => return format!("Status {code}"),
    }
    .into()
}

static BOARD: Mutex<Option<Board>> = Mutex::new(None);

/// Runs `f` on the board state (created on first use).
fn with_board<R>(f: impl FnOnce(&mut Board) -> R) -> R {
    let mut guard: MutexGuard<'_, Option<Board>> = BOARD.lock().unwrap_or_else(|e| e.into_inner());
    // `Board::new` is not inlined: one copy for every export.
    f(guard.get_or_insert_with(Board::new))
}

/// Forgets everything received (a new port): the reader waits for a first
/// `0x00` again, the banner and the counts start empty.
#[no_mangle]
pub extern "C" fn board_reset() {
    with_board(|b| {
        let rx = std::mem::take(&mut b.rx);
        let id = b.id;
        *b = Board::new();
        b.rx = rx;
        b.id = id;
    })
}

/// Encodes an `info` request into the wire buffer; returns its length in
/// bytes ([`board_wire_ptr`], id [`board_id`]).
#[no_mangle]
pub extern "C" fn board_info() -> usize {
    with_board(|b| match b.encode(&Request::Info) {
        Ok(n) => n,
        Err(e) => {
            b.text = e.to_string();
            0
        }
    })
}

/// Encodes a `classify` request of the page's input image (the last
/// `preprocess`, at the loaded model's shape) into the wire buffer; returns
/// its length in bytes, or 0 without a model (message in the board text
/// buffer).
#[no_mangle]
pub extern "C" fn board_classify() -> usize {
    let image = crate::with(|s| {
        let shape = s.model.as_ref()?.header().image;
        Some((shape.width, shape.height, s.pixels.clone()))
    });
    with_board(|b| {
        let Some((width, height, pixels)) = image else {
            b.text = "no model loaded".into();
            return 0;
        };
        let request = Request::Classify(ClassifyRequest {
            width,
            height,
            pixels: &pixels,
        });
        match b.encode(&request) {
            Ok(n) => n,
            Err(e) => {
                b.text = e.to_string();
                0
            }
        }
    })
}

/// Address of the wire buffer: the last encoded request.
#[no_mangle]
pub extern "C" fn board_wire_ptr() -> *const u8 {
    with_board(|b| b.wire.as_ptr())
}

/// The last encoded request's id (1 to 65535; 0 before any).
#[no_mangle]
pub extern "C" fn board_id() -> u32 {
    with_board(|b| u32::from(b.id))
}

/// A buffer of `len` bytes for bytes received from the board; returns its
/// address.
#[no_mangle]
pub extern "C" fn board_rx(len: usize) -> *mut u8 {
    with_board(|b| {
        b.rx.resize(len, 0);
        b.rx.as_mut_ptr()
    })
}

/// Feeds the first `len` bytes of the receive buffer to the frame reader.
/// Returns how many frames they completed, whose JSON array (see
/// [`answer_json`]) is then in the board text buffer; -1 if `len` is more
/// than the buffer holds.
#[no_mangle]
pub extern "C" fn board_feed(len: usize) -> i32 {
    with_board(|b| {
        let rx = std::mem::take(&mut b.rx);
        let result = match rx.get(..len) {
            Some(bytes) => {
                let mut text = std::mem::take(&mut b.text);
                text.clear();
                text.push('[');
                let events = b.feed(bytes, &mut text);
                // The last comma closes the array.
                match text.pop() {
                    Some(',') => text.push(']'),
                    _ => text.push_str("[]"),
                }
                b.text = text;
                i32::try_from(events).unwrap_or(i32::MAX)
            }
            None => {
                b.text = format!("{len} bytes fed, {} in the buffer", rx.len());
                -1
            }
        };
        b.rx = rx;
        result
    })
}

/// Puts the connection's state in the board text buffer as JSON:
/// `{"event":"status", "banner"` (the text before the first frame, at most
/// 256 bytes, other bytes than printable ASCII and line breaks as `?`),
/// `"skipped"` (its bytes), `"rejected"` (frames dropped), `"synced"}`
/// (whether a delimiter was seen). Returns the text's length.
#[no_mangle]
pub extern "C" fn board_status() -> usize {
    with_board(|b| {
        b.text = b.status_json();
        b.text.len()
    })
}

/// Address of the board text buffer (UTF-8).
#[no_mangle]
pub extern "C" fn board_text_ptr() -> *const u8 {
    with_board(|b| b.text.as_ptr())
}

/// Length in bytes of the board text buffer.
#[no_mangle]
pub extern "C" fn board_text_len() -> usize {
    with_board(|b| b.text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use device_protocol::{encode_answer, Answer, ClassifyAnswer, Failure, InfoAnswer};

    fn info() -> Answer<'static> {
        Answer {
            unit: CounterUnit::Cycles,
            cycles: 1234,
            body: Body::Info(InfoAnswer {
                version: 1,
                revision: 1,
                max_request: 798,
                method: Method::MixtureOfVaes,
                element_type: ElementType::Int8,
                width: 28,
                height: 28,
                experts: 3,
                latent: 10,
                model_len: 5000,
                model_crc: 0xdead_beef,
                label_map: Some(&[7, 1, 0]),
                firmware: "rp2040 \"test\"",
            }),
        }
    }

    fn classify() -> Answer<'static> {
        Answer {
            unit: CounterUnit::Microseconds,
            cycles: 443_390,
            body: Body::Classify(ClassifyAnswer {
                cluster: 1,
                label: Some(4),
                confidence: 0.75f32.to_bits(),
                probabilities: [0.25f32, 0.75, 0.0].iter().map(|p| p.to_bits()).collect(),
                extensions: device_protocol::Extensions::EMPTY,
            }),
        }
    }

    /// The objects `Board::feed` wrote (each ends with `},`).
    fn split(text: &str) -> Vec<String> {
        text.split_inclusive("},")
            .map(|e| e.trim_end_matches(',').to_string())
            .collect()
    }

    fn wire(id: u16, answer: &Answer<'_>) -> Vec<u8> {
        let mut out = vec![0; wire_len(MAX_FRAME)];
        let n = encode_answer(id, answer, &mut out).unwrap();
        out.truncate(n);
        out
    }

    #[test]
    fn answers_after_a_banner_and_noise_become_json() {
        let mut b = Board::new();
        let mut bytes = b"fw-host \"serve\":\t3 experts\xff\r\n".to_vec();
        bytes.extend(wire(1, &info()));
        // Noise between frames: dropped, counted, and the next frame is read.
        bytes.extend([0x13, 0x37, 0x00, 0x05, 0x01, 0x02, 0x03, 0x04]);
        bytes.extend(wire(2, &classify()));
        let refused = Answer {
            unit: CounterUnit::None,
            cycles: 0,
            body: Body::Failed {
                request: 0x02,
                failure: Failure::new(Status::ImageSize)
                    .with(28 << 16 | 28, 8 << 16 | 8)
                    .text("image 8x8"),
            },
        };
        bytes.extend(wire(3, &refused));
        // Fed in slices of every size, the events are the same.
        let mut whole = Vec::new();
        for chunk in [1, 7, 64, bytes.len()] {
            let mut b2 = Board::new();
            let mut text = String::new();
            let n: usize = bytes.chunks(chunk).map(|c| b2.feed(c, &mut text)).sum();
            let events: Vec<String> = split(&text);
            assert_eq!(n, events.len());
            if chunk == bytes.len() {
                whole = events.clone();
                b = b2;
            }
            assert_eq!(events.len(), 5, "{events:?}");
        }
        assert_eq!(
            whole[0],
            "{\"event\":\"answer\",\"id\":1,\"kind\":\"info\",\"status\":\"Ok\",\"unit\":\"cycles\",\
             \"cycles\":1234,\"version\":1,\"revision\":1,\"max_request\":798,\"method\":\"mixture of VAEs\",\
             \"element\":\"int8\",\"width\":28,\"height\":28,\"experts\":3,\"latent\":10,\"model_len\":5000,\
             \"model_crc\":3735928559,\"labels\":[7,1,0],\"firmware\":\"rp2040 \\\"test\\\"\"}"
        );
        assert!(
            whole[1].starts_with("{\"event\":\"rejected\""),
            "{}",
            whole[1]
        );
        assert!(
            whole[2].starts_with("{\"event\":\"rejected\""),
            "{}",
            whole[2]
        );
        assert_eq!(
            whole[3],
            format!(
                "{{\"event\":\"answer\",\"id\":2,\"kind\":\"classify\",\"status\":\"Ok\",\"unit\":\"us\",\
                 \"cycles\":443390,\"cluster\":1,\"label\":4,\"confidence\":{},\"probabilities\":[{},{},0]}}",
                0.75f32.to_bits(),
                0.25f32.to_bits(),
                0.75f32.to_bits()
            )
        );
        assert_eq!(
            whole[4],
            "{\"event\":\"answer\",\"id\":3,\"kind\":\"failure\",\"status\":\"ImageSize\",\"unit\":\"none\",\
             \"cycles\":0,\"request\":2,\"expected\":1835036,\"got\":524296,\"text\":\"image 8x8\"}"
        );
        assert_eq!(
            b.status_json(),
            "{\"event\":\"status\",\"banner\":\"fw-host \\\"serve\\\": 3 experts?\\n\",\"skipped\":29,\"rejected\":2,\"synced\":true}"
        );
    }

    #[test]
    fn requests_are_the_protocol_crates_and_ids_advance() {
        let mut b = Board::new();
        let n = b.encode(&Request::Info).unwrap();
        assert_eq!(b.id, 1);
        let pixels: Vec<u8> = (0..784).map(|i| (i * 7) as u8).collect();
        let request = Request::Classify(ClassifyRequest {
            width: 28,
            height: 28,
            pixels: &pixels,
        });
        let m = b.encode(&request).unwrap();
        assert_eq!(b.id, 2);
        let mut reader = FrameReader::<MAX_FRAME>::new_synced();
        let (_, event) = reader.feed(&b.wire[1..m]);
        let frame = event.unwrap().unwrap();
        assert_eq!(frame.id(), 2);
        assert_eq!(device_protocol::parse_request(&frame), Ok(request));
        assert!(n < m);
        b.id = u16::MAX;
        b.encode(&Request::Info).unwrap();
        assert_eq!(b.id, 1, "ids wrap past 0");
    }

    #[test]
    fn any_bytes_are_read_without_panic() {
        // SplitMix64 bytes, a zero about every 16: frames of noise,
        // answers of garbage fields, oversize runs.
        let mut b = Board::new();
        let mut state = 7u64;
        let mut events = 0;
        for _ in 0..2000 {
            let chunk: Vec<u8> = (0..257)
                .map(|_| {
                    state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                    let mut z = state;
                    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                    let z = z ^ (z >> 31);
                    if z.is_multiple_of(16) {
                        0
                    } else {
                        z as u8
                    }
                })
                .collect();
            events += b.feed(&chunk, &mut String::new());
        }
        assert!(events > 10_000, "{events}");
        // A valid answer still gets through after all that.
        let mut got = String::new();
        b.feed(&wire(9, &classify()), &mut got);
        assert!(
            got.ends_with(
                ",\"confidence\":1061158912,\"probabilities\":[1048576000,1061158912,0]},"
            ),
            "{got}"
        );
        assert!(got.contains("{\"event\":\"answer\",\"id\":9,"), "{got}");
    }
}

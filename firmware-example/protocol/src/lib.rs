//! The protocol between a host (the harness, a script, the web page) and a
//! board running the engine, over USB serial or a UART. Specified byte by
//! byte in `firmware-example/PROTOCOL.md`; this crate is that specification
//! in code, for every side: `no_std`, no allocation, no `unsafe`, and no
//! panic reachable from received bytes (a proptest and two fuzz targets
//! hold it to that).
//!
//! - [`cobs`]: the byte stuffing that makes `0x00` a frame delimiter;
//! - [`Frame`]: a zero-copy view of one frame (version, id, kind, length,
//!   payload, CRC-32), validated once by [`Frame::new_checked`];
//! - [`FrameReader`]: bytes in, validated frames out, resynchronising on
//!   the next `0x00` after any damage;
//! - [`Request`] and [`Answer`]: the messages, each with `parse` and `emit`
//!   that round-trip exactly;
//! - [`encode_request`], [`encode_answer`], [`parse_request`],
//!   [`parse_answer`]: messages to and from the wire;
//! - [`Server`] and [`Handler`]: the device's side, transport-agnostic.
//!
//! ```
//! use device_protocol::*;
//!
//! // Host: a classify request for a 28×28 model, on the wire.
//! let digit = [0u8; 784];
//! let request = Request::Classify(ClassifyRequest { width: 28, height: 28, pixels: &digit });
//! let mut wire = [0u8; wire_len(request_capacity(784))];
//! let n = encode_request(1, &request, &mut wire)?;
//! assert_eq!(n, 801); // at most wire_len(798) = 804; a blank digit COBS-encodes in 799.
//!
//! // Device: its reader yields the frame, the request parses back.
//! let mut reader = FrameReader::<{ request_capacity(784) }>::new();
//! let mut got = None;
//! for &b in b"firmware banner\n".iter().chain(&wire[..n]) {
//!     if let Some(event) = reader.push(b) {
//!         let frame = event.expect("a valid frame");
//!         assert_eq!(frame.id(), 1);
//!         got = Some(parse_request(&frame)? == request);
//!     }
//! }
//! assert_eq!(got, Some(true));
//! # Ok::<(), device_protocol::Error>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod answer;
mod bytes;
pub mod cobs;
mod codes;
mod error;
pub mod ext;
mod frame;
mod message;
mod reader;
mod request;
mod server;

pub use answer::{
    Answer, Body, ClassifyAnswer, Failure, GenerateAnswer, InfoAnswer, Novelty, SelftestAnswer,
    StatsAnswer, Style,
};
pub use codes::{answer_kind, CounterUnit, ElementType, Kind, Method, Status};
pub use error::Error;
pub use ext::Extensions;
pub use frame::{emit_frame, Frame, FrameHeader};
pub use message::{encode_answer, encode_request, parse_answer, parse_request, wire_len};
pub use reader::{Event, FrameReader, Rejected};
pub use request::{ClassifyRequest, GenerateRequest, Request};
pub use server::{Handler, Server};

/// The protocol version: the first byte of every frame. It changes only for
/// changes an older peer cannot read (never for additions: see [`REVISION`]).
pub const VERSION: u8 = 1;

/// Additions within [`VERSION`] that this crate knows (new kinds, fields
/// appended to a payload, extension tags, status codes); a device reports
/// its own in `info`. Readers ignore what they do not know.
///
/// Revision 1 appended `last_total` to `stats`; revision 2 adds the style
/// record ([`ext::STYLE`]): a `classify` answer's [`Style`], a `generate`
/// request's style, and the status [`Status::STYLE_RANGE`]; revision 3
/// adds the novelty record ([`ext::NOVELTY`]): a `classify` answer's
/// [`Novelty`], from a model with a novelty section.
pub const REVISION: u8 = 3;

/// Bytes of a frame's header: version, id, kind, length.
pub const HEADER_LEN: usize = 6;

/// Bytes of a frame besides its payload: the header and the CRC-32.
pub const FRAME_OVERHEAD: usize = HEADER_LEN + 4;

/// Largest image the protocol is sized for, in pixels: the engine's host
/// workspace (`engine::host::WORKSPACE_LEN`, 4096 values, e.g. 64×64), the
/// widest model any build of the engine runs.
pub const MAX_PIXELS: usize = 4096;

/// Bytes of extension area a device accepts in a `generate` request
/// (later versions' options), and a host in a `classify` answer (later
/// versions' fields).
pub const MAX_EXTENSIONS: usize = 64;

/// Largest decoded request frame for a model of `pixels` pixels: a
/// classify request (10 + 4 + pixels), or a generate request with
/// [`MAX_EXTENSIONS`] bytes of extensions if that is more. The `N` of a
/// device's [`FrameReader`] / [`Server`].
///
/// ```
/// assert_eq!(device_protocol::request_capacity(784), 798);
/// assert_eq!(device_protocol::request_capacity(64), 83);
/// ```
pub const fn request_capacity(pixels: usize) -> usize {
    FRAME_OVERHEAD + max(4 + pixels, 9 + MAX_EXTENSIONS)
}

/// Largest decoded answer frame for a model of `pixels` pixels and
/// `experts` experts: the largest of a generate answer (10 + 10 + 4 +
/// pixels), a classify answer (10 + 10 + 7 + 4·K + [`MAX_EXTENSIONS`]) and
/// [`MIN_ANSWER_FRAME`] (an info answer with its longest texts). The `N` of a
/// host's [`FrameReader`].
///
/// ```
/// assert_eq!(device_protocol::answer_capacity(784, 10), 808);
/// assert_eq!(device_protocol::answer_capacity(64, 10), device_protocol::MIN_ANSWER_FRAME);
/// ```
pub const fn answer_capacity(pixels: usize, experts: usize) -> usize {
    let generate = FRAME_OVERHEAD + 10 + 4 + pixels;
    let classify = FRAME_OVERHEAD + 10 + 7 + 4 * experts + MAX_EXTENSIONS;
    max(max(generate, classify), MIN_ANSWER_FRAME)
}

/// Largest decoded answer frame that does not depend on the model: an
/// info answer with a 255-byte firmware string and a label map of 255
/// entries (10 + 10 + 24 + 255 + 255 = 554), which also covers selftest and
/// failure answers with 255-byte texts.
pub const MIN_ANSWER_FRAME: usize = FRAME_OVERHEAD + 10 + 24 + 255 + 255;

/// Smallest `out` buffer a [`Server`] should be given: the wire length of
/// [`MIN_ANSWER_FRAME`].
pub const MIN_ANSWER_BUFFER: usize = wire_len(MIN_ANSWER_FRAME);

/// Largest decoded frame of any model the protocol is sized for
/// ([`MAX_PIXELS`], [`engine::MAX_EXPERTS`]).
///
/// ```
/// assert_eq!(device_protocol::MAX_FRAME, 4120);
/// ```
pub const MAX_FRAME: usize = max(
    request_capacity(MAX_PIXELS),
    answer_capacity(MAX_PIXELS, engine::MAX_EXPERTS),
);

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

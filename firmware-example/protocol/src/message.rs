//! Whole messages on the wire: a [`Request`] or [`Answer`] in a frame, COBS
//! encoded, between two delimiters; and back from a received [`Frame`].

use crate::{cobs, emit_frame, Answer, Error, Frame, Request, Status, FRAME_OVERHEAD, VERSION};

/// Bytes on the wire for a decoded frame of `frame_len` bytes: the COBS
/// encoding and a `0x00` before and after it.
///
/// ```
/// // a classify request for a 28×28 model: 10 + 4 + 784 bytes of frame.
/// assert_eq!(device_protocol::wire_len(798), 804);
/// ```
pub const fn wire_len(frame_len: usize) -> usize {
    cobs::max_encoded_len(frame_len) + 2
}

/// Encodes `payload_len` bytes that `emit` writes as the frame `(id, kind)`,
/// COBS-encoded between two delimiters, into `out`.
fn encode(
    id: u16,
    kind: u8,
    payload_len: usize,
    out: &mut [u8],
    emit: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
) -> Result<usize, Error> {
    let frame_len = FRAME_OVERHEAD + payload_len;
    if payload_len > u16::MAX as usize {
        return Err(Error::TooLong);
    }
    if out.len() < wire_len(frame_len) {
        return Err(Error::BufferTooSmall);
    }
    // The frame is written where its encoding, which is at most `shift`
    // bytes longer, can overwrite it front to back (cobs::encode_within).
    let shift = cobs::max_encoded_len(frame_len) - frame_len;
    let start = 1 + shift;
    let written = emit_frame(VERSION, id, kind, &mut out[start..start + frame_len], emit)?;
    out[0] = 0;
    let n = cobs::encode_within(&mut out[1..], shift, written)?;
    out[1 + n] = 0;
    Ok(n + 2)
}

/// Writes `request` as frame `id` on the wire (`00`, COBS, `00`) into
/// `out`; returns the bytes written (at most [`wire_len`] of its frame).
///
/// ```
/// use device_protocol::{encode_request, Request};
/// let mut out = [0u8; 16];
/// let n = encode_request(0x0102, &Request::Info, &mut out)?;
/// assert_eq!(&out[..n], &[0x00, 0x05, 0x01, 0x02, 0x01, 0x01, 0x01, 0x05, 0x34, 0x2c, 0x20, 0xb9, 0x00]);
/// # Ok::<(), device_protocol::Error>(())
/// ```
pub fn encode_request(id: u16, request: &Request<'_>, out: &mut [u8]) -> Result<usize, Error> {
    encode(id, request.kind() as u8, request.payload_len(), out, |p| {
        request.emit(p)
    })
}

/// Writes `answer` as the answer to request `id` on the wire into `out`;
/// returns the bytes written.
pub fn encode_answer(id: u16, answer: &Answer<'_>, out: &mut [u8]) -> Result<usize, Error> {
    encode(id, answer.kind(), answer.payload_len(), out, |p| {
        answer.emit(p)
    })
}

/// The request in a received frame: [`Error::Version`] if the frame is of
/// another version, else what [`Request::parse`] says.
///
/// ```
/// use device_protocol::{encode_request, parse_request, FrameReader, Request};
/// let mut wire = [0u8; 16];
/// let n = encode_request(9, &Request::Selftest, &mut wire)?;
/// let mut reader = FrameReader::<16>::new_synced();
/// let (_, event) = reader.feed(&wire[1..n]);
/// assert_eq!(parse_request(&event.unwrap().unwrap())?, Request::Selftest);
/// # Ok::<(), device_protocol::Error>(())
/// ```
pub fn parse_request<'a>(frame: &Frame<&'a [u8]>) -> Result<Request<'a>, Error> {
    if frame.version() != VERSION {
        return Err(Error::Version(frame.version()));
    }
    let payload: &'a [u8] = payload_of(frame);
    Request::parse(frame.kind(), payload)
}

/// The answer in a received frame. A frame of another version is read
/// only if it is a failure (its layout is the same in every version: this is
/// how a device of another version says [`Status::VersionMismatch`]); any other
/// answer of another version is [`Error::Version`].
pub fn parse_answer<'a>(frame: &Frame<&'a [u8]>) -> Result<Answer<'a>, Error> {
    let payload: &'a [u8] = payload_of(frame);
    if frame.version() != VERSION
        && payload
            .first()
            .is_none_or(|&s| Status::from(s) == Status::Ok)
    {
        return Err(Error::Version(frame.version()));
    }
    Answer::parse(frame.kind(), payload)
}

/// The payload of a checked frame, with the buffer's lifetime.
fn payload_of<'a>(frame: &Frame<&'a [u8]>) -> &'a [u8] {
    let d: &'a [u8] = frame.inner();
    d.get(crate::HEADER_LEN..d.len().saturating_sub(4))
        .unwrap_or(&[])
}

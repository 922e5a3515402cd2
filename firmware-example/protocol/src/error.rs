//! The one error type: what was wrong with a frame, a payload, or a buffer.

/// Why bytes were not accepted, or why a message could not be written.
///
/// ```
/// use device_protocol::{Error, Frame};
/// assert_eq!(Frame::new_checked(&[1u8, 2, 3][..]).unwrap_err(), Error::TooShort);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// Framing: the COBS encoding ended inside a block (bytes were lost).
    Cobs,
    /// Framing: fewer bytes than a frame's header and CRC ([`crate::FRAME_OVERHEAD`]).
    TooShort,
    /// Framing: the length field disagrees with the number of bytes received.
    Length,
    /// Framing: the CRC-32 does not match the frame's bytes.
    Crc,
    /// Framing: the frame was larger than the reader's buffer; it was dropped
    /// up to the next delimiter.
    Oversize,
    /// Payload: it ends before a field of its kind.
    Truncated,
    /// Payload: a field has a value its kind does not allow (a pixel count that
    /// is not width × height, a label map of the wrong length, bad UTF-8,
    /// an extension record running past the end, an answer kind that does not
    /// match its status...).
    Invalid,
    /// The frame is of another protocol version (its version byte), and not
    /// a failure answer (whose layout every version shares).
    Version(u8),
    /// Payload: the kind byte names no request or answer this version knows.
    UnknownKind(u8),
    /// Writing: the output buffer is too small.
    BufferTooSmall,
    /// Writing: a field is longer than its length prefix can say (a text over
    /// 255 bytes, a payload over 65,535 bytes, an image over 65,535 pixels a side).
    TooLong,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Cobs => f.write_str("COBS block cut short"),
            Error::TooShort => f.write_str("frame shorter than its header and CRC"),
            Error::Length => f.write_str("frame length field does not match its bytes"),
            Error::Crc => f.write_str("frame CRC-32 mismatch"),
            Error::Oversize => f.write_str("frame larger than the receive buffer"),
            Error::Truncated => f.write_str("payload cut short"),
            Error::Invalid => f.write_str("payload field out of range"),
            Error::Version(v) => write!(f, "protocol version {v}, not {}", crate::VERSION),
            Error::UnknownKind(k) => write!(f, "unknown message kind 0x{k:02x}"),
            Error::BufferTooSmall => f.write_str("output buffer too small"),
            Error::TooLong => f.write_str("field too long for its length prefix"),
        }
    }
}

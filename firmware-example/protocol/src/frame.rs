//! The frame: what lies between two `0x00` delimiters once COBS is undone.
//!
//! ```text
//! offset  size  field
//!      0     1  version   (VERSION = 1; the layout of this envelope never changes)
//!      1     2  id        u16 LE, chosen by the host, echoed in the answer
//!      3     1  kind      request kind, or request kind | 0x80 for its answer
//!      4     2  length    u16 LE, bytes of payload
//!      6     n  payload
//!  6 + n     4  crc       u32 LE, CRC-32 (IEEE, as zlib) of bytes 0 .. 6 + n
//! ```

use crate::{Error, FRAME_OVERHEAD, HEADER_LEN};

mod field {
    use core::ops::Range;
    pub const VERSION: usize = 0;
    pub const ID: Range<usize> = 1..3;
    pub const KIND: usize = 3;
    pub const LENGTH: Range<usize> = 4..6;
    pub const PAYLOAD: usize = 6;
}

/// The six header bytes of a frame, copied out: what a server needs to
/// answer, even for a frame it rejected.
///
/// ```
/// use device_protocol::FrameHeader;
/// let h = FrameHeader::parse(&[0x01, 0x34, 0x12, 0x02, 0x10, 0x03]).unwrap();
/// assert_eq!((h.version, h.id, h.kind, h.length), (1, 0x1234, 2, 784));
/// assert_eq!(FrameHeader::parse(&[0x01, 0x34]), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    /// Protocol version of the sender.
    pub version: u8,
    /// Request id.
    pub id: u16,
    /// Kind byte.
    pub kind: u8,
    /// Payload length the sender declared.
    pub length: u16,
}

impl FrameHeader {
    /// Reads the header from the first [`HEADER_LEN`] bytes, if there are that many.
    pub fn parse(bytes: &[u8]) -> Option<FrameHeader> {
        let h = bytes.get(..HEADER_LEN)?;
        Some(FrameHeader {
            version: h[field::VERSION],
            id: u16::from_le_bytes([h[1], h[2]]),
            kind: h[field::KIND],
            length: u16::from_le_bytes([h[4], h[5]]),
        })
    }

    /// Writes the header into the first [`HEADER_LEN`] bytes of `out`.
    ///
    /// ```
    /// use device_protocol::FrameHeader;
    /// let mut out = [0u8; 6];
    /// FrameHeader { version: 1, id: 7, kind: 0x81, length: 300 }.emit(&mut out)?;
    /// assert_eq!(out, [0x01, 0x07, 0x00, 0x81, 0x2c, 0x01]);
    /// # Ok::<(), device_protocol::Error>(())
    /// ```
    pub fn emit(&self, out: &mut [u8]) -> Result<(), Error> {
        let h = out.get_mut(..HEADER_LEN).ok_or(Error::BufferTooSmall)?;
        h[field::VERSION] = self.version;
        h[field::ID].copy_from_slice(&self.id.to_le_bytes());
        h[field::KIND] = self.kind;
        h[field::LENGTH].copy_from_slice(&self.length.to_le_bytes());
        Ok(())
    }
}

/// A zero-copy view of one decoded frame, validated once by
/// [`new_checked`](Frame::new_checked) (length field, CRC-32); its accessors
/// then cannot fail. The version byte is *not* checked here: a frame of
/// another version is still a frame, and the server answers it with
/// [`Status::VersionMismatch`](crate::Status::VersionMismatch).
///
/// ```
/// use device_protocol::Frame;
/// // version 1, id 0x0102, kind Info, no payload, CRC-32.
/// let bytes = [0x01, 0x02, 0x01, 0x01, 0x00, 0x00, 0x34, 0x2c, 0x20, 0xb9];
/// let frame = Frame::new_checked(&bytes[..])?;
/// assert_eq!((frame.version(), frame.id(), frame.kind()), (1, 0x0102, 0x01));
/// assert!(frame.payload().is_empty());
/// let mut bad = bytes;
/// bad[3] = 0x02;
/// assert_eq!(Frame::new_checked(&bad[..]).unwrap_err(), device_protocol::Error::Crc);
/// # Ok::<(), device_protocol::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checks; accessors may then panic on a short
    /// one. Use [`new_checked`](Self::new_checked) on received bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }

    /// Wraps a buffer and validates it: [`Error::TooShort`] under
    /// [`FRAME_OVERHEAD`] bytes, [`Error::Length`] if the length field is not
    /// the byte count less the overhead, [`Error::Crc`] for a CRC mismatch.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let frame = Self::new_unchecked(buffer);
        let data = frame.buffer.as_ref();
        let Some(header) = FrameHeader::parse(data) else {
            return Err(Error::TooShort);
        };
        if data.len() < FRAME_OVERHEAD {
            return Err(Error::TooShort);
        }
        if header.length as usize != data.len() - FRAME_OVERHEAD {
            return Err(Error::Length);
        }
        if frame.crc() != engine::crc32(&data[..data.len() - 4]) {
            return Err(Error::Crc);
        }
        Ok(frame)
    }

    /// The header fields.
    pub fn header(&self) -> FrameHeader {
        FrameHeader::parse(self.buffer.as_ref()).unwrap_or(FrameHeader {
            version: 0,
            id: 0,
            kind: 0,
            length: 0,
        })
    }

    /// The sender's protocol version.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }

    /// The request id.
    pub fn id(&self) -> u16 {
        let d = self.buffer.as_ref();
        u16::from_le_bytes([d[field::ID.start], d[field::ID.start + 1]])
    }

    /// The kind byte.
    pub fn kind(&self) -> u8 {
        self.buffer.as_ref()[field::KIND]
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        let d = self.buffer.as_ref();
        &d[field::PAYLOAD..d.len() - 4]
    }

    /// The CRC-32 stored in the frame.
    pub fn crc(&self) -> u32 {
        let d = self.buffer.as_ref();
        let c = &d[d.len() - 4..];
        u32::from_le_bytes([c[0], c[1], c[2], c[3]])
    }

    /// The buffer (for a borrowed one, its lifetime outlives the view).
    pub const fn inner(&self) -> &T {
        &self.buffer
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

/// Writes a whole frame around a payload that `emit_payload` writes into
/// the slice it is given (returning its length): header, payload, CRC-32.
/// Returns the frame's length. Used by [`crate::encode_request`] and
/// [`crate::encode_answer`]; public for tools that build odd frames.
///
/// ```
/// use device_protocol::{emit_frame, Frame};
/// let mut out = [0u8; 16];
/// let n = emit_frame(1, 0x0102, 0x01, &mut out, |_| Ok(0))?;
/// assert_eq!(&out[..n], &[0x01, 0x02, 0x01, 0x01, 0x00, 0x00, 0x34, 0x2c, 0x20, 0xb9]);
/// assert!(Frame::new_checked(&out[..n]).is_ok());
/// # Ok::<(), device_protocol::Error>(())
/// ```
pub fn emit_frame(
    version: u8,
    id: u16,
    kind: u8,
    out: &mut [u8],
    emit_payload: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
) -> Result<usize, Error> {
    if out.len() < FRAME_OVERHEAD {
        return Err(Error::BufferTooSmall);
    }
    let room = out.len() - 4;
    let n = emit_payload(&mut out[HEADER_LEN..room])?;
    if n > room - HEADER_LEN {
        return Err(Error::BufferTooSmall);
    }
    let length = u16::try_from(n).map_err(|_| Error::TooLong)?;
    FrameHeader {
        version,
        id,
        kind,
        length,
    }
    .emit(out)?;
    let end = HEADER_LEN + n;
    let crc = engine::crc32(&out[..end]);
    out[end..end + 4].copy_from_slice(&crc.to_le_bytes());
    Ok(end + 4)
}

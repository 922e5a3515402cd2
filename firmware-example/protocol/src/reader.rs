//! The streaming frame reader: bytes in, one at a time or in slices, from
//! a UART or USB callback; validated frames out, in a buffer of `N` bytes.

use crate::cobs::{Block, Step};
use crate::{Error, Frame, FrameHeader};

/// A frame the reader dropped: why, and its header when at least six bytes
/// of it were decoded (so that a server can answer the request id).
///
/// ```
/// use device_protocol::{Error, FrameReader};
/// let mut reader = FrameReader::<64>::new();
/// // a delimiter to synchronise, then three bytes that are no frame.
/// let events: Vec<_> = [0x00, 0x03, 0x11, 0x22, 0x00]
///     .iter()
///     .filter_map(|&b| reader.push(b).map(|r| r.map(|f| f.id()).unwrap_err()))
///     .collect();
/// assert_eq!(events[0].error, Error::TooShort);
/// assert_eq!(events[0].header, None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// What was wrong: [`Error::Cobs`], [`Error::TooShort`],
    /// [`Error::Length`], [`Error::Crc`] or [`Error::Oversize`].
    pub error: Error,
    /// The first six decoded bytes as a header, if there were six.
    pub header: Option<FrameHeader>,
}

/// What a delimiter that closes a frame yields: the validated frame,
/// borrowing the reader's buffer until its next byte, or why it was dropped.
pub type Event<'b> = Result<Frame<&'b [u8]>, Rejected>;

/// Accumulates received bytes and yields each complete frame, validated.
///
/// The rules (`PROTOCOL.md`, *Resynchronisation*):
///
/// - every byte up to the first `0x00` ever seen is dropped silently: the
///   text a firmware prints on boot, or the tail of a frame the host joined
///   in the middle of ([`skipped`](Self::skipped) counts them);
/// - after that, the bytes between two `0x00` are a frame; an empty one
///   (two delimiters in a row, as senders put one before and one after every
///   frame) is ignored;
/// - a frame that fails COBS, length or CRC checks is reported as
///   [`Rejected`] and dropped: the next byte starts afresh;
/// - a frame that does not fit in `N` bytes is decoded no further, dropped up
///   to the next `0x00` and reported as [`Error::Oversize`]: nothing is
///   written past the buffer.
///
/// `N` is the largest decoded frame accepted: [`crate::request_capacity`]
/// of the model's pixel count for a device, [`crate::answer_capacity`] for a
/// host. Nothing panics, whatever the bytes.
///
/// ```
/// use device_protocol::{encode_request, FrameReader, Request};
/// let mut wire = [0u8; 32];
/// let n = encode_request(7, &Request::Stats, &mut wire)?;
/// let mut reader = FrameReader::<64>::new();
/// let mut ids = Vec::new();
/// for &b in b"boot banner\r\n".iter().chain(&wire[..n]) {
///     if let Some(Ok(frame)) = reader.push(b) {
///         ids.push(frame.id());
///     }
/// }
/// assert_eq!(ids, [7]);
/// assert_eq!(reader.skipped(), 13);
/// # Ok::<(), device_protocol::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct FrameReader<const N: usize> {
    buf: [u8; N],
    len: usize,
    block: Block,
    state: State,
    skipped: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No delimiter seen yet.
    Unsynced,
    /// Between delimiters, no byte of the frame yet.
    Idle,
    /// Inside a frame.
    Frame,
    /// Inside a frame that did not fit; dropping to the next delimiter.
    Overflow,
    /// Inside a frame whose COBS encoding already failed.
    Broken,
}

impl<const N: usize> Default for FrameReader<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> FrameReader<N> {
    /// An empty reader that has not seen a delimiter yet.
    pub const fn new() -> Self {
        FrameReader {
            buf: [0; N],
            len: 0,
            block: Block::new(),
            state: State::Unsynced,
            skipped: 0,
        }
    }

    /// A reader that treats the first byte as the start of a frame (for a
    /// link known to be clean from its first byte, such as a test's pipe).
    pub const fn new_synced() -> Self {
        let mut r = Self::new();
        r.state = State::Idle;
        r
    }

    /// Bytes dropped before the first delimiter.
    pub const fn skipped(&self) -> u32 {
        self.skipped
    }

    /// Takes one received byte. Returns `Some` when it was a delimiter that
    /// closed a non-empty frame: the validated frame (borrowing the reader's
    /// buffer until the next call) or why it was dropped.
    pub fn push(&mut self, byte: u8) -> Option<Event<'_>> {
        if byte != 0 {
            self.take(byte);
            return None;
        }
        let state = core::mem::replace(&mut self.state, State::Idle);
        let len = core::mem::replace(&mut self.len, 0);
        let block = core::mem::replace(&mut self.block, Block::new());
        let data = &self.buf[..len.min(N)];
        let header = FrameHeader::parse(data);
        let error = match state {
            State::Unsynced | State::Idle => return None,
            State::Overflow => Error::Oversize,
            State::Broken => Error::Cobs,
            State::Frame if !block.finished() => Error::Cobs,
            State::Frame => match Frame::new_checked(data) {
                Ok(frame) => return Some(Ok(frame)),
                Err(e) => e,
            },
        };
        Some(Err(Rejected { error, header }))
    }

    /// Takes bytes until one closes a frame; returns how many bytes it took
    /// and what [`push`](Self::push) returned for the last one. Call it again
    /// with the rest of the slice.
    ///
    /// ```
    /// use device_protocol::{encode_request, FrameReader, Request};
    /// let mut wire = [0u8; 64];
    /// let a = encode_request(1, &Request::Info, &mut wire)?;
    /// let b = encode_request(2, &Request::Stats, &mut wire[a..])?;
    /// let mut reader = FrameReader::<32>::new();
    /// let mut rest = &wire[..a + b];
    /// let mut ids = Vec::new();
    /// while !rest.is_empty() {
    ///     let (used, event) = reader.feed(rest);
    ///     if let Some(Ok(frame)) = event {
    ///         ids.push(frame.id());
    ///     }
    ///     rest = &rest[used..];
    /// }
    /// assert_eq!(ids, [1, 2]);
    /// # Ok::<(), device_protocol::Error>(())
    /// ```
    pub fn feed(&mut self, bytes: &[u8]) -> (usize, Option<Event<'_>>) {
        match bytes.iter().position(|&b| b == 0) {
            None => {
                self.take_run(bytes);
                (bytes.len(), None)
            }
            Some(z) => {
                self.take_run(&bytes[..z]);
                (z + 1, self.push(0))
            }
        }
    }

    /// Non-delimiter bytes, as [`take`](Self::take) one by one would, in
    /// one tight loop over local copies of the decoder's state, a block's
    /// data bytes copied at once: what makes [`feed`](Self::feed) cheap on
    /// a microcontroller. (An MNIST digit is mostly black: most of a
    /// classify request's bytes are COBS code bytes of empty blocks, so the
    /// code-byte step is the hot path.)
    fn take_run(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if !matches!(self.state, State::Idle | State::Frame) {
            for &b in bytes {
                self.take(b);
            }
            return;
        }
        self.state = State::Frame;
        let (mut left, mut zero_after) = self.block.state();
        let mut len = self.len;
        let mut i = 0;
        while i < bytes.len() {
            if left == 0 && zero_after {
                // A run of empty blocks (code bytes 0x01): one zero each,
                // the black pixels of a digit.
                let run = bytes[i..].iter().take_while(|&&b| b == 1).count();
                if run > 0 {
                    let fill = run.min(N - len.min(N));
                    self.buf[len..len + fill].fill(0);
                    len += fill;
                    i += fill;
                    if fill < run {
                        self.state = State::Overflow;
                        break;
                    }
                    continue;
                }
            }
            if left == 0 {
                // A code byte (never 0 here: `feed` splits at delimiters).
                let code = bytes[i];
                i += 1;
                if zero_after {
                    match self.buf.get_mut(len) {
                        Some(slot) => *slot = 0,
                        None => {
                            self.state = State::Overflow;
                            break;
                        }
                    }
                    len += 1;
                }
                left = code.wrapping_sub(1);
                zero_after = code != 0xFF;
            } else {
                let n = usize::from(left).min(bytes.len() - i);
                let fit = n.min(N - len.min(N));
                // A byte loop, not `copy_from_slice`: the blocks of a
                // digit's pixels are a few bytes long, shorter than a
                // memcpy call's own cost on a Cortex-M0+.
                for (slot, &b) in self.buf[len..len + fit].iter_mut().zip(&bytes[i..i + fit]) {
                    *slot = b;
                }
                len += fit;
                if fit < n {
                    self.state = State::Overflow;
                    break;
                }
                left -= n as u8;
                i += n;
            }
        }
        self.len = len;
        self.block.set_state(left, zero_after);
    }

    /// One non-delimiter byte.
    fn take(&mut self, byte: u8) {
        match self.state {
            State::Unsynced => self.skipped = self.skipped.saturating_add(1),
            State::Overflow | State::Broken => {}
            State::Idle | State::Frame => {
                self.state = State::Frame;
                match self.block.step(byte) {
                    Ok(Step::Nothing) => {}
                    Ok(Step::Byte(v)) => match self.buf.get_mut(self.len) {
                        Some(slot) => {
                            *slot = v;
                            self.len += 1;
                        }
                        None => self.state = State::Overflow,
                    },
                    Err(_) => self.state = State::Broken,
                }
            }
        }
    }
}

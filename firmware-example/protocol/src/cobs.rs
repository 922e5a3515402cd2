//! Consistent Overhead Byte Stuffing (Cheshire and Baker, 1999): a frame's
//! bytes re-coded without any `0x00`, so that `0x00` can delimit frames.
//!
//! Each block is a code byte `c` (1 to 255) followed by `c - 1` data bytes;
//! a block with `c < 255` stands for its data followed by a zero, except at
//! the end of the frame. The encoding is the canonical one (a frame of
//! exactly 254 non-zero bytes takes no trailing `0x01` block), which Python's
//! `cobs` package and the `cobs` crate produce too. The overhead is one byte
//! per started 254 bytes.

use crate::Error;

/// The longest encoding of `len` bytes (without delimiters): one code byte
/// per started 254 bytes, at least one.
///
/// ```
/// assert_eq!(device_protocol::cobs::max_encoded_len(0), 1);
/// assert_eq!(device_protocol::cobs::max_encoded_len(254), 255);
/// assert_eq!(device_protocol::cobs::max_encoded_len(255), 257);
/// assert_eq!(device_protocol::cobs::max_encoded_len(798), 802);
/// ```
pub const fn max_encoded_len(len: usize) -> usize {
    if len == 0 {
        1
    } else {
        len + len.div_ceil(254)
    }
}

/// Encodes `src` into `dst` (no delimiters); returns the encoded length.
///
/// ```
/// use device_protocol::cobs;
/// let mut out = [0u8; 8];
/// let n = cobs::encode(&[0x11, 0x00, 0x22, 0x33], &mut out)?;
/// assert_eq!(&out[..n], &[0x02, 0x11, 0x03, 0x22, 0x33]);
/// # Ok::<(), device_protocol::Error>(())
/// ```
pub fn encode(src: &[u8], dst: &mut [u8]) -> Result<usize, Error> {
    let mut pos = 0;
    for block in Blocks::new(src) {
        let end = pos + 1 + block.len();
        let out = dst.get_mut(pos..end).ok_or(Error::BufferTooSmall)?;
        out[0] = block.len() as u8 + 1;
        out[1..].copy_from_slice(block);
        pos = end;
    }
    Ok(pos)
}

/// The data of each block of `src`'s canonical encoding.
struct Blocks<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> Blocks<'a> {
    const fn new(src: &'a [u8]) -> Self {
        Blocks {
            rest: src,
            done: false,
        }
    }
}

impl<'a> Iterator for Blocks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.done {
            return None;
        }
        let limit = self.rest.len().min(254);
        match self.rest[..limit].iter().position(|&b| b == 0) {
            Some(z) => {
                let block = &self.rest[..z];
                self.rest = &self.rest[z + 1..];
                Some(block)
            }
            None => {
                let block = &self.rest[..limit];
                self.rest = &self.rest[limit..];
                // A full block of 254 carries no implicit zero: the frame goes
                // on in a new block only if bytes are left.
                if limit < 254 || self.rest.is_empty() {
                    self.done = true;
                }
                Some(block)
            }
        }
    }
}

/// Encodes `buf[start..start + len]` into `buf[..]` in place; returns the
/// encoded length. Needs `start >= max_encoded_len(len) - len`: the write
/// position then never passes the read position.
pub(crate) fn encode_within(buf: &mut [u8], start: usize, len: usize) -> Result<usize, Error> {
    if start < max_encoded_len(len) - len || start.checked_add(len).is_none_or(|e| e > buf.len()) {
        return Err(Error::BufferTooSmall);
    }
    let mut code_pos = 0;
    let mut out = 1;
    let mut code: u8 = 1;
    for i in 0..len {
        let b = buf[start + i];
        if b == 0 {
            buf[code_pos] = code;
            code_pos = out;
            out += 1;
            code = 1;
        } else {
            buf[out] = b;
            out += 1;
            code += 1;
            if code == 0xFF && i + 1 < len {
                buf[code_pos] = code;
                code_pos = out;
                out += 1;
                code = 1;
            }
        }
    }
    buf[code_pos] = code;
    Ok(out)
}

/// Decodes one whole encoded frame `src` (no delimiters, so no `0x00` in it)
/// into `dst`; returns the decoded length. [`Error::Cobs`] for a block that
/// runs past the end or a `0x00` inside, [`Error::BufferTooSmall`] if `dst`
/// is too short. [`crate::FrameReader`] does the same a byte at a time.
///
/// ```
/// use device_protocol::{cobs, Error};
/// let mut out = [0u8; 8];
/// let n = cobs::decode(&[0x02, 0x11, 0x03, 0x22, 0x33], &mut out)?;
/// assert_eq!(&out[..n], &[0x11, 0x00, 0x22, 0x33]);
/// assert_eq!(cobs::decode(&[0x05, 0x11], &mut out), Err(Error::Cobs));
/// # Ok::<(), device_protocol::Error>(())
/// ```
pub fn decode(src: &[u8], dst: &mut [u8]) -> Result<usize, Error> {
    let mut block = Block::new();
    let mut n = 0;
    for &b in src {
        match block.step(b)? {
            Step::Nothing => {}
            Step::Byte(v) => {
                *dst.get_mut(n).ok_or(Error::BufferTooSmall)? = v;
                n += 1;
            }
        }
    }
    if block.finished() {
        Ok(n)
    } else {
        Err(Error::Cobs)
    }
}

/// The state of a streaming COBS decoder between two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Block {
    /// Data bytes left in the current block.
    left: u8,
    /// Whether the current block ends in an implicit zero (code < 255), to
    /// be emitted if another block follows.
    zero_after: bool,
}

/// What one encoded byte decodes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// A code byte after a block without an implicit zero (or the first).
    Nothing,
    /// A decoded byte: a data byte, or the implicit zero of the block before
    /// a code byte.
    Byte(u8),
}

impl Block {
    pub(crate) const fn new() -> Self {
        Block {
            left: 0,
            zero_after: false,
        }
    }

    /// Whether the frame may end here (no block cut short).
    pub(crate) const fn finished(&self) -> bool {
        self.left == 0
    }

    /// The decoder's state: data bytes left in the current block, and
    /// whether a zero follows it (for a reader's own loop).
    pub(crate) const fn state(&self) -> (u8, bool) {
        (self.left, self.zero_after)
    }

    /// Sets the state [`state`](Self::state) returned, advanced.
    pub(crate) fn set_state(&mut self, left: u8, zero_after: bool) {
        self.left = left;
        self.zero_after = zero_after;
    }

    /// Decodes one non-delimiter byte.
    pub(crate) fn step(&mut self, b: u8) -> Result<Step, Error> {
        if b == 0 {
            return Err(Error::Cobs);
        }
        if self.left > 0 {
            self.left -= 1;
            return Ok(Step::Byte(b));
        }
        let zero = self.zero_after;
        self.left = b - 1;
        self.zero_after = b != 0xFF;
        Ok(if zero { Step::Byte(0) } else { Step::Nothing })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(src: &[u8]) {
        let mut enc = [0u8; 1200];
        let n = encode(src, &mut enc).unwrap();
        assert!(n <= max_encoded_len(src.len()));
        assert!(!enc[..n].contains(&0));
        let mut dec = [0u8; 1200];
        let m = decode(&enc[..n], &mut dec).unwrap();
        assert_eq!(&dec[..m], src);
        // The in-place encoder gives the same bytes.
        let mut within = [0u8; 1200];
        let shift = max_encoded_len(src.len()) - src.len();
        within[shift..shift + src.len()].copy_from_slice(src);
        let k = encode_within(&mut within, shift, src.len()).unwrap();
        assert_eq!(&within[..k], &enc[..n]);
    }

    #[test]
    fn wikipedia_examples() {
        let cases: &[(&[u8], &[u8])] = &[
            (&[0x00], &[0x01, 0x01]),
            (&[0x00, 0x00], &[0x01, 0x01, 0x01]),
            (&[0x00, 0x11, 0x00], &[0x01, 0x02, 0x11, 0x01]),
            (&[0x11, 0x22, 0x00, 0x33], &[0x03, 0x11, 0x22, 0x02, 0x33]),
            (&[0x11, 0x22, 0x33, 0x44], &[0x05, 0x11, 0x22, 0x33, 0x44]),
            (&[0x11, 0x00, 0x00, 0x00], &[0x02, 0x11, 0x01, 0x01, 0x01]),
            (&[], &[0x01]),
        ];
        for (src, want) in cases {
            let mut out = [0u8; 16];
            let n = encode(src, &mut out).unwrap();
            assert_eq!(&out[..n], *want, "{src:02x?}");
            round_trip(src);
        }
    }

    #[test]
    fn long_runs() {
        let run: [u8; 600] = core::array::from_fn(|i| (i % 255) as u8 + 1);
        for len in [253, 254, 255, 256, 508, 509, 600] {
            round_trip(&run[..len]);
        }
        // 254 non-zero bytes: FF and the data, no trailing 01.
        let mut out = [0u8; 300];
        assert_eq!(encode(&run[..254], &mut out).unwrap(), 255);
        assert_eq!(out[0], 0xFF);
        // 255 bytes: 01 00 .. FE (Wikipedia's example 9) is 0x00 then 254 non-zero.
        let mut src = [0u8; 255];
        src[1..].copy_from_slice(&run[..254]);
        let n = encode(&src, &mut out).unwrap();
        assert_eq!(&out[..2], &[0x01, 0xFF]);
        assert_eq!(n, 256);
        round_trip(&src);
    }

    #[test]
    fn decode_errors() {
        let mut out = [0u8; 4];
        assert_eq!(decode(&[0x03, 0x11], &mut out), Err(Error::Cobs));
        assert_eq!(decode(&[0x02, 0x00], &mut out), Err(Error::Cobs));
        assert_eq!(
            decode(&[0x06, 1, 2, 3, 4, 5], &mut out),
            Err(Error::BufferTooSmall)
        );
        let mut small = [0u8; 2];
        assert_eq!(encode(&[1, 2, 3], &mut small), Err(Error::BufferTooSmall));
    }
}

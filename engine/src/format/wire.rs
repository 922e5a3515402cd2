//! The fixed frame at the start of every model file.

use crate::{crc32, Error};

/// The eight bytes every model file starts with. The `\r\n` and `\x1a` catch
/// files mangled by text-mode transfers, as PNG's signature does.
pub const MAGIC: [u8; 8] = *b"MoVAE\r\n\x1a";

/// The format version of flat models: the oldest version this engine
/// reads, and the one the writer gives every model whose clusters all have
/// one style.
pub const FORMAT_VERSION: u16 = 2;

/// The format version of two-level models (clusters of styles) and the
/// newest this engine reads: it reads every version from
/// [`FORMAT_VERSION`] up to this one.
pub const TWO_LEVEL_VERSION: u16 = 3;

/// Length of the fixed frame before the body.
pub const HEADER_LEN: usize = 20;

mod field {
    use core::ops::Range;
    pub const MAGIC: Range<usize> = 0..8;
    pub const VERSION: Range<usize> = 8..10;
    pub const RESERVED: Range<usize> = 10..12;
    pub const BODY_LEN: Range<usize> = 12..16;
    pub const CRC: Range<usize> = 16..20;
}

/// A read (or, with `AsMut`, write) view over the fixed frame of a model file.
///
/// ```
/// use engine::ModelFile;
/// let bytes = engine::testing::tiny_model_bytes();
/// let file = ModelFile::new_checked(&bytes[..])?;
/// assert_eq!(file.version(), engine::FORMAT_VERSION);
/// assert_eq!(file.body().len(), bytes.len() - 20);
/// # Ok::<(), engine::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ModelFile<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ModelFile<T> {
    /// Wraps a buffer without checking anything; accessors may then panic on a
    /// short buffer. Use [`new_checked`](Self::new_checked) on untrusted bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        ModelFile { buffer }
    }

    /// Wraps a buffer and validates the frame: length, magic, version,
    /// reserved bits, body length and body checksum.
    /// Any version from [`FORMAT_VERSION`] to [`TWO_LEVEL_VERSION`] is
    /// accepted; others are [`Error::UnsupportedVersion`] naming the newest.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        Self::new_checked_up_to(buffer, TWO_LEVEL_VERSION)
    }

    /// [`new_checked`](Self::new_checked) as an engine that reads versions
    /// [`FORMAT_VERSION`] to `newest` checks a frame: `newest = 2` is what
    /// an engine built before version 3 answers (a version-3 file is then
    /// [`Error::UnsupportedVersion`] at the frame, before its description
    /// is read).
    pub fn new_checked_up_to(buffer: T, newest: u16) -> Result<Self, Error> {
        Self::new_checked_range(buffer, FORMAT_VERSION, newest)
    }

    /// [`new_checked`](Self::new_checked) for a frame of another format
    /// version (the writer reads version 1 to convert it).
    #[cfg(feature = "std")]
    pub(crate) fn new_checked_version(buffer: T, version: u16) -> Result<Self, Error> {
        Self::new_checked_range(buffer, version, version)
    }

    /// A checked frame of a version in `oldest..=newest`.
    fn new_checked_range(buffer: T, oldest: u16, newest: u16) -> Result<Self, Error> {
        let file = Self::new_unchecked(buffer);
        file.check_frame(oldest, newest)?;
        let stored = file.checksum();
        let computed = crc32(file.body());
        if stored != computed {
            return Err(Error::ChecksumMismatch { stored, computed });
        }
        Ok(file)
    }

    /// Like [`new_checked`](Self::new_checked) but without computing the
    /// checksum: for callers that verified the bytes another way (and for
    /// fuzzing the decoder behind the checksum). The body is still fully
    /// validated by [`ModelRepr::parse`](crate::ModelRepr::parse).
    pub fn new_checked_skip_crc(buffer: T) -> Result<Self, Error> {
        let file = Self::new_unchecked(buffer);
        file.check_frame(FORMAT_VERSION, TWO_LEVEL_VERSION)?;
        Ok(file)
    }

    fn check_frame(&self, oldest: u16, newest: u16) -> Result<(), Error> {
        let data = self.buffer.as_ref();
        if data.len() < field::MAGIC.end {
            return Err(Error::Truncated {
                needed: HEADER_LEN,
                available: data.len(),
            });
        }
        if self.magic() != MAGIC {
            return Err(Error::BadMagic);
        }
        if data.len() < HEADER_LEN {
            return Err(Error::Truncated {
                needed: HEADER_LEN,
                available: data.len(),
            });
        }
        if !(oldest..=newest).contains(&self.version()) {
            return Err(Error::UnsupportedVersion {
                found: self.version(),
                supported: newest,
            });
        }
        if self.reserved() != 0 {
            return Err(Error::ReservedBits);
        }
        let needed = HEADER_LEN.saturating_add(self.body_len() as usize);
        if data.len() < needed {
            return Err(Error::Truncated {
                needed,
                available: data.len(),
            });
        }
        if data.len() > needed {
            return Err(Error::TrailingBytes {
                extra: data.len() - needed,
            });
        }
        Ok(())
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn bytes<const N: usize>(&self, range: core::ops::Range<usize>) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buffer.as_ref()[range]);
        out
    }

    /// The magic bytes (equal to [`MAGIC`] in a checked file).
    pub fn magic(&self) -> [u8; 8] {
        self.bytes(field::MAGIC)
    }

    /// The format version.
    pub fn version(&self) -> u16 {
        u16::from_le_bytes(self.bytes(field::VERSION))
    }

    /// Reserved flags; zero in this version.
    pub fn reserved(&self) -> u16 {
        u16::from_le_bytes(self.bytes(field::RESERVED))
    }

    /// Length in bytes of the postcard body after the frame.
    pub fn body_len(&self) -> u32 {
        u32::from_le_bytes(self.bytes(field::BODY_LEN))
    }

    /// The postcard-encoded body after the frame.
    pub fn body(&self) -> &[u8] {
        let end = HEADER_LEN + self.body_len() as usize;
        &self.buffer.as_ref()[HEADER_LEN..end]
    }

    /// The CRC-32 of the body stored in the frame.
    pub fn checksum(&self) -> u32 {
        u32::from_le_bytes(self.bytes(field::CRC))
    }
}

impl<'a> ModelFile<&'a [u8]> {
    /// The body, borrowed for the buffer's lifetime (not the view's).
    pub fn body_slice(&self) -> &'a [u8] {
        let end = HEADER_LEN + self.body_len() as usize;
        &self.buffer[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ModelFile<T> {
    /// Writes magic, version ([`FORMAT_VERSION`]), zero reserved bits, body
    /// length and checksum for the body already placed after the frame.
    pub fn fill_frame(&mut self, body_len: u32) {
        self.fill_frame_version(FORMAT_VERSION, body_len);
    }

    /// [`fill_frame`](Self::fill_frame) with another version number.
    pub fn fill_frame_version(&mut self, version: u16, body_len: u32) {
        let data = self.buffer.as_mut();
        data[field::MAGIC].copy_from_slice(&MAGIC);
        data[field::VERSION].copy_from_slice(&version.to_le_bytes());
        data[field::RESERVED].copy_from_slice(&0u16.to_le_bytes());
        data[field::BODY_LEN].copy_from_slice(&body_len.to_le_bytes());
        let crc = crc32(&data[HEADER_LEN..HEADER_LEN + body_len as usize]);
        data[field::CRC].copy_from_slice(&crc.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A frame around an empty body: CRC-32 of nothing is 0.
    static EMPTY: [u8; 20] = [
        b'M', b'o', b'V', b'A', b'E', b'\r', b'\n', 0x1a, // magic
        0x02, 0x00, // version 2
        0x00, 0x00, // reserved
        0x00, 0x00, 0x00, 0x00, // body length 0
        0x00, 0x00, 0x00, 0x00, // crc32("") = 0
    ];

    #[test]
    fn parses_literal_frame() {
        let f = ModelFile::new_checked(&EMPTY[..]).unwrap();
        assert_eq!(f.magic(), MAGIC);
        assert_eq!(f.version(), 2);
        assert_eq!(f.body_len(), 0);
        assert_eq!(f.body(), &[] as &[u8]);
    }

    #[test]
    fn rejects_each_field() {
        assert_eq!(
            ModelFile::new_checked(&EMPTY[..5]).unwrap_err(),
            Error::Truncated {
                needed: 20,
                available: 5
            }
        );
        let mut b = EMPTY;
        b[0] = b'X';
        assert_eq!(ModelFile::new_checked(&b[..]).unwrap_err(), Error::BadMagic);
        let mut b = EMPTY;
        b[8] = 1;
        assert_eq!(
            ModelFile::new_checked(&b[..]).unwrap_err(),
            Error::UnsupportedVersion {
                found: 1,
                supported: 3
            }
        );
        // Version 3 passes this engine's frame but not a version-2 engine's.
        let mut b = EMPTY;
        b[8] = 3;
        assert!(ModelFile::new_checked(&b[..]).is_ok());
        assert_eq!(
            ModelFile::new_checked_up_to(&b[..], 2).unwrap_err(),
            Error::UnsupportedVersion {
                found: 3,
                supported: 2
            }
        );
        b[8] = 4;
        assert_eq!(
            ModelFile::new_checked(&b[..]).unwrap_err(),
            Error::UnsupportedVersion {
                found: 4,
                supported: 3
            }
        );
        let mut b = EMPTY;
        b[11] = 1;
        assert_eq!(
            ModelFile::new_checked(&b[..]).unwrap_err(),
            Error::ReservedBits
        );
        let mut b = EMPTY;
        b[12] = 4;
        assert_eq!(
            ModelFile::new_checked(&b[..]).unwrap_err(),
            Error::Truncated {
                needed: 24,
                available: 20
            }
        );
        let mut b = EMPTY;
        b[16] = 1;
        assert!(matches!(
            ModelFile::new_checked(&b[..]).unwrap_err(),
            Error::ChecksumMismatch {
                stored: 1,
                computed: 0
            }
        ));
        let mut long = [0u8; 21];
        long[..20].copy_from_slice(&EMPTY);
        assert_eq!(
            ModelFile::new_checked(&long[..]).unwrap_err(),
            Error::TrailingBytes { extra: 1 }
        );
    }

    #[test]
    fn huge_body_len_is_truncation_not_overflow() {
        let mut b = EMPTY;
        b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            ModelFile::new_checked(&b[..]).unwrap_err(),
            Error::Truncated { .. }
        ));
    }

    #[test]
    fn fill_frame_round_trips() {
        let mut b = [0u8; 23];
        b[20..].copy_from_slice(b"abc");
        let mut f = ModelFile::new_unchecked(&mut b[..]);
        f.fill_frame(3);
        let f = ModelFile::new_checked(&b[..]).unwrap();
        assert_eq!(f.body(), b"abc");
        assert_eq!(f.checksum(), crc32(b"abc"));
    }
}

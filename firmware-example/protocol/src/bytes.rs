//! Little-endian cursors over payload bytes: every read is bounds-checked
//! and returns [`Error::Truncated`] past the end, every write returns
//! [`Error::BufferTooSmall`]; nothing here can panic.

use crate::Error;

/// Reads fields front to back from a payload.
pub(crate) struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(crate) const fn new(bytes: &'a [u8]) -> Self {
        Cursor { rest: bytes }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.rest.len() {
            return Err(Error::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const M: usize>(&mut self) -> Result<[u8; M], Error> {
        let mut a = [0u8; M];
        a.copy_from_slice(self.take(M)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A `u8` length, then that many bytes of UTF-8.
    pub(crate) fn short_str(&mut self) -> Result<&'a str, Error> {
        let n = self.u8()? as usize;
        core::str::from_utf8(self.take(n)?).map_err(|_| Error::Invalid)
    }

    /// Whatever is left (newer fields or the extension area).
    pub(crate) const fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

/// Writes fields front to back into a buffer.
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }

    pub(crate) fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let end = self
            .pos
            .checked_add(bytes.len())
            .ok_or(Error::BufferTooSmall)?;
        let dst = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(Error::BufferTooSmall)?;
        dst.copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }

    pub(crate) fn u8(&mut self, v: u8) -> Result<(), Error> {
        self.put(&[v])
    }

    pub(crate) fn u16(&mut self, v: u16) -> Result<(), Error> {
        self.put(&v.to_le_bytes())
    }

    pub(crate) fn u32(&mut self, v: u32) -> Result<(), Error> {
        self.put(&v.to_le_bytes())
    }

    pub(crate) fn u64(&mut self, v: u64) -> Result<(), Error> {
        self.put(&v.to_le_bytes())
    }

    /// A `u8` length, then the bytes; [`Error::TooLong`] over 255 bytes.
    pub(crate) fn short_str(&mut self, s: &str) -> Result<(), Error> {
        let n = u8::try_from(s.len()).map_err(|_| Error::TooLong)?;
        self.u8(n)?;
        self.put(s.as_bytes())
    }

    pub(crate) const fn len(&self) -> usize {
        self.pos
    }
}

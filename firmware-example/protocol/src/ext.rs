//! The extension area: how later versions add fields to a payload without
//! breaking older readers. A sequence of records, each `tag: u8`,
//! `length: u8`, then `length` bytes, to the end of the payload. Readers skip
//! tags they do not know. Version 1 defines no tag; `PROTOCOL.md` lists the
//! planned ones (a hierarchical model's style, a novelty score).

use crate::Error;

/// A validated view of an extension area: every record lies inside it.
///
/// ```
/// use device_protocol::Extensions;
/// let ext = Extensions::new_checked(&[0x02, 0x04, 0x00, 0x00, 0x80, 0x3f])?;
/// let (tag, value) = ext.iter().next().unwrap();
/// assert_eq!((tag, value), (0x02, &[0x00, 0x00, 0x80, 0x3f][..]));
/// assert_eq!(ext.get(0x02), Some(&[0x00, 0x00, 0x80, 0x3f][..]));
/// assert!(Extensions::new_checked(&[0x02, 0x05, 0x00]).is_err());
/// # Ok::<(), device_protocol::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Extensions<'a> {
    bytes: &'a [u8],
}

impl<'a> Extensions<'a> {
    /// No records.
    pub const EMPTY: Extensions<'static> = Extensions { bytes: &[] };

    /// Validates `bytes` as records ([`Error::Invalid`] if one runs past the end).
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, Error> {
        let mut rest = bytes;
        while let [_, len, tail @ ..] = rest {
            rest = tail.get(*len as usize..).ok_or(Error::Invalid)?;
        }
        if rest.is_empty() {
            Ok(Extensions { bytes })
        } else {
            Err(Error::Invalid)
        }
    }

    /// The records' bytes, as sent.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Whether there is no record.
    pub const fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The records, `(tag, value)`, in order.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &'a [u8])> {
        let mut rest = self.bytes;
        core::iter::from_fn(move || match rest {
            [tag, len, tail @ ..] => {
                let (value, after) = tail.split_at_checked(*len as usize)?;
                rest = after;
                Some((*tag, value))
            }
            _ => None,
        })
    }

    /// The value of the first record with this tag.
    pub fn get(&self, tag: u8) -> Option<&'a [u8]> {
        self.iter().find(|&(t, _)| t == tag).map(|(_, v)| v)
    }
}

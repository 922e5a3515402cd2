//! The extension area: how later versions add fields to a payload without
//! breaking older readers. A sequence of records, each `tag: u8`,
//! `length: u8`, then `length` bytes, to the end of the payload. Readers skip
//! tags they do not know. Revision 2 defines tag [`STYLE`], a two-level
//! model's style: in a `classify` answer ([`crate::ClassifyAnswer::style`],
//! written by [`Extensions::style_answer`]) and in a `generate` request
//! ([`crate::GenerateRequest::style`], [`Extensions::style_request`]).
//! Revision 3 defines tag [`NOVELTY`] in a `classify` answer, the novelty
//! score of a model that carries one ([`crate::ClassifyAnswer::novelty`],
//! written by [`Extensions::classify_answer`]); `PROTOCOL.md` lists the
//! planned others (a temperature).

use core::hash::{Hash, Hasher};

use crate::{Error, Novelty};

/// Tag of the style record (revision 2): `style: u8, confidence: f32` (5
/// bytes) in a `classify` answer, `style: u8` (1 byte) in a `generate`
/// request. At most one per payload; one of another length makes the
/// payload [`Error::Invalid`].
pub const STYLE: u8 = 0x01;

/// Tag of the novelty record (revision 3), in a `classify` answer only:
/// `score: f32, known: u8` (5 bytes; `known` is 0 or 1). At most one per
/// answer; one of another length, with another `known` byte, or twice makes
/// the payload [`Error::Invalid`]. In a `generate` request the tag is not
/// this record's (`PROTOCOL.md` plans a temperature there) and readers of
/// this revision skip it.
pub const NOVELTY: u8 = 0x02;

/// Bytes of a classify answer's style record's value.
pub(crate) const STYLE_ANSWER_LEN: usize = 5;

/// Bytes of a classify answer's novelty record's value.
pub(crate) const NOVELTY_ANSWER_LEN: usize = 5;

/// Bytes of records an [`Extensions`] holds by value (a device's own
/// records, built without a buffer to borrow): a classify answer's style
/// and novelty records, 7 bytes each.
const INLINE: usize = 16;

/// A validated view of an extension area: every record lies inside it.
/// Received areas are borrowed from the payload; a device's own records
/// ([`style_answer`](Self::style_answer)) are held by value. Equality and
/// hashing are by the bytes.
///
/// ```
/// use device_protocol::Extensions;
/// let ext = Extensions::new_checked(&[0x7e, 0x04, 0x00, 0x00, 0x80, 0x3f])?;
/// let (tag, value) = ext.iter().next().unwrap();
/// assert_eq!((tag, value), (0x7e, &[0x00, 0x00, 0x80, 0x3f][..]));
/// assert_eq!(ext.get(0x7e), Some(&[0x00, 0x00, 0x80, 0x3f][..]));
/// assert!(Extensions::new_checked(&[0x7e, 0x05, 0x00]).is_err());
/// assert_eq!(Extensions::style_request(1).as_bytes(), &[0x01, 0x01, 0x01]);
/// # Ok::<(), device_protocol::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct Extensions<'a> {
    repr: Repr<'a>,
}

#[derive(Clone, Copy)]
enum Repr<'a> {
    Borrowed(&'a [u8]),
    Inline { bytes: [u8; INLINE], len: u8 },
}

impl Default for Extensions<'_> {
    fn default() -> Self {
        Extensions::EMPTY
    }
}

impl PartialEq for Extensions<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Extensions<'_> {}

impl Hash for Extensions<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl core::fmt::Debug for Extensions<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Extensions").field(&self.as_bytes()).finish()
    }
}

impl Extensions<'static> {
    /// Whole records held by value (`records`: tag, length, value, ...; at
    /// most `INLINE` bytes, built by this module only).
    const fn inline<const M: usize>(records: [u8; M]) -> Self {
        const { assert!(M <= INLINE) };
        let mut bytes = [0u8; INLINE];
        let mut i = 0;
        while i < M {
            bytes[i] = records[i];
            i += 1;
        }
        Extensions {
            repr: Repr::Inline {
                bytes,
                len: M as u8,
            },
        }
    }

    /// A `classify` answer's style record: `style`, and its probability
    /// within the cluster as `f32` bits.
    ///
    /// ```
    /// let ext = device_protocol::Extensions::style_answer(1, 0.625f32.to_bits());
    /// assert_eq!(ext.as_bytes(), &[0x01, 0x05, 0x01, 0x00, 0x00, 0x20, 0x3f]);
    /// ```
    pub const fn style_answer(style: u8, confidence: u32) -> Self {
        let c = confidence.to_le_bytes();
        Self::inline([STYLE, 5, style, c[0], c[1], c[2], c[3]])
    }

    /// A `generate` request's style record.
    pub const fn style_request(style: u8) -> Self {
        Self::inline([STYLE, 1, style])
    }

    /// A revision-3 `classify` answer's records: the style record and,
    /// for a model with a novelty score, the novelty record after it
    /// (`score` as `f32` bits).
    ///
    /// ```
    /// use device_protocol::{Extensions, Novelty};
    /// let n = Novelty { score: 1.5f32.to_bits(), known: false };
    /// let ext = Extensions::classify_answer(1, 0.625f32.to_bits(), Some(n));
    /// assert_eq!(
    ///     ext.as_bytes(),
    ///     &[0x01, 0x05, 0x01, 0x00, 0x00, 0x20, 0x3f, 0x02, 0x05, 0x00, 0x00, 0xc0, 0x3f, 0x00]
    /// );
    /// assert_eq!(Extensions::classify_answer(1, 0.625f32.to_bits(), None),
    ///            Extensions::style_answer(1, 0.625f32.to_bits()));
    /// ```
    pub const fn classify_answer(style: u8, confidence: u32, novelty: Option<Novelty>) -> Self {
        let c = confidence.to_le_bytes();
        match novelty {
            None => Self::style_answer(style, confidence),
            Some(n) => {
                let s = n.score.to_le_bytes();
                Self::inline([
                    STYLE,
                    5,
                    style,
                    c[0],
                    c[1],
                    c[2],
                    c[3],
                    NOVELTY,
                    5,
                    s[0],
                    s[1],
                    s[2],
                    s[3],
                    n.known as u8,
                ])
            }
        }
    }
}

impl<'a> Extensions<'a> {
    /// No records.
    pub const EMPTY: Extensions<'static> = Extensions {
        repr: Repr::Borrowed(&[]),
    };

    /// Validates `bytes` as records ([`Error::Invalid`] if one runs past the end).
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, Error> {
        let mut rest = bytes;
        while let [_, len, tail @ ..] = rest {
            rest = tail.get(*len as usize..).ok_or(Error::Invalid)?;
        }
        if rest.is_empty() {
            Ok(Extensions {
                repr: Repr::Borrowed(bytes),
            })
        } else {
            Err(Error::Invalid)
        }
    }

    /// The records' bytes, as sent.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.repr {
            Repr::Borrowed(bytes) => bytes,
            Repr::Inline { bytes, len } => bytes.get(..usize::from(*len)).unwrap_or(&[]),
        }
    }

    /// Whether there is no record.
    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }

    /// The records, `(tag, value)`, in order.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &[u8])> {
        let mut rest = self.as_bytes();
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
    pub fn get(&self, tag: u8) -> Option<&[u8]> {
        self.iter().find(|&(t, _)| t == tag).map(|(_, v)| v)
    }

    /// Checks a `generate` request's records this revision knows: at most
    /// one [`STYLE`] record, of 1 byte ([`Error::Invalid`] otherwise).
    pub(crate) fn check_request(&self) -> Result<(), Error> {
        self.check_one(STYLE, |v| v.len() == 1)
    }

    /// Checks a `classify` answer's records this revision knows: at most
    /// one [`STYLE`] record, of 5 bytes, and at most one [`NOVELTY`]
    /// record, of 5 bytes ending in 0 or 1 ([`Error::Invalid`] otherwise).
    pub(crate) fn check_answer(&self) -> Result<(), Error> {
        self.check_one(STYLE, |v| v.len() == STYLE_ANSWER_LEN)?;
        self.check_one(NOVELTY, |v| {
            v.len() == NOVELTY_ANSWER_LEN && matches!(v.last(), Some(0 | 1))
        })
    }

    /// At most one record of `tag`, and that one `valid`.
    fn check_one(&self, tag: u8, valid: impl Fn(&[u8]) -> bool) -> Result<(), Error> {
        let mut records = self.iter().filter(|&(t, _)| t == tag);
        match (records.next(), records.next()) {
            (None, _) => Ok(()),
            (Some((_, v)), None) if valid(v) => Ok(()),
            _ => Err(Error::Invalid),
        }
    }
}

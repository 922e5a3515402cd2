//! IDX files (the MNIST format), read in place.
//!
//! An IDX file is a big-endian header, the magic `0x0000_TTDD` (`TT` the
//! element type, `08` for unsigned bytes; `DD` the number of dimensions)
//! then one `u32` per dimension, followed by the elements. Images are
//! unsigned bytes in 3 dimensions (count, rows, columns), labels unsigned
//! bytes in 1 (count).
//!
//! Like the model file ([`format`](crate::format)), a view is validated
//! once by `new_checked`, which returns a typed [`IdxError`]; its accessors
//! are then infallible and borrow the bytes: nothing is copied.
//!
//! ```
//! use engine::idx::{Images, Labels};
//! # let (image_bytes, label_bytes) = (
//! #     [0u8, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 9, 200],
//! #     [0u8, 0, 8, 1, 0, 0, 0, 1, 7],
//! # );
//! let images = Images::new_checked(&image_bytes[..])?;
//! let labels = Labels::new_checked(&label_bytes[..])?;
//! images.check_labels(&labels)?;
//! assert_eq!((images.len(), images.rows(), images.cols()), (1, 1, 2));
//! assert_eq!(images.image(0), Some(&[9u8, 200][..]));
//! assert_eq!(labels.label(0), Some(7));
//! # Ok::<(), engine::idx::IdxError>(())
//! ```

use core::fmt;

/// Magic of an IDX file of unsigned bytes in 3 dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic of an IDX file of unsigned bytes in 1 dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// Bytes of an images file's header: magic, count, rows, columns.
pub const IMAGES_HEADER_LEN: usize = 16;
/// Bytes of a labels file's header: magic, count.
pub const LABELS_HEADER_LEN: usize = 8;

/// What is wrong with IDX bytes. Displays as one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdxError {
    /// The first four bytes are not the expected magic (another element
    /// type or number of dimensions, or not an IDX file).
    BadMagic {
        /// The magic found.
        found: u32,
        /// The magic expected.
        expected: u32,
    },
    /// The bytes end before the header, or before the data it announces.
    Truncated {
        /// Bytes needed (`usize::MAX` when the announced size does not fit
        /// in a `usize`).
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// Bytes follow the data the header announces.
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// The images are not of the expected size.
    Shape {
        /// Rows per image.
        rows: usize,
        /// Columns per image.
        cols: usize,
        /// Rows expected.
        expected_rows: usize,
        /// Columns expected.
        expected_cols: usize,
    },
    /// A label is above the largest allowed.
    Label {
        /// Its position.
        index: usize,
        /// Its value.
        value: u8,
        /// The largest value allowed.
        max: u8,
    },
    /// An images file and a labels file disagree on the count.
    CountMismatch {
        /// Images.
        images: usize,
        /// Labels.
        labels: usize,
    },
}

/// `(unsigned bytes, 3 dimensions)` and the like, for a magic.
struct Kind(u32);

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [zero, zero2, kind, dims] = self.0.to_be_bytes();
        let kind = match kind {
            0x08 => "unsigned bytes",
            0x09 => "signed bytes",
            0x0b => "16-bit integers",
            0x0c => "32-bit integers",
            0x0d => "f32",
            0x0e => "f64",
            _ => "",
        };
        if zero != 0 || zero2 != 0 || kind.is_empty() {
            return f.write_str("not an IDX file");
        }
        let s = if dims == 1 { "" } else { "s" };
        write!(f, "{kind}, {dims} dimension{s}")
    }
}

impl fmt::Display for IdxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            IdxError::BadMagic { found, expected } => write!(
                f,
                "wrong IDX magic {found:#010x} ({}), expected {expected:#010x} ({})",
                Kind(found),
                Kind(expected)
            ),
            IdxError::Truncated { needed, available } if needed == usize::MAX => write!(
                f,
                "truncated IDX file: its header announces more bytes than fit in memory, the file has {available}"
            ),
            IdxError::Truncated { needed, available } => write!(
                f,
                "truncated IDX file: needs {needed} bytes, the file has {available}"
            ),
            IdxError::TrailingBytes { extra } => write!(
                f,
                "{extra} unexpected bytes after the data the IDX header announces"
            ),
            IdxError::Shape {
                rows,
                cols,
                expected_rows,
                expected_cols,
            } => write!(
                f,
                "images are {rows}x{cols}, expected {expected_rows}x{expected_cols}"
            ),
            IdxError::Label { index, value, max } => {
                write!(f, "label {value} at index {index} is not in 0..={max}")
            }
            IdxError::CountMismatch { images, labels } => {
                write!(f, "{images} images but {labels} labels")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for IdxError {}

/// The big-endian `u32` at `at`, as a `usize` (0 past the end; saturated
/// where a `usize` is narrower).
fn be_usize(bytes: &[u8], at: usize) -> usize {
    bytes
        .get(at..at + 4)
        .and_then(|w| w.try_into().ok())
        .map_or(0, |w| {
            usize::try_from(u32::from_be_bytes(w)).unwrap_or(usize::MAX)
        })
}

/// Checks the magic, the header and the length of IDX bytes whose
/// elements take `elements` bytes (`None`: more than a `usize` holds).
fn check_frame(
    bytes: &[u8],
    magic: u32,
    header: usize,
    elements: impl FnOnce(&[u8]) -> Option<usize>,
) -> Result<(), IdxError> {
    if let Some(w) = bytes.get(..4).and_then(|w| w.try_into().ok()) {
        let found = u32::from_be_bytes(w);
        if found != magic {
            return Err(IdxError::BadMagic {
                found,
                expected: magic,
            });
        }
    }
    let available = bytes.len();
    if available < header {
        return Err(IdxError::Truncated {
            needed: header,
            available,
        });
    }
    let needed = elements(bytes)
        .and_then(|n| n.checked_add(header))
        .unwrap_or(usize::MAX);
    if available < needed {
        return Err(IdxError::Truncated { needed, available });
    }
    if available > needed {
        return Err(IdxError::TrailingBytes {
            extra: available - needed,
        });
    }
    Ok(())
}

/// A validated view of an IDX images file: `len()` images of `rows() ×
/// cols()` unsigned bytes, row-major.
///
/// ```
/// use engine::idx::{IdxError, Images};
/// let bytes = [
///     0, 0, 8, 3, // magic: unsigned bytes, 3 dimensions
///     0, 0, 0, 2, // 2 images
///     0, 0, 0, 1, // of 1 row
///     0, 0, 0, 2, // of 2 columns
///     1, 2, 3, 4,
/// ];
/// let images = Images::new_checked(&bytes[..])?;
/// assert_eq!(images.image(1), Some(&[3u8, 4][..]));
/// assert_eq!(images.iter().count(), 2);
/// assert_eq!(
///     Images::new_checked(&bytes[..19]).unwrap_err(),
///     IdxError::Truncated { needed: 20, available: 19 }
/// );
/// # Ok::<(), IdxError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images<T: AsRef<[u8]>> {
    buffer: T,
    len: usize,
    rows: usize,
    cols: usize,
}

impl<T: AsRef<[u8]>> Images<T> {
    /// Checks the magic ([`IMAGES_MAGIC`]), the header and that the bytes
    /// hold exactly the images it announces (the size computed without
    /// overflow: an absurd header is [`IdxError::Truncated`]).
    pub fn new_checked(buffer: T) -> Result<Self, IdxError> {
        let bytes = buffer.as_ref();
        let (len, rows, cols) = (be_usize(bytes, 4), be_usize(bytes, 8), be_usize(bytes, 12));
        check_frame(bytes, IMAGES_MAGIC, IMAGES_HEADER_LEN, |_| {
            len.checked_mul(rows)?.checked_mul(cols)
        })?;
        Ok(Images {
            buffer,
            len,
            rows,
            cols,
        })
    }

    /// Refuses images other than `rows × cols`.
    ///
    /// ```
    /// # let bytes = [0u8, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 27, 0, 0, 0, 27];
    /// let images = engine::idx::Images::new_checked(&bytes[..])?;
    /// assert_eq!(
    ///     images.check_shape(28, 28).unwrap_err().to_string(),
    ///     "images are 27x27, expected 28x28"
    /// );
    /// # Ok::<(), engine::idx::IdxError>(())
    /// ```
    pub fn check_shape(&self, rows: usize, cols: usize) -> Result<(), IdxError> {
        if (self.rows, self.cols) != (rows, cols) {
            return Err(IdxError::Shape {
                rows: self.rows,
                cols: self.cols,
                expected_rows: rows,
                expected_cols: cols,
            });
        }
        Ok(())
    }

    /// Refuses a labels file of another count.
    pub fn check_labels<U: AsRef<[u8]>>(&self, labels: &Labels<U>) -> Result<(), IdxError> {
        if labels.len() != self.len {
            return Err(IdxError::CountMismatch {
                images: self.len,
                labels: labels.len(),
            });
        }
        Ok(())
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Rows per image.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns per image.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes per image: `rows × cols` (saturated in a file of no images,
    /// whose header may announce any size).
    pub fn pixels_per_image(&self) -> usize {
        self.rows.saturating_mul(self.cols)
    }

    /// Every image's bytes, one image after another.
    pub fn pixels(&self) -> &[u8] {
        self.buffer.as_ref().get(IMAGES_HEADER_LEN..).unwrap_or(&[])
    }

    /// Image `i`'s bytes, or `None` past the last image.
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        if i >= self.len {
            return None;
        }
        // In bounds: i < len and len · rows · cols bytes were checked.
        let p = self.pixels_per_image();
        self.pixels().get(i * p..(i + 1) * p)
    }

    /// The images in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.len).map_while(|i| self.image(i))
    }

    /// The underlying bytes.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

/// A validated view of an IDX labels file: `len()` unsigned bytes.
///
/// ```
/// use engine::idx::{IdxError, Labels};
/// let bytes = [0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 12];
/// let labels = Labels::new_checked(&bytes[..])?;
/// assert_eq!(labels.labels(), &[7, 0, 12]);
/// assert_eq!(labels.label(2), Some(12));
/// assert_eq!(labels.check_max(9), Err(IdxError::Label { index: 2, value: 12, max: 9 }));
/// # Ok::<(), IdxError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Labels<T> {
    /// Checks the magic ([`LABELS_MAGIC`]), the header and that the bytes
    /// hold exactly the labels it announces.
    pub fn new_checked(buffer: T) -> Result<Self, IdxError> {
        check_frame(buffer.as_ref(), LABELS_MAGIC, LABELS_HEADER_LEN, |b| {
            Some(be_usize(b, 4))
        })?;
        Ok(Labels { buffer })
    }

    /// Refuses a label above `max` (MNIST's digits: `check_max(9)`), naming
    /// the first.
    pub fn check_max(&self, max: u8) -> Result<(), IdxError> {
        match self.labels().iter().position(|&l| l > max) {
            Some(index) => Err(IdxError::Label {
                index,
                value: self.labels()[index],
                max,
            }),
            None => Ok(()),
        }
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.labels().len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.labels().is_empty()
    }

    /// Every label, in order.
    pub fn labels(&self) -> &[u8] {
        self.buffer.as_ref().get(LABELS_HEADER_LEN..).unwrap_or(&[])
    }

    /// Label `i`, or `None` past the last.
    pub fn label(&self, i: usize) -> Option<u8> {
        self.labels().get(i).copied()
    }

    /// The underlying bytes.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_2X3: [u8; 28] = [
        0, 0, 8, 3, // magic
        0, 0, 0, 2, // n
        0, 0, 0, 2, // rows
        0, 0, 0, 3, // cols
        1, 2, 3, 4, 5, 6, // image 0
        7, 8, 9, 10, 11, 12, // image 1
    ];
    const THREE_LABELS: [u8; 11] = [0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 9];

    #[test]
    fn literal_images_and_labels() {
        let images = Images::new_checked(&TWO_2X3[..]).unwrap();
        assert_eq!((images.len(), images.rows(), images.cols()), (2, 2, 3));
        assert_eq!(images.pixels_per_image(), 6);
        assert_eq!(images.image(0), Some(&[1, 2, 3, 4, 5, 6][..]));
        assert_eq!(images.image(1), Some(&[7, 8, 9, 10, 11, 12][..]));
        assert_eq!(images.image(2), None);
        assert_eq!(images.pixels(), &TWO_2X3[16..]);
        assert!(images.iter().eq([&TWO_2X3[16..22], &TWO_2X3[22..]]));
        assert_eq!(images.check_shape(2, 3), Ok(()));
        let labels = Labels::new_checked(THREE_LABELS).unwrap();
        assert_eq!(labels.labels(), &[7, 0, 9]);
        assert_eq!(
            (labels.len(), labels.label(2), labels.label(3)),
            (3, Some(9), None)
        );
        assert_eq!(labels.check_max(9), Ok(()));
        assert_eq!(
            images.check_labels(&labels),
            Err(IdxError::CountMismatch {
                images: 2,
                labels: 3
            })
        );
        assert_eq!(labels.into_inner(), THREE_LABELS);
        let empty = Labels::new_checked([0, 0, 8, 1, 0, 0, 0, 0]).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn frames_give_typed_errors() {
        let images = |b: &[u8]| Images::new_checked(b).map(|_| ());
        assert_eq!(
            images(&TWO_2X3[..27]),
            Err(IdxError::Truncated {
                needed: 28,
                available: 27
            })
        );
        assert_eq!(
            images(&TWO_2X3[..10]),
            Err(IdxError::Truncated {
                needed: 16,
                available: 10
            })
        );
        // The magic is checked as soon as it is there, before the length.
        assert_eq!(
            images(&THREE_LABELS[..5]),
            Err(IdxError::BadMagic {
                found: 0x801,
                expected: 0x803
            })
        );
        assert_eq!(
            images(&[0, 0, 8]),
            Err(IdxError::Truncated {
                needed: 16,
                available: 3
            })
        );
        let mut long = [0u8; 29];
        long[..28].copy_from_slice(&TWO_2X3);
        assert_eq!(images(&long), Err(IdxError::TrailingBytes { extra: 1 }));
        assert_eq!(
            Labels::new_checked(&TWO_2X3[..]).unwrap_err(),
            IdxError::BadMagic {
                found: 0x803,
                expected: 0x801
            }
        );
        assert_eq!(
            Labels::new_checked(&THREE_LABELS[..10]).unwrap_err(),
            IdxError::Truncated {
                needed: 11,
                available: 10
            }
        );
        let mut bad = THREE_LABELS;
        bad[9] = 10;
        assert_eq!(
            Labels::new_checked(bad).unwrap().check_max(9),
            Err(IdxError::Label {
                index: 1,
                value: 10,
                max: 9
            })
        );
        let one = Images::new_checked(&TWO_2X3[..]).unwrap();
        assert_eq!(
            one.check_shape(28, 28),
            Err(IdxError::Shape {
                rows: 2,
                cols: 3,
                expected_rows: 28,
                expected_cols: 28
            })
        );
    }

    #[test]
    fn errors_display_as_one_line() {
        extern crate std;
        use std::string::ToString;
        let cases = [
            (
                IdxError::BadMagic {
                    found: 0x801,
                    expected: 0x803,
                },
                "wrong IDX magic 0x00000801 (unsigned bytes, 1 dimension), \
                 expected 0x00000803 (unsigned bytes, 3 dimensions)",
            ),
            (
                IdxError::BadMagic {
                    found: 0x1f8b_0800,
                    expected: 0x801,
                },
                "wrong IDX magic 0x1f8b0800 (not an IDX file), \
                 expected 0x00000801 (unsigned bytes, 1 dimension)",
            ),
            (
                IdxError::Truncated {
                    needed: 28,
                    available: 27,
                },
                "truncated IDX file: needs 28 bytes, the file has 27",
            ),
            (
                IdxError::Truncated {
                    needed: usize::MAX,
                    available: 28,
                },
                "truncated IDX file: its header announces more bytes than fit in memory, \
                 the file has 28",
            ),
            (
                IdxError::TrailingBytes { extra: 1 },
                "1 unexpected bytes after the data the IDX header announces",
            ),
            (
                IdxError::Label {
                    index: 1,
                    value: 10,
                    max: 9,
                },
                "label 10 at index 1 is not in 0..=9",
            ),
            (
                IdxError::CountMismatch {
                    images: 2,
                    labels: 3,
                },
                "2 images but 3 labels",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn huge_announced_sizes_are_truncation_not_overflow() {
        let mut b = TWO_2X3;
        b[4..16].copy_from_slice(&[0xff; 12]);
        assert_eq!(
            Images::new_checked(&b[..]).unwrap_err(),
            IdxError::Truncated {
                needed: usize::MAX,
                available: 28
            }
        );
        // No images of an absurd size: valid, and nothing to read.
        let mut none = [0u8; 16];
        none[..4].copy_from_slice(&TWO_2X3[..4]);
        none[8..16].copy_from_slice(&[0xff; 8]);
        let images = Images::new_checked(none).unwrap();
        assert_eq!((images.len(), images.image(0)), (0, None));
        assert_eq!(images.iter().count(), 0);
        let mut labels = THREE_LABELS;
        labels[4..8].copy_from_slice(&[0xff; 4]);
        assert_eq!(
            Labels::new_checked(labels).unwrap_err(),
            IdxError::Truncated {
                needed: 0xffff_ffff + 8,
                available: 11
            }
        );
    }

    #[test]
    fn images_of_no_pixels_are_empty_slices() {
        let b = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 5];
        let images = Images::new_checked(b).unwrap();
        assert_eq!(images.image(1), Some(&[][..]));
        assert_eq!(images.iter().count(), 2);
    }
}

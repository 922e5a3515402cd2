use core::fmt;

/// Everything that can go wrong reading a model file or running it.
///
/// Every variant names the problem in one line when displayed, so a command
/// line tool can print it as is.
///
/// ```
/// let err = engine::Model::from_bytes(b"not a model").unwrap_err();
/// assert_eq!(err, engine::Error::BadMagic);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The buffer ends before the structure it should hold.
    Truncated {
        /// Bytes the structure needs.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The first eight bytes are not [`MAGIC`](crate::MAGIC): not a model file.
    BadMagic,
    /// The file was written by a format version this engine does not read.
    UnsupportedVersion {
        /// Version found in the file.
        found: u16,
        /// The newest version this engine reads (it reads every version
        /// from [`FORMAT_VERSION`](crate::FORMAT_VERSION) up to this one).
        supported: u16,
    },
    /// Reserved header bits are set (a future or corrupted file).
    ReservedBits,
    /// The CRC-32 of the body does not match the header: the file is corrupted.
    ChecksumMismatch {
        /// Checksum stored in the header.
        stored: u32,
        /// Checksum computed over the body.
        computed: u32,
    },
    /// Bytes follow the body, or the body's encoding is shorter than declared.
    TrailingBytes {
        /// How many bytes are left over.
        extra: usize,
    },
    /// The body is not a valid postcard encoding of the model description.
    Malformed,
    /// The description is decodable but inconsistent (shapes do not chain,
    /// tensor sizes do not match their shapes, ...). The string names what.
    InvalidModel(&'static str),
    /// A quantity exceeds a fixed capacity of this engine build.
    Capacity {
        /// What overflowed.
        what: &'static str,
        /// Size the model asks for.
        needed: usize,
        /// Largest size supported.
        max: usize,
    },
    /// The caller's [`Workspace`](crate::Workspace) is smaller than the model's widest layer.
    WorkspaceTooSmall {
        /// `f32` slots per buffer the model needs.
        needed: usize,
        /// `f32` slots per buffer the workspace has.
        have: usize,
    },
    /// An input slice has the wrong length.
    InputLength {
        /// Length the model expects.
        expected: usize,
        /// Length given.
        found: usize,
    },
    /// An expert index outside `0..experts`.
    NoSuchExpert {
        /// The index asked for.
        expert: usize,
        /// Number of experts in the model.
        experts: usize,
    },
    /// A style index outside `0..styles` of its cluster.
    NoSuchStyle {
        /// The cluster asked for.
        cluster: usize,
        /// The style asked for.
        style: usize,
        /// Number of styles of that cluster.
        styles: usize,
    },
    /// The writer could not represent a value (a weight beyond f16's range, a
    /// non-finite weight, or an output buffer too small).
    Unrepresentable(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated { needed, available } => write!(
                f,
                "truncated model: needs {needed} bytes, only {available} present"
            ),
            Error::BadMagic => f.write_str("not a model file (bad magic bytes)"),
            Error::UnsupportedVersion { found, supported } if found < crate::FORMAT_VERSION => {
                write!(
                    f,
                    "model format version {found} is too old (this engine reads {}): \
                 convert it (`harness upgrade --model FILE --out NEW`) or export the run again \
                 (`trainer export --run RUN_DIR --out NEW`)",
                    Versions(supported)
                )
            }
            Error::UnsupportedVersion { found, supported } => write!(
                f,
                "unsupported model format version {found} (this engine reads {})",
                Versions(supported)
            ),
            Error::ReservedBits => {
                f.write_str("reserved header bits are set (corrupt or newer file)")
            }
            Error::ChecksumMismatch { stored, computed } => write!(
                f,
                "corrupt model: checksum {computed:08x} does not match stored {stored:08x}"
            ),
            Error::TrailingBytes { extra } => {
                write!(
                    f,
                    "malformed model: {extra} unexpected bytes after the body"
                )
            }
            Error::Malformed => f.write_str("malformed model: body does not decode"),
            Error::InvalidModel(what) => write!(f, "invalid model: {what}"),
            Error::Capacity { what, needed, max } => write!(
                f,
                "model exceeds engine capacity: {what} is {needed}, at most {max} supported"
            ),
            Error::WorkspaceTooSmall { needed, have } => write!(
                f,
                "workspace too small: model needs {needed} values per buffer, workspace has {have}"
            ),
            Error::InputLength { expected, found } => {
                write!(f, "input has {found} values, model expects {expected}")
            }
            Error::NoSuchExpert { expert, experts } => {
                write!(f, "no expert {expert}: model has {experts} experts")
            }
            Error::NoSuchStyle {
                cluster,
                style,
                styles,
            } => write!(
                f,
                "no style {style} in cluster {cluster}: it has {styles} styles"
            ),
            Error::Unrepresentable(what) => write!(f, "cannot write model: {what}"),
        }
    }
}

/// The versions an engine reads, newest `.0`: "version 2" or "versions 2 to 3".
struct Versions(u16);

impl fmt::Display for Versions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            newest if newest > crate::FORMAT_VERSION => {
                write!(f, "versions {} to {newest}", crate::FORMAT_VERSION)
            }
            newest => write!(f, "version {newest}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

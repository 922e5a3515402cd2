//! The one path that writes a model file: frame, description, zero padding
//! to the data section's 16-byte boundary, then the data.
//!
//! Everything that writes a file comes here: [`ModelRepr::emit`] with the
//! description bytes it parsed, [`emit`] (and through it the writer's
//! `ModelSpec::to_bytes` and `to_int8_bytes`) with a description to
//! serialize. What differs between them is only where the description comes
//! from, one [`Description`] arm each.
//!
//! [`ModelRepr::emit`]: super::ModelRepr::emit

use serde::Serialize;

use super::desc::{ClusterDesc, Extension, Header, LayerDesc};
use super::wire::{ModelFile, FORMAT_VERSION, HEADER_LEN, TWO_LEVEL_VERSION};
use super::DATA_ALIGN;
use crate::Error;

/// The description as the writer serializes it: the header, the gate's
/// layers, then each decoder's layers (postcard sequences).
#[derive(Serialize)]
pub(super) struct DescriptionRef<'r, 'h> {
    header: &'r Header<'h>,
    gate: &'r [LayerDesc],
    decoders: &'r [&'r [LayerDesc]],
}

/// The description of a two-level model (version 3): the header, the
/// gate's layers, each cluster's record, then the extension sections.
#[derive(Serialize)]
pub(super) struct TwoLevelRef<'r, 'h> {
    header: &'r Header<'h>,
    gate: &'r [LayerDesc],
    clusters: &'r [ClusterDesc<'r>],
    extensions: &'r [Extension<'r>],
}

/// Where the description of a file being written comes from.
pub(super) enum Description<'r, 'h> {
    /// Bytes already encoded (a parsed file's, copied as they are) and the
    /// version they were read as.
    Encoded(&'r [u8], u16),
    /// Parts of a flat model (version 2) to encode with postcard.
    Parts(DescriptionRef<'r, 'h>),
    /// Parts of a two-level model (version 3) to encode with postcard.
    TwoLevel(TwoLevelRef<'r, 'h>),
}

/// Postcard length of `value`.
fn encoded_len<T: Serialize>(value: &T) -> Result<usize, Error> {
    postcard::experimental::serialized_size(value).map_err(|_| Error::Malformed)
}

/// Postcard-encodes `value` at the start of `out`; returns its length.
fn encode<T: Serialize>(value: &T, out: &mut [u8]) -> Result<usize, Error> {
    Ok(postcard::to_slice(value, out).map_err(|_| SMALL)?.len())
}

impl<'r, 'h> Description<'r, 'h> {
    /// The description of a flat mixture: `header`, the gate's layers and
    /// each decoder's.
    pub(super) fn parts(
        header: &'r Header<'h>,
        gate: &'r [LayerDesc],
        decoders: &'r [&'r [LayerDesc]],
    ) -> Self {
        Description::Parts(DescriptionRef {
            header,
            gate,
            decoders,
        })
    }

    /// The description of a two-level model: `header`, the gate's layers,
    /// each cluster's record and the extension sections.
    pub(super) fn two_level(
        header: &'r Header<'h>,
        gate: &'r [LayerDesc],
        clusters: &'r [ClusterDesc<'r>],
        extensions: &'r [Extension<'r>],
    ) -> Self {
        Description::TwoLevel(TwoLevelRef {
            header,
            gate,
            clusters,
            extensions,
        })
    }

    /// The format version the frame gets.
    fn version(&self) -> u16 {
        match self {
            Description::Encoded(_, version) => *version,
            Description::Parts(_) => FORMAT_VERSION,
            Description::TwoLevel(_) => TWO_LEVEL_VERSION,
        }
    }

    /// Encoded length in bytes.
    fn len(&self) -> Result<usize, Error> {
        match self {
            Description::Encoded(bytes, _) => Ok(bytes.len()),
            Description::Parts(parts) => encoded_len(parts),
            Description::TwoLevel(parts) => encoded_len(parts),
        }
    }

    /// Writes the description at the start of `out`; returns its length.
    fn write(&self, out: &mut [u8]) -> Result<usize, Error> {
        match self {
            Description::Encoded(bytes, _) => {
                out.get_mut(..bytes.len())
                    .ok_or(SMALL)?
                    .copy_from_slice(bytes);
                Ok(bytes.len())
            }
            Description::Parts(parts) => encode(parts, out),
            Description::TwoLevel(parts) => encode(parts, out),
        }
    }
}

/// The error for an output buffer shorter than the file.
const SMALL: Error = Error::Unrepresentable("output buffer too small");

const fn align_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// File offset of the data section after a description of `len` bytes.
pub(super) const fn data_start(len: usize) -> usize {
    align_up(HEADER_LEN + len, DATA_ALIGN)
}

/// Length of the file of a description of `description_len` bytes and a
/// data section of `data_len`.
pub(super) const fn file_len(description_len: usize, data_len: usize) -> usize {
    data_start(description_len) + data_len
}

/// Exact size of the file [`write`] writes.
fn written_len(description: &Description<'_, '_>, data_len: usize) -> Result<usize, Error> {
    Ok(file_len(description.len()?, data_len))
}

/// Writes the complete file into `out` and returns its length. On an error
/// `out` may be partly written.
pub(super) fn write(
    description: &Description<'_, '_>,
    data: &[u8],
    out: &mut [u8],
) -> Result<usize, Error> {
    let len = description.write(out.get_mut(HEADER_LEN..).ok_or(SMALL)?)?;
    let start = data_start(len);
    let end = start + data.len();
    let tail = out.get_mut(HEADER_LEN + len..end).ok_or(SMALL)?;
    let (padding, tensors) = tail.split_at_mut(start - HEADER_LEN - len);
    padding.fill(0);
    tensors.copy_from_slice(data);
    let body_len =
        u32::try_from(end - HEADER_LEN).map_err(|_| Error::Unrepresentable("body over 4 GiB"))?;
    ModelFile::new_unchecked(&mut out[..end]).fill_frame_version(description.version(), body_len);
    Ok(end)
}

/// Writes a complete file from its parts into `out` and returns its
/// length: frame, postcard description, zero padding to the next 16-byte
/// boundary, then `data` (the tensors the descriptors refer to). The result
/// is not validated; [`ModelRepr::parse`](super::ModelRepr::parse) it.
///
/// ```
/// let bytes = engine::testing::tiny_model_bytes();
/// let repr = engine::ModelRepr::parse(&bytes)?;
/// let gate: Vec<_> = engine::format::descriptors(repr.gate()).collect();
/// let decoders: Vec<Vec<_>> = repr.decoders().map(|d| engine::format::descriptors(d).collect()).collect();
/// let decoders: Vec<&[_]> = decoders.iter().map(Vec::as_slice).collect();
/// let mut out = vec![0u8; bytes.len()];
/// let n = engine::format::emit(repr.header(), &gate, &decoders, repr.data(), &mut out)?;
/// assert_eq!(&out[..n], &bytes[..]);
/// # Ok::<(), engine::Error>(())
/// ```
pub fn emit(
    header: &Header<'_>,
    gate: &[LayerDesc],
    decoders: &[&[LayerDesc]],
    data: &[u8],
    out: &mut [u8],
) -> Result<usize, Error> {
    write(&Description::parts(header, gate, decoders), data, out)
}

/// Exact size of the file [`emit`] writes for these parts.
pub fn emitted_len(
    header: &Header<'_>,
    gate: &[LayerDesc],
    decoders: &[&[LayerDesc]],
    data_len: usize,
) -> Result<usize, Error> {
    written_len(&Description::parts(header, gate, decoders), data_len)
}

/// Writes a complete two-level (version 3) file from its parts into `out`
/// and returns its length: as [`emit`], with each cluster's record
/// ([`ClusterDesc`]) in place of the decoders and the extension sections
/// after them (none, today: `&[]`). Not validated;
/// [`ModelRepr::parse`](super::ModelRepr::parse) it.
pub fn emit_two_level(
    header: &Header<'_>,
    gate: &[LayerDesc],
    clusters: &[ClusterDesc<'_>],
    extensions: &[Extension<'_>],
    data: &[u8],
    out: &mut [u8],
) -> Result<usize, Error> {
    write(
        &Description::two_level(header, gate, clusters, extensions),
        data,
        out,
    )
}

/// Exact size of the file [`emit_two_level`] writes for these parts.
pub fn emitted_len_two_level(
    header: &Header<'_>,
    gate: &[LayerDesc],
    clusters: &[ClusterDesc<'_>],
    extensions: &[Extension<'_>],
    data_len: usize,
) -> Result<usize, Error> {
    written_len(
        &Description::two_level(header, gate, clusters, extensions),
        data_len,
    )
}

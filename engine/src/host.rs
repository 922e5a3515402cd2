//! Running models on a host (behind the `std` feature): one workspace
//! capacity and the batch helpers that the trainer, the harness and the
//! firmware's host tool share, so that they all accept the same models and
//! compute the same bits.
//!
//! ```
//! # let bytes = engine::testing::tiny_model_bytes();
//! let model = engine::host::parse(&bytes)?;
//! let images = vec![0u8; 2 * model.pixels()];
//! assert_eq!(engine::host::predict(&model, &images)?.len(), 2);
//! let tiles = engine::host::sample_tiles(&model, 2, 7)?;
//! assert_eq!(tiles.len(), 2 * model.experts());
//! # Ok::<(), engine::host::HostError>(())
//! ```

use core::fmt;
use std::boxed::Box;
use std::vec::Vec;

use crate::{to_pixels, Classification, Error, Model, Workspace};

/// Values per buffer of the host's workspace: the widest model the
/// host-side tools run. [`ModelShape::check`](crate::writer::ModelShape::check)
/// with this length says before training whether a model will fit.
pub const WORKSPACE_LEN: usize = 4096;

/// The host's workspace (32 KiB), boxed to keep it off the stack.
pub type HostWorkspace = Box<Workspace<WORKSPACE_LEN>>;

/// A fresh, zeroed host workspace.
///
/// ```
/// let ws = engine::host::workspace();
/// assert_eq!(std::mem::size_of_val(&*ws), 2 * engine::host::WORKSPACE_LEN * 4);
/// ```
pub fn workspace() -> HostWorkspace {
    Box::new(Workspace::new())
}

/// Why a host-side run failed. Displays as one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostError {
    /// The engine refused the file or a call.
    Engine(Error),
    /// The model needs a longer workspace than [`WORKSPACE_LEN`].
    TooWide {
        /// Values per buffer the model needs ([`Model::workspace_len`]).
        needed: usize,
    },
    /// A pixel buffer is not a whole number of images.
    ImageBytes {
        /// Bytes given.
        bytes: usize,
        /// Pixels per image of the model.
        pixels: usize,
    },
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            HostError::Engine(e) => e.fmt(f),
            HostError::TooWide { needed } => write!(
                f,
                "model needs a workspace of {needed} values; the engine's host workspace holds {WORKSPACE_LEN}"
            ),
            HostError::ImageBytes { bytes, pixels } => {
                write!(f, "{bytes} bytes are not whole images of {pixels} pixels")
            }
        }
    }
}

/// Transparent: [`HostError::Engine`] displays as the engine's error and has
/// no source of its own, so an error chain does not print it twice.
impl std::error::Error for HostError {}

impl From<Error> for HostError {
    fn from(e: Error) -> Self {
        HostError::Engine(e)
    }
}

/// Parses and validates a model file, and refuses one that needs a longer
/// workspace than [`WORKSPACE_LEN`], so that every helper of this module
/// (and every call with a [`HostWorkspace`]) runs it.
///
/// ```
/// let bytes = engine::testing::tiny_model_bytes();
/// assert_eq!(engine::host::parse(&bytes)?.experts(), 3);
/// let err = engine::host::parse(&bytes[..10]).unwrap_err();
/// assert!(matches!(err, engine::host::HostError::Engine(engine::Error::Truncated { .. })));
/// # Ok::<(), engine::host::HostError>(())
/// ```
pub fn parse(bytes: &[u8]) -> Result<Model<'_>, HostError> {
    let model = Model::from_bytes(bytes)?;
    if model.workspace_len() > WORKSPACE_LEN {
        return Err(HostError::TooWide {
            needed: model.workspace_len(),
        });
    }
    Ok(model)
}

/// The gate's verdict on every image of `pixels` (images of
/// [`Model::pixels`] bytes one after another), in order.
///
/// ```
/// # let bytes = engine::testing::tiny_model_bytes();
/// let model = engine::host::parse(&bytes)?;
/// let images: Vec<u8> = (0..3 * 784).map(|i| (i % 251) as u8).collect();
/// let all = engine::host::classify_all(&model, &images)?;
/// assert_eq!(all[2], model.classify(&mut engine::host::workspace(), &images[2 * 784..])?);
/// # Ok::<(), engine::host::HostError>(())
/// ```
pub fn classify_all(model: &Model<'_>, pixels: &[u8]) -> Result<Vec<Classification>, HostError> {
    classify_each(model, pixels, |c| c)
}

/// The cluster of every image of `pixels`, as [`classify_all`] finds it.
///
/// ```
/// # let bytes = engine::testing::tiny_model_bytes();
/// let model = engine::host::parse(&bytes)?;
/// let clusters = engine::host::predict(&model, &[0u8; 2 * 784])?;
/// assert_eq!(clusters.len(), 2);
/// assert!(engine::host::predict(&model, &[0u8; 785]).is_err());
/// # Ok::<(), engine::host::HostError>(())
/// ```
pub fn predict(model: &Model<'_>, pixels: &[u8]) -> Result<Vec<usize>, HostError> {
    classify_each(model, pixels, |c| c.cluster)
}

/// The `(cluster, style)` of every image of `pixels` (style 0 for a flat
/// model or a cluster of one style).
pub fn routes(model: &Model<'_>, pixels: &[u8]) -> Result<Vec<(usize, usize)>, HostError> {
    classify_each(model, pixels, |c| (c.cluster, c.style))
}

/// `keep` of every image's classification.
fn classify_each<T>(
    model: &Model<'_>,
    pixels: &[u8],
    keep: impl Fn(Classification) -> T,
) -> Result<Vec<T>, HostError> {
    let p = model.pixels();
    if !pixels.len().is_multiple_of(p) {
        return Err(HostError::ImageBytes {
            bytes: pixels.len(),
            pixels: p,
        });
    }
    let mut ws = workspace();
    pixels
        .chunks_exact(p)
        .map(|image| Ok(keep(model.classify(&mut ws, image)?)))
        .collect()
}

/// `rows` samples of every expert as intensities: tile `row * experts +
/// expert` is [`Model::generate`] of that expert with seed `seed + row *
/// experts + expert` (wrapping), so a grid of `experts` columns has one
/// expert per column.
///
/// ```
/// # let bytes = engine::testing::tiny_model_bytes();
/// let model = engine::host::parse(&bytes)?;
/// let tiles = engine::host::sample_tiles(&model, 2, 10)?;
/// let mut ws = engine::host::workspace();
/// assert_eq!(tiles[3 + 1], model.generate(&mut ws, 1, 10 + 3 + 1)?);
/// # Ok::<(), engine::host::HostError>(())
/// ```
pub fn sample_tiles(model: &Model<'_>, rows: usize, seed: u64) -> Result<Vec<Vec<f32>>, HostError> {
    let k = model.experts();
    let mut ws = workspace();
    let mut tiles = Vec::with_capacity(rows.saturating_mul(k));
    for r in 0..rows {
        for e in 0..k {
            let s = seed.wrapping_add(r.wrapping_mul(k).wrapping_add(e) as u64);
            tiles.push(model.generate(&mut ws, e, s)?.to_vec());
        }
    }
    Ok(tiles)
}

/// Samples of every (cluster, style) for a grid of one column per cluster
/// with its styles beneath: `rows` rows per style, for as many styles as
/// the cluster with the most has. Tile `(s · rows + r) · K + c` is
/// [`Model::generate_style`] of cluster `c`, style `s`, with seed `seed +`
/// that index (wrapping); a cluster with fewer styles gets empty tiles
/// (all 0) there. For a flat model this is [`sample_tiles`].
///
/// ```
/// # let bytes = engine::testing::tiny_model_bytes();
/// let model = engine::host::parse(&bytes)?;
/// let tiles = engine::host::style_tiles(&model, 2, 10)?;
/// assert_eq!(tiles, engine::host::sample_tiles(&model, 2, 10)?);
/// # Ok::<(), engine::host::HostError>(())
/// ```
pub fn style_tiles(model: &Model<'_>, rows: usize, seed: u64) -> Result<Vec<Vec<f32>>, HostError> {
    let k = model.experts();
    let most = (0..k).map(|c| model.styles(c)).max().unwrap_or(1);
    let mut ws = workspace();
    let mut tiles = Vec::with_capacity(rows.saturating_mul(k).saturating_mul(most));
    for s in 0..most {
        for r in 0..rows {
            for c in 0..k {
                let i = (s * rows + r).wrapping_mul(k).wrapping_add(c);
                if s < model.styles(c) {
                    let seed = seed.wrapping_add(i as u64);
                    tiles.push(model.generate_style(&mut ws, c, s, seed)?.to_vec());
                } else {
                    tiles.push(std::vec![0.0; model.pixels()]);
                }
            }
        }
    }
    Ok(tiles)
}

/// `count` samples of one expert as 8-bit images: sample `i` is
/// [`to_pixels`] of [`Model::generate`] with seed `seed + i` (wrapping).
///
/// ```
/// # let bytes = engine::testing::tiny_model_bytes();
/// let model = engine::host::parse(&bytes)?;
/// let images = engine::host::generate_images(&model, 2, 3, 5)?;
/// let mut px = vec![0u8; 784];
/// engine::to_pixels(model.generate(&mut engine::host::workspace(), 2, 6)?, &mut px);
/// assert_eq!(images[1], px);
/// assert!(engine::host::generate_images(&model, 3, 1, 0).is_err());
/// # Ok::<(), engine::host::HostError>(())
/// ```
pub fn generate_images(
    model: &Model<'_>,
    expert: usize,
    count: usize,
    seed: u64,
) -> Result<Vec<Vec<u8>>, HostError> {
    let mut ws = workspace();
    (0..count)
        .map(|i| {
            let values = model.generate(&mut ws, expert, seed.wrapping_add(i as u64))?;
            let mut px = std::vec![0u8; values.len()];
            to_pixels(values, &mut px);
            Ok(px)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn errors_display_as_one_line() {
        let cases = [
            (
                HostError::TooWide { needed: 5000 },
                "model needs a workspace of 5000 values; the engine's host workspace holds 4096",
            ),
            (
                HostError::ImageBytes {
                    bytes: 785,
                    pixels: 784,
                },
                "785 bytes are not whole images of 784 pixels",
            ),
            (
                HostError::Engine(Error::BadMagic),
                "not a model file (bad magic bytes)",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn batches_are_the_single_calls() {
        let bytes = crate::testing::tiny_model_bytes();
        let model = parse(&bytes).unwrap();
        let pixels: Vec<u8> = (0..5 * 784).map(|i| (i * 37 % 256) as u8).collect();
        let all = classify_all(&model, &pixels).unwrap();
        let clusters = predict(&model, &pixels).unwrap();
        let mut ws = workspace();
        for (i, image) in pixels.chunks(784).enumerate() {
            let c = model.classify(&mut ws, image).unwrap();
            assert_eq!((&all[i], clusters[i]), (&c, c.cluster));
        }
        assert_eq!(
            predict(&model, &pixels[1..]),
            Err(HostError::ImageBytes {
                bytes: 5 * 784 - 1,
                pixels: 784
            })
        );
        assert_eq!(predict(&model, &[]), Ok(Vec::new()));
        let tiles = sample_tiles(&model, 3, u64::MAX - 4).unwrap();
        assert_eq!(tiles.len(), 9);
        for (i, tile) in tiles.iter().enumerate() {
            let seed = (u64::MAX - 4).wrapping_add(i as u64);
            assert_eq!(tile, model.generate(&mut ws, i % 3, seed).unwrap());
        }
    }
}

//! The forward passes: how one network (the gate or a decoder) runs on the
//! workspace, for each element type.
//!
//! [`Model`](crate::Model) checks its arguments, picks the network and says
//! what the network reads ([`Input`]) and where its outputs go
//! ([`Output`]); [`run`] is the one place that chooses the arithmetic by
//! element type: `f32` on f16 weights ([`f16`]) or integers on int8
//! weights ([`int8`]). [`workspace_need`] is how much of a
//! [`Workspace`] those passes use.

mod f16;
mod int8;
mod novelty;

pub(crate) use novelty::distance as novelty_distance;

use crate::format::{ElementType, Layer, LayerWeights, Layout, Network};
use crate::{Error, Workspace};

/// What a network reads. The gate reads an image, a decoder a latent vector.
#[derive(Clone, Copy)]
pub(crate) enum Input<'i> {
    /// An image as 8-bit pixels (0 = background, 255 = ink).
    Pixels(&'i [u8]),
    /// An image as intensities, any `f32` (NaN as 0, clamped to `[0, 1]`).
    Intensities(&'i [f32]),
    /// A latent vector (non-finite values as 0).
    Latent(&'i [f32]),
    /// A latent vector of `len` values drawn from N(0, I) by a
    /// [`SplitMix64`](crate::rng::SplitMix64) seeded with `seed`.
    Seed {
        /// The generator's seed.
        seed: u64,
        /// The latent size.
        len: usize,
    },
}

/// Where a network's outputs go.
pub(crate) enum Output<'o> {
    /// `f32` values in a slice of their own (the gate's logits).
    Logits(&'o mut [f32]),
    /// `f32` values in the workspace, which [`run`] returns.
    Values,
    /// 8-bit pixels, as [`to_pixels`] makes them.
    Pixels(&'o mut [u8]),
}

/// Runs `net`, whose layers are all of `element` type, on `input` into
/// `output`. Returns the outputs for [`Output::Values`] (they lie in `ws`),
/// nothing otherwise.
///
/// The network was validated and `ws` checked against
/// [`workspace_need`] (and, for [`Output::Values`], against the network's
/// outputs) by the caller, and input lengths against the network's input
/// width; the only error left is [`Error::Capacity`] for an
/// [`Input::Intensities`] image of more than [`MAX_F32_IMAGE`] pixels on an
/// integer network.
pub(crate) fn run<'w, const N: usize>(
    element: ElementType,
    net: Network<'_>,
    input: Input<'_>,
    ws: &'w mut Workspace<N>,
    output: Output<'_>,
) -> Result<&'w [f32], Error> {
    match element {
        ElementType::F16 => Ok(f16::run(net, input, ws, output)),
        ElementType::Int8 => int8::run(net, input, ws, output),
    }
}

/// One layer as the workspace sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerWidths {
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// Whether an integer layer sums by columns (into `i32` slots).
    pub column_major: bool,
}

impl LayerWidths {
    /// A parsed layer's widths.
    pub(crate) fn of(layer: &Layer<'_>) -> Self {
        LayerWidths {
            inputs: layer.inputs,
            outputs: layer.outputs,
            column_major: match layer.weights {
                LayerWeights::Int8(q) => q.layout == Layout::ColumnMajor,
                LayerWeights::F16 { .. } => false,
            },
        }
    }
}

/// What [`Model::workspace_len`](crate::Model::workspace_len) documents,
/// from the widths alone: the networks (gate first, then the decoders) of
/// a model of `element` weights whose decoders read `latent` values. The
/// parser and the writer's shape check (`writer::ModelShape`) both ask this
/// one function.
pub(crate) fn workspace_need<N, L>(element: ElementType, latent: usize, networks: N) -> usize
where
    N: IntoIterator<Item = L>,
    L: IntoIterator<Item = LayerWidths>,
{
    match element {
        ElementType::F16 => f16::workspace_need(networks),
        ElementType::Int8 => int8::workspace_need(latent, networks),
    }
}

/// Largest image [`Model::classify_f32`](crate::Model::classify_f32)
/// converts to pixels (on the stack) for an integer model: larger images
/// get [`Error::Capacity`] there.
///
/// ```
/// assert!(engine::MAX_F32_IMAGE >= 28 * 28);
/// ```
pub const MAX_F32_IMAGE: usize = 1024;

/// [`to_pixels`] of one value.
#[inline(always)]
fn pixel(v: f32) -> u8 {
    let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
    (v * 255.0 + 0.5) as u8
}

/// Converts intensities in `[0, 1]` to 8-bit pixels (rounded; NaN becomes 0).
///
/// ```
/// let mut px = [0u8; 3];
/// engine::to_pixels(&[0.0, 0.5, 2.0], &mut px);
/// assert_eq!(px, [0, 128, 255]);
/// ```
pub fn to_pixels(values: &[f32], out: &mut [u8]) {
    for (o, &v) in out.iter_mut().zip(values) {
        *o = pixel(v);
    }
}

//! The `model.bin` file format, versions 2 (flat mixtures) and 3
//! (two-level mixtures, clusters of styles): a fixed 20-byte frame
//! ([`ModelFile`]) around a postcard-encoded description (header and layer
//! descriptors) followed by a 16-byte-aligned data section holding every
//! tensor. `FORMAT.md` in this crate is the normative description; this
//! module is its implementation.
//!
//! Parsing follows smoltcp's `wire` style: [`ModelFile::new_checked`]
//! validates the frame once, [`ModelRepr::parse`] decodes and validates the
//! description against the data section, and from then on every accessor is
//! infallible. [`ModelRepr::emit`] is the exact inverse; [`emit`] builds a
//! new file from its parts. Both write through one path (frame,
//! description, padding, data), so there is one writer of the layout.
//!
//! A parsed model is a *view*: it keeps where each network's descriptors
//! lie and decodes a network's (at most [`MAX_LAYERS`]) layers when it runs,
//! so it costs a few hundred bytes of RAM whatever the model's size.

mod desc;
mod emit;
mod novelty;
mod repr;
mod wire;

pub use desc::{
    Activation, ClusterDesc, ElementType, Extension, Header, ImageShape, Int8Weights, LayerDesc,
    Layout, Likelihood, Method, Requant, TensorRef, Weights,
};
pub use emit::{emit, emit_two_level, emitted_len, emitted_len_two_level};
pub use novelty::{Gaussians, GaussiansDesc, NoveltyDesc, NoveltySection, NOVELTY_TAG};
pub use repr::{
    descriptors, Int8Layer, Layer, LayerWeights, Layers, ModelRepr, Network, RequantLayer,
};
pub use wire::{ModelFile, FORMAT_VERSION, HEADER_LEN, MAGIC, TWO_LEVEL_VERSION};

/// Most experts a model may have (the kVAE experiments use 15).
pub const MAX_EXPERTS: usize = 16;
/// Most styles in one cluster of a two-level model (format version 3).
pub const MAX_STYLES: usize = 16;
/// Most extension sections in a version-3 description.
pub const MAX_EXTENSIONS: usize = 16;
/// Most dense layers in the gate or in one decoder.
pub const MAX_LAYERS: usize = 4;
/// The data section starts at a file offset that is a multiple of this, and
/// the writer starts every tensor at a multiple of it too, so that a file
/// placed at a 16-byte-aligned address has every tensor aligned for word
/// and vector loads.
pub const DATA_ALIGN: usize = 16;
/// Widest input of an integer layer: with codes of magnitude at most 255,
/// weights of at most 128 and biases of at most [`MAX_INT8_BIAS`], an
/// accumulator stays below `65535·128·255 + 2^23 = 2,147,451,008 < 2^31`.
pub const MAX_INT8_INPUTS: usize = 65_535;
/// Largest magnitude of an integer layer's bias, in accumulator units.
pub const MAX_INT8_BIAS: u32 = 1 << 23;
/// Entries in a sigmoid or tanh lookup table: requantized values
/// `-256..=255`, entry `v + 256`.
pub const TABLE_LEN: usize = 512;

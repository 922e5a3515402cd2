//! The `model.bin` file format: a fixed 20-byte frame ([`ModelFile`]) around
//! a postcard-encoded description ([`ModelRepr`]) whose tensors are borrowed
//! byte slices of little-endian f16. `FORMAT.md` in this crate is the
//! normative description; this module is its implementation.
//!
//! Parsing follows smoltcp's `wire` style: [`ModelFile::new_checked`] validates
//! the frame once, [`ModelRepr::parse`] decodes and validates the body, and
//! from then on every accessor is infallible. [`ModelRepr::emit`] is the exact
//! inverse.

mod repr;
mod wire;

pub use repr::{Activation, Header, ImageShape, Layer, Likelihood, Method, Mlp, ModelRepr};
pub use wire::{ModelFile, FORMAT_VERSION, HEADER_LEN, MAGIC};

/// Most experts a model may have (the kVAE experiments use 15).
pub const MAX_EXPERTS: usize = 16;
/// Most dense layers in the gate or in one decoder.
pub const MAX_LAYERS: usize = 4;

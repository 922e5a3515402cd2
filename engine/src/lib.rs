//! Allocation-free inference for mixture-of-VAE digit models.
//!
//! A model file (`model.bin`, see `FORMAT.md`) holds a *gate* network that
//! softly assigns a 28×28 image to one of K experts, and one VAE *decoder* per
//! expert that turns a latent vector into an image of that expert's cluster.
//! This crate reads such a file **in place** (weights stay in flash as
//! little-endian f16, or as int8 computed in integers), classifies images
//! and generates digits, using only
//! fixed-size buffers: no allocator, no `std`, no `unsafe` (outside one
//! run-time-selected SIMD module on x86_64 hosts, see [`kernels`]).
//!
//! ```
//! use engine::{Model, Workspace};
//! # let bytes = engine::testing::tiny_model_bytes();
//! let model = Model::from_bytes(&bytes)?;
//! let mut ws = Workspace::<784>::new();
//! let digit = [0u8; 784];
//! let c = model.classify(&mut ws, &digit)?;
//! assert!(c.cluster < model.experts());
//! let image = model.generate(&mut ws, c.cluster, 42)?;
//! assert_eq!(image.len(), 784);
//! # Ok::<(), engine::Error>(())
//! ```
//!
//! A two-level model (format version 3) gives each cluster styles of its
//! own: [`Classification`] then also names the style, and
//! [`Model::generate_style`] draws from one.
//!
//! Results are bit-identical on every target: the kernels use one fixed
//! accumulation order, never fuse multiply-adds, and take transcendental
//! functions from `libm`.
#![no_std]
// No `unsafe` anywhere, except in the x86_64 AVX2/F16C kernels that hosts
// with the `std` feature select at run time (`kernels/x86_64.rs` says why
// each use is sound). Every other build forbids it outright.
#![cfg_attr(not(all(feature = "std", target_arch = "x86_64")), forbid(unsafe_code))]
#![cfg_attr(all(feature = "std", target_arch = "x86_64"), deny(unsafe_code))]
#![deny(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

mod crc;
mod error;
pub mod format;
mod forward;
pub mod frame;
#[cfg(feature = "std")]
pub mod host;
pub mod idx;
pub mod kernels;
mod model;
pub mod rng;
#[doc(hidden)]
pub mod testing;
mod workspace;
#[cfg(feature = "std")]
pub mod writer;

pub use crc::crc32;
pub use error::Error;
pub use format::{
    Activation, ClusterDesc, ElementType, Extension, Header, ImageShape, Layer, LayerDesc,
    LayerWeights, Layout, Likelihood, Method, ModelFile, ModelRepr, Network, TensorRef, Weights,
    FORMAT_VERSION, MAGIC, MAX_EXPERTS, MAX_LAYERS, MAX_STYLES, TWO_LEVEL_VERSION,
};
pub use forward::{to_pixels, MAX_F32_IMAGE};
pub use model::{Classification, Model, Novelty};
pub use workspace::Workspace;

//! Training mixtures of generative experts on MNIST, without labels.
//!
//! A method is a folder under [`methods`] plugged into the one training
//! loop ([`train`]): it supplies its networks, its step, its phases and its
//! export ([`train::Method`]); the loop owns batches of progress,
//! checkpoints and resume, Ctrl-C, the NaN stop, metrics, pictures, the
//! report and the atomic export through the engine's writer.
//!
//! | folder | what lives there |
//! |---|---|
//! | [`cli`] | the command line: flags per method, one-line errors |
//! | [`data`] | MNIST IDX files, splits, batches, host [`data::Points`] |
//! | [`nn`] | layers, batched MLPs and convolutions, likelihoods, parameters, Adam |
//! | [`ops`] | fused CPU kernels with their plain-candle fallbacks |
//! | [`init`] | the label-free initial partition (autoencoder, UMAP, k-means) |
//! | [`linalg`] | dense symmetric eigen-decomposition (Jacobi), shared by `init` and FID |
//! | [`methods`] | `mixture` (gate + K VAE experts) and `kvae` (competing VAEs) |
//! | [`train`] | the one loop, checkpoints, the end-of-run report |
//! | [`export`] | `model.bin` through the engine's writer, f16 and int8 |
//! | [`eval`] | clustering metrics, FID, the engine on the host, pictures |
//! | [`experiments`] | the kVAE experiments (synthetic and MNIST tables) |

pub mod cli;
pub mod data;
pub mod eval;
pub mod experiments;
pub mod export;
pub mod init;
pub mod linalg;
pub mod methods;
pub mod nn;
pub mod ops;
pub mod rng;
pub mod train;
pub mod util;

//! Training mixtures of VAE experts on MNIST, without labels.
//!
//! Networks ([`nets`]) are separate from the method ([`method`]): the loss,
//! its balancing term and the pretraining objective. [`train`] runs the loop
//! with checkpoints; [`fit`] is `trainer fit` end to end; [`export`] writes
//! `model.bin` through the engine's writer; [`reference`] is a candle forward
//! pass of an exported model for cross-checks against the engine.

pub mod adam;
pub mod config;
pub mod data;
pub mod engine_eval;
pub mod experiments;
pub mod export;
pub mod fid;
pub mod fit;
pub mod kvae;
pub mod method;
pub mod metrics;
pub mod nets;
pub mod ops;
pub mod params;
pub mod partition;
pub mod pictures;
pub mod quantize;
pub mod reference;
pub mod report;
pub mod rng;
pub mod train;
pub mod util;

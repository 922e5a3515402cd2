//! Training mixtures of VAE experts on MNIST, without labels.

pub mod metrics;
pub mod partition;

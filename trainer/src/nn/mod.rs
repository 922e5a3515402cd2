//! Building blocks every method shares: dense and batched layers
//! ([`layers`]), batched convolutions ([`conv`]), pixel likelihoods and the Gaussian KL ([`likelihood`]),
//! seeded parameters behind candle-nn's `VarBuilder` ([`params`]) and the
//! Adam optimizer ([`adam`]).

pub mod adam;
pub mod conv;
pub mod layers;
pub mod likelihood;
pub mod params;

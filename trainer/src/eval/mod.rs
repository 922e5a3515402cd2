//! Scoring and looking at models: clustering metrics ([`metrics`]), FID
//! ([`fid`]), exported files run through the engine on the host
//! ([`host`]), a candle forward pass of an exported model for
//! cross-checks ([`mod@reference`]) and PNG grids and curves ([`pictures`]).

pub mod fid;
pub mod host;
pub mod metrics;
pub mod pictures;
pub mod reference;

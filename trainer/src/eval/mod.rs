//! Scoring and looking at models: clustering metrics ([`metrics`]), FID
//! ([`fid`]), exported files run through the engine on the host
//! ([`host`]), a candle forward pass of an exported model for
//! cross-checks ([`mod@reference`]), PNG grids and the confusion picture
//! ([`pictures`]) and charts with titles, axes and legends ([`plot`]).

pub mod fid;
pub mod host;
pub mod metrics;
pub mod novelty;
pub mod ood;
pub mod pictures;
pub mod plot;
pub mod reference;

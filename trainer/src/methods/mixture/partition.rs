//! The mixture's start: a label-free partition of the training images
//! ([`crate::init`]), cached in the run directory as `partition.json`
//! ([`crate::init::cache`]).

use std::path::Path;

use anyhow::bail;

use super::config::{MixtureConfig, Start};
use crate::data::Split;

/// The label-free initial partition of the training images: read from
/// the run directory's `partition.json` when it is there (a resumed or
/// re-exported run), computed ([`crate::init`]) and saved there otherwise.
pub fn partition(
    cfg: &MixtureConfig,
    train: &Split,
    run_dir: &Path,
    verbose: bool,
) -> anyhow::Result<Vec<usize>> {
    let Start::Partition {
        ae_epochs,
        ae_max_steps,
        max_points,
        cluster,
        deskew,
        mend_splinters,
        ..
    } = cfg.start
    else {
        bail!("this configuration has no partition step");
    };
    let pcfg = crate::init::PartitionConfig {
        k: cfg.arch.experts,
        seed: cfg.seed,
        ae_epochs,
        ae_max_steps,
        max_points,
        clustering: cluster,
        deskew,
        mend_splinters,
        image: (cfg.image.width.into(), cfg.image.height.into()),
        ..Default::default()
    };
    crate::init::cache::cached_partition(&pcfg, train, run_dir, verbose)
}

//! The mixture's start: a label-free partition of the training images
//! ([`crate::init`]), cached in the run directory as `partition.json`.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use super::config::{MixtureConfig, Start};
use crate::data::Split;
use crate::eval::metrics::evaluate;
use crate::util::write_atomic;

/// `partition.json`: a label-free cluster index per training image.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PartitionFile {
    k: usize,
    assignment: Vec<usize>,
}

/// The label-free initial partition of the training images: read from
/// the run directory's `partition.json` when it is there (a resumed or
/// re-exported run), computed ([`crate::init`]) and saved there otherwise.
pub fn partition(
    cfg: &MixtureConfig,
    train: &Split,
    run_dir: &Path,
    verbose: bool,
) -> anyhow::Result<Vec<usize>> {
    let path = run_dir.join("partition.json");
    if path.is_file() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let p: PartitionFile = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a partition", path.display()))?;
        if p.k != cfg.arch.experts
            || p.assignment.len() != train.n
            || p.assignment.iter().any(|&c| c >= p.k)
        {
            bail!(
                "{}: does not match this run's data or experts",
                path.display()
            );
        }
        return Ok(p.assignment);
    }
    let Start::Partition {
        ae_epochs,
        max_points,
        cluster,
        ..
    } = cfg.start
    else {
        bail!("this configuration has no partition step");
    };
    let start = Instant::now();
    let pcfg = crate::init::PartitionConfig {
        k: cfg.arch.experts,
        seed: cfg.seed,
        ae_epochs,
        max_points,
        clustering: cluster,
        ..Default::default()
    };
    let progress = |msg: &str| {
        if verbose {
            eprintln!("partition: {msg}");
        }
    };
    let p = crate::init::initial_partition(&train.pixels, train.n, &pcfg, &progress)?;
    if p.k != cfg.arch.experts
        || p.assignment.len() != train.n
        || p.assignment.iter().any(|&c| c >= p.k)
    {
        bail!("the initial partition returned a malformed assignment");
    }
    if verbose {
        // Labels score the partition for the user; they do not change it.
        let ev = evaluate(&p.assignment, &train.labels, p.k);
        println!(
            "initial partition: {:.1} s, training-set {}",
            start.elapsed().as_secs_f64(),
            ev.summary()
        );
    }
    let file = PartitionFile {
        k: p.k,
        assignment: p.assignment,
    };
    write_atomic(&path, serde_json::to_string(&file)?.as_bytes())?;
    Ok(file.assignment)
}

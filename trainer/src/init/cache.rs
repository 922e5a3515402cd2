//! A label-free partition cached in a run directory as `partition.json`,
//! so that a resumed or re-exported run reads it instead of recomputing it.
//! Both methods start from it: the mixture always, kVAE with
//! `--pretrain partition`.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use super::{initial_partition, PartitionConfig};
use crate::data::Split;
use crate::eval::metrics::evaluate;
use crate::util::write_atomic;

/// `partition.json`: a label-free cluster index per training image.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PartitionFile {
    k: usize,
    assignment: Vec<usize>,
}

/// The partition of `train` that `cfg` describes: read from `run_dir`'s
/// `partition.json` when it is there, computed ([`initial_partition`]) and
/// saved there otherwise. `verbose` prints progress and the partition's
/// training-set scores (labels score it; they do not change it).
pub fn cached_partition(
    cfg: &PartitionConfig,
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
        if p.k != cfg.k || p.assignment.len() != train.n || p.assignment.iter().any(|&c| c >= p.k) {
            bail!(
                "{}: does not match this run's data or experts",
                path.display()
            );
        }
        return Ok(p.assignment);
    }
    let start = Instant::now();
    let progress = |msg: &str| {
        if verbose {
            eprintln!("partition: {msg}");
        }
    };
    let p = initial_partition(&train.pixels, train.n, cfg, &progress)?;
    if p.k != cfg.k || p.assignment.len() != train.n || p.assignment.iter().any(|&c| c >= p.k) {
        bail!("the initial partition returned a malformed assignment");
    }
    if verbose {
        let scores = match &train.labels {
            Some(labels) => format!(
                "training-set {}",
                evaluate(&p.assignment, labels, p.k).summary()
            ),
            None => format!("sizes {:?} (no labels to score it)", p.sizes()),
        };
        println!(
            "initial partition: {:.1} s, {scores}",
            start.elapsed().as_secs_f64()
        );
    }
    let file = PartitionFile {
        k: p.k,
        assignment: p.assignment,
    };
    write_atomic(&path, serde_json::to_string(&file)?.as_bytes())?;
    Ok(file.assignment)
}

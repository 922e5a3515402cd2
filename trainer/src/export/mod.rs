//! Writing a model file through the engine's writer: the label map, f16
//! and int8 encodings ([`quantize`]) and atomic writes. A method turns its
//! networks into the engine's `ModelSpec` (`methods::*::export`); this
//! module is the same for all of them.
//!
//! Labels enter here, after training, and only to name clusters: the label
//! map is the Hungarian one-to-one matching of the gate's clusters on the
//! training images to their digit labels. Training never sees a label.

use std::path::Path;

use anyhow::Context;
use engine::writer::ModelSpec;

use crate::eval::metrics::Evaluation;

pub mod novelty;
pub mod quantize;

/// The digit for each cluster: the Hungarian matching, and for clusters the
/// matching leaves out (only when K > 10) their most frequent digit.
pub fn label_map(train_eval: &Evaluation) -> Vec<u8> {
    train_eval
        .cluster_to_label
        .iter()
        .zip(&train_eval.confusion)
        .map(|(m, row)| {
            m.unwrap_or_else(|| {
                row.iter()
                    .enumerate()
                    .max_by_key(|&(_, &c)| c)
                    .map_or(0, |(d, _)| d as u8)
            })
        })
        .collect()
}

/// Quantizes `spec` to f16 and writes it to `path` atomically; returns the bytes.
pub fn write_model(spec: &ModelSpec, path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = spec
        .to_bytes()
        .map_err(|e| anyhow::anyhow!("cannot encode the model: {e}"))?;
    write_bytes(&bytes, path)?;
    Ok(bytes)
}

/// Writes an encoded model to `path` atomically, creating its folder.
pub fn write_bytes(bytes: &[u8], path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
    }
    crate::util::write_atomic(path, bytes)
}

/// The command-line flags that set each part of a planned model, for the
/// hint in [`check_engine_shape`]'s message.
#[derive(Debug, Clone, Copy)]
pub struct ShapeFlags {
    /// Sets the number of experts.
    pub experts: &'static str,
    /// Sets the latent size.
    pub latent: &'static str,
    /// Sets the gate's hidden widths.
    pub gate: &'static str,
    /// Sets the decoders' hidden widths.
    pub decoder: &'static str,
}

/// Refuses, before any training, a model the engine could not write or run
/// with the host tools' workspace ([`engine::host::WORKSPACE_LEN`], the
/// one the trainer, the harness and the firmware host tool share): too
/// many experts, too many layers, a layer too wide, for f16 or int8
/// weights ([`engine::writer::ModelShape::check`]). `gate_hidden` and
/// `decoder_hidden` are the hidden widths (the gate ends in `experts`
/// logits, a decoder in the image's pixels); the message names the flag
/// to change.
pub fn check_engine_shape(
    image: engine::ImageShape,
    latent: usize,
    experts: usize,
    gate_hidden: &[usize],
    decoder_hidden: &[usize],
    flags: ShapeFlags,
) -> anyhow::Result<()> {
    use engine::writer::{ShapeError, Width};
    engine::writer::ModelShape {
        image,
        latent,
        experts,
        gate_hidden: gate_hidden.to_vec(),
        decoder_hidden: decoder_hidden.to_vec(),
    }
    .check(engine::host::WORKSPACE_LEN)
    .map_err(|e| {
        let flag = match &e {
            ShapeError::Experts { .. } => flags.experts.to_string(),
            ShapeError::Latent { .. }
            | ShapeError::ZeroWidth {
                width: Width::Latent,
            } => flags.latent.to_string(),
            ShapeError::Layers { network, .. } if network.contains("gate") => {
                flags.gate.to_string()
            }
            ShapeError::Layers { .. } => flags.decoder.to_string(),
            _ => format!("{}, {}, {}", flags.gate, flags.decoder, flags.latent),
        };
        anyhow::anyhow!("the engine cannot run this model: {e} (change {flag})")
    })
}

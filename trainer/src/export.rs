//! Turning a trained mixture into `model.bin` through the engine's writer.
//!
//! Labels enter here, after training, and only to name clusters: the label
//! map is the Hungarian one-to-one matching of the gate's clusters on the
//! training images to their digit labels. Training never sees a label.

use std::path::Path;

use anyhow::Context;
use engine::writer::ModelSpec;
use engine::{ImageShape, Method};

use crate::config::FitConfig;
use crate::metrics::Evaluation;
use crate::nets::Mixture;

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

/// The model as an engine `ModelSpec` (f32; quantized by `to_bytes`).
///
/// `mixture_weights` is each cluster's share of the training images under
/// the gate's argmax.
pub fn to_spec(
    model: &Mixture,
    cfg: &FitConfig,
    mixture_weights: Vec<f32>,
    label_map: Option<Vec<u8>>,
) -> anyhow::Result<ModelSpec> {
    let k = cfg.arch.experts;
    let decoders = (0..k)
        .map(|e| model.export_decoder(e))
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok(ModelSpec {
        method: Method::MixtureOfVaes,
        image: ImageShape {
            width: 28,
            height: 28,
        },
        latent: cfg.arch.latent,
        likelihood: cfg.likelihood.engine(),
        mixture_weights,
        label_map,
        provenance: provenance(cfg),
        gate: model.gate.export()?,
        decoders,
    })
}

/// What the file records about its making (no time stamps or paths, so
/// that the same seed gives the same bytes).
pub fn provenance(cfg: &FitConfig) -> String {
    format!(
        "trainer {} mixture-of-vaes preset={:?} experts={} latent={} gate={:?} decoder={:?} act={:?} likelihood={:?} epochs={}+{} batch={} lr={} balance={} shift={} seed={} limit={}",
        env!("CARGO_PKG_VERSION"),
        cfg.preset,
        cfg.arch.experts,
        cfg.arch.latent,
        cfg.arch.gate_hidden,
        cfg.arch.decoder_hidden,
        cfg.arch.act,
        cfg.likelihood,
        cfg.pretrain_epochs(),
        cfg.epochs,
        cfg.batch,
        cfg.lr,
        cfg.balance,
        cfg.shift,
        cfg.seed,
        cfg.limit.map_or("none".to_string(), |l| l.to_string()),
    )
    .to_lowercase()
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

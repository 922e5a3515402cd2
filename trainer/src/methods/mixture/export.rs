//! The trained mixture as the engine's `ModelSpec`: the gate and the K
//! decoders, and what the file records about its making.

use engine::writer::ModelSpec;
use engine::Method;

use super::config::MixtureConfig;
use super::nets::Networks;

/// The model as an engine `ModelSpec` (f32; quantized by the writer).
///
/// `mixture_weights` is each cluster's share of the training images under
/// the gate's argmax.
pub fn to_spec(
    nets: &Networks,
    cfg: &MixtureConfig,
    mixture_weights: Vec<f32>,
    label_map: Option<Vec<u8>>,
) -> anyhow::Result<ModelSpec> {
    let experts: Vec<usize> = (0..cfg.arch.experts).collect();
    to_spec_with(
        nets,
        cfg,
        &experts,
        mixture_weights,
        label_map,
        provenance(cfg),
    )
}

/// [`to_spec`] with the decoder of VAE `decoders[c]` for cluster `c` (a
/// two-level mixture exports one style per digit expert) and the given
/// provenance.
pub fn to_spec_with(
    nets: &Networks,
    cfg: &MixtureConfig,
    decoders: &[usize],
    mixture_weights: Vec<f32>,
    label_map: Option<Vec<u8>>,
    provenance: String,
) -> anyhow::Result<ModelSpec> {
    let decoders = decoders
        .iter()
        .map(|&e| nets.export_decoder(e))
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok(ModelSpec {
        method: Method::MixtureOfVaes,
        image: cfg.image,
        latent: cfg.arch.latent,
        likelihood: cfg.likelihood,
        mixture_weights,
        label_map,
        provenance,
        gate: nets.gate.export()?,
        decoders,
    })
}

/// What the file records about its making (no time stamps or paths, so
/// that the same seed gives the same bytes).
pub fn provenance(cfg: &MixtureConfig) -> String {
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
        // Only when on, so that files from before self-training keep their bytes.
        + &if cfg.self_train_epochs > 0 {
            format!(" self-train={}", cfg.self_train_epochs)
        } else {
            String::new()
        }
}

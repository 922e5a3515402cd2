//! The trained mixture as the engine's `ModelSpec`: the gate and the K
//! decoders, and what the file records about its making.

use clap::ValueEnum;
use engine::writer::ModelSpec;
use engine::Method;

use super::config::{MixtureConfig, Start};
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
        // Only when on, so that files without them keep their bytes.
        + &if cfg.distortion().resamples() {
            format!(" rotate={} scale={}", cfg.rotate, cfg.scale)
        } else {
            String::new()
        }
        + &start_and_schedule(cfg)
}

/// The start (how the partition was made) and the learning-rate schedule,
/// which two runs of one preset can differ by (and the default preset did,
/// from one day to the next).
fn start_and_schedule(cfg: &MixtureConfig) -> String {
    let start = match &cfg.start {
        Start::Random => "start=random".to_string(),
        Start::Partition {
            ae_epochs,
            ae_max_steps,
            max_points,
            cluster,
            deskew,
            mend_splinters,
            ..
        } => format!(
            "start=partition cluster={} ae-epochs={ae_epochs}{} graph-points={max_points} deskew={}{}",
            cluster
                .to_possible_value()
                .map_or_else(|| format!("{cluster:?}"), |v| v.get_name().to_string()),
            // Only when capped, as configurations before the cap.
            if *ae_max_steps > 0 {
                format!(" ae-max-steps={ae_max_steps}")
            } else {
                String::new()
            },
            if *deskew { "on" } else { "off" },
            // Only when off, so that the measured default files keep their
            // bytes (results/default-fit.md).
            if *mend_splinters { "" } else { " mend-splinters=off" }
        ),
    };
    let decay = match (cfg.lr_decay, cfg.lr_decay_experts) {
        (false, _) => "off",
        (true, false) => "gate",
        (true, true) => "all",
    };
    format!(
        " {start} lr-decay={decay} min-epoch-steps={}",
        cfg.min_epoch_steps
    )
}

#[cfg(test)]
mod tests {
    use super::super::config::Preset;
    use super::*;

    #[test]
    fn provenance_names_the_start_and_the_schedule() {
        let cfg = MixtureConfig::preset(Preset::Default);
        let p = provenance(&cfg);
        assert!(p.starts_with("trainer "), "{p}");
        assert!(
            p.ends_with(
                " start=partition cluster=umap-gmm ae-epochs=20 ae-max-steps=10000 graph-points=20000 deskew=on \
                 lr-decay=gate min-epoch-steps=200"
            ),
            "{p}"
        );
        let mut other = cfg.clone();
        other.lr_decay_experts = true;
        assert!(provenance(&other).contains(" lr-decay=all "));
        other.lr_decay = false;
        assert!(provenance(&other).contains(" lr-decay=off "));
        let mut kept = cfg.clone();
        if let Start::Partition { mend_splinters, .. } = &mut kept.start {
            *mend_splinters = false;
        }
        assert!(provenance(&kept).contains(" deskew=on mend-splinters=off lr-decay=gate "));
        if let Start::Partition { ae_max_steps, .. } = &mut kept.start {
            *ae_max_steps = 0;
        }
        assert!(provenance(&kept).contains(" ae-epochs=20 graph-points=20000 "));
        other.start = Start::Random;
        assert!(provenance(&other).contains(" start=random lr-decay=off "));
        // The gate's resampling augmentation, named only when on.
        assert!(
            p.contains(" seed=1 limit=none rotate=12 scale=0.1 start="),
            "{p}"
        );
        let mut shifts_only = cfg.clone();
        (shifts_only.rotate, shifts_only.scale) = (0.0, 0.0);
        assert!(provenance(&shifts_only).contains(" limit=none start="));
    }
}

//! The model file of a trained kVAE: the gate and the k decoders
//! (`engine::Method::KVae`).

use candle_core::Result;
use engine::writer::ModelSpec;

use super::batching::shares;
use super::vae::VaeNets;
use crate::nn::layers::Gate;
use crate::nn::likelihood::Observation;

/// The model file contents: `gate` and the k decoders of `vaes`
/// (VAEs of pixels only, under their [`crate::nn::likelihood::Likelihood`]),
/// each VAE's share of `assignment` as its mixture weight.
pub fn to_spec(
    vaes: &dyn VaeNets,
    gate: &Gate,
    assignment: &[usize],
    image: engine::ImageShape,
    label_map: Option<Vec<u8>>,
    provenance: String,
) -> anyhow::Result<ModelSpec> {
    let Observation::Pixels(likelihood) = vaes.observation() else {
        anyhow::bail!("only VAEs of pixels can be exported, not of real vectors");
    };
    anyhow::ensure!(
        vaes.data() == image.pixels(),
        "the VAEs' data size is not the image size"
    );
    Ok(ModelSpec {
        method: engine::Method::KVae,
        image,
        latent: vaes.latent(),
        likelihood,
        mixture_weights: shares(assignment, vaes.k())
            .iter()
            .map(|&s| s as f32)
            .collect(),
        label_map,
        provenance,
        gate: gate.export()?,
        decoders: (0..vaes.k())
            .map(|j| vaes.export_decoder(j))
            .collect::<Result<_>>()?,
    })
}

//! Reading format version 1, so that older files can be converted
//! ([`ModelSpec::from_v1_bytes`](super::ModelSpec::from_v1_bytes)). The
//! engine itself reads only the current version.

use std::vec::Vec;

use serde::Deserialize;

use super::{DenseF32, ModelSpec};
use crate::format::{Activation, Header, ModelFile};
use crate::kernels::f16_at;
use crate::Error;

#[derive(Deserialize)]
struct LayerV1<'a> {
    inputs: u32,
    outputs: u32,
    activation: Activation,
    #[serde(borrow, with = "serde_bytes")]
    weights: &'a [u8],
    #[serde(borrow, with = "serde_bytes")]
    bias: &'a [u8],
}

#[derive(Deserialize)]
struct MlpV1<'a> {
    #[serde(borrow)]
    layers: Vec<LayerV1<'a>>,
}

#[derive(Deserialize)]
struct ReprV1<'a> {
    #[serde(borrow)]
    header: Header<'a>,
    #[serde(borrow)]
    gate: MlpV1<'a>,
    #[serde(borrow)]
    decoders: Vec<MlpV1<'a>>,
}

fn layers(mlp: &MlpV1<'_>) -> Result<Vec<DenseF32>, Error> {
    mlp.layers
        .iter()
        .map(|l| {
            let (n, m) = (l.inputs as usize, l.outputs as usize);
            let count = n
                .checked_mul(m)
                .ok_or(Error::InvalidModel("layer size overflows"))?;
            if l.weights.len() != 2 * count || l.bias.len() != 2 * m {
                return Err(Error::InvalidModel(
                    "weight tensor length does not match its shape",
                ));
            }
            Ok(DenseF32 {
                inputs: n,
                outputs: m,
                activation: l.activation,
                weights: (0..count).map(|i| f16_at(l.weights, i)).collect(),
                bias: (0..m).map(|o| f16_at(l.bias, o)).collect(),
            })
        })
        .collect()
}

/// Decodes a version-1 file (frame, checksum, postcard body with inline
/// f16 tensors) into f32 tensors, exactly.
pub(super) fn read(bytes: &[u8]) -> Result<ModelSpec, Error> {
    let body = ModelFile::new_checked_version(bytes, 1)?.body_slice();
    let repr: ReprV1<'_> = postcard::from_bytes(body).map_err(|_| Error::Malformed)?;
    Ok(ModelSpec::from_parts(
        &repr.header,
        layers(&repr.gate)?,
        repr.decoders.iter().map(layers).collect::<Result<_, _>>()?,
    ))
}

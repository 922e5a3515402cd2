//! A tiny deterministic model for examples and tests (not part of the API).

use crate::format::{
    emit, Activation, Header, ImageShape, LayerDesc, Likelihood, Method, TensorRef, Weights,
    DATA_ALIGN,
};
use crate::rng::SplitMix64;

/// Capacity of [`tiny_model_bytes`]'s buffer.
pub const TINY_CAPACITY: usize = 24 * 1024;

/// Bytes of the tiny model's data section: the gate's 784×3 weights and 3
/// biases, then per decoder 784×2 weights and 784 biases, each tensor at a
/// multiple of 16.
const DATA: usize = 4704 + 16 + 3 * (3136 + 1568);

/// A 3-expert model on 28×28 images with latent size 2: gate 784→3,
/// decoders 2→784 (sigmoid), f16 weights drawn from a fixed seed.
pub fn tiny_model_bytes() -> heapless::Vec<u8, TINY_CAPACITY> {
    let mut rng = SplitMix64::new(2024);
    let mut data = [0u8; DATA];
    let mut at = 0usize;
    // Fills the next tensor of `values` f16 values drawn in ±scale/2.
    let mut tensor = |values: usize, scale: f32| -> TensorRef {
        let offset = at.div_ceil(DATA_ALIGN) * DATA_ALIGN;
        for pair in data[offset..offset + 2 * values].chunks_exact_mut(2) {
            let v = (rng.next_unit() - 0.5) * scale;
            pair.copy_from_slice(&half::f16::from_f32(v).to_le_bytes());
        }
        at = offset + 2 * values;
        TensorRef {
            offset: offset as u32,
            len: 2 * values as u32,
        }
    };
    let gate = [LayerDesc {
        inputs: 784,
        outputs: 3,
        activation: Activation::Identity,
        weights: Weights::F16 {
            weights: tensor(784 * 3, 0.2),
            bias: tensor(3, 0.2),
        },
    }];
    let mut decoder = || {
        [LayerDesc {
            inputs: 2,
            outputs: 784,
            activation: Activation::Sigmoid,
            weights: Weights::F16 {
                weights: tensor(784 * 2, 4.0),
                bias: tensor(784, 2.0),
            },
        }]
    };
    let decoders = [decoder(), decoder(), decoder()];
    let decoders = [&decoders[0][..], &decoders[1][..], &decoders[2][..]];
    let header = Header {
        method: Method::MixtureOfVaes,
        image: ImageShape {
            width: 28,
            height: 28,
        },
        experts: 3,
        latent: 2,
        likelihood: Likelihood::Bernoulli,
        mixture_weights: heapless::Vec::from_slice(&[0.5, 0.25, 0.25]).unwrap_or_default(),
        label_map: heapless::Vec::from_slice(&[7, 1, 0]).ok(),
        provenance: "engine::testing::tiny_model_bytes",
    };
    let mut out = heapless::Vec::new();
    let _ = out.resize(TINY_CAPACITY, 0);
    let n = emit(&header, &gate, &decoders, &data, &mut out).unwrap_or(0);
    out.truncate(n);
    out
}

/// A dense network as `(inputs, outputs, activation)` per layer.
pub type Shape<'s> = &'s [(usize, usize, Activation)];

/// A 28×28 model spec with `experts` decoders of the given shapes and
/// weights and biases drawn from a fixed seed, uniform in ±1/√inputs
/// (PyTorch's default `Linear` init), so activations look like a trained
/// model's. For benchmarks and tests that need realistic sizes.
#[cfg(feature = "std")]
pub fn random_spec(
    gate: Shape<'_>,
    decoder: Shape<'_>,
    experts: usize,
    seed: u64,
) -> crate::writer::ModelSpec {
    use crate::writer::ModelSpec;
    let mut rng = SplitMix64::new(seed);
    let mut layers = |shape: Shape<'_>| random_layers(&mut rng, shape, 1.0);
    ModelSpec {
        method: Method::MixtureOfVaes,
        image: ImageShape {
            width: 28,
            height: 28,
        },
        latent: decoder.first().map_or(0, |l| l.0),
        likelihood: Likelihood::Bernoulli,
        mixture_weights: std::vec![1.0 / experts as f32; experts],
        label_map: Some((0..experts).map(|k| (k % 10) as u8).collect()),
        provenance: std::format!("engine::testing::random_spec, seed {seed}"),
        gate: layers(gate),
        decoders: (0..experts).map(|_| layers(decoder)).collect(),
    }
}

/// A network of the given shape with weights and biases drawn from `rng`,
/// uniform in `±gain/√inputs` (PyTorch's default `Linear` init for
/// `gain = 1`), as [`random_spec`] draws them.
#[cfg(feature = "std")]
pub fn random_layers(
    rng: &mut SplitMix64,
    shape: Shape<'_>,
    gain: f32,
) -> std::vec::Vec<crate::writer::DenseF32> {
    shape
        .iter()
        .map(|&(inputs, outputs, activation)| {
            let bound = gain / libm::sqrtf(inputs as f32);
            let mut draw = |n: usize| -> std::vec::Vec<f32> {
                (0..n)
                    .map(|_| (2.0 * rng.next_unit() - 1.0) * bound)
                    .collect()
            };
            crate::writer::DenseF32 {
                inputs,
                outputs,
                activation,
                weights: draw(inputs * outputs),
                bias: draw(outputs),
            }
        })
        .collect()
}

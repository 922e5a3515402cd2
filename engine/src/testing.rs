//! A tiny deterministic model for examples and tests (not part of the API).

use crate::format::{Activation, Header, ImageShape, Layer, Likelihood, Method, Mlp, ModelRepr};
use crate::rng::SplitMix64;

/// Capacity of [`tiny_model_bytes`]'s buffer.
pub const TINY_CAPACITY: usize = 24 * 1024;

fn fill(rng: &mut SplitMix64, out: &mut [u8], scale: f32) {
    for pair in out.chunks_exact_mut(2) {
        let v = (rng.next_unit() - 0.5) * scale;
        pair.copy_from_slice(&half::f16::from_f32(v).to_le_bytes());
    }
}

/// A 3-expert model on 28×28 images with latent size 2: gate 784→3,
/// decoders 2→784 (sigmoid), weights drawn from a fixed seed.
pub fn tiny_model_bytes() -> heapless::Vec<u8, TINY_CAPACITY> {
    let mut rng = SplitMix64::new(2024);
    let mut gate_w = [0u8; 784 * 3 * 2];
    let mut gate_b = [0u8; 3 * 2];
    let mut dec_w = [[0u8; 784 * 2 * 2]; 3];
    let mut dec_b = [[0u8; 784 * 2]; 3];
    fill(&mut rng, &mut gate_w, 0.2);
    fill(&mut rng, &mut gate_b, 0.2);
    for (w, b) in dec_w.iter_mut().zip(dec_b.iter_mut()) {
        fill(&mut rng, w, 4.0);
        fill(&mut rng, b, 2.0);
    }
    let mut gate = Mlp {
        layers: heapless::Vec::new(),
    };
    let _ = gate.layers.push(Layer {
        inputs: 784,
        outputs: 3,
        activation: Activation::Identity,
        weights: &gate_w,
        bias: &gate_b,
    });
    let mut decoders = heapless::Vec::new();
    for (w, b) in dec_w.iter().zip(dec_b.iter()) {
        let mut d = Mlp {
            layers: heapless::Vec::new(),
        };
        let _ = d.layers.push(Layer {
            inputs: 2,
            outputs: 784,
            activation: Activation::Sigmoid,
            weights: w,
            bias: b,
        });
        let _ = decoders.push(d);
    }
    let repr = ModelRepr {
        header: Header {
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
        },
        gate,
        decoders,
    };
    let mut out = heapless::Vec::new();
    let _ = out.resize(TINY_CAPACITY, 0);
    let n = repr.emit(&mut out).unwrap_or(0);
    out.truncate(n);
    out
}

//! Writes the seed corpora: a few small, valid model files of varied shapes
//! (all activations, both likelihoods, with and without label map, one to
//! four layers), each behind `PARAMS_LEN` parameter bytes.
//!
//! `cargo run --release --bin write_seeds` (from engine/fuzz) rewrites
//! `corpus/model_bytes/seed-*` and `corpus/model_body/seed-*`.

use engine::rng::SplitMix64;
use engine::writer::{DenseF32, ModelSpec};
use engine::{Activation, ImageShape, Likelihood, Method};
use engine_fuzz::PARAMS_LEN;

fn net(rng: &mut SplitMix64, widths: &[usize], acts: &[Activation]) -> Vec<DenseF32> {
    widths
        .windows(2)
        .zip(acts)
        .map(|(w, &activation)| {
            let mut draw =
                |n: usize| -> Vec<f32> { (0..n).map(|_| (rng.next_unit() - 0.5) * 3.0).collect() };
            DenseF32 {
                inputs: w[0],
                outputs: w[1],
                activation,
                weights: draw(w[0] * w[1]),
                bias: draw(w[1]),
            }
        })
        .collect()
}

/// A seed model's shape: image side, experts, latent, gate hidden widths and
/// activations, decoder hidden widths and activations.
type Case = (
    u16,
    usize,
    usize,
    &'static [usize],
    &'static [Activation],
    &'static [usize],
    &'static [Activation],
);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    use Activation::*;
    let mut rng = SplitMix64::new(5);
    let cases: [Case; 4] = [
        (3, 2, 2, &[], &[Identity], &[], &[Sigmoid]),
        (4, 3, 3, &[9], &[Relu, Identity], &[8], &[Relu, Sigmoid]),
        (
            5,
            4,
            2,
            &[11, 6],
            &[Sigmoid, Tanh, Identity],
            &[7, 17],
            &[Sigmoid, Tanh, Sigmoid],
        ),
        (
            4,
            2,
            9,
            &[10, 10, 10],
            &[Relu, Relu, Relu, Identity],
            &[3],
            &[Tanh, Identity],
        ),
    ];
    for dir in ["corpus/model_bytes", "corpus/model_body"] {
        std::fs::create_dir_all(dir)?;
    }
    for (i, (side, k, latent, gh, ga, dh, da)) in cases.into_iter().enumerate() {
        let pixels = side as usize * side as usize;
        let gate_widths: Vec<usize> = [&[pixels][..], gh, &[k]].concat();
        let dec_widths: Vec<usize> = [&[latent][..], dh, &[pixels]].concat();
        let spec = ModelSpec {
            method: if i % 2 == 0 {
                Method::MixtureOfVaes
            } else {
                Method::KVae
            },
            image: ImageShape {
                width: side,
                height: side,
            },
            latent,
            likelihood: if i == 2 {
                Likelihood::Gaussian { std: 0.25 }
            } else {
                Likelihood::Bernoulli
            },
            mixture_weights: vec![1.0 / k as f32; k],
            label_map: (i % 2 == 1).then(|| (0..k as u8).collect()),
            provenance: format!("seed {i}"),
            gate: net(&mut rng, &gate_widths, ga),
            decoders: (0..k).map(|_| net(&mut rng, &dec_widths, da)).collect(),
        };
        let file = spec.to_bytes()?;
        let mut params = [0u8; PARAMS_LEN];
        for b in params.iter_mut() {
            *b = rng.next_u64() as u8;
        }
        params[8] = i as u8; // an expert index, in range
        std::fs::write(
            format!("corpus/model_bytes/seed-{i}"),
            [&params[..], &file].concat(),
        )?;
        std::fs::write(
            format!("corpus/model_body/seed-{i}"),
            [&params[..], &file[20..]].concat(),
        )?;
    }
    Ok(())
}

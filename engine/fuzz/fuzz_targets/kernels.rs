//! Differential fuzzing of the kernels: the run-time-selected SIMD paths
//! (the engine's only `unsafe` code) against the portable definitions, on
//! arbitrary weights, inputs and slice lengths (including short tensors).
#![no_main]

use engine::kernels::{activate, activate_slice, dense_f16, dense_f16_portable};
use engine::Activation;
use libfuzzer_sys::fuzz_target;

fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || a.is_nan() && b.is_nan()
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let inputs = data[0] as usize % 80;
    let outputs = data[1] as usize % 40;
    let rest = &data[3..];
    let x_bytes = (4 * inputs).min(rest.len());
    let x: Vec<f32> = rest[..x_bytes]
        .chunks(4)
        .map(|c| {
            let mut b = [0u8; 4];
            b[..c.len()].copy_from_slice(c);
            f32::from_le_bytes(b)
        })
        .collect();
    let rest = &rest[x_bytes..];
    // Weights and bias: the remaining bytes, split where data[2] says.
    let cut = (data[2] as usize * 2).min(rest.len());
    let (bias, weights) = rest.split_at(cut);
    let mut fast = vec![0.0f32; outputs];
    let mut portable = vec![0.0f32; outputs];
    dense_f16(weights, bias, &x, &mut fast);
    dense_f16_portable(weights, bias, &x, &mut portable);
    for (a, b) in fast.iter().zip(&portable) {
        assert!(same(*a, *b), "{a} vs {b}");
    }
    for activation in [Activation::Sigmoid, Activation::Relu, Activation::Tanh] {
        let mut v = x.clone();
        activate_slice(activation, &mut v);
        for (a, &b) in v.iter().zip(&x) {
            assert!(same(*a, activate(activation, b)));
        }
    }
});

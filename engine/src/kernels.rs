//! The numeric kernels: f16 decoding, dot products and activations.
//!
//! Everything here computes the same bits on every target. Two rules make
//! that so: sums are always taken in the same order (eight interleaved
//! partial sums, combined as a fixed tree), and a multiply and an add are
//! never fused (Rust does not contract `a * b + c` into an FMA, and we never
//! call `mul_add`). Transcendental functions come from `libm`, which is the
//! same software on every target.

use crate::Activation;

/// Number of independent partial sums in [`dot_f16`]. Eight f32 lanes fill
/// one AVX register (or two SSE / NEON registers), so the loop vectorizes on
/// hosts, while on a Cortex-M it is just eight registers of accumulators.
pub const LANES: usize = 8;

/// Decodes IEEE 754 binary16 bits to f32, exactly, without branches on the
/// value (so that LLVM can vectorize a loop of them).
///
/// ```
/// assert_eq!(engine::kernels::f16_to_f32(0x3C00), 1.0);
/// assert_eq!(engine::kernels::f16_to_f32(0xC000), -2.0);
/// assert_eq!(engine::kernels::f16_to_f32(0x0001), 5.960_464_5e-8);
/// ```
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let h = h as u32;
    let sign = (h & 0x8000) << 16;
    let magnitude = (h & 0x7fff) << 13; // exponent and mantissa, in f32 position
    let exponent = h & 0x7c00;
    // Normal numbers: rebias the exponent from 15 to 127.
    let normal = f32::from_bits(magnitude + ((127 - 15) << 23));
    // Subnormals: place the mantissa under exponent 2^-14 * 2^23... then
    // subtract the implicit one. Both steps are exact in f32.
    let subnormal = f32::from_bits(magnitude + (113 << 23)) - f32::from_bits(113 << 23);
    // Infinity and NaN: maximal f32 exponent, mantissa kept (NaN stays NaN).
    let special = f32::from_bits(magnitude | 0x7f80_0000);
    let value = if exponent == 0x7c00 {
        special
    } else if exponent == 0 {
        subnormal
    } else {
        normal
    };
    f32::from_bits(value.to_bits() | sign)
}

/// The f16 at index `i` of a little-endian f16 byte slice; 0.0 past the end.
#[inline(always)]
pub fn f16_at(bytes: &[u8], i: usize) -> f32 {
    match bytes.get(2 * i..2 * i + 2) {
        Some(&[lo, hi]) => f16_to_f32(u16::from_le_bytes([lo, hi])),
        _ => 0.0,
    }
}

/// Dot product of a row of little-endian f16 weights with f32 inputs.
///
/// Element `i` is accumulated into partial sum `i % LANES`; the partial sums
/// are combined as `((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7))`. Extra elements of
/// the longer argument are ignored.
///
/// ```
/// use engine::kernels::dot_f16;
/// let w: Vec<u8> = [1.0f32, 2.0, -0.5].iter()
///     .flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect();
/// assert_eq!(dot_f16(&w, &[1.0, 1.0, 4.0]), 1.0);
/// ```
#[inline]
pub fn dot_f16(weights: &[u8], x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut w_chunks = weights.chunks_exact(2 * LANES);
    let mut x_chunks = x.chunks_exact(LANES);
    for (w, xs) in (&mut w_chunks).zip(&mut x_chunks) {
        for lane in 0..LANES {
            let bits = u16::from_le_bytes([w[2 * lane], w[2 * lane + 1]]);
            acc[lane] += f16_to_f32(bits) * xs[lane];
        }
    }
    for (lane, (w, &xv)) in w_chunks
        .remainder()
        .chunks_exact(2)
        .zip(x_chunks.remainder())
        .enumerate()
    {
        acc[lane] += f16_to_f32(u16::from_le_bytes([w[0], w[1]])) * xv;
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
}

/// Applies an activation to one value.
///
/// ```
/// use engine::{kernels::activate, Activation};
/// assert_eq!(activate(Activation::Relu, -3.0), 0.0);
/// assert_eq!(activate(Activation::Sigmoid, 0.0), 0.5);
/// ```
#[inline]
pub fn activate(activation: Activation, x: f32) -> f32 {
    match activation {
        Activation::Identity => x,
        Activation::Relu => {
            if x > 0.0 {
                x
            } else {
                0.0
            }
        }
        Activation::Sigmoid => sigmoid(x),
        Activation::Tanh => libm::tanhf(x),
    }
}

/// `1 / (1 + exp(-x))`, saturating cleanly at both ends.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + libm::expf(-x))
}

/// Replaces `logits` by their softmax in place. NaN logits get probability
/// zero; if every logit is NaN (or the sum is not positive) the result is
/// uniform, so the output is always a probability vector.
pub fn softmax(logits: &mut [f32]) {
    let max = logits
        .iter()
        .copied()
        .filter(|v| !v.is_nan())
        .fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for v in logits.iter_mut() {
        *v = if v.is_nan() || max == f32::INFINITY && *v != max {
            0.0
        } else if max == f32::INFINITY {
            1.0
        } else {
            libm::expf(*v - max)
        };
        sum += *v;
    }
    if sum > 0.0 && sum.is_finite() {
        for v in logits.iter_mut() {
            *v /= sum;
        }
    } else {
        let n = logits.len().max(1) as f32;
        for v in logits.iter_mut() {
            *v = 1.0 / n;
        }
    }
}

/// Index of the largest value; the first one on ties, 0 for an empty or all-NaN slice.
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    let mut best_value = f32::NEG_INFINITY;
    for (i, &v) in values.iter().enumerate() {
        if v > best_value {
            best = i;
            best_value = v;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_decoding_matches_half_for_every_bit_pattern() {
        for bits in 0..=u16::MAX {
            let ours = f16_to_f32(bits);
            let theirs = half::f16::from_bits(bits).to_f32();
            if theirs.is_nan() {
                assert!(ours.is_nan(), "{bits:#06x}");
            } else {
                assert_eq!(ours.to_bits(), theirs.to_bits(), "{bits:#06x}");
            }
        }
    }

    #[test]
    fn dot_uses_the_documented_order() {
        let vals: [f32; 11] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0];
        let w: [u8; 22] =
            core::array::from_fn(|i| half::f16::from_f32(vals[i / 2]).to_le_bytes()[i % 2]);
        let x = [0.5f32; 11];
        let mut s = [0.0f32; 8];
        for i in 0..11 {
            s[i % 8] += vals[i] * 0.5;
        }
        let expected = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
        assert_eq!(dot_f16(&w, &x).to_bits(), expected.to_bits());
    }

    #[test]
    fn softmax_is_a_distribution_for_any_input() {
        let cases: [[f32; 3]; 5] = [
            [0.0, 0.0, 0.0],
            [f32::NAN, 1.0, 2.0],
            [f32::NAN, f32::NAN, f32::NAN],
            [f32::INFINITY, 1.0, f32::INFINITY],
            [f32::NEG_INFINITY, f32::NEG_INFINITY, f32::NEG_INFINITY],
        ];
        for case in cases {
            let mut p = case;
            softmax(&mut p);
            let sum: f32 = p.iter().sum();
            assert!((sum - 1.0).abs() < 1e-6, "{case:?} -> {p:?}");
            assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
        }
    }

    #[test]
    fn argmax_is_defined_on_nan() {
        assert_eq!(argmax(&[f32::NAN, f32::NAN]), 0);
        assert_eq!(argmax(&[f32::NAN, 1.0, 3.0, 3.0]), 2);
        assert_eq!(argmax(&[]), 0);
    }
}

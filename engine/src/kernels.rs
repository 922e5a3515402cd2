//! The numeric kernels: f16 decoding, dense layers and activations.
//!
//! Everything here computes the same bits on every target. Two rules make
//! that so: sums are always taken in the same order (eight interleaved
//! partial sums, combined as a fixed tree), and a multiply and an add are
//! never fused (Rust does not contract `a * b + c` into an FMA, and we never
//! call `mul_add`). Transcendental functions come from `libm`, which is the
//! same software on every target.
//!
//! [`dot_f16`] and [`sigmoid`] are the *definitions*; [`dense_f16`] and
//! [`activate_slice`] compute the same bits faster. On x86_64 hosts with the
//! `std` feature, [`dense_f16`] and the sigmoid of [`activate_slice`] switch
//! at run time to AVX2 + F16C code (see [`backend`]); elsewhere they run
//! portable code that LLVM vectorizes where it can. The only freedom any path
//! takes is the payload of a NaN, which no target agrees on anyway.

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

/// The little-endian f32 at index `i` of a byte slice; 0.0 past the end.
#[inline(always)]
pub fn f32_at(bytes: &[u8], i: usize) -> f32 {
    match bytes.get(4 * i..4 * i + 4) {
        Some(&[a, b, c, d]) => f32::from_le_bytes([a, b, c, d]),
        _ => 0.0,
    }
}

pub use int8::i32_at;

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

/// Which implementation [`dense_f16`] and [`activate_slice`] use on this
/// machine: `"x86_64 AVX2+F16C"`, `"x86_64 AVX2+F16C, AVX-512 sigmoid"`
/// (selected at run time, `std` feature only) or `"portable"`. All give the
/// same bits.
pub fn backend() -> &'static str {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if x86_64::available() {
        if std::is_x86_feature_detected!("avx512f") {
            return "x86_64 AVX2+F16C, AVX-512 sigmoid";
        }
        return "x86_64 AVX2+F16C";
    }
    "portable"
}

/// A dense layer without its activation: `out[o] = dot_f16(row o, x) + bias[o]`
/// for every `o < out.len()`, where row `o` is bytes `2·n·o .. 2·n·(o+1)` of
/// `weights` and `n = x.len()`. A row or bias missing from a short slice
/// counts as zeros (a validated model has none missing).
///
/// Bit-identical to that definition ([`dot_f16`] per row, then `+ bias`) on
/// every path; see [`backend`] for which one runs.
///
/// ```
/// use engine::kernels::{dense_f16, dot_f16, f16_at};
/// let w: Vec<u8> = (0..12).flat_map(|i| half::f16::from_f32(i as f32 / 8.0).to_le_bytes()).collect();
/// let b: Vec<u8> = [0.5f32, -1.0].iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect();
/// let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let mut out = [0.0; 2];
/// dense_f16(&w, &b, &x, &mut out);
/// assert_eq!(out[1], dot_f16(&w[12..], &x) + f16_at(&b, 1));
/// ```
pub fn dense_f16(weights: &[u8], bias: &[u8], x: &[f32], out: &mut [f32]) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if x86_64::dense_f16(weights, bias, x, out) {
        return;
    }
    dense_f16_portable(weights, bias, x, out);
}

/// [`dense_f16`] without any target-specific code: one [`dot_f16`] per row.
/// This is the reference the fast paths are tested against.
pub fn dense_f16_portable(weights: &[u8], bias: &[u8], x: &[f32], out: &mut [f32]) {
    let row_bytes = 2 * x.len();
    for (o, y) in out.iter_mut().enumerate() {
        let row = row_bytes
            .checked_mul(o)
            .and_then(|start| weights.get(start..start.checked_add(row_bytes)?))
            .unwrap_or(&[]);
        *y = dot_f16(row, x) + f16_at(bias, o);
    }
}

/// Applies `activation` to every value in place; bit-identical to
/// [`activate`] on each value.
///
/// ```
/// use engine::{kernels::{activate, activate_slice}, Activation};
/// let mut v = [-3.0f32, -0.25, 0.0, 0.7, 9.5, 120.0, -120.0, f32::NAN, 1e-9];
/// let expected = v.map(|x| activate(Activation::Sigmoid, x));
/// activate_slice(Activation::Sigmoid, &mut v);
/// for (a, b) in v.iter().zip(&expected) {
///     assert!(a.to_bits() == b.to_bits() || a.is_nan() && b.is_nan());
/// }
/// ```
pub fn activate_slice(activation: Activation, values: &mut [f32]) {
    match activation {
        Activation::Identity => {}
        Activation::Relu => {
            for v in values.iter_mut() {
                *v = activate(Activation::Relu, *v);
            }
        }
        Activation::Sigmoid => {
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            if x86_64::sigmoid_slice(values) {
                return;
            }
            sigmoid_slice(values);
        }
        Activation::Tanh => {
            for v in values.iter_mut() {
                *v = libm::tanhf(*v);
            }
        }
    }
}

/// [`sigmoid`] of every value, eight at a time through [`sigmoid_block`].
#[inline(always)]
fn sigmoid_slice(values: &mut [f32]) {
    sigmoid_slice_by::<LANES>(values);
}

/// [`sigmoid`] of every value, `L` at a time through [`sigmoid_block`]; the
/// lane count only changes how wide the vectors are, never a result.
#[inline(always)]
fn sigmoid_slice_by<const L: usize>(values: &mut [f32]) {
    let mut blocks = values.chunks_exact_mut(L);
    for block in &mut blocks {
        if let Ok(block) = <&mut [f32; L]>::try_from(block) {
            sigmoid_block(block);
        }
    }
    for v in blocks.into_remainder() {
        *v = sigmoid(*v);
    }
}

// libm's `expf` (FreeBSD's e_expf.c): its constants, bit for bit.
const LN2_HI: f32 = f32::from_bits(0x3f31_7200); // 6.9314575195e-01
const LN2_LO: f32 = f32::from_bits(0x35bf_be8e); // 1.4286067653e-06
const INV_LN2: f32 = f32::from_bits(0x3fb8_aa3b); // 1.4426950216e+00
const EXP_P1: f32 = f32::from_bits(0x3e2a_aa8f); // 1.6666625440e-1
const EXP_P2: f32 = f32::from_bits(0xbb35_5215); // -2.7667332906e-3

/// Sigmoid of `L` values, bit-identical to [`sigmoid`].
///
/// `libm::expf` branches on its argument, which stops vectorization. For
/// 2⁻¹⁴ < |t| ≤ 80 its result is `y · 2^k` where `k` and `y` come from the
/// same f32 operations for every such `t`, with `k` from one of three
/// formulas; here all lanes take those operations in the same order (the
/// `k = 0` case reduces to the same arithmetic exactly: `t - 0·ln2hi = t`,
/// `0·ln2lo = +0`), `k` is selected, and `scalbnf(y, k)` is the exact product
/// `y · 2^k` because `|k| ≤ 116` keeps it a normal number. Lanes outside that
/// range (tiny, huge, NaN) call `libm::expf` itself.
#[inline(always)]
fn sigmoid_block<const L: usize>(v: &mut [f32; L]) {
    let mut e = [0.0f32; L];
    let mut fast = [false; L];
    for i in 0..L {
        let t = -v[i];
        let bits = t.to_bits();
        let hx = bits & 0x7fff_ffff;
        let negative = bits >> 31 != 0;
        let half = if negative { -0.5 } else { 0.5 };
        let k = if hx > 0x3f85_1592 {
            trunc_small(INV_LN2 * t + half)
        } else if hx > 0x3eb1_7218 {
            if negative {
                -1
            } else {
                1
            }
        } else {
            0
        };
        let kf = k as f32;
        let hi = t - kf * LN2_HI;
        let lo = kf * LN2_LO;
        let x = hi - lo;
        let xx = x * x;
        let c = x - xx * (EXP_P1 + xx * EXP_P2);
        let y = 1.0 + (x * c / (2.0 - c) - lo + hi);
        let scale = f32::from_bits((k.wrapping_add(127) as u32) << 23);
        e[i] = y * scale;
        fast[i] = hx > 0x3900_0000 && hx <= 0x42a0_0000;
    }
    if fast == [true; L] {
        for i in 0..L {
            v[i] = 1.0 / (1.0 + e[i]);
        }
    } else {
        for i in 0..L {
            v[i] = if fast[i] {
                1.0 / (1.0 + e[i])
            } else {
                sigmoid(v[i])
            };
        }
    }
}

/// `v as i32` for `|v| < 2^23`, from the bits. Rust's saturating float to
/// int cast makes LLVM convert lane by lane with range checks; this
/// vectorizes (a variable shift per lane). Other inputs give some value
/// without panicking; [`sigmoid_block`] only keeps lanes where `|v| < 117`.
#[inline(always)]
fn trunc_small(v: f32) -> i32 {
    let bits = v.to_bits();
    let exponent = ((bits >> 23) & 0xff) as i32 - 127;
    let mantissa = ((bits & 0x7f_ffff) | 0x80_0000) as i32;
    let magnitude = if exponent < 0 {
        0
    } else {
        mantissa >> (23 - exponent).clamp(0, 31)
    };
    if bits >> 31 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[allow(unsafe_code)]
mod x86_64;

pub mod int8;

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
    extern crate std;

    use super::*;
    use crate::rng::SplitMix64;

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

    /// Equal bits, or both NaN (NaN payloads differ between targets).
    fn same(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits() || a.is_nan() && b.is_nan()
    }

    /// The definition written out plainly, with `half` decoding the weights.
    fn reference_dense(w: &[u16], b: &[u16], x: &[f32], out: &mut [f32]) {
        let n = x.len();
        for (o, y) in out.iter_mut().enumerate() {
            let mut s = [0.0f32; 8];
            for i in 0..n {
                s[i % 8] += half::f16::from_bits(w[o * n + i]).to_f32() * x[i];
            }
            let dot = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
            *y = dot + half::f16::from_bits(b[o]).to_f32();
        }
    }

    /// Random f16 bits: mostly ordinary weights, with zeros of both signs,
    /// subnormals and (if `specials`) infinities and NaNs mixed in.
    fn random_f16(rng: &mut SplitMix64, specials: bool) -> u16 {
        let r = rng.next_u64();
        let sign = ((r >> 32) as u16 & 1) << 15;
        match r % 64 {
            0 => sign,
            1 => sign | (r >> 40) as u16 & 0x03ff,
            2 if specials => sign | 0x7c00,
            3 if specials => 0x7c00 | 1 | (r >> 40) as u16 & 0x03ff,
            _ => half::f16::from_f32((rng.next_unit() - 0.5) * 4.0).to_bits(),
        }
    }

    fn random_f32(rng: &mut SplitMix64, specials: bool) -> f32 {
        let r = rng.next_u64();
        match r % 64 {
            0 => 0.0,
            1 => -0.0,
            2 if specials => f32::INFINITY,
            3 if specials => f32::NEG_INFINITY,
            4 if specials => f32::NAN,
            5 => f32::from_bits((r >> 40) as u32), // subnormal
            _ => (rng.next_unit() - 0.5) * 8.0,
        }
    }

    #[test]
    fn dense_matches_the_scalar_definition_on_random_layers() {
        let mut rng = SplitMix64::new(99);
        let widths = [
            1, 2, 3, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 64, 100, 128, 256, 784,
        ];
        for case in 0..3000 {
            let specials = case % 3 == 0;
            let inputs = if case % 2 == 0 {
                widths[(rng.next_u64() % widths.len() as u64) as usize]
            } else {
                1 + (rng.next_u64() % 60) as usize
            };
            let outputs = 1 + (rng.next_u64() % 27) as usize;
            let w: std::vec::Vec<u16> = (0..inputs * outputs)
                .map(|_| random_f16(&mut rng, specials))
                .collect();
            let b: std::vec::Vec<u16> = (0..outputs)
                .map(|_| random_f16(&mut rng, specials))
                .collect();
            let x: std::vec::Vec<f32> = (0..inputs)
                .map(|_| random_f32(&mut rng, specials))
                .collect();
            let wb: std::vec::Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
            let bb: std::vec::Vec<u8> = b.iter().flat_map(|v| v.to_le_bytes()).collect();
            let mut expected = std::vec![0.0f32; outputs];
            reference_dense(&w, &b, &x, &mut expected);
            let mut fast = std::vec![1.0f32; outputs];
            dense_f16(&wb, &bb, &x, &mut fast);
            let mut portable = std::vec![1.0f32; outputs];
            dense_f16_portable(&wb, &bb, &x, &mut portable);
            for o in 0..outputs {
                assert!(
                    same(fast[o], expected[o]) && same(portable[o], expected[o]),
                    "case {case} ({inputs}x{outputs}) row {o}: {} / {} vs {} ({})",
                    fast[o],
                    portable[o],
                    expected[o],
                    backend()
                );
            }
        }
    }

    #[test]
    fn dense_tolerates_short_tensors() {
        let x = [1.0f32; 5];
        let w = [0u8; 2 * 5 * 2 + 3]; // two rows and a bit of a third
        let b = [0u8; 2];
        let mut out = [7.0f32; 4];
        dense_f16(&w, &b, &x, &mut out);
        assert_eq!(out, [0.0; 4]);
        let mut out = [7.0f32; 2];
        dense_f16(&w, &b, &[], &mut out);
        assert_eq!(out, [0.0; 2]);
    }

    fn check_sigmoid_slice(values: &mut [f32]) {
        let expected: std::vec::Vec<f32> = values.iter().map(|&v| sigmoid(v)).collect();
        let input = values.to_vec();
        activate_slice(Activation::Sigmoid, values);
        for ((&got, &want), &x) in values.iter().zip(&expected).zip(&input) {
            assert!(
                same(got, want),
                "sigmoid({x:e} = {:#x}): {got:e} vs {want:e}",
                x.to_bits()
            );
        }
    }

    #[test]
    fn sigmoid_slice_matches_libm_across_the_range() {
        // Every 1021st f32 bit pattern (about 4.2 million values, all
        // exponents, both signs), in slices whose lengths are not multiples
        // of 8 so both the 8-lane blocks and the tail run.
        let mut values = std::vec::Vec::with_capacity(4096 + 3);
        let mut bits = 0u64;
        while bits <= u32::MAX as u64 {
            values.push(f32::from_bits(bits as u32));
            if values.len() == 4096 + 3 {
                check_sigmoid_slice(&mut values);
                values.clear();
            }
            bits += 1021;
        }
        check_sigmoid_slice(&mut values);
        // Each branch boundary of libm's expf, on both sides and both signs.
        let mut edges = std::vec::Vec::new();
        for t in [
            0x3900_0000u32,
            0x3eb1_7218,
            0x3f85_1592,
            0x42a0_0000,
            0x42ae_ac50,
            0x42b1_7218,
            0x42cf_f1b5,
            0x7f80_0000,
        ] {
            for d in 0..5 {
                for sign in [0, 0x8000_0000] {
                    edges.push(f32::from_bits((t + d - 2) | sign));
                }
            }
        }
        check_sigmoid_slice(&mut edges);
    }

    /// All 2^32 inputs; about a minute. Run with `--ignored` after touching
    /// the sigmoid.
    #[test]
    #[ignore]
    fn sigmoid_slice_matches_libm_exhaustively() {
        let mut values = std::vec![0.0f32; 1 << 16];
        for high in 0..=u16::MAX as u32 {
            for (low, v) in values.iter_mut().enumerate() {
                *v = f32::from_bits(high << 16 | low as u32);
            }
            check_sigmoid_slice(&mut values);
        }
    }

    #[test]
    fn trunc_small_is_the_cast_below_2_pow_23() {
        let mut rng = SplitMix64::new(4);
        for _ in 0..200_000 {
            let v =
                (rng.next_unit() - 0.5) * 2.0 * f32::from_bits(rng.next_u64() as u32 % (150 << 23));
            if v.abs() < 8_388_608.0 {
                assert_eq!(trunc_small(v), v as i32, "{v}");
            }
        }
        for v in [
            0.0f32,
            -0.0,
            0.5,
            -0.5,
            1.0,
            -1.0,
            1.5,
            -1.5,
            116.99,
            -116.99,
            8_388_607.0,
        ] {
            assert_eq!(trunc_small(v), v as i32, "{v}");
        }
    }

    #[test]
    #[allow(clippy::excessive_precision, clippy::approx_constant)]
    fn constants_are_libms() {
        assert_eq!(LN2_HI, 6.9314575195e-01);
        assert_eq!(LN2_LO, 1.4286067653e-06);
        assert_eq!(INV_LN2, 1.4426950216e+00);
        assert_eq!(EXP_P1, 1.6666625440e-1);
        assert_eq!(EXP_P2, -2.7667332906e-3);
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

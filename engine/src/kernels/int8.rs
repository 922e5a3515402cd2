//! Integer kernels for layers with `i8` weights: sums of products in `i32`,
//! requantization in 64-bit integers, activations by clamping or by table.
//!
//! Integer addition is associative, so unlike the f16 kernels these need no
//! fixed summation order: any order, any vector width, any target gives the
//! same bits by construction.
//!
//! **Accumulator bound.** Inputs are codes of magnitude at most 255 (`u8`)
//! or 128 (`i8`), weights at most 128, a layer has at most
//! [`MAX_INT8_INPUTS`](crate::format::MAX_INT8_INPUTS) = 65,535 inputs and
//! a bias of at most [`MAX_INT8_BIAS`](crate::format::MAX_INT8_BIAS) = 2^23,
//! all checked when the model is parsed. So every partial sum lies within
//! `65,535 · 128 · 255 + 2^23 = 2,147,451,008 < 2^31 − 1`: no `i32` in this
//! module can overflow.

use crate::Activation;

/// An 8-bit activation code: `u8` (pixels, ReLU and sigmoid outputs) or
/// `i8` (latent values, identity and tanh outputs).
pub trait Code: Copy {
    /// The code's integer value.
    fn value(self) -> i32;
}

impl Code for u8 {
    #[inline(always)]
    fn value(self) -> i32 {
        self as i32
    }
}

impl Code for i8 {
    #[inline(always)]
    fn value(self) -> i32 {
        self as i32
    }
}

/// Little-endian `i32` number `i` of `bytes`; 0 past the end.
#[inline(always)]
pub fn i32_at(bytes: &[u8], i: usize) -> i32 {
    match bytes.get(4 * i..4 * i + 4) {
        Some(&[a, b, c, d]) => i32::from_le_bytes([a, b, c, d]),
        _ => 0,
    }
}

/// `Σ w[i]·x[i]` over the shorter of the two, `w` holding `i8` weights.
///
/// ```
/// let w = [1i8 as u8, (-2i8) as u8, 3];
/// assert_eq!(engine::kernels::int8::dot(&w, &[10u8, 20, 30]), 10 - 40 + 90);
/// ```
#[inline]
pub fn dot<X: Code>(w: &[u8], x: &[X]) -> i32 {
    // Bounded by the module's accumulator bound.
    w.iter()
        .zip(x)
        .map(|(&w, &x)| (w as i8 as i32) * x.value())
        .sum()
}

/// A row-major layer: calls `emit(o, acc)` with
/// `acc = bias[o] + dot(row o, x)` for each `o < outputs`, row `o` being
/// bytes `o·n .. (o+1)·n` of `weights`, `n = x.len()`. Missing rows or
/// biases count as zeros (a validated model has none missing).
///
/// ```
/// use engine::kernels::int8::rows;
/// let w = [1u8, 2, 3, 4]; // two rows of two
/// let bias: Vec<u8> = [100i32, -100].iter().flat_map(|b| b.to_le_bytes()).collect();
/// let mut out = [0; 2];
/// rows(&w, &bias, &[1u8, 1], 2, |o, acc| out[o] = acc);
/// assert_eq!(out, [103, -93]);
/// ```
#[inline]
pub fn rows<X: Code>(
    weights: &[u8],
    bias: &[u8],
    x: &[X],
    outputs: usize,
    mut emit: impl FnMut(usize, i32),
) {
    let n = x.len();
    for o in 0..outputs {
        let row = weights.get(o * n..(o + 1) * n).unwrap_or(&[]);
        emit(o, i32_at(bias, o) + dot(row, x));
    }
}

/// A column-major layer: `acc[o] = bias[o] + Σ_i w[i][o]·x[i]` for every
/// `o < acc.len()`, column `i` being bytes `i·m .. (i+1)·m` of `weights`,
/// `m = acc.len()`. Zero inputs skip their column: a 28×28 digit has about
/// 151 non-zero pixels of 784, so a first layer does a fifth of the work.
///
/// ```
/// use engine::kernels::int8::columns;
/// let w = [1u8, 2, 3, 4]; // two columns of two: column 0 is [1, 2]
/// let bias = [0u8; 8];
/// let mut acc = [0; 2];
/// columns(&w, &bias, &[1u8, 0], &mut acc);
/// assert_eq!(acc, [1, 2]);
/// ```
#[inline]
pub fn columns<X: Code>(weights: &[u8], bias: &[u8], x: &[X], acc: &mut [i32]) {
    for (o, a) in acc.iter_mut().enumerate() {
        *a = i32_at(bias, o);
    }
    let m = acc.len();
    if m == 0 {
        return;
    }
    for (column, &xi) in weights.chunks_exact(m).zip(x) {
        let v = xi.value();
        if v == 0 {
            continue;
        }
        for (a, &w) in acc.iter_mut().zip(column) {
            // Bounded by the module's accumulator bound.
            *a += (w as i8 as i32) * v;
        }
    }
}

/// `(acc · multiplier + 2^(shift−1)) >> shift` in 64-bit arithmetic: the
/// accumulator scaled by `multiplier / 2^shift`, rounded half up. `shift`
/// is clamped to `1..=62`. `|acc · multiplier| ≤ 2^62`, so nothing overflows.
///
/// ```
/// use engine::kernels::int8::requantize;
/// assert_eq!(requantize(1000, 1 << 20, 24), 63); // 1000 / 16 = 62.5 → 63
/// assert_eq!(requantize(-1000, 1 << 20, 24), -62); // −62.5 → −62
/// ```
#[inline(always)]
pub fn requantize(acc: i32, multiplier: i32, shift: u8) -> i64 {
    let shift = shift.clamp(1, 62) as u32;
    let p = mul_wide(acc, multiplier);
    // For shift ≥ 32 (what the writer picks for real models) the rounding
    // term and the division touch only the product's high word, so no
    // 64-bit shift routine runs on 32-bit cores. |p| ≤ 2^62 keeps
    // `high + 2^(shift−33)` within i32.
    let high = (p >> 32) as i32;
    match shift {
        33.. => ((high + (1 << (shift - 33))) >> (shift - 32)) as i64,
        32 => (high + ((p as u32) >> 31) as i32) as i64,
        _ => (p + (1i64 << (shift - 1))) >> shift,
    }
}

/// `a · b` exactly, from 16-bit halves: on cores without a 32×32→64
/// multiply (Cortex-M0+) this is four `MULS` instead of a call to a general
/// 64×64 routine.
///
/// ```
/// use engine::kernels::int8::mul_wide;
/// assert_eq!(mul_wide(i32::MIN, i32::MIN), 1i64 << 62);
/// assert_eq!(mul_wide(-3, 70_000), -210_000);
/// ```
#[inline(always)]
pub fn mul_wide(a: i32, b: i32) -> i64 {
    let (ah, al) = (a >> 16, (a & 0xffff) as u32);
    let (bh, bl) = (b >> 16, (b & 0xffff) as u32);
    // |ah·bh| ≤ 2^30; |ah·bl|, |al·bh| < 2^31; al·bl < 2^32: none overflows.
    // `black_box` keeps LLVM from recognizing the pattern and calling the
    // general 64×64 routine after all.
    let high = core::hint::black_box(ah * bh) as i64;
    let cross = (ah * bl as i32) as i64 + (al as i32 * bh) as i64;
    let low = (al * bl) as i64;
    (high << 32) + (cross << 16) + low
}

/// The output code (as a byte) of requantized value `v`: ReLU clamps to
/// `0..=255`, identity to `-127..=127` (stored as `i8` bits), sigmoid and
/// tanh look `v` up in `table` (entry `v + 256`, `v` clamped to
/// `-256..=255`; a short table gives 0).
///
/// ```
/// use engine::{kernels::int8::output_code, Activation};
/// assert_eq!(output_code(Activation::Relu, 300, None), 255);
/// assert_eq!(output_code(Activation::Identity, -300, None), (-127i8) as u8);
/// let table: Vec<u8> = (0..512).map(|i| (i / 2) as u8).collect();
/// assert_eq!(output_code(Activation::Sigmoid, 0, Some(&table)), 128);
/// ```
#[inline(always)]
pub fn output_code(activation: Activation, v: i64, table: Option<&[u8]>) -> u8 {
    match activation {
        Activation::Relu => v.clamp(0, 255) as u8,
        Activation::Identity => v.clamp(-127, 127) as i8 as u8,
        Activation::Sigmoid | Activation::Tanh => {
            let index = (v.clamp(-256, 255) + 256) as usize;
            table.and_then(|t| t.get(index)).copied().unwrap_or(0)
        }
    }
}

/// The integer value of an output code of a layer with `activation`.
#[inline(always)]
pub fn code_value(activation: Activation, code: u8) -> i32 {
    if activation.unsigned_codes() {
        code as i32
    } else {
        code as i8 as i32
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::rng::SplitMix64;
    use std::vec::Vec;

    #[test]
    fn rows_and_columns_agree_with_a_plain_definition() {
        let mut rng = SplitMix64::new(8);
        for case in 0..500 {
            let n = 1 + (rng.next_u64() % 70) as usize;
            let m = 1 + (rng.next_u64() % 40) as usize;
            let w: Vec<i8> = (0..n * m).map(|_| rng.next_u64() as i8).collect();
            let b: Vec<i32> = (0..m)
                .map(|_| (rng.next_u64() % (1 << 24)) as i32 - (1 << 23))
                .collect();
            let bias: Vec<u8> = b.iter().flat_map(|v| v.to_le_bytes()).collect();
            let x: Vec<u8> = (0..n)
                .map(|_| {
                    if rng.next_u64().is_multiple_of(3) {
                        0
                    } else {
                        rng.next_u64() as u8
                    }
                })
                .collect();
            let expect: Vec<i32> = (0..m)
                .map(|o| {
                    b[o] + (0..n)
                        .map(|i| w[o * n + i] as i32 * x[i] as i32)
                        .sum::<i32>()
                })
                .collect();
            let row_major: Vec<u8> = w.iter().map(|&v| v as u8).collect();
            let mut got = std::vec![0; m];
            rows(&row_major, &bias, &x, m, |o, acc| got[o] = acc);
            assert_eq!(got, expect, "case {case} rows");
            let col_major: Vec<u8> = (0..n * m).map(|j| w[(j % m) * n + j / m] as u8).collect();
            let mut acc = std::vec![0; m];
            columns(&col_major, &bias, &x, &mut acc);
            assert_eq!(acc, expect, "case {case} columns");
            let signed: Vec<i8> = x.iter().map(|&v| v as i8).collect();
            let expect: Vec<i32> = (0..m)
                .map(|o| {
                    b[o] + (0..n)
                        .map(|i| w[o * n + i] as i32 * signed[i] as i32)
                        .sum::<i32>()
                })
                .collect();
            rows(&row_major, &bias, &signed, m, |o, acc| got[o] = acc);
            assert_eq!(got, expect, "case {case} signed rows");
        }
    }

    #[test]
    fn the_accumulator_bound_is_reached_without_overflow() {
        // The widest layer at the extreme of every bound.
        let n = crate::format::MAX_INT8_INPUTS;
        let w = std::vec![(-128i8) as u8; n];
        let x = std::vec![255u8; n];
        let bias = (-(crate::format::MAX_INT8_BIAS as i32)).to_le_bytes();
        let mut acc = [0];
        columns(&w, &bias, &x, &mut acc);
        assert_eq!(acc[0] as i64, -(n as i64) * 128 * 255 - (1 << 23));
        rows(&w, &bias, &x, 1, |_, a| acc[0] = a);
        assert_eq!(acc[0] as i64, -(n as i64) * 128 * 255 - (1 << 23));
    }

    #[test]
    fn requantize_rounds_half_up_and_never_overflows() {
        for (acc, m, s) in [
            (i32::MAX, i32::MAX, 1u8),
            (i32::MIN, i32::MIN, 1),
            (i32::MIN, i32::MAX, 62),
            (0, 0, 0),
            (7, 1, 1),
            (-7, 1, 1),
        ] {
            let exact = acc as i128 * m as i128;
            let s = s.clamp(1, 62);
            let expect = (exact + (1i128 << (s - 1))) >> s;
            assert_eq!(requantize(acc, m, s) as i128, expect, "{acc} {m} {s}");
        }
        assert_eq!(requantize(7, 1, 1), 4);
        let mut rng = SplitMix64::new(3);
        for i in 0..200_000 {
            let a = rng.next_u64() as i32 >> (rng.next_u64() % 31);
            let b = rng.next_u64() as i32 >> (rng.next_u64() % 31);
            assert_eq!(mul_wide(a, b), a as i64 * b as i64, "{a} {b}");
            let s = 1 + (i % 62) as u8;
            let expect = ((a as i128 * b as i128 + (1i128 << (s - 1))) >> s) as i64;
            assert_eq!(requantize(a, b, s), expect, "{a} {b} {s}");
        }
        for a in [
            i32::MIN,
            i32::MIN + 1,
            -65536,
            -65535,
            -1,
            0,
            1,
            65535,
            65536,
            i32::MAX,
        ] {
            for b in [i32::MIN, -32768, -1, 0, 1, 0xffff, i32::MAX] {
                assert_eq!(mul_wide(a, b), a as i64 * b as i64, "{a} {b}");
            }
        }
        assert_eq!(requantize(-7, 1, 1), -3);
    }
}

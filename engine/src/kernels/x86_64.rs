//! AVX2 + F16C kernels for x86_64 hosts, chosen at run time (`std` only).
//!
//! This is the one module of the engine allowed `unsafe`, for two reasons
//! only: calling a `#[target_feature]` function (sound once
//! `is_x86_feature_detected!` has seen the features), and unaligned vector
//! loads through raw pointers in the hot loop (sound because every pointer is
//! derived from a slice whose length was checked to cover the load; each
//! site says which). Neither the embedded targets nor a `no_std` build
//! compile this module.
//!
//! Both kernels compute exactly the bits of the portable definitions in the
//! parent module; the tests there compare them on many random rows.

use core::arch::x86_64::*;

use super::LANES;

/// Whether this CPU has what the kernels below use. The standard library
/// caches the answer, so this is a load and a test after the first call.
pub(super) fn available() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("f16c")
}

/// [`super::dense_f16`] if the CPU allows and every row and bias is present;
/// returns false (having done nothing) otherwise.
pub(super) fn dense_f16(weights: &[u8], bias: &[u8], x: &[f32], out: &mut [f32]) -> bool {
    let (inputs, outputs) = (x.len(), out.len());
    let weight_bytes = inputs.checked_mul(outputs).and_then(|n| n.checked_mul(2));
    let complete = weight_bytes.is_some_and(|n| n <= weights.len())
        && outputs.checked_mul(2).is_some_and(|n| n <= bias.len());
    if inputs == 0 || outputs == 0 || !complete || !available() {
        return false;
    }
    // SAFETY: the CPU has AVX2 and F16C (checked by `available`), and
    // `weights` holds `outputs` rows of `2 * inputs` bytes and `bias` holds
    // `outputs` f16 values (checked above), which is what it requires.
    unsafe { dense_f16_avx2(weights, bias, x, out) };
    true
}

/// Rows computed together: eight independent accumulator chains hide the
/// add latency, and each load of `x` serves eight rows.
const ROWS: usize = 8;

/// The dense layer, eight rows at a time.
///
/// Requires AVX2 and F16C, `inputs = x.len() > 0`, `weights.len() >=
/// 2 * inputs * out.len()` and `bias.len() >= 2 * out.len()`.
///
/// Row `r`'s accumulator is one 8-lane register whose lane `j` is partial
/// sum `j` of the definition: lane `j` of chunk `c` is element `8c + j`, so
/// each lane adds exactly the definition's products in its order, with a
/// multiply and an add (never fused). The remainder chunk zeroes the weights
/// (masking off the next row's) and inputs past the row: `+0 · +0` adds
/// `+0`, which leaves a partial sum unchanged, as a sum that starts at `+0`
/// can never be `-0` in round-to-nearest. The horizontal
/// sum is the definition's tree: `hadd` pairs lanes (0+1, 2+3 | 4+5, 6+7),
/// a second `hadd` adds those pairs, and the two 128-bit halves are added
/// last. Then `+ bias`, as in the definition.
///
/// On x86_64 the inner loop compiles (checked with `objdump -d` on the
/// release build) to, per chunk of 8 inputs: one `vmovups` of `x`, and per
/// row a `vcvtph2ps ymm, [mem]` (the f16 load and conversion in one
/// instruction), a `vmulps` and a `vaddps` into that row's accumulator:
/// 8 accumulators in 8 ymm registers, no FMA, no spills.
#[target_feature(enable = "avx2,f16c")]
unsafe fn dense_f16_avx2(weights: &[u8], bias: &[u8], x: &[f32], out: &mut [f32]) {
    let inputs = x.len();
    let outputs = out.len();
    let row_bytes = 2 * inputs;
    let full = inputs / LANES;
    let rem = inputs % LANES;
    let mut x_tail = [0.0f32; LANES];
    x_tail[..rem].copy_from_slice(&x[LANES * full..]);
    let x_tail = _mm256_loadu_ps(x_tail.as_ptr());
    let mut mask = [0u32; LANES];
    for m in &mut mask[..rem] {
        *m = u32::MAX;
    }
    let tail_mask = _mm256_castsi256_ps(_mm256_loadu_si256(mask.as_ptr().cast()));
    let mut o = 0;
    while o < outputs {
        let n = (outputs - o).min(ROWS);
        // Past the last row, repeat it: its results are computed and dropped.
        let mut starts = [0usize; ROWS];
        if n == ROWS {
            // The common case, without the clamping below (which costs a
            // compare and a conditional move per row on short rows).
            for (r, s) in starts.iter_mut().enumerate() {
                *s = row_bytes * (o + r);
            }
        } else {
            for (r, s) in starts.iter_mut().enumerate() {
                *s = row_bytes * (o + r.min(n - 1));
            }
        }
        let mut rows = [weights.as_ptr(); ROWS];
        for (p, &s) in rows.iter_mut().zip(&starts) {
            // SAFETY: `s + row_bytes <= 2 * inputs * outputs <= weights.len()`
            // because `o + r.min(n - 1) < outputs`.
            *p = weights.as_ptr().add(s);
        }
        let mut acc = [_mm256_setzero_ps(); ROWS];
        for c in 0..full {
            // SAFETY: `8c + 8 <= 8 * full <= inputs = x.len()`.
            let xv = _mm256_loadu_ps(x.as_ptr().add(LANES * c));
            for r in 0..ROWS {
                // SAFETY: bytes `16c .. 16c + 16` of a row of `2 * inputs`
                // bytes, since `16c + 16 <= 16 * full <= 2 * inputs`.
                let w = _mm256_cvtph_ps(_mm_loadu_si128(rows[r].add(2 * LANES * c).cast()));
                acc[r] = _mm256_add_ps(acc[r], _mm256_mul_ps(w, xv));
            }
        }
        if rem > 0 {
            for (a, &s) in acc.iter_mut().zip(&starts) {
                let from = s + 2 * LANES * full;
                let bits = if from + 2 * LANES <= weights.len() {
                    // SAFETY: 16 bytes from `from`, in bounds as just checked.
                    _mm_loadu_si128(weights.as_ptr().add(from).cast())
                } else {
                    let mut tail = [0u8; 2 * LANES];
                    tail[..2 * rem].copy_from_slice(&weights[from..from + 2 * rem]);
                    _mm_loadu_si128(tail.as_ptr().cast())
                };
                // Lanes past the row belong to the next row: zero them.
                let w = _mm256_and_ps(_mm256_cvtph_ps(bits), tail_mask);
                *a = _mm256_add_ps(*a, _mm256_mul_ps(w, x_tail));
            }
        }
        let q0 = _mm256_hadd_ps(
            _mm256_hadd_ps(acc[0], acc[1]),
            _mm256_hadd_ps(acc[2], acc[3]),
        );
        let q1 = _mm256_hadd_ps(
            _mm256_hadd_ps(acc[4], acc[5]),
            _mm256_hadd_ps(acc[6], acc[7]),
        );
        let dots = _mm256_add_ps(
            _mm256_permute2f128_ps::<0x20>(q0, q1),
            _mm256_permute2f128_ps::<0x31>(q0, q1),
        );
        let b = if n == ROWS {
            // SAFETY: `2o + 16 = 2(o + n) <= 2 * outputs <= bias.len()`.
            _mm_loadu_si128(bias.as_ptr().add(2 * o).cast())
        } else {
            let mut b = [0u8; 2 * ROWS];
            b[..2 * n].copy_from_slice(&bias[2 * o..2 * (o + n)]);
            _mm_loadu_si128(b.as_ptr().cast())
        };
        let y = _mm256_add_ps(dots, _mm256_cvtph_ps(b));
        if n == ROWS {
            // SAFETY: `o + 8 = o + n <= outputs = out.len()`.
            _mm256_storeu_ps(out.as_mut_ptr().add(o), y);
        } else {
            let mut lanes = [0.0f32; ROWS];
            _mm256_storeu_ps(lanes.as_mut_ptr(), y);
            out[o..o + n].copy_from_slice(&lanes[..n]);
        }
        o += ROWS;
    }
}

/// [`super::sigmoid_slice`] compiled for AVX-512 or AVX2, whichever the CPU
/// has (AVX-512 first: 16 lanes halve the instructions; the divisions, whose
/// throughput per lane is the same at both widths, set the pace).
pub(super) fn sigmoid_slice(values: &mut [f32]) -> bool {
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F (checked just above); the function is
        // safe code otherwise.
        unsafe { sigmoid_slice_avx512(values) };
        return true;
    }
    if !available() {
        return false;
    }
    // SAFETY: the CPU has AVX2 (checked by `available`); the function is
    // safe code otherwise.
    unsafe { sigmoid_slice_avx2(values) };
    true
}

/// The portable sigmoid, inlined here so that LLVM may use 8-lane AVX2
/// vectors for it (the portable build only assumes SSE2).
#[target_feature(enable = "avx2")]
unsafe fn sigmoid_slice_avx2(values: &mut [f32]) {
    super::sigmoid_slice(values);
}

/// The portable sigmoid sixteen values at a time, inlined here so that LLVM
/// may use 16-lane AVX-512 vectors (and mask registers for the lane
/// selections). Each lane runs exactly the operations of the 8-lane version.
#[target_feature(enable = "avx512f")]
unsafe fn sigmoid_slice_avx512(values: &mut [f32]) {
    super::sigmoid_slice_by::<16>(values);
}

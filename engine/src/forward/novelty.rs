//! The novelty distance: cluster `c`'s weighted squared distance
//! `Σ_j w_j (h_j − μ_j)²` over the gate's last hidden layer `h`, read from
//! the workspace where the gate's pass left it (`FORMAT.md`, *Novelty*).
//!
//! An f16 model sums in `f32`, unit 0 first, each term `(d · d) · w` with
//! `d = h − μ`. An int8 model sums in integers: `d` = code − mean code
//! (both in the hidden layer's code range, checked when parsing, so
//! `|d| ≤ 255`), each term `w · d²` (`≤ 65,535 · 65,025 < 2^32`) into a
//! `u64`, and the sum times the cluster's scale is the distance. No
//! floating-point operation per unit: on a Cortex-M0+ the distance costs a
//! few thousand cycles, not the tens of thousands soft-float would.

use super::{f16, int8};
use crate::format::{Gaussians, Network, NoveltySection};
use crate::Workspace;

/// Cluster `cluster`'s novelty distance of the input the gate `gate` just
/// ran on (1 = at the cluster's threshold). The section was validated
/// against the gate, so `cluster < K` finds its tensors; `None` otherwise.
pub(crate) fn distance<const N: usize>(
    gate: Network<'_>,
    ws: &Workspace<N>,
    section: &NoveltySection<'_>,
    cluster: usize,
) -> Option<f32> {
    let units = section.units;
    let (means, weights, scale) = section.gaussians.cluster(cluster, units)?;
    Some(match section.gaussians {
        Gaussians::F32 { .. } => distance_f32(f16::last_hidden(gate, ws, units), means, weights),
        Gaussians::Int8 { .. } => {
            let (codes, signed) = int8::last_hidden(gate, ws, units);
            distance_codes(codes, signed, means, weights) as f32 * scale
        }
    })
}

/// `Σ (d · d) · w`, `d = h − μ`, in order; `means` and `weights` are `f32`
/// LE.
pub(crate) fn distance_f32(hidden: &[f32], means: &[u8], weights: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    for ((&h, m), w) in hidden
        .iter()
        .zip(means.chunks_exact(4))
        .zip(weights.chunks_exact(4))
    {
        let d = h - f32::from_le_bytes([m[0], m[1], m[2], m[3]]);
        sum += (d * d) * f32::from_le_bytes([w[0], w[1], w[2], w[3]]);
    }
    sum
}

/// `Σ w · d²`, `d` = code − mean, in integers; `means` are `i16` LE and
/// `weights` `u16` LE; codes are `i8` when `signed`, else `u8`. With codes
/// and means in one code range (`|d| ≤ 255`), no term overflows a `u32`
/// and no sum of fewer than 2^32 terms a `u64`.
pub(crate) fn distance_codes(codes: &[u8], signed: bool, means: &[u8], weights: &[u8]) -> u64 {
    let mut sum = 0u64;
    for ((&c, m), w) in codes
        .iter()
        .zip(means.chunks_exact(2))
        .zip(weights.chunks_exact(2))
    {
        let value = if signed { c as i8 as i32 } else { c as i32 };
        let d = value
            .abs_diff(i16::from_le_bytes([m[0], m[1]]) as i32)
            .min(255);
        let w = u16::from_le_bytes([w[0], w[1]]) as u32;
        sum += (w * (d * d)) as u64;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_bytes(v: &[f32]) -> std::vec::Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    extern crate std;

    #[test]
    fn f32_distance_is_the_weighted_square_sum() {
        let means = f32_bytes(&[1.0, -2.0, 0.5]);
        let weights = f32_bytes(&[0.5, 0.25, 4.0]);
        // (0.5·(3−1)²) + (0.25·(0+2)²) + (4·(0.5−0.5)²) = 2 + 1 + 0.
        assert_eq!(distance_f32(&[3.0, 0.0, 0.5], &means, &weights), 3.0);
    }

    #[test]
    fn integer_distance_by_hand_and_at_its_bound() {
        let means: std::vec::Vec<u8> = [10i16, 0, -5]
            .iter()
            .flat_map(|m| m.to_le_bytes())
            .collect();
        let weights: std::vec::Vec<u8> =
            [2u16, 3, 1].iter().flat_map(|w| w.to_le_bytes()).collect();
        // Unsigned codes 12, 255, 0: 2·2² + 3·255² + 1·5².
        assert_eq!(
            distance_codes(&[12, 255, 0], false, &means, &weights),
            8 + 3 * 65_025 + 25
        );
        // The same bytes as i8: 12, −1, 0: 2·2² + 3·1² + 1·5².
        assert_eq!(
            distance_codes(&[12, 255, 0], true, &means, &weights),
            8 + 3 + 25
        );
        // The largest term: weight 65,535, distance 255.
        let means: std::vec::Vec<u8> = [0i16; 2].iter().flat_map(|m| m.to_le_bytes()).collect();
        let weights: std::vec::Vec<u8> =
            [u16::MAX; 2].iter().flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(
            distance_codes(&[255, 255], false, &means, &weights),
            2 * 65_535 * 65_025
        );
    }
}

//! A small seeded random generator for weights, noise, shuffling and
//! augmentation. candle's CPU generator cannot be seeded, so every random
//! number the trainer uses comes from here and the same `--seed` gives the
//! same model. The state is one `u64`, saved in checkpoints for exact resume.

use serde::{Deserialize, Serialize};

/// SplitMix64 (Steele, Lea & Flood 2014): one `u64` of state, full period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator for `seed`; different `stream`s give independent sequences.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut r = Rng {
            state: seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03),
        };
        r.next_u64();
        r
    }

    /// A generator whose state is `state` as is (no mixing step): the
    /// label-free partition ([`crate::init`]) starts from its seed this way
    /// and derives independent generators with [`fork`](Self::fork).
    pub fn from_state(state: u64) -> Self {
        Rng { state }
    }

    /// An independent generator for `stream`, derived from this one's
    /// state (which it leaves as is).
    pub fn fork(&self, stream: u64) -> Self {
        Rng::new(self.state, stream)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        // The engine's SplitMix64, so trainer and engine share one definition.
        let mut g = engine::rng::SplitMix64::new(self.state);
        let bits = g.next_u64();
        self.state = g.state();
        bits
    }

    /// Uniform in `[0, 1)` with 53 bits.
    pub fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit_f64()
    }

    /// Uniform integer in `0..n` (`n > 0`), by Lemire's multiply-shift.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// A standard normal draw (Box–Muller, one value per two uniforms).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit_f64();
        let u2 = self.unit_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// `n` standard normal draws as f32.
    pub fn normals(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.normal() as f32).collect()
    }

    /// Shuffles `v` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_state_and_forks() {
        let a: Vec<u64> = (0..5).map(|_| Rng::from_state(7).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut r = Rng::from_state(7);
        let first = r.next_u64();
        assert_ne!(first, r.next_u64());
        assert_ne!(
            Rng::from_state(7).fork(1).next_u64(),
            Rng::from_state(7).fork(2).next_u64()
        );
        // A fork is the seeded generator of the parent's state.
        assert_eq!(Rng::from_state(9).fork(3), Rng::new(9, 3));
    }

    #[test]
    fn seeded_and_streams_differ() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7, 0);
                move |_| r.next_u64()
            })
            .collect();
        let mut r = Rng::new(7, 0);
        assert_eq!(a, (0..4).map(|_| r.next_u64()).collect::<Vec<_>>());
        assert_ne!(Rng::new(7, 1).next_u64(), Rng::new(7, 0).next_u64());
    }

    #[test]
    fn normal_moments_and_below_range() {
        let mut r = Rng::new(1, 2);
        let xs: Vec<f64> = (0..20000).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
        let mut seen = [false; 5];
        for _ in 0..200 {
            seen[r.below(5)] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<usize> = (0..100).collect();
        Rng::new(3, 0).shuffle(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
    }
}

//! A small seeded random generator, identical on every target.

/// SplitMix64: 64 bits of state, passes BigCrush, trivial on 32-bit cores
/// (a few 64-bit multiplies per draw). The same seed gives the same stream
/// everywhere.
///
/// ```
/// let mut a = engine::rng::SplitMix64::new(7);
/// let mut b = engine::rng::SplitMix64::new(7);
/// assert_eq!(a.next_u64(), b.next_u64());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub const fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The current state: `SplitMix64::new(g.state())` continues `g`'s stream.
    pub const fn state(&self) -> u64 {
        self.state
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `(0, 1]`, with 24 random bits (never 0, so `ln` is finite).
    pub fn next_unit(&mut self) -> f32 {
        ((self.next_u64() >> 40) as u32 + 1) as f32 * (1.0 / 16_777_216.0)
    }

    /// Fills `out` with standard normal values (Box–Muller, pairs of draws).
    pub fn fill_normal(&mut self, out: &mut [f32]) {
        for pair in out.chunks_mut(2) {
            let u1 = self.next_unit();
            let u2 = self.next_unit();
            let r = libm::sqrtf(-2.0 * libm::logf(u1));
            let theta = 2.0 * core::f32::consts::PI * u2;
            pair[0] = r * libm::cosf(theta);
            if let Some(second) = pair.get_mut(1) {
                *second = r * libm::sinf(theta);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_first_outputs() {
        // Reference values of SplitMix64 seeded with 0.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn normals_have_unit_moments() {
        let mut r = SplitMix64::new(1);
        let mut buf = [0.0f32; 4096];
        r.fill_normal(&mut buf);
        let mean = buf.iter().sum::<f32>() / buf.len() as f32;
        let var = buf.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / buf.len() as f32;
        assert!(mean.abs() < 0.05, "{mean}");
        assert!((var - 1.0).abs() < 0.07, "{var}");
    }
}

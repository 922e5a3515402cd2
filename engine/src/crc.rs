//! CRC-32 (IEEE 802.3, reflected, as in zlib and PNG), table driven.

const fn make_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

// 1 KiB in flash, computed at compile time. One byte a step: on a
// Cortex-M0+ (8 low registers) a four-bytes-a-step version measured slower
// (7.45 M against 5.6 M cycles for the int8 default model's 565 KB in
// rp2040js), its unrolled loop spilling to the stack.
static TABLE: [u32; 256] = make_table();

/// CRC-32 of `data` (the zlib/PNG polynomial), as stored in a model file's header.
///
/// ```
/// assert_eq!(engine::crc32(b"123456789"), 0xCBF4_3926);
/// ```
// Never inlined: inlined into a caller with more live values (the device
// protocol's frame checks), its loop spilled on a Cortex-M0+ and the model
// check went from 5.7 M to 7.4 M cycles in rp2040js.
#[inline(never)]
pub fn crc32(data: &[u8]) -> u32 {
    // Four bytes a loop iteration, one table: the same steps as one byte a
    // step, with a quarter of the loop's compare and branch, and no more
    // live values than the byte loop's, so nothing spills. Measured in
    // rp2040js (.ci/firmware.sh): the int8 default model's check at boot
    // went from 6.34 M to 5.90 M cycles.
    let mut c = !0u32;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        c = TABLE[((c ^ w[0] as u32) & 0xFF) as usize] ^ (c >> 8);
        c = TABLE[((c ^ w[1] as u32) & 0xFF) as usize] ^ (c >> 8);
        c = TABLE[((c ^ w[2] as u32) & 0xFF) as usize] ^ (c >> 8);
        c = TABLE[((c ^ w[3] as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    for &b in words.remainder() {
        c = TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One byte a step, straight from the polynomial.
    fn bitwise(data: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in data {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }

    #[test]
    fn matches_the_bitwise_definition_at_every_length() {
        let data: [u8; 67] = core::array::from_fn(|i| (i as u8).wrapping_mul(151) ^ 0x5a);
        for n in 0..=data.len() {
            for start in 0..4.min(n + 1) {
                assert_eq!(
                    crc32(&data[start..n]),
                    bitwise(&data[start..n]),
                    "{start}..{n}"
                );
            }
        }
        assert_eq!(crc32(b""), 0);
    }
}

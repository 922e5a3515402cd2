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

// 1 KiB in flash, computed at compile time; byte-at-a-time keeps it small on
// microcontrollers while costing ~1 ms per 100 KiB there.
static TABLE: [u32; 256] = make_table();

/// CRC-32 of `data` (the zlib/PNG polynomial), as stored in a model file's header.
///
/// ```
/// assert_eq!(engine::crc32(b"123456789"), 0xCBF4_3926);
/// ```
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

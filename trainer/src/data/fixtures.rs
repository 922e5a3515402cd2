//! Small image sets made in code, for tests and examples: three kinds of
//! 8×8 images that a label-free method can tell apart.

use std::path::Path;

/// Image `i` of a toy 8×8 set of three kinds (`i % 3`: a thick vertical
/// bar, a thick horizontal bar, a box), each with three pixels flipped
/// (a fixed xorshift of `i`), dark ink (0) on white paper (255), as a scan
/// would be. Returns the kind and the 64 pixels, row-major.
///
/// ```
/// let (kind, px) = trainer::data::fixtures::toy(4);
/// assert_eq!((kind, px.len()), (1, 64));
/// ```
pub fn toy(i: usize) -> (u8, Vec<u8>) {
    let kind = (i % 3) as u8;
    let mut px = vec![255u8; 64];
    for y in 1..7 {
        for x in 1..7 {
            let ink = match kind {
                0 => (3..5).contains(&x),
                1 => (3..5).contains(&y),
                _ => x == 1 || x == 6 || y == 1 || y == 6,
            };
            if ink {
                px[y * 8 + x] = 0;
            }
        }
    }
    let mut state = i as u64 * 0x9E37_79B9_7F4A_7C15 + 1;
    for _ in 0..3 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let p = (state % 64) as usize;
        px[p] = 255 - px[p];
    }
    (kind, px)
}

/// Writes `pixels` (`width × height`, one byte each) as a grey PNG,
/// creating its folder.
pub fn write_png(path: &Path, width: u32, height: u32, pixels: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let img = image::GrayImage::from_raw(width, height, pixels.to_vec())
        .ok_or_else(|| anyhow::anyhow!("{} bytes are not {width}x{height}", pixels.len()))?;
    img.save(path)?;
    Ok(())
}

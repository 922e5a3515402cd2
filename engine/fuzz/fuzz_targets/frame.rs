//! `engine::frame::mnist` on arbitrary drawings and shapes: it must never
//! panic, must refuse exactly the wrong lengths (leaving `out` untouched),
//! and must not brighten any pixel beyond the drawing's brightest.
#![no_main]

use engine::frame::mnist;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    // Shapes up to 255×255 in and 63×63 out, sometimes inconsistent with
    // the buffers (a short drawing, a wrong output length).
    let (w, h) = (data[0] as usize, data[1] as usize);
    let (ow, oh) = (data[2] as usize % 64, data[3] as usize % 64);
    let ink = &data[4..];
    let out_len = if ow % 7 == 3 { ow * oh + 1 } else { ow * oh };
    let mut out = vec![7u8; out_len];
    match mnist(ink, w, h, &mut out, ow, oh) {
        Err(_) => {
            assert!(w * h != ink.len() || out_len != ow * oh || out_len == 0);
            assert!(out.iter().all(|&v| v == 7));
        }
        Ok(has_ink) => {
            assert_eq!(has_ink, ink.iter().any(|&v| v != 0));
            let max = ink.iter().copied().max().unwrap_or(0);
            assert!(out.iter().all(|&v| v <= max));
        }
    }
});

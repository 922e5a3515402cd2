//! Native timing of the page's own calls (the exports of `web/src/lib.rs`),
//! for comparison with the browser: microseconds per call, best of 5 rounds.
//!
//! ```sh
//! cargo run --release -p web --example host_timing -- MODEL [IMAGE] [CALLS]
//! ```
//! `IMAGE` is a raw image of `pixels()` bytes to classify (default: blank);
//! with `--features host-simd` the engine runs its x86_64 SIMD kernels, as the
//! harness does, instead of the portable code the wasm runs.

use std::time::Instant;

fn best_of_5(calls: usize, mut f: impl FnMut(usize)) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t0 = Instant::now();
        for i in 0..calls {
            f(i);
        }
        best = best.min(t0.elapsed().as_secs_f64() * 1e6 / calls as f64);
    }
    best
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = args
        .first()
        .ok_or("usage: host_timing MODEL [IMAGE] [CALLS]")?;
    let bytes = std::fs::read(model).map_err(|e| format!("{model}: {e}"))?;
    let info = web::load_bytes(&bytes)?;
    let experts = info
        .split("\"experts\":")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse::<usize>().ok())
        .ok_or("no expert count in the header")?;
    if let Some(image) = args.get(1) {
        web::set_pixels(&std::fs::read(image).map_err(|e| format!("{image}: {e}"))?);
    }
    let calls: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(300);
    let classify_us = best_of_5(calls, |_| {
        std::hint::black_box(web::classify());
    });
    let generate_us = best_of_5(calls, |i| {
        std::hint::black_box(web::generate(i % experts, i as u32));
    });
    // FNV-1a over the f32 bits of generate(k, seed), every expert, seeds 0-3
    // (the page's moe.generateHash computes the same).
    let mut fnv = 0x811c_9dc5u32;
    for k in 0..experts {
        for seed in 0..4 {
            web::generate(k, seed);
            for v in web::output() {
                fnv = (fnv ^ v.to_bits()).wrapping_mul(16_777_619);
            }
        }
    }
    let kernels = if cfg!(feature = "host-simd") {
        "std (SIMD)"
    } else {
        "portable"
    };
    println!(
        "{{\"kernels\":\"{kernels}\",\"classify_us\":{classify_us:.2},\"generate_us\":{generate_us:.2},\"generate_fnv\":\"{fnv:x}\"}}"
    );
    Ok(())
}

//! Arbitrary bytes as a whole model file (frame, checksum and body).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (params, file) = engine_fuzz::Params::take(data);
    if let Ok(model) = engine::Model::from_bytes(file) {
        engine_fuzz::exercise(&model, &params);
    }
});

//! Arbitrary bytes as the body of a model file. The frame (and its CRC) is
//! made to match, so that mutations reach the body decoder and validation
//! instead of dying at the checksum; both the checked and the CRC-skipping
//! entry points must then agree. The seed's low bit picks the frame's
//! version: 2 (flat description) or 3 (two-level).
#![no_main]

use engine::{Model, ModelFile, ModelRepr, FORMAT_VERSION, MAGIC, TWO_LEVEL_VERSION};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (params, body) = engine_fuzz::Params::take(data);
    let mut file = Vec::with_capacity(20 + body.len());
    file.extend_from_slice(&MAGIC);
    let version = if params.seed & 1 == 0 {
        FORMAT_VERSION
    } else {
        TWO_LEVEL_VERSION
    };
    file.extend_from_slice(&version.to_le_bytes());
    file.extend_from_slice(&[0, 0]);
    file.extend_from_slice(&(body.len() as u32).to_le_bytes());
    file.extend_from_slice(&engine::crc32(body).to_le_bytes());
    file.extend_from_slice(body);
    let checked = Model::from_bytes(&file);
    let skipped = ModelFile::new_checked_skip_crc(&file[..])
        .and_then(|f| ModelRepr::parse_file(&f))
        .map(Model::from_repr);
    assert_eq!(checked.as_ref().err(), skipped.as_ref().err());
    if let Ok(model) = checked {
        engine_fuzz::exercise(&model, &params);
    }
});

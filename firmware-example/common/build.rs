//! Embeds the model named by `MODEL_BIN` (default: `../models/default-int8.bin`)
//! and checks, at build time, that the engine can run it: it must parse, and
//! the workspace is sized from its widest layer.

use std::path::PathBuf;
use std::{env, fs};

fn main() {
    if env::var_os("CARGO_FEATURE_EMBED").is_none() {
        return;
    }
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets this"));
    println!("cargo:rerun-if-env-changed=MODEL_BIN");
    let path = match env::var_os("MODEL_BIN") {
        Some(p) => PathBuf::from(p),
        None => manifest.join("../models/default-int8.bin"),
    };
    println!("cargo:rerun-if-changed={}", path.display());
    let bytes = fs::read(&path).unwrap_or_else(|e| {
        panic!("MODEL_BIN: cannot read {}: {e}", path.display());
    });
    let model = engine::Model::from_bytes(&bytes).unwrap_or_else(|e| {
        panic!("MODEL_BIN: {} is not a usable model: {e}", path.display());
    });
    // f16 models generate f32 images in the workspace; integer models write
    // pixels to a buffer of their own and need only their hidden layers.
    let workspace = match model.element_type() {
        engine::ElementType::F16 => model.workspace_len().max(model.pixels()).max(784),
        engine::ElementType::Int8 => model.workspace_len(),
    };
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets this"));
    fs::write(out.join("model.bin"), &bytes).expect("write OUT_DIR/model.bin");
    fs::write(
        out.join("capacity.rs"),
        format!(
            "/// Slots per workspace buffer: what the embedded model needs (f16: its widest layer, at least 784).\n\
             pub const WORKSPACE_LEN: usize = {workspace};\n"
        ),
    )
    .expect("write OUT_DIR/capacity.rs");
    println!("cargo:rerun-if-changed=data/digits.bin");
}

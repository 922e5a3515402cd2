//! Embeds the model named by `MODEL_BIN` (default: `../models/default-int8.bin`)
//! and checks, at build time, that the engine can run it: it must parse, and
//! the workspace is sized from its widest layer. Embeds the digits named by
//! `DIGITS_BIN` (default: `data/digits.bin`, 8 MNIST test digits of 28×28;
//! for a model of another image size, `fw-host digits --model` writes them
//! framed into its shape), and refuses digits of another shape than the
//! model's.

use std::path::PathBuf;
use std::{env, fs};

/// The file named by the environment variable `var` (else `default`,
/// relative to this crate), its path and bytes; rebuilds when either changes.
fn input(var: &str, default: &str) -> (PathBuf, Vec<u8>) {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets this"));
    println!("cargo:rerun-if-env-changed={var}");
    let path = env::var_os(var).map_or_else(|| manifest.join(default), PathBuf::from);
    println!("cargo:rerun-if-changed={}", path.display());
    let bytes =
        fs::read(&path).unwrap_or_else(|e| panic!("{var}: cannot read {}: {e}", path.display()));
    (path, bytes)
}

fn main() {
    if env::var_os("CARGO_FEATURE_EMBED").is_none() {
        return;
    }
    let (path, bytes) = input("MODEL_BIN", "../models/default-int8.bin");
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
             pub const WORKSPACE_LEN: usize = {workspace};\n\
             /// Pixels of the embedded model's images.\n\
             pub const PIXELS: usize = {pixels};\n\
             /// Experts of the embedded model.\n\
             pub const EXPERTS: usize = {experts};\n",
            pixels = model.pixels(),
            experts = model.experts(),
        ),
    )
    .expect("write OUT_DIR/capacity.rs");
    let (digits_path, digits) = input("DIGITS_BIN", "data/digits.bin");
    let record = 1 + model.pixels();
    if digits.is_empty() || !digits.len().is_multiple_of(record) {
        panic!(
            "DIGITS_BIN: {} is {} bytes, not records of {record} (a label and the model's {}x{} pixels: write them with `fw-host digits --model`)",
            digits_path.display(),
            digits.len(),
            model.header().image.width,
            model.header().image.height
        );
    }
    fs::write(out.join("digits.bin"), &digits).expect("write OUT_DIR/digits.bin");
}

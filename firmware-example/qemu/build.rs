//! Picks the board for the target being built (its linker memory layout, and
//! `cfg(board = "...")` for the code) and passes the runtime's linker script.
//! The layouts live in `memory/`, never in the package root, where the linker
//! would find a `memory.x` on its own.

use std::path::PathBuf;
use std::{env, fs};

fn main() {
    println!(
        "cargo:rustc-check-cfg=cfg(board, values(\"microbit\", \"mps2-an385\", \"mps2-an386\", \"riscv-virt\"))"
    );
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let target = env::var("TARGET").unwrap_or_default();
    let board = match arch.as_str() {
        "arm" if env::var_os("CARGO_FEATURE_MICROBIT").is_some() => "microbit",
        // Cortex-M4F (thumbv7em-none-eabihf: f32 in hardware; cortex-m-rt
        // enables the FPU before main on -eabihf targets).
        "arm" if target.starts_with("thumbv7em") => "mps2-an386",
        "arm" => "mps2-an385",
        "riscv32" => "riscv-virt",
        // Host builds (cargo check, clippy) link nothing.
        _ => return,
    };
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let layout = fs::read(format!("memory/{board}.x")).expect("memory layout");
    fs::write(out.join("memory.x"), layout).expect("write OUT_DIR/memory.x");
    println!("cargo:rustc-cfg=board=\"{board}\"");
    println!("cargo:rustc-link-search={}", out.display());
    if arch == "riscv32" {
        // riscv-rt's link.x expects the layout given first (cortex-m-rt's
        // includes memory.x itself).
        println!("cargo:rustc-link-arg-bins=-Tmemory.x");
    }
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rerun-if-changed=memory/{board}.x");
    println!("cargo:rerun-if-changed=build.rs");
}

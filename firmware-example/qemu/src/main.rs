//! The engine's test firmware for QEMU: runs the shared boot sequence
//! (firmware-common) with output on semihosting and exits with its status,
//! so a script can compare the output with the host's and read the costs.
//!
//! Costs are counted in executed instructions: QEMU runs with
//! `-icount shift=0`, so on Arm SysTick advances a fixed number of
//! instructions per tick (calibrated at boot against a loop of known length)
//! and on RISC-V `minstret` counts them.
#![no_std]
#![no_main]

use core::fmt::Write;

use firmware_common::{Counter, LineBuffer};

#[cfg(target_arch = "arm")]
#[path = "arm.rs"]
mod arch;
#[cfg(target_arch = "riscv32")]
#[path = "riscv.rs"]
mod arch;

/// Iterations of the calibration loop (two instructions each).
const CALIBRATION_LOOPS: u32 = 1_000_000;

fn print(bytes: &[u8]) {
    use semihosting::io::Write as _;
    if let Ok(mut out) = semihosting::io::stdout() {
        let _ = out.write_all(bytes);
    }
}

/// Runs the boot sequence and exits QEMU: 0 on success, 1 on failure.
fn boot() -> ! {
    let mut out = LineBuffer::<_, 128>::new(print);
    let mut counter = arch::counter();
    let _ = writeln!(out, "target {}", arch::TARGET);
    let _ = writeln!(
        out,
        "calibration: a loop of {} instructions counted as {} {}",
        2 * CALIBRATION_LOOPS,
        arch::calibration_check(&mut counter),
        counter.unit()
    );
    // SAFETY: the linker script's stack region is this core's only stack.
    let result = unsafe { firmware_common::boot(&mut out, &mut counter, arch::stack()) };
    let code = match result {
        Ok(_) => {
            let _ = writeln!(out, "done");
            0
        }
        Err(e) => {
            let _ = writeln!(out, "FAIL {e}");
            1
        }
    };
    out.flush();
    semihosting::process::exit(code)
}

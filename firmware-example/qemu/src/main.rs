//! The engine's test firmware for QEMU: runs the shared boot sequence
//! (firmware-common) with output on semihosting, then either exits with its
//! status or serves the host protocol on the machine's UART.
//!
//! **Boot test** (what `.ci/firmware.sh` and `cargo run` do): the boot
//! report goes to semihosting stdout and the firmware exits QEMU through
//! semihosting, 0 on success, so a script can compare the output with the
//! host's and read the costs.
//!
//! **Serving** (what `.ci/device.sh` does): when the semihosting command
//! line holds the word `serve` (`-semihosting-config
//! enable=on,target=native,arg=fw-qemu,arg=serve`, or `-append serve`), the
//! boot report goes to semihosting *stderr* instead, and after its `done`
//! the firmware answers the protocol (`../PROTOCOL.md`, through
//! `firmware_common::serve_embedded`) on the machine's first UART, which
//! QEMU's `-serial stdio` connects to its stdin and stdout:
//!
//! | machine | UART (`serial0`) | driver |
//! |---|---|---|
//! | `virt` (rv32imc) | NS16550A at `0x1000_0000` | `ns16550.rs` |
//! | `mps2-an385`, `mps2-an386` | CMSDK APB UART0 at `0x4000_4000` | `cmsdk_uart.rs` |
//! | `microbit` | nRF51 UART0 at `0x4000_2000` | `nrf51_uart.rs` |
//!
//! QEMU's stdout thus carries nothing but frames. A serving run ends with a
//! `shutdown` request (this is a test build: it honours it, answers, then
//! exits QEMU with status 0); QEMU does not notice its stdin closing, so
//! otherwise the host ends it (`harness device --spawn` kills it a second
//! after closing its stdin). A boot that fails exits with status 1 and
//! serves nothing.
//!
//! Why a command-line word: the boot test runs with `-serial none` and
//! must end by itself, and a firmware cannot tell whether QEMU connected
//! its UART to anything; the word keeps one ELF for both runs (the one
//! `.ci/firmware.sh` tests is the one `.ci/device.sh` serves), and leaves
//! the boot test's command and output exactly as they were.
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

mod registers;
#[cfg(any(board = "mps2-an385", board = "mps2-an386"))]
#[path = "cmsdk_uart.rs"]
mod uart;
#[cfg(board = "microbit")]
#[path = "nrf51_uart.rs"]
mod uart;
#[cfg(board = "riscv-virt")]
#[path = "ns16550.rs"]
mod uart;

/// Iterations of the calibration loop (two instructions each).
const CALIBRATION_LOOPS: u32 = 1_000_000;

/// The name, version and machine `info` reports.
#[cfg(board = "microbit")]
const FIRMWARE: &str = concat!("fw-qemu ", env!("CARGO_PKG_VERSION"), " (QEMU microbit)");
#[cfg(board = "mps2-an385")]
const FIRMWARE: &str = concat!("fw-qemu ", env!("CARGO_PKG_VERSION"), " (QEMU mps2-an385)");
#[cfg(board = "mps2-an386")]
const FIRMWARE: &str = concat!("fw-qemu ", env!("CARGO_PKG_VERSION"), " (QEMU mps2-an386)");
#[cfg(board = "riscv-virt")]
const FIRMWARE: &str = concat!(
    "fw-qemu ",
    env!("CARGO_PKG_VERSION"),
    " (QEMU riscv32 virt)"
);

fn print(bytes: &[u8]) {
    use semihosting::io::Write as _;
    if let Ok(mut out) = semihosting::io::stdout() {
        let _ = out.write_all(bytes);
    }
}

fn eprint(bytes: &[u8]) {
    use semihosting::io::Write as _;
    if let Ok(mut out) = semihosting::io::stderr() {
        let _ = out.write_all(bytes);
    }
}

/// Whether the semihosting command line holds the word `serve`.
fn serve_requested() -> bool {
    let mut buf = [core::mem::MaybeUninit::<u8>::uninit(); 128];
    match semihosting::sys::arm_compat::sys_get_cmdline_uninit(&mut buf) {
        Ok(line) => line.split(|&b| b == b' ').any(|word| word == b"serve"),
        Err(_) => false,
    }
}

/// Runs the boot sequence, then exits QEMU (0 on success, 1 on failure) or,
/// if asked to and the boot succeeded, serves the protocol (see the crate
/// docs).
fn boot() -> ! {
    let serve = serve_requested();
    let sink: fn(&[u8]) = if serve { eprint } else { print };
    let mut out = LineBuffer::<_, 128>::new(sink);
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
    if serve && code == 0 {
        serve_uart(counter, &mut out)
    }
    semihosting::process::exit(code)
}

/// Serves the protocol on the machine's UART until a `shutdown`, then exits
/// QEMU: 0, or 1 if the model could not be served.
fn serve_uart<C: Counter, W: Write>(counter: C, out: &mut W) -> ! {
    let mut port = uart::Uart::new();
    let _ = writeln!(out, "serving the protocol on {}", uart::NAME);
    // SAFETY: the stack region boot painted, the one this code runs on.
    let result = unsafe {
        firmware_common::serve_embedded(counter, [&mut port], FIRMWARE, arch::stack(), true)
    };
    port.flush();
    match result {
        Ok(()) => semihosting::process::exit(0),
        Err(e) => {
            let _ = writeln!(out, "FAIL serving: {e}");
            semihosting::process::exit(1)
        }
    }
}

//! RV32IMC on QEMU virt: riscv-rt start-up, `minstret` as the instruction
//! counter, an exception handler that fails the run.

use core::ops::Range;

use firmware_common::Counter;

use crate::CALIBRATION_LOOPS;

pub const TARGET: &str = "qemu riscv32 virt (rv32imc, the ESP32-C3's instruction set)";

#[riscv_rt::entry]
fn main() -> ! {
    crate::boot()
}

#[export_name = "ExceptionHandler"]
fn exception_handler(_frame: &riscv_rt::TrapFrame) -> ! {
    let (cause, pc): (usize, usize);
    // SAFETY: reading machine-mode CSRs has no side effects.
    unsafe {
        core::arch::asm!("csrr {0}, mcause", "csrr {1}, mepc", out(reg) cause, out(reg) pc);
    }
    semihosting::eprintln!("FAIL exception mcause {cause} at pc {pc:#010x}");
    semihosting::process::exit(3)
}

/// The stack region riscv-rt's linker script reserves.
pub fn stack() -> Range<usize> {
    extern "C" {
        static __estack: u8;
        static __sstack: u8;
    }
    // Only the addresses of the linker symbols are taken, never their values.
    core::ptr::addr_of!(__estack) as usize..core::ptr::addr_of!(__sstack) as usize
}

/// Executes exactly `2 * n` instructions (n > 0).
#[inline(never)]
fn spin(n: u32) {
    // SAFETY: a register-only countdown loop; touches no memory.
    unsafe {
        core::arch::asm!("2:", "addi {0}, {0}, -1", "bnez {0}, 2b", inout(reg) n => _, options(nomem, nostack));
    }
}

/// Instructions retired, from the 64-bit `minstret` counter.
pub struct Instructions;

impl Counter for Instructions {
    fn unit(&self) -> &'static str {
        "instructions"
    }
    fn hz(&self) -> Option<u32> {
        None
    }
    fn now(&mut self) -> u64 {
        loop {
            let (hi, lo, hi2): (u32, u32, u32);
            // SAFETY: reading counters has no side effects.
            unsafe {
                core::arch::asm!(
                    "csrr {0}, minstreth",
                    "csrr {1}, minstret",
                    "csrr {2}, minstreth",
                    out(reg) hi, out(reg) lo, out(reg) hi2,
                    options(nomem, nostack)
                );
            }
            if hi == hi2 {
                return (hi as u64) << 32 | lo as u64;
            }
        }
    }
}

pub fn counter() -> Instructions {
    Instructions
}

/// The calibration loop measured with `minstret`: checks the counter.
pub fn calibration_check(counter: &mut Instructions) -> u64 {
    let start = counter.now();
    spin(CALIBRATION_LOOPS);
    counter.now() - start
}

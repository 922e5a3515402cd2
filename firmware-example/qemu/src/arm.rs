//! Cortex-M: cortex-m-rt start-up, SysTick as the instruction counter, a
//! HardFault handler that fails the run instead of hanging until a timeout.

use core::ops::Range;

use cortex_m_rt::{entry, exception, ExceptionFrame};
use firmware_common::{systick, Counter};

use crate::CALIBRATION_LOOPS;

#[cfg(board = "microbit")]
pub const TARGET: &str = "qemu microbit (Cortex-M0, thumbv6m-none-eabi)";
#[cfg(board = "mps2-an385")]
pub const TARGET: &str = "qemu mps2-an385 (Cortex-M3 running thumbv6m-none-eabi code)";
#[cfg(board = "mps2-an386")]
pub const TARGET: &str = "qemu mps2-an386 (Cortex-M4F, thumbv7em-none-eabihf: f32 in hardware)";

#[entry]
fn main() -> ! {
    crate::boot()
}

#[exception]
fn SysTick() {
    systick::on_wrap();
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    semihosting::eprintln!("FAIL HardFault at pc {:#010x}", frame.pc());
    semihosting::process::exit(3)
}

/// The stack region cortex-m-rt's linker script reserves.
pub fn stack() -> Range<usize> {
    extern "C" {
        static _stack_end: u8;
        static _stack_start: u8;
    }
    // Only the addresses of the linker symbols are taken, never their values.
    core::ptr::addr_of!(_stack_end) as usize..core::ptr::addr_of!(_stack_start) as usize
}

/// Executes exactly `2 * n` instructions (n > 0).
#[inline(never)]
fn spin(n: u32) {
    // SAFETY: a register-only countdown loop; touches no memory.
    unsafe {
        core::arch::asm!("2:", "subs r0, #1", "bne 2b", inout("r0") n => _, options(nomem, nostack));
    }
}

/// Executed instructions, from SysTick ticks scaled by a calibration.
pub struct Instructions {
    instructions: u64,
    ticks: u64,
}

impl Counter for Instructions {
    fn unit(&self) -> &'static str {
        "instructions"
    }
    fn hz(&self) -> Option<u32> {
        None
    }
    fn now(&mut self) -> u64 {
        systick::ticks() * self.instructions / self.ticks
    }
}

/// Starts SysTick and measures how many instructions one tick is.
pub fn counter() -> Instructions {
    let Some(mut p) = cortex_m::Peripherals::take() else {
        semihosting::eprintln!("FAIL core peripherals already taken");
        semihosting::process::exit(2)
    };
    systick::start(&mut p.SYST);
    let start = systick::ticks();
    spin(CALIBRATION_LOOPS);
    let ticks = (systick::ticks() - start).max(1);
    Instructions {
        instructions: 2 * CALIBRATION_LOOPS as u64,
        ticks,
    }
}

/// The calibration loop measured again with the calibrated counter.
pub fn calibration_check(counter: &mut Instructions) -> u64 {
    let start = counter.now();
    spin(CALIBRATION_LOOPS);
    counter.now() - start
}

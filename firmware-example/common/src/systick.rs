//! A 64-bit count of SysTick ticks on Cortex-M (CLKSOURCE = processor clock).
//!
//! SysTick is 24 bits wide, about 134 ms at 125 MHz, so the firmware routes
//! its SysTick exception to [`on_wrap`] and [`ticks`] adds the wraps. On a
//! real core a tick is a cycle; under QEMU with `-icount shift=0` a tick is a
//! fixed number of executed instructions (see `InstructionsPerTick`).

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;

const RELOAD: u32 = 0x00FF_FFFF;

static WRAPS: AtomicU32 = AtomicU32::new(0);

/// Call from the `SysTick` exception handler.
pub fn on_wrap() {
    // Only the handler writes WRAPS, so load + store is not a race (thumbv6m
    // has no atomic read-modify-write).
    WRAPS.store(
        WRAPS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// Starts SysTick counting processor clocks, with its wrap interrupt.
pub fn start(syst: &mut SYST) {
    syst.disable_counter();
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_counter();
    // Right after clearing, the counter reads 0 until its first reload;
    // counting from there would start the count a whole period early.
    while SYST::get_current() == 0 {}
    WRAPS.store(0, Ordering::Relaxed);
    syst.enable_interrupt();
}

/// Ticks since [`start`].
pub fn ticks() -> u64 {
    loop {
        let before = WRAPS.load(Ordering::Relaxed);
        let current = SYST::get_current();
        if WRAPS.load(Ordering::Relaxed) == before {
            return before as u64 * (RELOAD as u64 + 1) + (RELOAD - current) as u64;
        }
    }
}

//! The digit model on a Raspberry Pi Pico (RP2040).
//!
//! On boot: clocks to 125 MHz from the 12 MHz crystal, UART0 at 115200 baud
//! 8N1 on GP0 (TX) / GP1 (RX), then the shared boot sequence
//! (firmware-common): classify the embedded digits, print one generated
//! sample per expert, report cycles per step (SysTick on the core clock) and
//! the stack high-water mark. The last line is `done` (or `FAIL ...`).
#![no_std]
#![no_main]

use core::fmt::{self, Write};

use firmware_common::{systick, Counter};
use fugit::RateExtU32;
use rp2040_hal::clocks::{init_clocks_and_plls, Clock};
use rp2040_hal::gpio::Pins;
use rp2040_hal::pac;
use rp2040_hal::uart::{DataBits, StopBits, UartConfig, UartPeripheral};
use rp2040_hal::{Sio, Watchdog};

/// The second-stage boot loader for the Pico's W25Q080 flash, at the start
/// of the image where the boot ROM looks for it.
#[link_section = ".boot2"]
#[used]
pub static BOOT2: [u8; 256] = rp2040_boot2::BOOT_LOADER_W25Q080;

/// The Pico's crystal.
const XTAL_FREQ_HZ: u32 = 12_000_000;

/// Core clock cycles, counted by SysTick.
struct Cycles {
    hz: u32,
}

impl Counter for Cycles {
    fn unit(&self) -> &'static str {
        "cycles"
    }
    fn hz(&self) -> Option<u32> {
        Some(self.hz)
    }
    fn now(&mut self) -> u64 {
        systick::ticks()
    }
}

/// Writes straight to UART0's FIFO; works wherever UART0 was enabled, so
/// the fault handlers can use it too.
struct Uart0;

impl Write for Uart0 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // SAFETY: only the TX FIFO is touched, by this single-core program.
        let uart = unsafe { &*pac::UART0::ptr() };
        for &b in s.as_bytes() {
            if b == b'\n' {
                while uart.uartfr().read().txff().bit_is_set() {}
                uart.uartdr().write(|w| unsafe { w.data().bits(b'\r') });
            }
            while uart.uartfr().read().txff().bit_is_set() {}
            // SAFETY: any byte is a valid data register value.
            uart.uartdr().write(|w| unsafe { w.data().bits(b) });
        }
        Ok(())
    }
}

#[rp2040_hal::entry]
fn main() -> ! {
    let mut pac = pac::Peripherals::take().unwrap();
    let mut core = pac::CorePeripherals::take().unwrap();
    let mut watchdog = Watchdog::new(pac.WATCHDOG);
    let Ok(clocks) = init_clocks_and_plls(
        XTAL_FREQ_HZ,
        pac.XOSC,
        pac.CLOCKS,
        pac.PLL_SYS,
        pac.PLL_USB,
        &mut pac.RESETS,
        &mut watchdog,
    ) else {
        panic!("clock initialisation failed")
    };
    let sio = Sio::new(pac.SIO);
    let pins = Pins::new(
        pac.IO_BANK0,
        pac.PADS_BANK0,
        sio.gpio_bank0,
        &mut pac.RESETS,
    );
    let uart_pins = (pins.gpio0.into_function(), pins.gpio1.into_function());
    // Kept alive (main never returns) so UART0 stays configured; output goes
    // through Uart0, which the fault handlers can use as well.
    let _uart = UartPeripheral::new(pac.UART0, uart_pins, &mut pac.RESETS)
        .enable(
            UartConfig::new(115_200.Hz(), DataBits::Eight, None, StopBits::One),
            clocks.peripheral_clock.freq(),
        )
        .unwrap();

    let mut out = Uart0;
    let hz = clocks.system_clock.freq().to_Hz();
    systick::start(&mut core.SYST);
    let mut counter = Cycles { hz };
    let _ = writeln!(out, "target rp2040 (Cortex-M0+ at {} MHz)", hz / 1_000_000);
    // SAFETY: cortex-m-rt's stack region is this core's only stack (core 1
    // is never started).
    let result = unsafe { firmware_common::boot(&mut out, &mut counter, stack()) };
    match result {
        Ok(_) => {
            let _ = writeln!(out, "done");
        }
        Err(e) => {
            let _ = writeln!(out, "FAIL {e}");
        }
    }
    loop {
        cortex_m::asm::wfi();
    }
}

/// The stack region cortex-m-rt's linker script reserves.
fn stack() -> core::ops::Range<usize> {
    extern "C" {
        static _stack_end: u8;
        static _stack_start: u8;
    }
    core::ptr::addr_of!(_stack_end) as usize..core::ptr::addr_of!(_stack_start) as usize
}

#[cortex_m_rt::exception]
fn SysTick() {
    systick::on_wrap();
}

#[cortex_m_rt::exception]
unsafe fn HardFault(frame: &cortex_m_rt::ExceptionFrame) -> ! {
    let _ = writeln!(Uart0, "FAIL HardFault at pc {:#010x}", frame.pc());
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let _ = writeln!(Uart0, "FAIL {info}");
    loop {
        cortex_m::asm::wfi();
    }
}

//! The digit model on an ESP32-C3 (RV32IMC, no FPU).
//!
//! On boot: CPU clock to 160 MHz, UART0 at 115200 baud 8N1 (GPIO21 TX, the
//! pins behind the USB-serial chip of most boards), then the shared boot
//! sequence (firmware-common): classify the embedded digits, print one
//! generated sample per expert, report microseconds per step (the SYSTIMER
//! behind `esp_hal::time::Instant`) and the stack high-water mark. The
//! last line is `done` (or `FAIL ...`).
#![no_std]
#![no_main]

use core::fmt::Write;

use esp_hal::clock::CpuClock;
use esp_hal::time::Instant;
use esp_hal::uart::{self, Uart};
use firmware_common::Counter;

esp_bootloader_esp_idf::esp_app_desc!();

/// Microseconds from the system timer.
struct Micros;

impl Counter for Micros {
    fn unit(&self) -> &'static str {
        "us"
    }
    fn hz(&self) -> Option<u32> {
        Some(1_000_000)
    }
    fn now(&mut self) -> u64 {
        Instant::now().duration_since_epoch().as_micros()
    }
}

/// The stack region esp-hal's linker script reserves.
fn stack() -> core::ops::Range<usize> {
    extern "C" {
        static _stack_end: u8;
        static _stack_start: u8;
    }
    core::ptr::addr_of!(_stack_end) as usize..core::ptr::addr_of!(_stack_start) as usize
}

#[esp_hal::main]
fn main() -> ! {
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    let config = uart::Config::default().with_baudrate(115_200);
    let Ok(uart) = Uart::new(peripherals.UART0, config) else {
        panic!("UART0 configuration rejected")
    };
    let mut out = uart.with_tx(peripherals.GPIO21).with_rx(peripherals.GPIO20);
    let _ = writeln!(out, "target esp32c3 (RV32IMC at 160 MHz)");
    // SAFETY: esp-hal's stack region is the stack this single core runs on.
    let result = unsafe { firmware_common::boot(&mut out, &mut Micros, stack()) };
    match result {
        Ok(_) => {
            let _ = writeln!(out, "done");
        }
        Err(e) => {
            let _ = writeln!(out, "FAIL {e}");
        }
    }
    loop {
        core::hint::spin_loop();
    }
}

/// UART0's TX FIFO written through its registers (ESP32-C3 TRM, UART
/// chapter), for the panic handler, which cannot reach the driver.
struct RawUart0;

impl Write for RawUart0 {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        const FIFO: *mut u32 = 0x6000_0000 as *mut u32;
        const STATUS: *const u32 = 0x6000_001C as *const u32;
        for &b in s.as_bytes() {
            // SAFETY: UART0's FIFO and STATUS registers; bits 16..26 of
            // STATUS count the bytes waiting in the 128-byte TX FIFO.
            unsafe {
                while (core::ptr::read_volatile(STATUS) >> 16) & 0x3ff >= 127 {}
                core::ptr::write_volatile(FIFO, b as u32);
            }
        }
        Ok(())
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let _ = writeln!(RawUart0, "FAIL {info}");
    loop {
        core::hint::spin_loop();
    }
}

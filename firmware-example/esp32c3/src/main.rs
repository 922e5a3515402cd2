//! The digit model on an ESP32-C3 (RV32IMC, no FPU).
//!
//! On boot: CPU clock to 160 MHz, UART0 at 115200 baud 8N1 (GPIO21 TX,
//! GPIO20 RX, the pins behind the USB-serial chip of most boards), then the
//! shared boot sequence (firmware-common): classify the embedded digits,
//! print one generated sample per expert, report microseconds per step (the
//! SYSTIMER behind `esp_hal::time::Instant`) and the stack high-water mark.
//! The boot report's last line is `done` (or `FAIL ...`, and nothing more).
//!
//! Then the board answers the host protocol (`../PROTOCOL.md`,
//! `harness device --port ...`) on two ports at once, each with a frame
//! reader of its own over the one model
//! (`firmware_common::serve_embedded`):
//! - the chip's USB-Serial-JTAG (the USB connector of boards without a
//!   USB-serial chip: `/dev/ttyACM0` on Linux), through esp-hal's
//!   `UsbSerialJtag` driver;
//! - UART0 (through the board's USB-serial chip: `/dev/ttyUSB0`), after the
//!   boot report, which a host skips as text before the first frame.
//!
//! A board never stops serving: `shutdown` is answered `Unsupported` (only
//! the emulator test firmware honours it). A USB host that stops reading
//! (a closed terminal) does not hang the board: an answer that makes no
//! progress for [`USB_STALL`] is dropped, and the host asks again.
#![no_std]
#![no_main]

use core::fmt::Write;

use esp_hal::clock::CpuClock;
use esp_hal::time::{Duration, Instant};
use esp_hal::uart::{self, Uart};
use esp_hal::usb::usb_serial_jtag::{UsbSerialJtag, UsbSerialJtagRx, UsbSerialJtagTx};
use esp_hal::Blocking;
use firmware_common::serve::Port;
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

/// The name and version `info` reports.
const FIRMWARE: &str = concat!("fw-esp32c3 ", env!("CARGO_PKG_VERSION"));

/// How long a USB answer may wait for the host to take its next bytes
/// before it is dropped.
const USB_STALL: Duration = Duration::from_millis(100);

/// UART0 as a protocol port: esp-hal's blocking driver, read without
/// waiting.
struct UartPort<'d>(Uart<'d, Blocking>);

impl Port for UartPort<'_> {
    fn read(&mut self, buf: &mut [u8]) -> usize {
        // A receive error (FIFO overflow, framing) loses bytes, as line
        // noise does: the frame they belonged to fails its check.
        self.0.read_buffered(buf).unwrap_or(0)
    }

    fn write_all(&mut self, mut bytes: &[u8]) {
        // The UART sends at its baud rate whoever listens: it always drains.
        while !bytes.is_empty() {
            match self.0.write(bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(_) => return,
            }
        }
    }
}

/// The USB-Serial-JTAG as a protocol port: bytes in and out of its 64-byte
/// endpoint FIFOs, never waiting for a host that has gone.
struct UsbPort<'d> {
    rx: UsbSerialJtagRx<'d, Blocking>,
    tx: UsbSerialJtagTx<'d, Blocking>,
}

impl Port for UsbPort<'_> {
    fn read(&mut self, buf: &mut [u8]) -> usize {
        self.rx.drain_rx_fifo(buf)
    }

    fn write_all(&mut self, bytes: &[u8]) {
        // As esp-hal's blocking `write` does: a packet of at most 64 bytes
        // into the FIFO, then WR_DONE sends it when the host polls.
        let mut last_progress = Instant::now();
        for packet in bytes.chunks(64) {
            for &b in packet {
                while self.tx.write_byte_nb(b).is_err() {
                    if last_progress.elapsed() > USB_STALL {
                        // Nobody reads: drop the rest (the host retries).
                        return;
                    }
                }
                last_progress = Instant::now();
            }
            let _ = self.tx.flush_tx_nb();
        }
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
    let (rx, tx) = UsbSerialJtag::new(peripherals.USB_DEVICE).split();
    let _ = writeln!(out, "target esp32c3 (RV32IMC at 160 MHz)");
    // SAFETY: esp-hal's stack region is the stack this single core runs on.
    let result = unsafe { firmware_common::boot(&mut out, &mut Micros, stack()) };
    match result {
        Ok(_) => {
            let _ = writeln!(out, "done");
            let _ = out.flush();
            let mut usb = UsbPort { rx, tx };
            let mut uart = UartPort(out);
            // SAFETY: the stack region boot painted, the one this code runs on.
            let served = unsafe {
                firmware_common::serve_embedded(
                    Micros,
                    [&mut usb, &mut uart],
                    FIRMWARE,
                    stack(),
                    false,
                )
            };
            if let Err(e) = served {
                let _ = writeln!(RawUart0, "FAIL serving: {e}");
            }
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

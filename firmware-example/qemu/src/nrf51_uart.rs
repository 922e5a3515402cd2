//! The UART of the micro:bit's nRF51822 as QEMU's `microbit` machine models
//! it (UART0 at `0x4000_2000`, `serial0`), as a polled [`Port`]: events
//! polled and cleared by hand, no interrupts.
//!
//! Registers (nRF51 Series Reference Manual v3.0, "UART"): tasks STARTRX
//! (0x000) and STARTTX (0x008), events RXDRDY (0x108) and TXDRDY (0x11C),
//! ENABLE (0x500, 4 = on), PSELTXD (0x50C), PSELRXD (0x514), RXD (0x518,
//! reading takes the byte from the RX FIFO), TXD (0x51C), BAUDRATE
//! (0x524). The manual's order is kept: clear RXDRDY before reading RXD
//! (the UART raises it again while bytes remain), clear TXDRDY before
//! writing TXD and wait for it before the next byte (QEMU drops a byte
//! written while one is pending).

use firmware_common::serve::Port;

use crate::registers::Registers;

/// The UART's registers, for messages.
pub const NAME: &str = "UART0 (nRF51 UART at 0x4000_2000, P0.24 TX, P0.25 RX)";

const BASE: usize = 0x4000_2000;
const TASKS_STARTRX: usize = 0x000;
const TASKS_STARTTX: usize = 0x008;
const EVENTS_RXDRDY: usize = 0x108;
const EVENTS_TXDRDY: usize = 0x11C;
const ENABLE: usize = 0x500;
const PSELTXD: usize = 0x50C;
const PSELRXD: usize = 0x514;
const RXD: usize = 0x518;
const TXD: usize = 0x51C;
const BAUDRATE: usize = 0x524;
/// ENABLE's value for the UART.
const ENABLE_UART: u32 = 4;
/// BAUDRATE's value for 115200 baud.
const BAUD_115200: u32 = 0x01D7_E000;
/// The micro:bit's USB interface chip is wired to P0.24 (TX) and P0.25 (RX).
const PIN_TX: u32 = 24;
const PIN_RX: u32 = 25;

/// UART0's register block.
// SAFETY: the nRF51 (and QEMU's microbit model of it) maps the UART's 4 KiB
// block at BASE for the whole run; reads and writes affect only the UART
// (reading RXD pops its RX FIFO).
const REGISTERS: Registers<u32> = unsafe { Registers::new(BASE, 0x1000) };

/// UART0 on the micro:bit's USB pins, 115200 baud 8N1, both ways started.
pub struct Uart(());

impl Uart {
    /// Selects the pins and the rate, enables the UART and starts its
    /// receiver and transmitter.
    pub fn new() -> Uart {
        REGISTERS.write(PSELTXD, PIN_TX);
        REGISTERS.write(PSELRXD, PIN_RX);
        REGISTERS.write(BAUDRATE, BAUD_115200);
        REGISTERS.write(ENABLE, ENABLE_UART);
        REGISTERS.write(TASKS_STARTTX, 1);
        REGISTERS.write(TASKS_STARTRX, 1);
        Uart(())
    }

    /// Nothing to wait for: [`Port::write_all`] waits for each byte.
    pub fn flush(&mut self) {}
}

impl Port for Uart {
    fn read(&mut self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() && REGISTERS.read(EVENTS_RXDRDY) != 0 {
            REGISTERS.write(EVENTS_RXDRDY, 0);
            buf[n] = REGISTERS.read(RXD) as u8;
            n += 1;
        }
        n
    }

    fn write_all(&mut self, bytes: &[u8]) {
        for &b in bytes {
            REGISTERS.write(EVENTS_TXDRDY, 0);
            REGISTERS.write(TXD, b.into());
            while REGISTERS.read(EVENTS_TXDRDY) == 0 {}
        }
    }
}

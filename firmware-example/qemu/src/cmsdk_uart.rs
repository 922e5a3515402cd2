//! The CMSDK APB UART of QEMU's `mps2-an385` and `mps2-an386` machines
//! (UART0 at `0x4000_4000`, `serial0`), as a polled [`Port`]: one byte
//! each way, no interrupts.
//!
//! Registers (Arm DDI 0479C, Cortex-M System Design Kit, "APB UART"): DATA
//! at 0x0, STATE at 0x4 (bit 0 TX buffer full, bit 1 RX buffer full), CTRL
//! at 0x8 (bit 0 TX enable, bit 1 RX enable), BAUDDIV at 0x10 (at least 16).

use firmware_common::serve::Port;

use crate::registers::Registers;

/// The UART's registers, for messages.
pub const NAME: &str = "UART0 (CMSDK APB UART at 0x4000_4000)";

const BASE: usize = 0x4000_4000;
const DATA: usize = 0x0;
const STATE: usize = 0x4;
const CTRL: usize = 0x8;
const BAUDDIV: usize = 0x10;
const STATE_TX_FULL: u32 = 1 << 0;
const STATE_RX_FULL: u32 = 1 << 1;
const CTRL_TX_ENABLE: u32 = 1 << 0;
const CTRL_RX_ENABLE: u32 = 1 << 1;
/// The MPS2 boards' peripheral clock.
const PCLK_HZ: u32 = 25_000_000;

/// UART0's register block.
// SAFETY: QEMU's MPS2 machines map the CMSDK UART's 4 KiB block at BASE
// for the whole run (DATA to BAUDDIV, then ID registers; other offsets
// read as 0 and ignore writes); reads and writes affect only the UART
// (reading DATA empties its RX buffer).
const REGISTERS: Registers<u32> = unsafe { Registers::new(BASE, 0x1000) };

/// UART0, enabled both ways at 115200 baud (QEMU ignores the rate).
pub struct Uart(());

impl Uart {
    /// Sets the baud divisor (25 MHz / 115200) and enables TX and RX,
    /// interrupts off.
    pub fn new() -> Uart {
        REGISTERS.write(BAUDDIV, PCLK_HZ / 115_200);
        REGISTERS.write(CTRL, CTRL_TX_ENABLE | CTRL_RX_ENABLE);
        Uart(())
    }

    /// Waits until the last byte written has left the TX buffer.
    pub fn flush(&mut self) {
        while REGISTERS.read(STATE) & STATE_TX_FULL != 0 {}
    }
}

impl Port for Uart {
    fn read(&mut self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() && REGISTERS.read(STATE) & STATE_RX_FULL != 0 {
            buf[n] = REGISTERS.read(DATA) as u8;
            n += 1;
        }
        n
    }

    fn write_all(&mut self, bytes: &[u8]) {
        for &b in bytes {
            while REGISTERS.read(STATE) & STATE_TX_FULL != 0 {}
            REGISTERS.write(DATA, b.into());
        }
    }
}

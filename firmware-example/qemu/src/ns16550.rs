//! The NS16550A UART of QEMU's RISC-V `virt` machine (UART0 at
//! `0x1000_0000`, byte-wide registers one byte apart, `serial0`), as a
//! polled [`Port`]: no interrupts, FIFOs off.
//!
//! The FIFOs stay off because turning them on clears the receive buffer
//! (the 16550 resets its FIFOs whenever FCR's enable bit changes, and QEMU
//! models it), and a host that starts QEMU and writes at once has its first
//! byte waiting there by the time the boot test is over: losing it would
//! lose the request's leading delimiter. Without FIFOs, QEMU holds the
//! host's bytes back while the one-byte receive buffer is full (its
//! `can_receive`), so nothing is dropped, only paced.
//!
//! Registers (PC16550D data sheet): RBR/THR at 0 (receive buffer / transmit
//! holding), IER at 1, FCR at 2 (write), LCR at 3, MCR at 4, LSR at 5
//! (bit 0 data ready, bit 5 transmit holding register empty, bit 6
//! transmitter empty); DLL/DLM at 0/1 while LCR's DLAB bit is set.

use firmware_common::serve::Port;

use crate::registers::Registers;

/// The UART's registers, for messages.
pub const NAME: &str = "UART0 (NS16550A at 0x1000_0000)";

const BASE: usize = 0x1000_0000;
const RBR_THR: usize = 0;
const IER: usize = 1;
const LCR: usize = 3;
const MCR: usize = 4;
const LSR: usize = 5;
/// The divisor latch, at 0 and 1 while LCR's DLAB bit is set.
const DLL: usize = 0;
const DLM: usize = 1;
const LCR_DLAB: u8 = 0x80;
/// 8 data bits, no parity, 1 stop bit.
const LCR_8N1: u8 = 0x03;
/// DTR and RTS.
const MCR_DTR_RTS: u8 = 0x03;
const LSR_DATA_READY: u8 = 1 << 0;
const LSR_THR_EMPTY: u8 = 1 << 5;
const LSR_TX_EMPTY: u8 = 1 << 6;

/// UART0's eight registers.
// SAFETY: QEMU's virt machine maps the 16550's byte registers at BASE for
// the whole run (RBR/THR to SCR, then unimplemented space up to 0x100);
// reads and writes affect only the UART.
const REGISTERS: Registers<u8> = unsafe { Registers::new(BASE, 8) };

/// UART0, configured for 115200 baud 8N1 (QEMU ignores the rate).
pub struct Uart(());

impl Uart {
    /// Configures the UART: interrupts off, 8N1 at 115200 baud from the
    /// 3.6864 MHz clock the virt machine's device tree gives it (divisor
    /// 2), DTR and RTS set; FIFOs left off, the receive buffer untouched.
    pub fn new() -> Uart {
        REGISTERS.write(IER, 0);
        REGISTERS.write(LCR, LCR_DLAB);
        REGISTERS.write(DLL, 2);
        REGISTERS.write(DLM, 0);
        REGISTERS.write(LCR, LCR_8N1);
        REGISTERS.write(MCR, MCR_DTR_RTS);
        Uart(())
    }

    /// Waits until every byte written has left the transmitter.
    pub fn flush(&mut self) {
        while REGISTERS.read(LSR) & LSR_TX_EMPTY == 0 {}
    }
}

impl Port for Uart {
    fn read(&mut self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() && REGISTERS.read(LSR) & LSR_DATA_READY != 0 {
            buf[n] = REGISTERS.read(RBR_THR);
            n += 1;
        }
        n
    }

    fn write_all(&mut self, bytes: &[u8]) {
        for &b in bytes {
            while REGISTERS.read(LSR) & LSR_THR_EMPTY == 0 {}
            REGISTERS.write(RBR_THR, b);
        }
    }
}

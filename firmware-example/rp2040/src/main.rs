//! The digit model on a Raspberry Pi Pico (RP2040).
//!
//! On boot: clocks to 125 MHz from the 12 MHz crystal, UART0 at 115200 baud
//! 8N1 on GP0 (TX) / GP1 (RX), then the shared boot sequence
//! (firmware-common): classify the embedded digits, print one generated
//! sample per expert, report cycles per step (SysTick on the core clock) and
//! the stack high-water mark, ending with the line `done` (or `FAIL ...`).
//!
//! Then it serves the host protocol (`../PROTOCOL.md`) on two ports at once,
//! for ever: the Pico's own USB port as a CDC-ACM serial device (enumerated
//! only now, after the self-test: `/dev/ttyACM0` on Linux, a COM port on
//! Windows; VID:PID 16c0:27dd) and UART0. `harness device --port` talks to
//! either. A board has no end: `shutdown` is refused ([`Status::Unsupported`]);
//! the emulated runs end when the emulator's host side closes.
//!
//! [`Status::Unsupported`]: firmware_common::device
#![no_std]
#![no_main]

use core::fmt::{self, Write};

use firmware_common::serve::Port;
use firmware_common::{systick, Counter};
use fugit::RateExtU32;
use rp2040_hal::clocks::{init_clocks_and_plls, Clock};
use rp2040_hal::gpio::Pins;
use rp2040_hal::pac;
use rp2040_hal::uart::{DataBits, StopBits, UartConfig, UartPeripheral};
use rp2040_hal::usb::UsbBus;
use rp2040_hal::{Sio, Watchdog};
use usb_device::bus::UsbBusAllocator;
use usb_device::device::{StringDescriptors, UsbDevice, UsbDeviceBuilder, UsbVidPid};
use usbd_serial::SerialPort;

/// The second-stage boot loader for the Pico's W25Q080 flash, at the start
/// of the image where the boot ROM looks for it.
#[link_section = ".boot2"]
#[used]
pub static BOOT2: [u8; 256] = rp2040_boot2::BOOT_LOADER_W25Q080;

/// The Pico's crystal.
const XTAL_FREQ_HZ: u32 = 12_000_000;

/// What `info` reports as the firmware.
const FIRMWARE: &str = concat!("fw-rp2040 ", env!("CARGO_PKG_VERSION"));

/// How long a port may refuse bytes before an answer is dropped (a host
/// that stopped reading must not stop the other port): 0.5 s at 125 MHz.
const WRITE_TIMEOUT_CYCLES: u64 = 62_500_000;

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

/// UART0 as a protocol port, through its registers (RP2040 datasheet,
/// 4.2.8) like [`Uart0`]: a character with a framing, parity, break or
/// overrun error (flags in bits 8..12 of UARTDR) is dropped — the frame it
/// belonged to fails its CRC or is cut short, and the protocol
/// resynchronises at the next delimiter. (The HAL's reader also reads the
/// status register UARTRSR, which rp2040js does not model.)
struct UartPort;

impl Port for UartPort {
    fn read(&mut self, buf: &mut [u8]) -> usize {
        // SAFETY: RX FIFO reads only, by this single-core program; UART0
        // was enabled in main and stays so.
        let uart = unsafe { &*pac::UART0::ptr() };
        let mut n = 0;
        while n < buf.len() && uart.uartfr().read().rxfe().bit_is_clear() {
            let data = uart.uartdr().read();
            if data.bits() & 0xF00 == 0 {
                buf[n] = data.data().bits();
                n += 1;
            }
        }
        n
    }

    fn write_all(&mut self, bytes: &[u8]) {
        // SAFETY: TX FIFO writes only, as in Uart0.
        let uart = unsafe { &*pac::UART0::ptr() };
        for &b in bytes {
            // The UART always drains at its baud rate: this cannot hang.
            while uart.uartfr().read().txff().bit_is_set() {}
            // SAFETY: any byte is a valid data register value.
            uart.uartdr().write(|w| unsafe { w.data().bits(b) });
        }
    }
}

/// The Pico's USB port as a CDC-ACM serial device.
struct UsbPort<'a> {
    device: UsbDevice<'a, UsbBus>,
    serial: SerialPort<'a, UsbBus>,
}

impl Port for UsbPort<'_> {
    fn poll(&mut self) {
        self.device.poll(&mut [&mut self.serial]);
    }

    fn read(&mut self, buf: &mut [u8]) -> usize {
        // Empty packets and "nothing yet" alike read as 0 bytes. DTR is not
        // waited for: some hosts never set it.
        self.serial.read(buf).unwrap_or(0)
    }

    fn write_all(&mut self, mut bytes: &[u8]) {
        let mut last_progress = systick::ticks();
        while !bytes.is_empty() {
            self.device.poll(&mut [&mut self.serial]);
            match self.serial.write(bytes) {
                Ok(n) if n > 0 => {
                    bytes = bytes.get(n..).unwrap_or(&[]);
                    last_progress = systick::ticks();
                }
                // Full (the host is not reading) or not configured.
                _ if systick::ticks().wrapping_sub(last_progress) > WRITE_TIMEOUT_CYCLES => return,
                _ => {}
            }
        }
        // The rest leaves with the next polls (usbd-serial's own buffer).
        let _ = self.serial.flush();
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
    // Kept alive (main never returns) so UART0 stays configured; the boot
    // text goes through Uart0, which the fault handlers can use as well,
    // and the protocol through UartPort.
    let Ok(_uart) = UartPeripheral::new(pac.UART0, uart_pins, &mut pac.RESETS).enable(
        UartConfig::new(115_200.Hz(), DataBits::Eight, None, StopBits::One),
        clocks.peripheral_clock.freq(),
    ) else {
        panic!("UART0 configuration rejected")
    };

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
            loop {
                cortex_m::asm::wfi();
            }
        }
    }

    // The USB device comes up only now: a host enumerates it once the
    // self-test is over and requests can be answered.
    let bus = UsbBusAllocator::new(UsbBus::new(
        pac.USBCTRL_REGS,
        pac.USBCTRL_DPRAM,
        clocks.usb_clock,
        true,
        &mut pac.RESETS,
    ));
    let serial = SerialPort::new(&bus);
    let strings = StringDescriptors::default()
        .manufacturer("mixture-of-vaes")
        .product("digit model (host protocol)")
        .serial_number("rp2040");
    // 64-byte control packets: the largest full speed allows, one packet
    // per descriptor (rp2040js's USB host model needs it; real hosts do
    // not mind).
    let Ok(builder) = UsbDeviceBuilder::new(&bus, UsbVidPid(0x16c0, 0x27dd))
        .strings(&[strings])
        .and_then(|b| b.max_packet_size_0(64))
    else {
        panic!("USB descriptor rejected")
    };
    let device = builder.device_class(usbd_serial::USB_CLASS_CDC).build();
    let mut usb = UsbPort { device, serial };
    let mut uart = UartPort;
    let _ = writeln!(out, "serving on USB and UART0");
    // SAFETY: the region boot() painted, this core's only stack.
    let served = unsafe {
        firmware_common::serve_embedded(
            Cycles { hz },
            [&mut usb as &mut dyn Port, &mut uart],
            FIRMWARE,
            stack(),
            false,
        )
    };
    if let Err(e) = served {
        let _ = writeln!(out, "FAIL {e}");
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

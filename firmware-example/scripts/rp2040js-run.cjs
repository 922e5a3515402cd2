// Runs an RP2040 firmware ELF in rp2040js (an RP2040 emulator); the
// simulated core clock is 125 MHz, and the firmware's own SysTick cycle
// counts are what it reports.
//
//   node rp2040js-run.cjs FIRMWARE.elf BOOTROM.bin [MAX_MCYCLES]
//       The boot self-test: prints what the firmware writes to UART0 and
//       stops when it prints a line `done` (exit 0) or a line starting with
//       `FAIL` (exit 1), on a `bkpt` (exit 1), or after MAX_MCYCLES million
//       cycles (exit 2).
//
//   node rp2040js-run.cjs FIRMWARE.elf BOOTROM.bin --serve usb|uart0
//       The board as a device on this process's stdin and stdout (what
//       `harness device --spawn` talks to): the bytes of stdin go to the
//       board's port, what the port sends comes out on stdout, raw.
//       `usb`: the Pico's USB port, enumerated by rp2040js's USB CDC host
//       model (`USBCDC`); UART0's text goes to stderr. `uart0`: UART0 at
//       115200 baud, its boot text included (the host skips text before the
//       first frame); stdin's bytes reach the RX FIFO one per character time
//       (10 bits at 115200 baud in emulated cycles) and are lost when the
//       32-byte FIFO is full, as on the chip. Until the firmware prints
//       `serving ...` the host's bytes wait (a user who waits for the
//       banner). Runs until stdin ends (exit 0: the emulated board's end,
//       which a board on a desk does not have), or the firmware prints
//       `FAIL` or faults (exit 1).
//
// The ELF's loadable segments go to flash (0x10000000) or SRAM
// (0x20000000); execution starts at the second-stage boot loader at the
// start of flash, as the boot ROM would after finding a valid boot2. The
// boot ROM itself is loaded because rp2040-hal's float intrinsics call it.
// rp2040js is found through $EMULATORS_DIR/node_modules.
'use strict';
const fs = require('fs');
const path = require('path');

const args = process.argv.slice(2);
let serve = null;
const serveAt = args.indexOf('--serve');
if (serveAt >= 0) {
  serve = args[serveAt + 1];
  args.splice(serveAt, 2);
  if (serve !== 'usb' && serve !== 'uart0') {
    console.error(`rp2040js: --serve ${serve}: not usb or uart0`);
    process.exit(2);
  }
}
const [elfPath, bootromPath, maxArg] = args;
if (!elfPath || !bootromPath) {
  console.error('usage: node rp2040js-run.cjs FIRMWARE.elf BOOTROM.bin [MAX_MCYCLES | --serve usb|uart0]');
  process.exit(2);
}
const emulators = process.env.EMULATORS_DIR || path.join(__dirname, '../../.emulators');
const { RP2040, USBCDC } = require(path.join(emulators, 'node_modules/rp2040js'));

const FLASH = 0x10000000;
const SRAM = 0x20000000;
const CLOCK_HZ = 125e6;
const maxCycles = serve ? Infinity : Number(maxArg || 4000) * 1e6;
// One UART character (start, 8 data, stop bits) at 115200 baud.
const UART_CHAR_CYCLES = Math.round((CLOCK_HZ * 10) / 115200);
// The USB buffer control registers in DPRAM: EPx OUT at 0x84 + 8x.
const EP_OUT_BUFFER_CONTROL = 0x84;

function loadElf(mcu, bytes) {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(0, false) !== 0x7f454c46 || bytes[4] !== 1 || bytes[5] !== 1) {
    throw new Error(`${elfPath}: not a 32-bit little-endian ELF file`);
  }
  const phoff = v.getUint32(28, true);
  const phentsize = v.getUint16(42, true);
  const phnum = v.getUint16(44, true);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (v.getUint32(ph, true) !== 1) continue; // PT_LOAD only
    const offset = v.getUint32(ph + 4, true);
    const paddr = v.getUint32(ph + 12, true);
    const filesz = v.getUint32(ph + 16, true);
    if (filesz === 0) continue;
    const data = bytes.subarray(offset, offset + filesz);
    if (paddr >= FLASH && paddr + filesz <= FLASH + mcu.flash.length) {
      mcu.flash.set(data, paddr - FLASH);
    } else if (paddr >= SRAM && paddr + filesz <= SRAM + mcu.sram.length) {
      mcu.sram.set(data, paddr - SRAM);
    } else {
      throw new Error(`${elfPath}: segment at 0x${paddr.toString(16)} (${filesz} bytes) is outside flash and SRAM`);
    }
  }
}

const mcu = new RP2040();
// rp2040js's own messages: never on stdout (a serving board's byte stream),
// its debug chatter dropped, each distinct warning said once.
const warned = new Set();
mcu.logger = {
  debug() {},
  info() {},
  warn(component, message) {
    const key = `[${component}] ${message}`;
    if (!warned.has(key)) {
      warned.add(key);
      console.error(`rp2040js: ${key}`);
    }
  },
  error(component, message) {
    console.error(`rp2040js: [${component}] ${message}`);
    throw new Error(`[${component}] ${message}`);
  },
};
const rom = fs.readFileSync(bootromPath);
mcu.loadBootrom(new Uint32Array(rom.buffer, rom.byteOffset, rom.byteLength / 4));
loadElf(mcu, fs.readFileSync(elfPath));

// UART0: the boot text, line by line (to stdout, or stderr when serving);
// when serving on uart0, every byte also goes to stdout raw.
let line = '';
let status = null;
let serving = false;
const textOut = serve ? process.stderr : process.stdout;
mcu.uart[0].onByte = (b) => {
  if (serve === 'uart0') process.stdout.write(Uint8Array.of(b));
  if (serving) return;
  if (b === 13) return;
  if (b !== 10) {
    line += String.fromCharCode(b);
    return;
  }
  if (serve !== 'uart0') textOut.write(line + '\n');
  if (line === 'done' && !serve) status = 0;
  else if (line.startsWith('FAIL')) status = 1;
  else if (serve && line.startsWith('serving')) serving = true;
  line = '';
};
mcu.onBreak = (code) => {
  console.error(`rp2040js: bkpt #${code} at pc 0x${mcu.core.PC.toString(16)}`);
  status = 1;
};

// The host's bytes (stdin) not yet taken by the board.
const inbox = [];
let inboxLen = 0;
function take(n) {
  const out = new Uint8Array(n);
  let filled = 0;
  while (filled < n) {
    const head = inbox[0];
    const k = Math.min(n - filled, head.length);
    out.set(head.subarray(0, k), filled);
    filled += k;
    if (k === head.length) inbox.shift();
    else inbox[0] = head.subarray(k);
  }
  inboxLen -= n;
  return out;
}

// USB: rp2040js's CDC host model, with the host's side of the OUT endpoint
// replaced by one that answers a read only when it has bytes (a real host
// NAKs until then; the model answers at once, with an empty packet) and
// takes them from the inbox, so that nothing overflows its 512-byte FIFO.
let cdc = null;
let pendingRead = 0; // bytes the firmware's armed OUT buffer takes, 0: none
function deliverUsb() {
  if (pendingRead === 0 || inboxLen === 0 || !serving) return;
  const n = Math.min(pendingRead, inboxLen);
  pendingRead = 0;
  mcu.usbCtrl.endpointReadDone(cdc.outEndpoint, take(n));
}
if (serve === 'usb') {
  cdc = new USBCDC(mcu.usbCtrl);
  mcu.usbCtrl.onEndpointRead = (endpoint, size) => {
    if (endpoint !== cdc.outEndpoint) return;
    pendingRead = size || 64;
    deliverUsb();
  };
  cdc.onDeviceConnected = () => {
    // rp2040-hal armed the OUT buffer at bus reset, before the model knew
    // the endpoint's number: offer it again now that it does.
    const control = mcu.usbDPRAMView.getUint32(EP_OUT_BUFFER_CONTROL + 8 * cdc.outEndpoint, true);
    pendingRead = control & 0x3ff || 64;
    console.error(`rp2040js: USB CDC device enumerated at ${(cycles / 1e6).toFixed(1)} M cycles`);
    deliverUsb();
  };
  cdc.onSerialData = (buffer) => process.stdout.write(Buffer.from(buffer));
}

// UART0's receiver: one character per character time.
let nextCharAt = 0;
function feedUart() {
  if (!serving || inboxLen === 0 || cycles < nextCharAt) return;
  mcu.uart[0].feedByte(take(1)[0]);
  nextCharAt = cycles + UART_CHAR_CYCLES;
}

let stdinEnded = false;
if (serve) {
  process.stdin.on('data', (chunk) => {
    inbox.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
    inboxLen += chunk.length;
    if (serve === 'usb') deliverUsb();
  });
  process.stdin.on('end', () => {
    stdinEnded = true;
  });
}

mcu.core.PC = FLASH;
mcu.core.LR = 0;
const clock = mcu.clock;
const cycleNanos = 1e9 / CLOCK_HZ;
const started = Date.now();
let cycles = 0;

function finish() {
  if (line && !serving) textOut.write(line + '\n');
  const seconds = (Date.now() - started) / 1000;
  console.error(`rp2040js: ${(cycles / 1e6).toFixed(1)} M cycles simulated in ${seconds.toFixed(1)} s`);
  if (status === null && !serve) {
    console.error(`rp2040js: no 'done' within ${maxCycles / 1e6} M cycles`);
    status = 2;
  }
  process.stdout.write('', () => process.exit(status === null ? 0 : status));
}

// Runs in slices, so that stdin's bytes arrive between them.
function slice() {
  const end = Date.now() + 20;
  while (status === null && cycles < maxCycles && Date.now() < end) {
    for (let i = 0; i < 20000 && status === null; i++) {
      if (mcu.core.waiting) {
        const nanos = clock.nanosToNextAlarm;
        if (!(nanos > 0) || !Number.isFinite(nanos)) {
          console.error('rp2040js: core waiting with nothing scheduled (wfi forever)');
          status = 1;
          break;
        }
        clock.tick(nanos);
        cycles += nanos / cycleNanos;
      } else {
        const c = mcu.core.executeInstruction();
        clock.tick(c * cycleNanos);
        cycles += c;
      }
      if (serve === 'uart0') feedUart();
    }
    if (serve === 'usb') deliverUsb();
  }
  if (status !== null || cycles >= maxCycles || (stdinEnded && inboxLen === 0)) {
    if (stdinEnded && status === null) status = 0;
    finish();
  } else {
    setImmediate(slice);
  }
}
slice();

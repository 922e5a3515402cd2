// Runs an RP2040 firmware ELF in rp2040js (an RP2040 emulator) and prints
// what it writes to UART0; the simulated core clock is 125 MHz, and the
// firmware's own SysTick cycle counts are what it reports.
//
//   node rp2040js-run.cjs FIRMWARE.elf BOOTROM.bin [MAX_MCYCLES]
//
// The ELF's loadable segments go to flash (0x10000000) or SRAM
// (0x20000000); execution starts at the second-stage boot loader at the
// start of flash, as the boot ROM would after finding a valid boot2. The
// boot ROM itself is loaded because rp2040-hal's float intrinsics call it.
// Stops when the firmware prints a line `done` (exit 0) or a line starting
// with `FAIL` (exit 1), on a `bkpt` (exit 1), or after MAX_MCYCLES million
// cycles (exit 2). rp2040js is found through $EMULATORS_DIR/node_modules.
'use strict';
const fs = require('fs');
const path = require('path');

const [elfPath, bootromPath, maxArg] = process.argv.slice(2);
if (!elfPath || !bootromPath) {
  console.error('usage: node rp2040js-run.cjs FIRMWARE.elf BOOTROM.bin [MAX_MCYCLES]');
  process.exit(2);
}
const emulators = process.env.EMULATORS_DIR || path.join(__dirname, '../../.emulators');
const { RP2040 } = require(path.join(emulators, 'node_modules/rp2040js'));

const FLASH = 0x10000000;
const SRAM = 0x20000000;
const CLOCK_HZ = 125e6;
const maxCycles = Number(maxArg || 4000) * 1e6;

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
const rom = fs.readFileSync(bootromPath);
mcu.loadBootrom(new Uint32Array(rom.buffer, rom.byteOffset, rom.byteLength / 4));
loadElf(mcu, fs.readFileSync(elfPath));

let line = '';
let status = null;
mcu.uart[0].onByte = (b) => {
  if (b === 13) return;
  if (b !== 10) {
    line += String.fromCharCode(b);
    return;
  }
  process.stdout.write(line + '\n');
  if (line === 'done') status = 0;
  else if (line.startsWith('FAIL')) status = 1;
  line = '';
};
mcu.onBreak = (code) => {
  console.error(`rp2040js: bkpt #${code} at pc 0x${mcu.core.PC.toString(16)}`);
  status = 1;
};

mcu.core.PC = FLASH;
mcu.core.LR = 0;
const clock = mcu.clock;
const cycleNanos = 1e9 / CLOCK_HZ;
const started = Date.now();
let cycles = 0;
while (status === null && cycles < maxCycles) {
  for (let i = 0; i < 100000 && status === null; i++) {
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
  }
}
if (line) process.stdout.write(line + '\n');
const seconds = (Date.now() - started) / 1000;
console.error(`rp2040js: ${(cycles / 1e6).toFixed(1)} M cycles simulated in ${seconds.toFixed(1)} s`);
if (status === null) {
  console.error(`rp2040js: no 'done' within ${maxCycles / 1e6} M cycles`);
  process.exit(2);
}
process.exit(status);

// Drive one RP2040 PWM slice (and optionally a DMA channel paced by its wrap DREQ) by register
// writes from outside the CPU, on a bare rp2040js RP2040 with tonebridge's fixes applied
// (all, or all but --without NAME), and print what happened as JSON: the pin's level changes
// and wrap interrupts with their times in system clock cycles, CTR reads, DMA progress.
//
//   node pwm_probe.mjs --rp2040js DIR --scenario phase|dma [--without pwm-phase-correct]
//
// tests/emu/test_rp2040js_fixes.py asserts the RP2040 datasheet's timing on the output.

import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { applyFixes, FIX_NAMES } from '../../../host/tonebridge/emu/fixes.mjs';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const rp = await import(
  pathToFileURL(path.join(opt('rp2040js'), 'dist', 'esm', 'index.js')).href
);
const without = new Set((opt('without', '') || '').split(',').filter(Boolean));
const scenario = opt('scenario', 'phase');

const mcu = new rp.RP2040();
mcu.logger = new rp.ConsoleLogger(rp.LogLevel.Error);
applyFixes(mcu, new Set(FIX_NAMES.filter((n) => !without.has(n))), {
  uniqueId: new Uint8Array(8),
});

const CYC = 8; // ns per clk_sys cycle at 125 MHz
const PWM = 0x40050000;
const SLICE = 0; // GPIO 0 = slice 0 channel A, GPIO 1 = channel B
const base = PWM + 0x14 * SLICE;
const CSR = base + 0x0,
  DIV = base + 0x4,
  CTR = base + 0x8,
  CC = base + 0xc,
  TOP = base + 0x10;
const INTR = PWM + 0xa4,
  INTE = PWM + 0xa8;
const IO_BANK0 = 0x40014000;
const cycles = () => Math.round(mcu.clock.nanos / CYC);
const run = (n) => mcu.clock.tick(n * CYC);

// GPIO 0 and 1 to the PWM function
mcu.writeUint32(IO_BANK0 + 0x04, 4);
mcu.writeUint32(IO_BANK0 + 0x0c, 4);
const edges = [];
for (const pin of [0, 1]) {
  mcu.gpio[pin].addListener((v) => edges.push([cycles(), pin, v]));
}
// wrap interrupts: count them through INTR (cleared after each one, like a handler)
const wraps = [];
const pwm = mcu.pwm;
const stockIrq = pwm.channelInterrupt.bind(pwm);
pwm.channelInterrupt = (i) => {
  wraps.push(cycles());
  stockIrq(i);
  mcu.writeUint32(INTR, 1 << i);
};
mcu.writeUint32(INTE, 1);

const out = { scenario, without: [...without] };
if (scenario === 'phase') {
  // TOP = 99, DIV = 1, CC A = 30, CC B = 70, phase-correct, started at counter 0
  mcu.writeUint32(DIV, 1 << 4);
  mcu.writeUint32(TOP, 99);
  mcu.writeUint32(CC, 30 | (70 << 16));
  mcu.writeUint32(CTR, 0);
  const t0 = cycles();
  mcu.writeUint32(CSR, 0x2 | 0x1);
  out.t0 = t0;
  // CTR reads at known offsets in the first period
  out.ctr = [];
  for (const at of [10, 99, 100, 101, 150, 199]) {
    run(t0 + at - cycles());
    out.ctr.push([at, mcu.readUint32(CTR) & 0xffff]);
  }
  run(t0 + 1000 - cycles());
  // CC written mid-period (counter counting up at 25 of period 5): must take effect at the
  // next wrap (counter back to 0), not at once
  run(t0 + 5 * 200 + 25 - cycles());
  out.cc_write_at = cycles() - t0;
  mcu.writeUint32(CC, 50 | (70 << 16));
  run(t0 + 2000 - cycles());
  // DIV 2.5 (integer 2, fraction 8/16): counting rate clk_sys / 2.5
  out.div_from = cycles() - t0;
  mcu.writeUint32(CSR, 0); // stop, reset the counter, restart with the new divider
  mcu.writeUint32(DIV, (2 << 4) | 8);
  mcu.writeUint32(CTR, 0);
  mcu.writeUint32(CSR, 0x3);
  out.div_start = cycles() - t0;
  run(t0 + 4000 - cycles());
  out.end = cycles() - t0;
} else if (scenario === 'dma') {
  // a DMA channel paced by this slice's wrap DREQ writes 8 CC values (16-bit, replicated to
  // both halves), trailing-edge PWM TOP = 99
  const buf = 0x20001000;
  const vals = [10, 20, 30, 40, 50, 60, 70, 80];
  vals.forEach((v, i) => mcu.writeUint16(buf + 2 * i, v));
  mcu.writeUint32(DIV, 1 << 4);
  mcu.writeUint32(TOP, 99);
  mcu.writeUint32(CC, 5 | (5 << 16));
  const DMA = 0x50000000;
  const ch = 0;
  const treq = 24 + SLICE;
  mcu.writeUint32(DMA + 0x40 * ch + 0x00, buf); // READ_ADDR
  mcu.writeUint32(DMA + 0x40 * ch + 0x04, CC); // WRITE_ADDR
  mcu.writeUint32(DMA + 0x40 * ch + 0x08, vals.length); // TRANS_COUNT
  const t0 = cycles();
  mcu.writeUint32(CSR, 0x1);
  // CTRL_TRIG: EN, DATA_SIZE 1 (16 bit), INCR_READ, CHAIN_TO self, TREQ_SEL = wrap of the slice
  mcu.writeUint32(
    DMA + 0x40 * ch + 0x0c,
    0x1 | (1 << 2) | (1 << 4) | (ch << 11) | (treq << 15) | (1 << 21),
  );
  out.t0 = t0;
  out.count = [];
  for (let k = 1; k <= 12; k++) {
    run(t0 + k * 100 + 50 - cycles());
    out.count.push([k * 100 + 50, mcu.readUint32(DMA + 0x40 * ch + 0x08)]);
  }
  out.end = cycles() - t0;
}
out.edges = edges.map(([t, pin, v]) => [t - out.t0, pin, v]);
out.wraps = wraps.map((t) => t - out.t0);
process.stdout.write(JSON.stringify(out) + '\n');

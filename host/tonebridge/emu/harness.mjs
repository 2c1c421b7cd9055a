// tonebridge emulated board: the MicroPython RPI_PICO image on rp2040js, under Node.
//
// Started by tonebridge.emu.process (Python), which owns the pseudo-terminal, the analog chain
// and the recorder. Talks over stdin/stdout with frames: 1 type byte, 4-byte little-endian
// payload length, payload.
//
//   host -> harness   'D' bytes for the board's USB-CDC OUT endpoint (what a terminal types)
//                     'C' JSON control: {"op": "reset"} (power cycle), {"op": "stats"},
//                         {"op": "quit"}
//   harness -> host   'D' bytes the board sent on its USB-CDC IN endpoint
//                     'E' GPIO level changes: u32 count n, f64 upto_ns, n x f64 t_ns,
//                         n x u8 gpio, n x u8 state (rp2040js GPIOPinState: 0 low, 1 high,
//                         2.. input/floating); complete up to upto_ns (emulated time since
//                         the harness started, across resets)
//                     'J' JSON event: {"ev": "ready"|"usb"|"reset"|"stats"|"cc"|"log", ...}
//
// Options: --uf2 FILE --bootrom FILE [--flash FILE] [--fs-offset N] [--hwid HEX16]
//          [--watch 14,15,16] [--without fix,fix] [--pace 1] [--probe-cc 16] [--rp2040js DIR]

import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import { FIX_NAMES, applyFixes, makeCdc } from './fixes.mjs';

// ---- arguments ------------------------------------------------------------------------------
function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      throw new Error(`unexpected argument ${a}`);
    }
    out[a.slice(2)] = argv[i + 1];
    i++;
  }
  return out;
}
const args = parseArgs(process.argv.slice(2));
const without = new Set((args.without || '').split(',').filter(Boolean));
for (const name of without) {
  if (!FIX_NAMES.includes(name)) {
    throw new Error(`unknown fix ${name} (known: ${FIX_NAMES.join(', ')})`);
  }
}
const enabled = new Set(FIX_NAMES.filter((n) => !without.has(n)));
const FS_OFFSET = Number(args['fs-offset'] ?? 0xa0000);
const FS_BYTES = 352 * 4096;
const watch = (args.watch || '').split(',').filter(Boolean).map(Number);
const pace = (args.pace ?? '1') !== '0';
const probeCc = args['probe-cc'] !== undefined ? Number(args['probe-cc']) : -1;
// --ear PWM,HOOK,MUTE,LOOP,ADC: the line sense into ADC input ADC (hw/line-interface.md): the
// tone pin's duty (the renderer's sample of each PWM period) times the output chain's in-band
// gain, when the line is held (HOOK high) or the self-test loop is closed (LOOP high) and the
// tone path is not muted (MUTE low); mid-scale otherwise. No reconstruction filter: the
// shaped quantisation noise folds into the 8 kHz band, well below the receiver's thresholds.
const ear = args.ear ? args.ear.split(',').map(Number) : null;
const EAR_GAIN = 0.5415; // 1.082 x 600 / 1199 (hw/filter.json): pin volts -> line volts
const hwid = args.hwid ? Buffer.from(args.hwid, 'hex') : randomBytes(8);
if (hwid.length !== 8) {
  throw new Error('--hwid wants 16 hex digits (8 bytes)');
}

const modDir = args.rp2040js || path.join(process.cwd(), 'node_modules', 'rp2040js');
const rp = await import(pathToFileURL(path.join(modDir, 'dist', 'esm', 'index.js')).href);
const { RP2040, USBCDC, ConsoleLogger, LogLevel } = rp;

// ---- frames to the host ---------------------------------------------------------------------
const out = process.stdout;
out.on('error', () => process.exit(0)); // the host went away
function frame(type, payload) {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeUInt32LE(payload.length, 1);
  out.write(Buffer.concat([head, payload]));
}
function event(obj) {
  frame('J', Buffer.from(JSON.stringify(obj)));
}

// ---- images ---------------------------------------------------------------------------------
const bootrom = fs.readFileSync(args.bootrom);
const bootromWords = new Uint32Array(bootrom.buffer, bootrom.byteOffset, bootrom.length / 4);
const uf2 = fs.readFileSync(args.uf2);

function loadUf2(mcu) {
  for (let off = 0; off + 512 <= uf2.length; off += 512) {
    const m0 = uf2.readUInt32LE(off);
    const m1 = uf2.readUInt32LE(off + 4);
    if (m0 !== 0x0a324655 || m1 !== 0x9e5d5157) {
      throw new Error(`not a UF2 block at ${off}`);
    }
    const target = uf2.readUInt32LE(off + 12);
    const size = uf2.readUInt32LE(off + 16);
    mcu.flash.set(uf2.subarray(off + 32, off + 32 + size), target - 0x10000000);
  }
}

// The littlefs region persists in --flash FILE (FS_BYTES long; created erased when absent).
let flashFd = null;
let fsImage = null;
if (args.flash) {
  if (!fs.existsSync(args.flash)) {
    fs.writeFileSync(args.flash, Buffer.alloc(FS_BYTES, 0xff));
  }
  fsImage = fs.readFileSync(args.flash);
  if (fsImage.length !== FS_BYTES) {
    throw new Error(`${args.flash}: ${fsImage.length} bytes, want ${FS_BYTES} (352 x 4096)`);
  }
  flashFd = fs.openSync(args.flash, 'r+');
}
let flashKeep = null; // flash contents carried across a chip reset

function onFlashChange(start, size) {
  if (flashFd === null) {
    return;
  }
  const lo = Math.max(start, FS_OFFSET);
  const hi = Math.min(start + size, FS_OFFSET + FS_BYTES);
  if (hi > lo) {
    fs.writeSync(flashFd, mcu.flash, lo, hi - lo, lo - FS_OFFSET);
  }
}

// ---- the board ------------------------------------------------------------------------------
let mcu = null;
let cdc = null;
let baseNs = 0; // emulated time before the current chip instance (resets)
let rebootReason = null;
const edgesT = [];
const edgesPin = [];
const edgesVal = [];
const cdcOut = [];
let busyNs = 0;
let idleNs = 0;
let lastCcProbe = null;

function nowNs() {
  return baseNs + mcu.clock.nanos;
}

function build() {
  mcu = new RP2040();
  mcu.logger = new ConsoleLogger(LogLevel.Error);
  mcu.loadBootrom(bootromWords); // (resets the chip, erasing the flash array)
  if (flashKeep) {
    mcu.flash.set(flashKeep);
  } else {
    loadUf2(mcu);
    if (fsImage) {
      mcu.flash.set(fsImage, FS_OFFSET);
    }
  }
  applyFixes(mcu, enabled, { uniqueId: hwid, onFlashChange });
  const wd = mcu.peripherals[0x40058];
  if (enabled.has('watchdog-reset')) {
    wd.onWatchdogTrigger = () => {
      rebootReason = wd.reason === 2 ? 'watchdog-force' : 'watchdog-timer';
    };
  }
  cdc = makeCdc(USBCDC, mcu.usbCtrl, enabled.has('usb-cdc-hold'));
  cdc.onDeviceConnected = () => event({ ev: 'usb', connected: true, t_ns: nowNs() });
  cdc.onSerialData = (buffer) => {
    cdcOut.push(Buffer.from(buffer));
    if (lastCcProbe && lastCcProbe.tx === null) {
      lastCcProbe.tx = nowNs(); // latency probe: the board's first answer after host data
    }
  };
  for (const pin of watch) {
    const gpio = mcu.gpio[pin];
    edgesT.push(nowNs());
    edgesPin.push(pin);
    edgesVal.push(gpio.value);
    gpio.addListener((value) => {
      edgesT.push(nowNs());
      edgesPin.push(pin);
      edgesVal.push(value);
    });
  }
  if (probeCc >= 0) {
    // latency probe: the first DMA write to this slice's CC after host data arrived
    const ch = mcu.pwm.channels[probeCc];
    const stockWrite = ch.writeRegister;
    ch.writeRegister = function (offset, value) {
      if (offset === 0x0c && lastCcProbe && lastCcProbe.cc === null && dmaActive()) {
        lastCcProbe.cc = nowNs();
        event({
          ev: 'cc',
          rx_ns: lastCcProbe.rx,
          tx_ns: lastCcProbe.tx,
          cc_ns: lastCcProbe.cc,
          value: value & 0xffff,
        });
      }
      return stockWrite.call(this, offset, value);
    };
  }
  if (ear) {
    const [pwmPin, hookPin, mutePin, loopPin, adcIn] = ear;
    const ch = mcu.pwm.channels[(pwmPin >> 1) & 7];
    const stockWrite = ch.writeRegister;
    const high = (pin) => pin >= 0 && mcu.gpio[pin].value === 1;
    ch.writeRegister = function (offset, value) {
      const r = stockWrite.call(this, offset, value);
      if (offset === 0x0c) {
        const cc = (pwmPin & 1 ? this.cc >>> 16 : this.cc & 0xffff);
        const d = cc / ((this.top & 0xffff) + 1) - 0.5;
        const open = (high(hookPin) || high(loopPin)) && !(mutePin >= 0 && mcu.gpio[mutePin].value !== 0);
        const v = open ? 2048 + Math.round(EAR_GAIN * 4096 * d) : 2048;
        mcu.adc.channelValues[adcIn] = Math.max(0, Math.min(4095, v));
      }
      return r;
    };
    mcu.adc.channelValues[adcIn] = 2048;
  }
  mcu.core.PC = 0x10000000;
}

function dmaActive() {
  return mcu.dma.channels.some((c) => c.active && c.treq >= 24 && c.treq < 32);
}

function reboot(reason) {
  const wd = mcu.peripherals[0x40058];
  const scratch = Uint32Array.from(wd.scratchData);
  const wdReason = wd.reason;
  flashKeep = mcu.flash.slice(0, 2 * 1024 * 1024);
  baseNs += mcu.clock.nanos;
  flushEdges();
  build();
  const wd2 = mcu.peripherals[0x40058];
  if (reason.startsWith('watchdog')) {
    wd2.scratchData.set(scratch);
    wd2.reason = wdReason;
  }
  event({ ev: 'reset', reason, t_ns: nowNs() });
}

// ---- host input -----------------------------------------------------------------------------
let inBuf = Buffer.alloc(0);
let quitting = false;
process.stdin.on('data', (chunk) => {
  inBuf = inBuf.length ? Buffer.concat([inBuf, chunk]) : chunk;
  while (inBuf.length >= 5) {
    const len = inBuf.readUInt32LE(1);
    if (inBuf.length < 5 + len) {
      break;
    }
    const type = String.fromCharCode(inBuf[0]);
    const payload = inBuf.subarray(5, 5 + len);
    inBuf = inBuf.subarray(5 + len);
    if (type === 'D') {
      cdc.hostWrite(payload);
      if (probeCc >= 0) {
        lastCcProbe = { rx: nowNs(), tx: null, cc: null };
      }
    } else if (type === 'C') {
      control(JSON.parse(payload.toString()));
    }
  }
});
process.stdin.on('end', () => quit());

function control(msg) {
  if (msg.op === 'reset') {
    rebootReason = 'host';
  } else if (msg.op === 'stats') {
    event({
      ev: 'stats',
      id: msg.id,
      t_ns: nowNs(),
      busy_ns: busyNs,
      idle_ns: idleNs,
      zlp: cdc.zlpAnswers || 0,
    });
  } else if (msg.op === 'quit') {
    quit();
  }
}

function quit() {
  if (quitting) {
    return;
  }
  quitting = true;
  flushEdges();
  flushCdc();
  if (flashFd !== null) {
    fs.closeSync(flashFd);
  }
  out.end(() => process.exit(0));
}

// ---- output batching ------------------------------------------------------------------------
function flushEdges() {
  const n = edgesT.length;
  const buf = Buffer.alloc(12 + n * 10);
  buf.writeUInt32LE(n, 0);
  buf.writeDoubleLE(mcu ? nowNs() : 0, 4);
  let o = 12;
  for (let i = 0; i < n; i++, o += 8) {
    buf.writeDoubleLE(edgesT[i], o);
  }
  for (let i = 0; i < n; i++) {
    buf[o++] = edgesPin[i];
  }
  for (let i = 0; i < n; i++) {
    buf[o++] = edgesVal[i];
  }
  edgesT.length = edgesPin.length = edgesVal.length = 0;
  if (watch.length) {
    frame('E', buf);
  }
}

function flushCdc() {
  if (cdcOut.length) {
    frame('D', Buffer.concat(cdcOut.splice(0)));
  }
}

// ---- run loop -------------------------------------------------------------------------------
// Emulated time never runs ahead of the wall clock (--pace 1): an idle board sleeps like a
// real one. When the emulator cannot keep up (CPU-bound code) it falls behind, and the
// reference slips (at most LAG_NS behind) rather than racing to catch up afterwards.
const SLICE_NS = 2e6; // 2 ms of emulated time per turn of the event loop
const LAG_NS = 50e6;
const CYCLE_NS = 8; // rp2040js steps the core at 125 MHz
let wall0 = process.hrtime.bigint();
let emu0 = 0;
let lastFlush = 0;

function runUntil(limitNs) {
  const { core, clock } = mcu;
  while (clock.nanos < limitNs && rebootReason === null) {
    if (core.waiting) {
      const next = clock.nextAlarm ? clock.nextAlarm.nanos : Infinity;
      const target = Math.min(Math.max(next, clock.nanos), limitNs);
      const step = target - clock.nanos;
      clock.tick(step);
      idleNs += step;
    } else {
      const cycles = core.executeInstruction();
      clock.tick(cycles * CYCLE_NS);
      busyNs += cycles * CYCLE_NS;
    }
  }
}

function loop() {
  if (quitting) {
    return;
  }
  let limit = mcu.clock.nanos + SLICE_NS;
  if (pace) {
    const wall = Number(process.hrtime.bigint() - wall0);
    const allowed = emu0 + wall;
    const now = nowNs();
    if (now < allowed - LAG_NS) {
      emu0 = now - wall + LAG_NS; // slip
    }
    const ahead = now - (emu0 + wall);
    if (ahead > 0) {
      setTimeout(loop, Math.max(1, Math.ceil(ahead / 1e6)));
      return;
    }
    limit = Math.min(limit, mcu.clock.nanos + (emu0 + wall - now) + SLICE_NS);
  }
  runUntil(limit);
  if (rebootReason !== null) {
    const r = rebootReason;
    rebootReason = null;
    reboot(r);
  }
  flushCdc();
  const now = nowNs();
  if (edgesT.length > 2048 || now - lastFlush >= 5e6) {
    flushEdges();
    lastFlush = now;
  }
  setImmediate(loop);
}

build();
event({
  ev: 'ready',
  hwid: hwid.toString('hex'),
  fixes: [...enabled],
  fs_offset: FS_OFFSET,
  fs_bytes: FS_BYTES,
});
wall0 = process.hrtime.bigint();
emu0 = 0;
loop();

// Fixes to rp2040js 1.4.1 that tonebridge needs, applied to one RP2040 instance at a time.
//
// Each fix is named, documented in docs/emulator.md (written so it can be offered upstream),
// and can be switched off (`harness.mjs --without NAME`), so that its test in tests/emu/ shows
// the stock behaviour failing and the fixed one passing in the same run. The fixes replace
// or wrap methods of the objects of one RP2040 instance (a "small subclass" of the
// dependency's classes, in effect); nothing of rp2040js is copied or edited on disk.
//
//   pwm-dreq           the PWM wrap DREQ is consumed by the DMA transfer it paces (one
//                      transfer per wrap), instead of staying asserted for ever
//   pwm-phase-correct  CSR.PH_CORRECT: counter 0..TOP..0, period 2*(TOP+1) ticks, output high
//                      while counter < CC (pulse centred on the wrap), CC/TOP latched and the
//                      wrap IRQ/DREQ once per period, when the counter returns to 0
//   qspi-flash         the QSPI flash answers SPI commands sent with CS forced through IO_QSPI
//                      (the boot ROM's flash_range_erase/program, the SDK's flash_do_cmd):
//                      erase, page program, status, JEDEC id and the 64-bit unique id (0x4B)
//   usb-cdc-hold       the CDC host model holds an armed OUT endpoint until it has data,
//                      instead of answering it at once with a zero-length packet (makeCdc())
//   watchdog-reset     a watchdog trigger (machine.reset(), an unfed WDT) resets the chip
//                      (the harness rebuilds it; see harness.mjs)
//   rosc-random        ROSC.RANDOMBIT returns random bits (stock: always 1, so every boot
//                      draws the same "random" numbers, e.g. the protocol's boot id)

export const FIX_NAMES = [
  'pwm-dreq',
  'pwm-phase-correct',
  'qspi-flash',
  'usb-cdc-hold',
  'watchdog-reset',
  'rosc-random',
];

const DREQ_PWM_WRAP0 = 24;
const PWM_SLICES = 8;

// ---- pwm-dreq ------------------------------------------------------------------------------
// Stock: RPPWM.channelInterrupt() calls dma.setDREQ(DREQ_PWM_WRAPn) at every wrap and nothing
// ever calls clearDREQ() for it, so after the first wrap RPDMAChannel.scheduleTransfer() finds
// the DREQ still set after every transfer and runs the rest of the transfer sequence at once.
// On silicon each wrap is one request, acknowledged by the one transfer it paces.
function fixPwmDreq(mcu) {
  for (const ch of mcu.dma.channels) {
    const stock = Object.getPrototypeOf(ch).scheduleTransfer;
    ch.scheduleTransfer = function scheduleTransfer() {
      const treq = this.treqValue;
      if (treq >= DREQ_PWM_WRAP0 && treq < DREQ_PWM_WRAP0 + PWM_SLICES) {
        if (this.dma.dreq[treq]) {
          this.dma.dreq[treq] = false; // the transfer acknowledges the wrap's request
          this.transferAlarm.schedule(0);
        }
        return; // otherwise wait for the next wrap (setDREQ schedules us again)
      }
      return stock.call(this);
    };
  }
}

// ---- pwm-phase-correct ---------------------------------------------------------------------
// Stock: phase-correct mode runs the slice's Timer32 as a zig-zag of period 2*TOP (not
// 2*(TOP+1)), its "bottom" alarm fires twice per period (wrap IRQ/DREQ at double rate), and
// the compare alarms only ever drive the output low while the wrap drives it high only in
// trailing-edge mode: the pin has no edges. This driver takes over a slice while CSR.PH_CORRECT
// and the enable are set, with the RP2040 datasheet's timing (PWM chapter): the counter counts
// 0, 1, .., TOP, TOP, .., 1, 0 (2*(TOP+1) ticks of clk_sys/DIV), the output is high while the
// counter is below CC, the CC and TOP double buffers latch and the wrap IRQ/DREQ fires once per
// period, when the counter returns to 0 (the "0 to 0 count transition").
const CSR_PH_CORRECT = 1 << 1;

class PhaseCorrectDriver {
  constructor(ch, clock) {
    this.ch = ch;
    this.clock = clock;
    this.on = false;
    this.start = 0; // nanos at which the current period started (counter 0, counting up)
    this.tickNs = 8;
    this.periodTicks = 2;
    this.wrapAlarm = clock.createAlarm(() => this.wrap());
    this.edgeAlarms = [
      clock.createAlarm(() => this.ch.setA(false)),
      clock.createAlarm(() => this.ch.setA(true)),
      clock.createAlarm(() => this.ch.setB(false)),
      clock.createAlarm(() => this.ch.setB(true)),
    ];
  }

  wanted() {
    return !!(this.ch.csr & CSR_PH_CORRECT) && this.ch.timer.enable;
  }

  computeTick() {
    const { ch } = this;
    this.tickNs = (1e9 / ch.pwm.clockFreq) * ch.timer.prescaler;
    this.periodTicks = 2 * (ch.timer.top + 1);
  }

  /** Counter position (ticks into the current period) now. */
  position() {
    const p = Math.floor((this.clock.nanos - this.start) / this.tickNs + 1e-9);
    return Math.min(Math.max(p, 0), this.periodTicks - 1);
  }

  counter() {
    const p = this.position();
    const top = this.ch.timer.top;
    return p <= top ? p : this.periodTicks - 1 - p;
  }

  levelAt(cc, p) {
    const top = this.ch.timer.top;
    const c = p <= top ? p : this.periodTicks - 1 - p;
    return c < cc;
  }

  cancelAll() {
    this.wrapAlarm.cancel();
    for (const a of this.edgeAlarms) {
      a.cancel();
    }
  }

  /** Schedule what is left of the period that started at this.start, from position p. */
  schedule(p) {
    const { ch } = this;
    const P = this.periodTicks;
    const now = this.clock.nanos;
    const at = (ticks, alarm) => {
      if (ticks > p) {
        alarm.schedule(Math.max(0, this.start + ticks * this.tickNs - now));
      }
    };
    const ccs = [ch.alarmA.target, ch.alarmB.target];
    for (let i = 0; i < 2; i++) {
      const cc = ccs[i];
      if (cc > 0 && cc <= ch.timer.top) {
        at(cc, this.edgeAlarms[2 * i]); // counting up past CC-1: low
        at(P - cc, this.edgeAlarms[2 * i + 1]); // counting down to CC-1: high
      }
    }
    this.wrapAlarm.schedule(Math.max(0, this.start + P * this.tickNs - now));
  }

  setPins(p) {
    const { ch } = this;
    ch.setA(this.levelAt(ch.alarmA.target, p));
    ch.setB(this.levelAt(ch.alarmB.target, p));
  }

  wrap() {
    const { ch } = this;
    this.start = this.clock.nanos;
    ch.pwm.channelInterrupt(ch.index); // wrap IRQ + DREQ, once per period
    ch.updateDoubleBuffered(); // CC and TOP latch at the wrap
    this.computeTick();
    this.cancelAll();
    this.setPins(0);
    this.schedule(0);
  }

  /** Called after every register write that may change the slice's mode or timing. */
  sync() {
    const { ch } = this;
    const want = this.wanted();
    if (want && !this.on) {
      // take over from the stock zig-zag alarms; start counting up from CTR
      this.on = true;
      ch.alarmA.enable = false;
      ch.alarmB.enable = false;
      ch.alarmBottom.enable = false;
      this.computeTick();
      const ctr = Math.min(ch.timer.counter, ch.timer.top);
      this.start = this.clock.nanos - ctr * this.tickNs;
      this.cancelAll();
      this.setPins(ctr);
      this.schedule(ctr);
    } else if (!want && this.on) {
      const ctr = this.counter();
      this.cancelAll();
      this.on = false;
      ch.timer.set(ctr);
      ch.alarmA.enable = true;
      ch.alarmB.enable = true;
      ch.alarmBottom.enable = true;
    } else if (want) {
      // divider or clock change: keep the position, re-time what is left of the period
      const p = this.position();
      const oldTick = this.tickNs;
      this.computeTick();
      if (oldTick !== this.tickNs) {
        this.start = this.clock.nanos - p * this.tickNs;
        this.cancelAll();
        this.schedule(p);
      }
    }
  }

  setCounter(value) {
    const v = Math.min(value & 0xffff, this.ch.timer.top);
    this.start = this.clock.nanos - v * this.tickNs;
    this.cancelAll();
    this.setPins(v);
    this.schedule(v);
  }
}

function fixPwmPhaseCorrect(mcu) {
  for (const ch of mcu.pwm.channels) {
    const driver = new PhaseCorrectDriver(ch, mcu.clock);
    ch.phaseCorrectDriver = driver;
    const proto = Object.getPrototypeOf(ch);
    const stockWrite = proto.writeRegister;
    const stockRead = proto.readRegister;
    const stockReset = proto.reset;
    ch.writeRegister = function writeRegister(offset, value) {
      if (offset === 0x08 && driver.on) {
        driver.setCounter(value); // CTR write while running in phase-correct mode
        return;
      }
      stockWrite.call(this, offset, value);
      driver.sync();
    };
    ch.readRegister = function readRegister(offset) {
      if (offset === 0x08 && driver.on) {
        return driver.counter();
      }
      return stockRead.call(this, offset);
    };
    ch.reset = function reset() {
      stockReset.call(this);
      driver.sync();
    };
    const enDesc = Object.getOwnPropertyDescriptor(proto, 'en');
    Object.defineProperty(ch, 'en', {
      configurable: true,
      get() {
        return enDesc.get ? enDesc.get.call(this) : !!(this.csr & 1);
      },
      set(value) {
        enDesc.set.call(this, value);
        driver.sync();
      },
    });
  }
}

// ---- qspi-flash ----------------------------------------------------------------------------
// Stock: IO_QSPI is an unimplemented peripheral (reads 0xffffffff, so the boot ROM's
// flash_was_aborted() is always true and flash_range_erase/program return at once), and the
// SSI answers every DR0 read with 0 (so flash_get_unique_id() reads 0 bytes). Here IO_QSPI
// keeps its registers, and while software forces the flash's chip select through
// GPIO_QSPI_SS_CTRL.OUTOVER (as the ROM and the SDK's flash_do_cmd do) every byte written to
// SSI DR0 is clocked into a W25Q16JV-like SPI flash model whose answer lands in the RX FIFO
// (RXFLR/SR.RFNE follow it). With CS not forced (XIP set-up by boot2) the stock behaviour is
// kept.
const IO_QSPI_SS_CTRL = 0x0c;
const OUTOVER_SHIFT = 8;
const OUTOVER_LOW = 2;
const OUTOVER_HIGH = 3;
const SSI_TXFLR = 0x20;
const SSI_RXFLR = 0x24;
const SSI_SR = 0x28;
const SSI_DR0 = 0x60;
const SR_TFNF = 1 << 1;
const SR_TFE = 1 << 2;
const SR_RFNE = 1 << 3;
export const FLASH_BYTES = 2 * 1024 * 1024; // W25Q16JV on the Raspberry Pi Pico

export class SpiFlash {
  constructor(mem, uniqueId, onChange) {
    this.mem = mem; // rp2040js mcu.flash (offset 0 = XIP 0x10000000)
    this.uniqueId = uniqueId; // Uint8Array(8)
    this.onChange = onChange || (() => {});
    this.selected = false;
    this.wel = false;
    this.bytes = [];
    this.programLo = -1;
    this.programHi = -1;
  }

  select(on) {
    if (on === this.selected) {
      return;
    }
    if (!on) {
      this.finish();
    }
    this.selected = on;
    this.bytes = [];
  }

  addr() {
    const b = this.bytes;
    return ((b[1] << 16) | (b[2] << 8) | b[3]) % FLASH_BYTES;
  }

  xfer(value) {
    if (!this.selected) {
      return 0xff;
    }
    const b = this.bytes;
    b.push(value & 0xff);
    const n = b.length;
    const cmd = b[0];
    switch (cmd) {
      case 0x05: // read status register 1: never busy, WEL as set
        return n > 1 ? (this.wel ? 0x02 : 0x00) : 0;
      case 0x35: // status register 2: QE set (as the Pico's boot2 leaves it)
        return n > 1 ? 0x02 : 0;
      case 0x06:
        this.wel = true;
        return 0;
      case 0x04:
        this.wel = false;
        return 0;
      case 0x9f: // JEDEC id: Winbond W25Q16JV
        return n > 1 ? [0xef, 0x40, 0x15][(n - 2) % 3] : 0;
      case 0x4b: // read unique id: command, 4 dummy bytes, 8 id bytes
        return n >= 6 && n < 14 ? this.uniqueId[n - 6] : n >= 14 ? 0xff : 0;
      case 0xab: // release power-down / device id
        return n >= 5 ? 0x14 : 0;
      case 0x03: // read data
        return n >= 5 ? this.mem[(this.addr() + n - 5) % FLASH_BYTES] : 0;
      case 0x0b: // fast read (one dummy byte)
        return n >= 6 ? this.mem[(this.addr() + n - 6) % FLASH_BYTES] : 0;
      case 0x02: // page program: bits can only go 1 -> 0; the address wraps in its page
        if (n >= 5 && this.wel) {
          const a = this.addr();
          const off = (a & ~0xff) | ((a + n - 5) & 0xff);
          this.mem[off] &= value;
          this.programLo = this.programLo < 0 ? off : Math.min(this.programLo, off);
          this.programHi = Math.max(this.programHi, off + 1);
        }
        return 0;
      default:
        return 0;
    }
  }

  finish() {
    const b = this.bytes;
    if (!b.length) {
      return;
    }
    const cmd = b[0];
    const sizes = { 0x20: 4096, 0x52: 32768, 0xd8: 65536 };
    if (cmd in sizes && b.length >= 4 && this.wel) {
      const size = sizes[cmd];
      const start = this.addr() & ~(size - 1);
      this.mem.fill(0xff, start, start + size);
      this.onChange(start, size);
    } else if ((cmd === 0x60 || cmd === 0xc7) && this.wel) {
      this.mem.fill(0xff, 0, FLASH_BYTES);
      this.onChange(0, FLASH_BYTES);
    } else if (cmd === 0x02 && this.programLo >= 0) {
      this.onChange(this.programLo, this.programHi - this.programLo);
    }
    if (cmd === 0x02 || cmd in sizes || cmd === 0x60 || cmd === 0xc7) {
      this.wel = false;
    }
    this.programLo = this.programHi = -1;
  }
}

function fixQspiFlash(mcu, ctx) {
  const flash = new SpiFlash(mcu.flash, ctx.uniqueId, ctx.onFlashChange);
  mcu.spiFlash = flash;
  const ssi = mcu.peripherals[0x18000];
  const ioQspi = mcu.peripherals[0x40018];
  const regs = new Uint32Array(0x40 / 4);
  let forced = false;
  const rx = [];
  ioQspi.readUint32 = (offset) => (offset < 0x40 ? regs[offset >> 2] : 0);
  ioQspi.writeUint32 = (offset, value) => {
    if (offset >= 0x40) {
      return;
    }
    regs[offset >> 2] = value >>> 0;
    if (offset === IO_QSPI_SS_CTRL) {
      const over = (value >>> OUTOVER_SHIFT) & 3;
      forced = over === OUTOVER_LOW || over === OUTOVER_HIGH;
      flash.select(over === OUTOVER_LOW);
      if (!forced) {
        rx.length = 0;
      }
    }
  };
  const stockRead = ssi.readUint32.bind(ssi);
  const stockWrite = ssi.writeUint32.bind(ssi);
  ssi.readUint32 = (offset) => {
    if (!forced) {
      return stockRead(offset);
    }
    switch (offset) {
      case SSI_DR0:
        return rx.length ? rx.shift() : 0;
      case SSI_RXFLR:
        return Math.min(rx.length, 16);
      case SSI_TXFLR:
        return 0;
      case SSI_SR:
        return SR_TFE | SR_TFNF | (rx.length ? SR_RFNE : 0);
    }
    return stockRead(offset);
  };
  ssi.writeUint32 = (offset, value) => {
    if (forced && offset === SSI_DR0) {
      rx.push(flash.xfer(value)); // full duplex: one byte back for every byte out
      return;
    }
    stockWrite(offset, value);
  };
}

// ---- usb-cdc-hold --------------------------------------------------------------------------
// Stock USBCDC answers every OUT transfer the device arms with whatever its 512-byte FIFO
// holds, a zero-length packet when empty, 10 us later: TinyUSB re-arms at once, so the device
// spends most of its cycles in the USB interrupt while nobody types. Here an armed OUT
// endpoint is held until the host has data, and the host side queues without a size limit
// (the harness meters nothing away).
export function makeCdc(USBCDC, usb, hold) {
  const cdc = new USBCDC(usb);
  cdc.outArmed = 0;
  cdc.zlpAnswers = 0;
  cdc.hostQueue = [];
  cdc.hostQueued = 0;
  if (!hold) {
    // stock behaviour, plus a counter of the zero-length answers it gives
    const stockRead = usb.onEndpointRead;
    usb.onEndpointRead = (endpoint, size) => {
      if (endpoint === cdc.outEndpoint && cdc.txFIFO.itemCount === 0) {
        cdc.zlpAnswers++;
      }
      stockRead(endpoint, size);
    };
    cdc.hostWrite = (bytes) => {
      for (const b of bytes) {
        cdc.sendSerialByte(b);
      }
    };
    return cdc;
  }
  const answer = () => {
    const size = cdc.outArmed;
    if (!size || !cdc.hostQueued) {
      return;
    }
    const out = new Uint8Array(Math.min(size, cdc.hostQueued));
    let k = 0;
    while (k < out.length) {
      const head = cdc.hostQueue[0];
      const take = Math.min(head.length, out.length - k);
      out.set(head.subarray(0, take), k);
      k += take;
      if (take === head.length) {
        cdc.hostQueue.shift();
      } else {
        cdc.hostQueue[0] = head.subarray(take);
      }
    }
    cdc.hostQueued -= out.length;
    cdc.outArmed = 0;
    usb.endpointReadDone(cdc.outEndpoint, out);
  };
  usb.onEndpointRead = (endpoint, size) => {
    if (endpoint === cdc.outEndpoint) {
      cdc.outArmed = size;
      answer();
    }
  };
  cdc.hostWrite = (bytes) => {
    if (bytes.length) {
      cdc.hostQueue.push(Uint8Array.from(bytes));
      cdc.hostQueued += bytes.length;
      answer();
    }
  };
  return cdc;
}

// ---- rosc-random ---------------------------------------------------------------------------
// Stock: ROSC is an unimplemented peripheral whose reads give 0xffffffff, so RANDOMBIT is
// always 1. pico_rand (MicroPython's os.urandom, random's seed) mixes ROSC bits with the
// timer and SRAM contents, all deterministic in an emulator: every boot of an emulated board
// draws the same numbers. On silicon RANDOMBIT samples the ring oscillator's jitter.
const ROSC_STATUS = 0x18;
const ROSC_RANDOMBIT = 0x1c;

function fixRoscRandom(mcu, ctx) {
  const rosc = mcu.peripherals[0x40060];
  const stockRead = rosc.readUint32.bind(rosc);
  const random = ctx.randomBit || (() => (Math.random() < 0.5 ? 1 : 0));
  rosc.readUint32 = (offset) => {
    if (offset === ROSC_RANDOMBIT) {
      return random();
    }
    if (offset === ROSC_STATUS) {
      return (1 << 31) | (1 << 12); // STABLE, ENABLED
    }
    return stockRead(offset);
  };
  rosc.writeUint32 = () => {};
}

// ---- apply ---------------------------------------------------------------------------------
const APPLY = {
  'pwm-dreq': fixPwmDreq,
  'pwm-phase-correct': fixPwmPhaseCorrect,
  'qspi-flash': fixQspiFlash,
  'rosc-random': fixRoscRandom,
  // usb-cdc-hold: makeCdc(); watchdog-reset: the harness's reset handler
};

/** Apply the enabled fixes (a Set of names) to a freshly constructed RP2040. */
export function applyFixes(mcu, enabled, ctx = {}) {
  for (const name of Object.keys(APPLY)) {
    if (enabled.has(name)) {
      APPLY[name](mcu, ctx);
    }
  }
}

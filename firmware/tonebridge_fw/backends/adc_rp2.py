# rp2 receive path: the line sense into the ADC, 8 kHz conversions paced by the ADC's own
# divider, the FIFO's DREQ pacing a DMA channel into a ring in RAM (RP2040 and RP2350).
#
#   ear = AdcEar(profile)    # "rx_adc": ADC input (0..3: GPIO26..29 on an RP2040)
#   ear.start()              # conversions and the DMA ring run; no CPU per sample
#   ear.poll(fn)             # fn(buf, start, count) for the samples that arrived since the
#                            # last poll (one or two pieces: the ring wraps); returns the count
#   ear.stop()
#
# ADC registers (RP2040 datasheet 4.9.6, pico-sdk hardware/regs/adc.h): CS.EN | START_MANY and
# AINSEL; FCS.EN | DREQ_EN with THRESH 1 (a DREQ per conversion), SHIFT off (12-bit codes);
# DIV = 48 MHz / rate - 1 (5999: 8000 Hz). Round-robin is off. The DMA channel reads the FIFO
# register (no read increment) and writes 16-bit codes with the write address wrapping on a
# RING_BYTES boundary (CTRL.RING_SEL = write), for 2**32 - 1 transfers (6 days at 8 kHz;
# start() re-arms it). The ring must be aligned to its size: an array twice that size is
# allocated and the aligned half is used (uctypes.addressof), as a uint16 memoryview.
# Where the ring has got to: the channel's WRITE_ADDR register (mem32), read once per poll.
# A main loop that does not poll for longer than the ring holds (128 ms) loses samples
# unnoticed; the app polls every pass (1 ms while a sequence plays).

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


from array import array

import machine
import rp2
import uctypes

_ADC = {"rp2040": (0x4004C000, 36), "rp2350": (0x400A0000, 48)}  # base, DREQ_ADC
_CS = const(0x00)
_FCS = const(0x08)
_FIFO = const(0x0C)
_DIV = const(0x10)
ADC_CLK = const(48000000)
RATE = const(8000)
RING_BITS = const(11)  # 2 KiB: 1024 samples, 128 ms at 8 kHz
RING_BYTES = const(1 << RING_BITS)
RING_SAMPLES = const(RING_BYTES // 2)


class AdcEar:
    def __init__(self, profile, rate=RATE):
        mcu = profile.get("mcu", "rp2040")
        self.base, self.dreq = _ADC[mcu]
        self.ainsel = profile.get("rx_adc", 0)
        self.rate = rate
        self._raw = array("H", [0] * (2 * RING_SAMPLES))
        a = uctypes.addressof(self._raw)
        off = ((-a) & (RING_BYTES - 1)) >> 1  # samples to the first RING_BYTES boundary
        self._ring_addr = a + 2 * off
        self.buf = memoryview(self._raw)[off : off + RING_SAMPLES]  # the ring: 12-bit codes
        self._dma = rp2.DMA()
        self._wa = 0x50000000 + 0x40 * self._dma.channel + 0x04  # WRITE_ADDR
        self._pos = 0  # next sample index to hand out
        self.running = False
        self.samples = 0  # samples handed out since start()
        self.lost = 0

    def start(self):
        m = machine.mem32
        b = self.base
        m[b + _CS] = 0
        m[b + _FCS] = 0
        m[b + _DIV] = ((ADC_CLK // self.rate) - 1) << 8
        d = self._dma
        ctrl = d.pack_ctrl(
            size=1,  # 16-bit
            inc_read=0,
            inc_write=1,
            ring_size=RING_BITS,
            ring_sel=1,  # the ring wraps the write address
            treq_sel=self.dreq,
            irq_quiet=1,
            chain_to=d.channel,
        )
        d.config(read=b + _FIFO, write=self._ring_addr, count=0xFFFFFFFF, ctrl=ctrl, trigger=True)
        m[b + _FCS] = 0x01 | 0x08 | (1 << 24)  # EN, DREQ_EN, THRESH 1
        m[b + _CS] = 0x01 | 0x08 | (self.ainsel << 12)  # EN, START_MANY, AINSEL
        self._pos = 0
        self.samples = 0
        self.lost = 0
        self.running = True

    def stop(self):
        if not self.running:
            return
        m = machine.mem32
        m[self.base + _CS] = 0
        m[self.base + _FCS] = 0
        self._dma.active(0)
        self.running = False

    def poll(self, fn):
        """Hand the samples that arrived since the last poll to fn(buf, start, count)."""
        if not self.running:
            return 0
        w = ((machine.mem32[self._wa] - self._ring_addr) & (RING_BYTES - 1)) >> 1
        n = (w - self._pos) & (RING_SAMPLES - 1)
        if n == 0:
            return 0
        p = self._pos
        if p + n > RING_SAMPLES:
            fn(self.buf, p, RING_SAMPLES - p)
            fn(self.buf, 0, p + n - RING_SAMPLES)
        else:
            fn(self.buf, p, n)
        self._pos = w
        self.samples += n
        return n

    def close(self):
        self.stop()
        self._dma.close()

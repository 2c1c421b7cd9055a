# rp2 tone backend: PWM duty samples clocked by DMA (RP2040 and RP2350).
#
# The tone pin's PWM slice runs in phase-correct (dual-slope) mode with TOP = 2**BITS - 1 and an
# integer clock divider chosen from machine.freq() for a sample rate near TARGET_RATE: the counter
# counts 0 -> TOP -> 0, the pin is high while the counter is below CC, so each period's pulse is
# symmetric about the period's centre (the low part centred on the TOP turn-around, the high
# part split between the period's two ends). Every period ends with a wrap (the counter back at
# 0); the slice's wrap DREQ paces a DMA channel that writes the next 16-bit duty value to the
# slice's CC register (the bus replicates a 16-bit write into both halves, so the A and B
# channels get it). CC is double-buffered in the PWM and latched at the wrap, so a value takes
# effect for the whole next period: one sample per PWM period, timed by hardware. The sample
# rate is therefore clk_sys / (DIV * 2 * (TOP + 1)), computed from the real registers, and
# handed to the Renderer as an exact fraction.
#
# Why phase-correct, 10 bits, ~61 kHz (RP2040 at 125 MHz; 73.2 kHz on an RP2350 at 150 MHz):
# PWM sampled once per period is not a linear DAC. Trailing-edge PWM moves only one edge per
# sample, which phase-modulates the signal by itself: second-order products (f1+f2, 2f, f2-f1)
# only ~23 dB below the tones at a 24.4 kHz carrier. Symmetric (dual-edge) pulses cancel the
# even-order terms and the faster carrier shrinks the rest: about -58 dB in 300-3400 Hz on the
# simulated line, the 10-bit quantisation included (hw/README.md). The divider is kept integer
# because a fractional divider stretches single counter steps, i.e. jitters the pulse edges.
# CPU: ~61k samples/s through the renderer's viper fast path (synth_viper.py) on an RP2040.
#
# Two DMA channels and two buffers: while one channel plays its buffer the main loop renders the
# next chunk into the other buffer, arms that channel (not triggered) and sets CHAIN_TO of the
# playing channel to it, so the hardware starts it the moment the playing one completes. If the
# main loop is late (the playing channel finished before the chain was set), service() notices,
# counts an underrun and triggers the armed channel itself: the PWM holds the last duty value
# meanwhile (never garbage). position() counts samples the DMA has really transferred
# (completed chunks + the playing channel's remaining TRANS_COUNT).
#
# Idle: CC at mid-scale, the slice keeps running (no click), DMA channels stopped.

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


from array import array

import machine
import rp2

from tonebridge_fw import outchain
from tonebridge_fw.synth import Renderer
from tonebridge_fw.ticks import ticks_diff
from tonebridge_fw.ticks import ticks_ms as _ticks_ms

# per-MCU registers (RP2040 / RP2350 datasheets, pico-sdk hardware/regs/{pwm,dreq}.h)
_MCU = {
    "rp2040": (0x40050000, 8, 24),  # PWM_BASE, slices, DREQ_PWM_WRAP0
    "rp2350": (0x400A8000, 12, 32),
}
_CSR = const(0x00)
_DIV = const(0x04)
_CTR = const(0x08)
_CC = const(0x0C)
_TOP = const(0x10)
_SLICE_STRIDE = const(0x14)
_CSR_EN = const(0x01)
_CSR_PH_CORRECT = const(0x02)

BITS = const(10)
TARGET_RATE = const(61000)
CHUNK = const(1024)  # samples per DMA buffer (~16.8 ms at 61 kHz, 14 ms at 73 kHz)
# a sequence's first chunk is shorter (~6.3 ms at 61 kHz): start() renders it (~0.8 ms of an
# RP2040 instead of ~2.5 ms for a whole buffer) and triggers the DMA, then renders the second,
# whole, chunk while the first plays; the samples are the same, the tone starts sooner
FIRST_CHUNK = const(384)
# after the slice first drives mid-scale (power-up: the pin was low), the output stage's DC
# block (C9), level stage (C8) and line transformer ring down for tens of ms (hw/filter.json;
# on the simulated line below -60 dB of a tone by 60 ms): ready() is False until then, so the
# player keeps the tone path muted and the line hears no power-up thump before the first tone
SETTLE_MS = const(80)

_IDLE = const(0)
_PLAY = const(1)
_DONE = const(2)
_ABORTED = const(3)


def slice_of(pin):
    if pin < 32:
        return (pin >> 1) & 7
    return 8 + ((pin >> 1) & 3)


def pwm_divider(freq_hz, top, rate):
    """DIV register value (8.4 fixed point) for a phase-correct slice: the integer divider
    (1 .. 255, fraction 0) nearest to freq / (rate * 2 * (top + 1))."""
    cycles = rate * 2 * (top + 1)
    div = (2 * freq_hz + cycles) // (2 * cycles)
    if div < 1:
        div = 1
    if div > 255:
        div = 255
    return div << 4


class PwmDmaBackend:
    def __init__(
        self,
        profile,
        chunk=CHUNK,
        target_rate=TARGET_RATE,
        level=None,
        ticks_ms=None,
        first_chunk=FIRST_CHUNK,
    ):
        if ticks_ms is None:
            ticks_ms = _ticks_ms
        mcu = profile.get("mcu", "rp2040")
        if mcu not in _MCU:
            raise ValueError("pwm_dma backend needs an rp2 mcu, not %s" % mcu)
        pwm_base, _nslices, dreq0 = _MCU[mcu]
        pin = profile["pwm_pin"]
        self.pin = pin
        self.slice = slice_of(pin)
        self._base = pwm_base + _SLICE_STRIDE * self.slice
        self._cc_addr = self._base + _CC
        self.top = (1 << BITS) - 1
        self.mid = 1 << (BITS - 1)
        freq = machine.freq()
        self.div16 = pwm_divider(freq, self.top, target_rate)
        # exact sample rate: clk_sys * 16 / (div16 * 2 * (TOP + 1)) (phase-correct: up and down)
        self.rate = (freq * 16, self.div16 * 2 * (self.top + 1))
        self.sample_rate = freq * 16 / (self.div16 * 2 * (self.top + 1))
        # ms per sample in Q16 (due_ms: small-int arithmetic, no float per pass)
        self._ms_q16 = (65536000 * self.div16 * 2 * (self.top + 1)) // (freq * 16) + 1
        # the analog chain's response at each DTMF tone (and the pulses' own), compensated by
        # the renderer: the line gets the level and twist asked for (outchain.py)
        chain = profile.get("filter") or outchain.PWM_CHAIN
        kw = {"bits": BITS, "shaping": True, "response": outchain.response(self.sample_rate, chain)}
        if level is not None:
            kw["level"] = level
        self._r = Renderer(self.rate, **kw)
        # the pin to the PWM function, then the slice set up by register
        self._pwm = machine.PWM(machine.Pin(pin))
        m = machine.mem32
        m[self._base + _CSR] = 0
        m[self._base + _DIV] = self.div16
        m[self._base + _TOP] = self.top
        m[self._base + _CC] = self.mid | (self.mid << 16)
        m[self._base + _CTR] = 0
        m[self._base + _CSR] = _CSR_PH_CORRECT | _CSR_EN
        self._ticks = ticks_ms
        self._since = ticks_ms()  # when the output stage began to settle (ready())
        self.settle_ms = profile.get("output_settle_ms", SETTLE_MS)
        # buffers and DMA channels, allocated once
        self._buf = (array("H", [self.mid] * chunk), array("H", [self.mid] * chunk))
        self._n = [0, 0]
        self._addr = [0, 0]
        self._chunk = chunk
        self._first = first_chunk if 0 < first_chunk < chunk else chunk
        self._dma = (rp2.DMA(), rp2.DMA())
        self._treq = dreq0 + self.slice
        self._ctrl = [0, 0]
        for i in (0, 1):
            d = self._dma[i]
            self._ctrl[i] = d.pack_ctrl(
                size=1,
                inc_read=1,
                inc_write=0,
                treq_sel=self._treq,
                chain_to=d.channel,
                irq_quiet=1,
                high_pri=1,
            )
            d.config(write=self._cc_addr, ctrl=self._ctrl[i], trigger=False)
        self._state = _IDLE
        self._cur = 0  # index of the channel playing (or that played last)
        self._armed = False  # the other channel holds the next chunk
        self._done_samples = 0  # samples of completed chunks
        self._plan_len = 0
        self._abort_pos = 0
        self.underruns = 0
        self.chunks = 0

    # ---- helpers --------------------------------------------------------------------
    def _chain_ctrl(self, i, to):
        # CHAIN_TO: RP2040 bits 14:11, RP2350 bits 16:13; let pack_ctrl place it
        return self._dma[i].pack_ctrl(default=self._ctrl[i], chain_to=to)

    def _fill(self, i, count=0):
        n = self._r.fill(self._buf[i], 0, count or self._chunk)
        self._n[i] = n
        return n

    def _arm(self, i):
        """Load channel i with buffer i (not triggered) and chain the playing one to it."""
        d = self._dma[i]
        d.config(read=self._buf[i], count=self._n[i], ctrl=self._ctrl[i], trigger=False)
        self._addr[i] = d.read  # READ_ADDR moves once the channel transfers
        self._dma[1 - i].ctrl = self._chain_ctrl(1 - i, d.channel)
        self._armed = True

    # ---- backend interface ----------------------------------------------------------------
    def ready(self):
        """The output stage has settled since power-up (SETTLE_MS): tones may be unmuted."""
        return ticks_diff(self._ticks(), self._since) >= self.settle_ms

    def start(self, plan):
        self.abort()
        self._r.load(plan)
        self._plan_len = len(plan)
        self._done_samples = 0
        self._cur = 0
        self._armed = False
        if self._fill(0, self._first) == 0:
            self._state = _DONE
            return
        self._state = _PLAY
        self._dma[0].config(read=self._buf[0], count=self._n[0], ctrl=self._ctrl[0], trigger=True)
        self.chunks = 1
        if self._fill(1):
            self._arm(1)

    def service(self):
        if self._state != _PLAY:
            return
        for _ in range(3):
            cur = self._dma[self._cur]
            if cur.active():
                return
            # the playing chunk is complete
            self._done_samples += self._n[self._cur]
            nxt = 1 - self._cur
            if not self._armed:
                self._state = _DONE
                self._idle()
                return
            if not self._dma[nxt].active() and self._dma[nxt].read == self._addr[nxt]:
                # we chained too late: the next chunk never started (not busy, and its read
                # address has not moved; TRANS_COUNT would still show the last run's 0)
                self.underruns += 1
                self._dma[nxt].active(1)
            cur.ctrl = self._ctrl[self._cur]  # unchain the finished channel
            self._cur = nxt
            self._armed = False
            self.chunks += 1
            if self._fill(1 - nxt):
                self._arm(1 - nxt)

    def due_ms(self):
        """ms until service() next has work while playing: the end of the playing chunk (the
        next buffer to refill) or, if sooner, the next step boundary inside it (a digit starts
        or ends: the player reports it). At least 1 ms; 0 when not playing."""
        if self._state != _PLAY:
            return 0
        left = self._dma[self._cur].count  # samples the playing chunk still has to transfer
        played = self._done_samples + self._n[self._cur] - left
        r = self._r
        k = r.step_at(played)
        if k < self._plan_len:
            b = r.step_start(k + 1) - played
            if 0 < b < left:
                left = b
        return ((left * self._ms_q16) >> 16) + 1

    def slack_ms(self):
        """ms of output the DMA has queued (the playing chunk's rest and the armed chunk): how
        long the main loop may go without service() before the line runs dry. -1 when nothing
        can run dry: idle, or the whole plan is rendered and queued (the DMA chain plays it out)."""
        if self._state != _PLAY or self._r.done:
            return -1
        left = self._dma[self._cur].count
        if self._armed:
            left += self._n[1 - self._cur]
        return (left * self._ms_q16) >> 16

    def samples_played(self):
        """Samples the DMA has transferred so far in this plan."""
        if self._state == _IDLE:
            return 0
        if self._state == _DONE:
            return self._done_samples
        return self._done_samples + self._n[self._cur] - self._dma[self._cur].count

    def position(self):
        if self._state == _IDLE:
            return 0
        if self._state == _DONE:
            return self._plan_len
        if self._state == _ABORTED:
            return self._abort_pos
        return self._r.step_at(self.samples_played())

    def configure(self, twist=None, level=None):
        """Protocol CONFIG: twist (dB) / level for the next sequence (see Renderer.configure)."""
        return self._r.configure(twist, level)

    def busy(self):
        return self._state == _PLAY

    def _idle(self):
        machine.mem32[self._cc_addr] = self.mid | (self.mid << 16)

    def abort(self):
        if self._state == _PLAY:
            self._abort_pos = self._r.step_at(self.samples_played())
            self._state = _ABORTED
        # unchain first: the chunk playing can end at any moment, and its CHAIN_TO would start
        # the armed channel even after that one was stopped (a chunk of tone after the abort)
        for i in (0, 1):
            self._dma[i].ctrl = self._ctrl[i]
        for d in self._dma:
            d.active(0)
        self._idle()
        self._armed = False

    def close(self):
        self.abort()
        for d in self._dma:
            d.close()
        machine.mem32[self._base + _CSR] = 0
        self._state = _IDLE

"""Simulated ``machine.I2S``: transmit feeding a DAC model into the board's line recorder;
receive (``mode=RX``) from an ADC model fed by the board's line sense (sim/i2s_rx.py).

API as MicroPython's ``machine.I2S`` (esp32 and rp2 ports): ``I2S(id, *, sck, ws, sd, mck=None,
mode, bits, format, rate, ibuf)``, ``init(**same)``, ``deinit()``, ``write(buf)``,
``readinto(buf)``, ``irq(handler)``, ``I2S.shift(buf=, bits=, shift=)``; constants ``RX``, ``TX``,
``MONO``, ``STEREO``.

Model of the port (what the firmware can observe):

* ``ibuf`` bytes of ring buffer between ``write`` and the DMA. The DMA runs from ``init`` at the
  configured rate and takes ``dma_frames`` frames from the ring at each DMA-buffer boundary
  (every ``dma_frames / rate`` seconds, exact, no drift); a frame taken at boundary k leaves the
  DAC one DMA buffer later (double buffering). An empty ring gives silence (underrun).
* Blocking mode (no ``irq`` handler): ``write`` copies into the ring and, when it is full, waits
  (advances the clock: virtual time moves, a real clock sleeps) until the DMA frees space.
* Non-blocking mode (``irq(handler)``): ``write`` records the buffer and returns ``len(buf)``
  at once; the port copies from the *caller's buffer* into the ring at each DMA boundary as
  space frees (so a buffer modified before the handler ran plays modified, as on a board) and
  calls ``handler(i2s)`` once all of it is in the ring. A ``write`` while a previous one is
  still being copied replaces it (counted in ``overlapping_writes``).

DAC model: PCM5102A, full scale 2.1 Vrms (a full-scale sine peaks at 2.1 * sqrt(2) V); its
interpolation filter (an oversampling FIR here, group delay removed: the DAC's own few-sample
delay is not modelled) removes the images, so the line gets a band-limited signal, pushed to the
recorder at >= 96 kHz. The line is wired to the left channel (MONO sends the sample on both).
"""

from __future__ import annotations

import math
import threading

import numpy as np
from scipy import signal

DACS = {
    # name: full-scale output (V rms for a full-scale sine)
    "pcm5102a": 2.1,
}

# DMA buffer size in frames per port (rp2: 256-byte DMA buffers; esp32: 256-frame DMA buffers).
DMA_FRAMES = {"rp2": 32, "esp32": 256}  # rp2: 128-byte half buffers of stereo 16-bit frames
# rp2 port: app data copied into the ring per DMA irq in non-blocking mode (bytes; esp32: no cap)
RP2_COPY_PER_IRQ = 512
RP2_SYS_HZ = {"rp2040": 125_000_000, "rp2350": 150_000_000}


def rp2_actual_rate(rate: int, bits: int, sys_hz: int) -> float:
    """The rp2 port clocks its PIO program at rate * 2 slots * bits * 2 instructions per bit;
    the SDK stores the divider as 16.8 fixed point, truncating the fraction."""
    pio_hz = rate * 2 * bits * 2
    div = sys_hz / pio_hz
    whole = int(div)
    frac = int((div - whole) * 256)
    return sys_hz / ((whole + frac / 256) * pio_hz / rate)


_RUN_FLUSH_FRAMES = 1 << 15  # push a contiguous run to the recorder at least this often


def _pin_id(p):
    if isinstance(p, int):
        return p
    for name in ("id", "gpio", "_id", "_gpio"):
        v = getattr(p, name, None)
        if callable(v):
            v = v()
        if isinstance(v, int):
            return v
    raise TypeError("expected a Pin")


class SimI2S:
    RX = 0
    TX = 1
    MONO = 0
    STEREO = 1

    # bound per board by make_i2s_class
    _clock = None
    _recorder = None
    _bus = None
    _mcu = "esp32"
    _dac = "pcm5102a"
    _source = "i2s"
    _rx_source = None  # RX: callable t_us -> volts at the ADC's input (None: silence)
    _adc = "pcm1860"
    instances: list = []

    def __init__(self, id, **kw):
        self.id = id
        # the recorder may flush from another thread (API recording while the board runs)
        self._lock = threading.RLock()
        self._active = False
        self._event = None
        self._handler = None
        self.overlapping_writes = 0
        self.underrun_frames = 0
        self.frames_played = 0
        self.writes = 0
        self._run = []  # list of float arrays of a contiguous output run
        self._run_start = 0.0
        self._run_frames = 0
        self._run_end = None
        self._rx = None
        type(self).instances.append(self)
        self.init(**kw)

    # ---- configuration ------------------------------------------------------------
    def init(self, *, sck, ws, sd, mck=None, mode, bits, format, rate, ibuf):
        if self._active:
            self.deinit()
        if mode not in (self.TX, self.RX):
            raise ValueError("invalid mode")
        if bits not in (16, 32):
            raise ValueError("invalid bits")
        if format not in (self.MONO, self.STEREO):
            raise ValueError("invalid format")
        if not isinstance(rate, int) or rate <= 0:
            raise ValueError("invalid rate")
        if not isinstance(ibuf, int) or ibuf <= 0:
            raise ValueError("invalid ibuf")
        pins = [_pin_id(sck), _pin_id(ws), _pin_id(sd)]
        if self._mcu.startswith("rp2") and pins[1] != pins[0] + 1:
            raise ValueError("invalid ws (must be sck+1)")
        self.pins = pins
        self.mode = mode
        self.bits = bits
        self.format = format
        self.rate = rate
        self.ibuf = ibuf
        self.channels = 2 if format == self.STEREO else 1
        self.frame_bytes = bits // 8 * self.channels
        rp2 = self._mcu.startswith("rp2")
        self.dma_frames = DMA_FRAMES["rp2"] * 16 // bits if rp2 else DMA_FRAMES["esp32"]
        self.copy_per_irq = RP2_COPY_PER_IRQ if rp2 else None
        # The sample clock the DAC really gets (esp32: APLL/fractional divider, taken as exact)
        self.actual_rate = (
            rp2_actual_rate(rate, bits, RP2_SYS_HZ.get(self._mcu, 125_000_000))
            if rp2
            else float(rate)
        )
        self.full_scale_v = DACS[self._dac] * math.sqrt(2)
        if self._bus is not None:
            for p in pins:
                self._bus.set_function(p, "i2s")
        self._ring = bytearray()
        self._pending = None  # memoryview of the caller's buffer (non-blocking write)
        self._pending_off = 0
        self._t0 = float(self._clock.now_us())  # DMA phase
        self._k = 0  # next DMA boundary index
        self._period_us = self.dma_frames * 1e6 / self.actual_rate
        self._active = True
        if mode == self.RX:
            from .i2s_rx import I2sReceiver

            self._rx = I2sReceiver(self, self._rx_source, self._adc)

    def deinit(self):
        with self._lock:
            self._deinit_locked()

    def _deinit_locked(self):
        if not self._active:
            return
        self._active = False
        if self._rx is not None:
            self._rx.close()
            self._rx = None
        self._clock.cancel(self._event)
        self._event = None
        self._pending = None
        self._ring = bytearray()
        # The output stops now: cut the run at the current time.
        self._flush_run(cut_at_us=self._clock.now_us())

    def irq(self, handler):
        self._handler = handler

    # ---- data ---------------------------------------------------------------------
    def write(self, buf):
        if not self._active:
            raise OSError("I2S not initialised")
        if self.mode != self.TX:
            raise ValueError("I2S not configured for write method")
        mv = memoryview(buf).cast("B")
        n = len(mv)
        self.writes += 1
        if self._handler is not None:
            if self._pending is not None:
                self.overlapping_writes += 1
            self._pending = mv
            self._pending_off = 0
            self._ensure_ticking()
            return n
        off = 0
        while True:
            space = self.ibuf - len(self._ring)
            take = min(space, n - off)
            if take:
                self._ring += mv[off : off + take]
                off += take
            self._ensure_ticking()
            if off >= n:
                return n
            # Ring full: wait for the DMA to take the next buffer.
            self._clock.advance_to(self._event[0])

    def readinto(self, buf):
        if not self._active:
            raise OSError("I2S not initialised")
        if self.mode != self.RX:
            raise ValueError("I2S not configured for read method")
        return self._rx.readinto(buf)

    @staticmethod
    def shift(*, buf, bits, shift):
        dt = {16: "<i2", 32: "<i4"}[bits]
        a = np.frombuffer(memoryview(buf).cast("B"), dtype=dt).copy()
        a = a << shift if shift >= 0 else a >> -shift
        memoryview(buf).cast("B")[:] = a.astype(dt).tobytes()

    # ---- DMA ----------------------------------------------------------------------
    def _boundary_us(self, k):
        return self._t0 + k * self._period_us

    def _ensure_ticking(self):
        if self._event is not None:
            return
        now = self._clock.now_us()
        k = max(self._k, math.ceil((now - self._t0) / self._period_us - 1e-9))
        self._k = k
        self._event = self._clock.call_at(math.ceil(self._boundary_us(k)), self._on_dma)

    def _on_dma(self):
        with self._lock:
            self._on_dma_locked()

    def _on_dma_locked(self):
        self._event = None
        if not self._active:
            return
        k = self._k
        self._k = k + 1
        want = self.dma_frames * self.frame_bytes
        chunk = bytes(self._ring[:want])
        del self._ring[:want]
        frames = len(chunk) // self.frame_bytes
        if self._run_end is not None or frames:
            # Playing (or starting to): a short chunk is an underrun, the DAC gets zeros.
            if frames < self.dma_frames and self._run_end is not None:
                self.underrun_frames += self.dma_frames - frames
            self._play(chunk, frames, self._boundary_us(k + 1))
        done = False
        if self._pending is not None:
            space = self.ibuf - len(self._ring)
            rest = len(self._pending) - self._pending_off
            take = min(space, rest)
            if self.copy_per_irq is not None:
                take = min(take, self.copy_per_irq)
            if take:
                self._ring += self._pending[self._pending_off : self._pending_off + take]
                self._pending_off += take
            if self._pending_off >= len(self._pending):
                self._pending = None
                done = True
        if self._ring or self._pending is not None:
            self._ensure_ticking()
        else:
            # Idle: what was taken now still plays for one DMA buffer, then silence.
            self._flush_run(end=True)
        if done and self._handler is not None:
            self._handler(self)

    def _play(self, chunk, frames, start_us):
        dt = "<i2" if self.bits == 16 else "<i4"
        a = np.frombuffer(chunk, dtype=dt)[: frames * self.channels]
        left = a[:: self.channels].astype(np.float64)
        v = np.zeros(self.dma_frames)
        v[:frames] = left * (self.full_scale_v / (1 << (self.bits - 1)))
        self.frames_played += frames
        if self._run_end is not None and abs(start_us - self._run_end) > 0.5:
            self._flush_run(end=True)  # a gap in the output: the previous run ended
        if self._run_end is None:
            self._run_start = start_us
            d = self._dac_filter()[2]
            self._out_next_us = start_us - d * 1e6 / (self.actual_rate * self._os)
        self._run.append(v)
        self._run_frames += len(v)
        self._run_end = start_us + self._period_us
        if self._run_frames >= _RUN_FLUSH_FRAMES:
            self._flush_run()

    # The DAC's interpolation filter (PCM5102A: 8x FIR, passband to 0.45 fs, stopband from
    # 0.55 fs). Modelled as an oversampling FIR to >= 96 kHz with its group delay removed, so
    # the line recorder gets a band-limited signal it can resample without interpolation error.
    def _dac_filter(self):
        f = getattr(self, "_filt", None)
        if f is None or f[3] != self.actual_rate:
            os_ = max(2, math.ceil(96000 / self.actual_rate))
            taps = 24 * os_ + 1
            h = signal.firwin(
                taps, 0.5 * self.actual_rate, window=("kaiser", 9.0), fs=self.actual_rate * os_
            )
            f = (h * os_, np.zeros(taps - 1), (taps - 1) // 2, self.actual_rate)
            self._filt = f
            self._os = os_
            self._zi = f[1].copy()
        return f

    def _dac_out(self, x, tail=False):
        h, _, d, _ = self._dac_filter()
        os_ = self._os
        up = np.zeros(len(x) * os_ + (len(h) if tail else 0))
        if not up.size:  # nothing played since the last flush
            return
        up[: len(x) * os_ : os_] = x
        y, self._zi = signal.lfilter(h, 1.0, up, zi=self._zi)
        if y.size:
            self._recorder.add_segment(self._source, self._out_next_us, self.actual_rate * os_, y)
            self._out_next_us += y.size * 1e6 / (self.actual_rate * os_)

    def _flush_run(self, cut_at_us=None, end=False):
        """Push the run to the recorder: continuing (filter state kept), ended (the filter's
        tail is pushed too) or cut at a time (the output stops there)."""
        if self._run_end is None:
            return
        v = np.concatenate(self._run) if self._run else np.zeros(0)
        if cut_at_us is not None:
            keep = max(0, int(round((cut_at_us - self._run_start) * self.actual_rate / 1e6)))
            v = v[:keep]
        self._dac_out(v, tail=end)
        self._run_start += self._run_frames * 1e6 / self.actual_rate
        self._run = []
        self._run_frames = 0
        if end or cut_at_us is not None:
            self._run_end = None
            self._zi = self._dac_filter()[1].copy()

    def flush(self):
        with self._lock:
            self._flush_locked()

    def _flush_locked(self):
        """Push what has been played so far to the recorder."""
        self._flush_run()


def make_i2s_class(clock, recorder, profile=None, *, bus=None, source="i2s", rx_source=None):
    """An ``I2S`` class bound to one board's clock, line recorder (and pin bus); ``rx_source``:
    what an RX channel's ADC hears (t_us -> volts; None: silence)."""
    profile = profile or {}
    attrs = {
        "_clock": clock,
        "_recorder": recorder,
        "_bus": bus,
        "_mcu": profile.get("mcu", "esp32"),
        "_dac": profile.get("dac", "pcm5102a"),
        "_source": source,
        "_rx_source": staticmethod(rx_source) if rx_source is not None else None,
        "instances": [],
    }
    if attrs["_dac"] not in DACS:
        raise ValueError(f"unknown DAC model {attrs['_dac']}")
    return type("I2S", (SimI2S,), attrs)

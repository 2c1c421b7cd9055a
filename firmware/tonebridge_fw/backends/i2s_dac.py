# I2S DAC backend: signed 16-bit samples from the core Renderer, played through machine.I2S
# (esp32 and rp2 ports) into an external I2S DAC (PCM5102A / MAX98357A class).
#
# Samples are clocked by the I2S peripheral (DMA). The backend uses MicroPython's
# non-blocking I2S mode (I2S.irq set): write(buf) returns at once, the port copies buf into
# its ring buffer (ibuf) as the DMA frees space and then schedules the irq handler. Two
# pre-allocated buffers ping-pong: the handler hands over the buffer that service() filled,
# service() refills the buffer the handler released. Nothing allocates per sample.
#
# position(): an estimate of the frames that have left the DAC (MicroPython's I2S API does not
# report the ring fill), played():
#   clock = frames by the clock since the first write of the plan (re-anchored at every irq;
#           pulled back to what was written after an underrun)
#   played = clock - latency, clamped to
#            [frames accepted into ibuf - ibuf capacity - latency, frames handed to write()]
# latency = 3 DMA buffers of the port (a frame written to an empty ring leaves the DAC 2..3
# DMA buffers later), so the estimate is behind the true output by 0..1 DMA buffer and
# never ahead of it: a step is never reported finished before it has been heard.

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


import time
from array import array

from tonebridge_fw.synth import Renderer
from tonebridge_fw.ticks import ticks_diff as _ticks_diff

_IDLE = const(0)
_RUN = const(1)
_DONE = const(2)

DEFAULT_RATE = const(44100)
DEFAULT_BUF_FRAMES = const(512)
DEFAULT_IBUF = const(8192)
# DMA buffer length in frames of the MicroPython ports (rp2: 128-byte halves of a 256-byte
# buffer, stereo 16-bit frames; esp32: 256 frames); only used for the playback-latency estimate.
_DMA_FRAMES_RP2 = const(32)
_DMA_FRAMES_ESP32 = const(256)


class I2SBackend:
    """Backend interface: start(plan), service(), position(), abort(), close()."""

    def __init__(self, profile, i2s_class=None, pin_class=None, ticks_us=None):
        if i2s_class is None or pin_class is None:
            import machine

            if i2s_class is None:
                i2s_class = machine.I2S
            if pin_class is None:
                pin_class = machine.Pin
        self._I2S = i2s_class
        self._ticks_us = ticks_us if ticks_us is not None else time.ticks_us
        self.rate = profile.get("i2s_rate", DEFAULT_RATE)
        fmt = profile.get("i2s_format", "mono")
        if fmt not in ("mono", "stereo"):
            raise ValueError("i2s_format must be 'mono' or 'stereo'")
        self.channels = 2 if fmt == "stereo" else 1
        self.ibuf = profile.get("i2s_ibuf", DEFAULT_IBUF)
        n = profile.get("i2s_buf_frames", DEFAULT_BUF_FRAMES)
        self._n = n
        self._i2s_args = (
            profile.get("i2s_id", 0),
            pin_class(profile["sck_pin"]),
            pin_class(profile["ws_pin"]),
            pin_class(profile["sd_pin"]),
            i2s_class.STEREO if self.channels == 2 else i2s_class.MONO,
        )
        self._ibuf_frames = self.ibuf // (2 * self.channels)
        self._half_ms = n * 500 // self.rate  # half a buffer's time (due_ms)
        # Output pipeline after the ring buffer: the port's DMA irq first refills the DMA buffer
        # that just finished from the ring, then copies our buffer into the ring; that DMA
        # buffer plays after the one now playing. So a frame written into an empty ring leaves
        # the DAC 2..3 DMA buffers later. The estimate assumes 3 (it never reports a step
        # finished before it has been heard; it lags by at most one DMA buffer).
        mcu = profile.get("mcu", "")
        dma = _DMA_FRAMES_RP2 if mcu[:3] == "rp2" else _DMA_FRAMES_ESP32
        self._latency = profile.get("i2s_latency_frames", 3 * dma)
        kw = {}
        if "level" in profile:
            kw["level"] = profile["level"]
        self._r = Renderer(self.rate, bits=16, signed=True, **kw)
        self._bufs = (
            array("h", bytes(2 * n * self.channels)),
            array("h", bytes(2 * n * self.channels)),
        )
        self._mono = array("h", bytes(2 * n)) if self.channels == 2 else None
        self._ready = [False, False]
        self._inflight = -1
        self._next_fill = 0
        self._next_write = 0
        self._final = 0
        self._drained = False  # the last plan ended normally (its padding may still be queued)
        self._cb = self._on_irq  # bound once: the handler path never allocates a bound method
        self._plan = None
        self._state = _IDLE
        self._total = 0  # frames in the plan
        self._rendered = 0  # frames rendered into buffers
        self._written = 0  # frames handed to write()
        self._accepted = 0  # frames the port has copied into ibuf (irq seen)
        self._anchor = 0
        self._anchor_t = 0
        self.underruns = 0
        self._i2s = None
        self._open()

    def _open(self):
        i2s_id, sck, ws, sd, fmt = self._i2s_args
        I2S = self._I2S
        self._i2s = I2S(
            i2s_id,
            sck=sck,
            ws=ws,
            sd=sd,
            mode=I2S.TX,
            bits=16,
            format=fmt,
            rate=self.rate,
            ibuf=self.ibuf,
        )
        self._i2s.irq(self._cb)

    # ---- buffers ------------------------------------------------------------------
    def _fill(self):
        # Fill the next buffer in turn if it is free and the plan has samples left.
        k = self._next_fill
        if self._ready[k] or k == self._inflight or self._rendered >= self._total:
            return
        self._next_fill = 1 - k
        buf = self._bufs[k]
        n = self._n
        if self.channels == 1:
            got = self._r.fill(buf, 0, n)
            i = got
            while i < n:  # pad the plan's last buffer with idle (0)
                buf[i] = 0
                i += 1
        else:
            mono = self._mono
            got = self._r.fill(mono, 0, n)
            i = 0
            while i < got:
                s = mono[i]
                buf[2 * i] = s
                buf[2 * i + 1] = s
                i += 1
            i = 2 * got
            while i < 2 * n:
                buf[i] = 0
                i += 1
        self._rendered += got
        self._ready[k] = True

    def _write(self, k):
        self._inflight = k
        self._next_write = 1 - k
        self._written += self._n
        self._i2s.write(self._bufs[k])

    def _on_irq(self, i2s):
        # Scheduled by the port once the in-flight buffer is entirely in its ring buffer.
        k = self._inflight
        if k < 0 or self._state != _RUN:
            return
        self._rebase()
        self._accepted += self._n
        self._ready[k] = False
        self._inflight = -1
        if self._ready[self._next_write]:
            self._write(self._next_write)
        elif self._rendered < self._total:
            self.underruns += 1

    # ---- backend interface --------------------------------------------------------
    def start(self, plan):
        if self._state == _RUN:
            self.abort()
        # Frames of the previous plan (its zero padding) possibly still queued in the port
        # (an upper bound: written minus the played estimate, which is never ahead). The new
        # plan plays right after them; with more than the pipeline latency queued, that queue
        # replaces the latency in the estimate. Capped by what the ring + DMA can hold (a ticks
        # wrap over a long idle time can only make the estimate late, never early).
        backlog = 0
        if self._drained:
            backlog = self._written + self._latency - self._clock_frames()
            cap = self._ibuf_frames + self._latency
            if backlog > cap:
                backlog = cap
            backlog -= self._latency
            if backlog < 0:
                backlog = 0
        self._drained = False
        self._r.load(plan)  # ValueError for an unusable plan
        self._plan = plan
        self._final = len(plan)
        self._total = self._r.total_samples
        if self._total == 0:
            self._state = _DONE
            return
        self._rendered = 0
        self._written = 0
        self._accepted = 0
        self._ready[0] = False
        self._ready[1] = False
        self._inflight = -1
        self._next_fill = 0
        self._fill()
        self._fill()
        self._state = _RUN
        self._anchor = -backlog
        self._anchor_t = self._ticks_us()
        self._write(0)

    def service(self):
        if self._state != _RUN:
            return
        self._fill()
        if self._inflight < 0 and self._ready[self._next_write]:
            self._rebase()
            self._write(self._next_write)

    def due_ms(self):
        """ms until service() next has work while playing; at least 1 ms, 0 when not playing
        (the caller then polls). Work is: a free buffer to render, a ready buffer to hand over,
        the port taking the in-flight buffer (its irq frees a buffer service() must refill
        before the port wants the next one: the ring's estimated free space says when), and
        the next step boundary (a digit starts or ends: the player reports it)."""
        if self._state != _RUN:
            return 0
        k = self._next_fill
        if self._rendered < self._total and not self._ready[k] and k != self._inflight:
            return 1  # a buffer to render now
        if self._inflight < 0:
            return 1  # a ready buffer to hand over (or the plan's end to report)
        p = self.played()
        due = self._half_ms
        # the in-flight buffer enters the ring once it has room for it (the ring drains as
        # the DAC plays; frames still in the DMA buffers are `latency`)
        held = self._accepted - p - self._latency
        wait = self._n - (self._ibuf_frames - (held if held > 0 else 0))
        if wait <= 0:
            return 1
        ms = wait * 1000 // self.rate
        if ms < due:
            due = ms
        r = self._r
        total = self._total
        if p < r.lead_in:
            b = r.lead_in - p  # the first step's edge: the player reports it started
        elif p < total:
            j = r.step_at(p)
            b = (r.step_start(j + 1) if j < self._final else total) - p
        else:
            b = 0
        if b > 0:
            ms = b * 1000 // self.rate
            if ms < due:
                due = ms
        return due + 1

    def _clock_frames(self):
        # Frames the DAC can have taken since the first write, by the clock.
        # in two parts so the products stay small ints (no allocation) for dt up to ~20 s
        dt = _ticks_diff(self._ticks_us(), self._anchor_t)
        r = self.rate
        return self._anchor + (dt // 1000) * r // 1000 + (dt % 1000) * r // 1000000

    def _rebase(self):
        # Re-anchor (keeps the arithmetic small) and pull the time base back if the clock
        # ran ahead of the data written (an underrun: the DAC played silence meanwhile).
        f = self._clock_frames()
        hi = self._written + self._latency
        self._anchor = f if f < hi else hi
        self._anchor_t = self._ticks_us()

    def played(self):
        """Estimated frames of the current plan that have left the DAC (never ahead of it)."""
        if self._state == _IDLE:
            return 0
        if self._state == _DONE:
            return self._total
        p = self._clock_frames() - self._latency
        lo = self._accepted - self._ibuf_frames - self._latency
        if p < lo:
            p = lo
        if p > self._written:
            p = self._written
        return p if p > 0 else 0

    def position(self):
        if self._plan is None:
            return 0
        if self._state != _RUN:
            return self._final
        p = self.played()
        if p < self._r.lead_in:
            return -1  # nothing of the plan has left the DAC yet
        if p >= self._total and self._inflight < 0 and self._rendered >= self._total:
            self._state = _DONE
            self._drained = True
            return self._final
        if p >= self._total:
            p = self._total - 1
        return self._r.step_at(p)

    def abort(self):
        # Silence at once: the port cannot drop queued samples, so stop and restart I2S.
        if self._state != _RUN:
            return
        self._final = self.position()
        self._state = _DONE
        self._inflight = -1
        self._i2s.deinit()
        self._open()

    def configure(self, twist=None, level=None):
        """Protocol CONFIG: twist (dB) / level for the next sequence (see Renderer.configure)."""
        return self._r.configure(twist, level)

    def close(self):
        if self._i2s is not None:
            self._state = _IDLE if self._plan is None else _DONE
            self._i2s.deinit()
            self._i2s = None

"""The receive side of a simulated ``machine.I2S`` (``mode=I2S.RX``): an I2S ADC clocked by the
port's I2S peripheral, fed from the simulated line.

Model of the esp32 port (ports/esp32/machine_i2s.c), what the firmware can observe:

* The channel runs from ``init``: frame k is the ADC's sample at ``t0 + k / rate``. The DMA
  works in 32-bit stereo frames, ``dma_frames`` (256) a DMA buffer; a buffer is handed to the
  port when it completes (at ``t0 + (j + 1) * dma_frames / rate``), into a queue of
  ``max(ibuf // (dma_frames * 8), 2)`` buffers; when the queue is full the oldest is dropped
  (ESP-IDF's receive-queue overflow: those samples are lost, counted in ``dropped_frames``).
* ``readinto(buf)`` converts frames to the app format: MONO takes one slot's sample a frame
  (the line sense feeds both of the ADC's inputs, so either is the line), 16-bit the top 16
  bits, 32-bit the whole (24-bit data left-justified); STEREO both slots.
* Blocking (no ``irq`` handler): ``readinto`` fills ``buf`` completely, waiting for DMA
  buffers (the clock advances). Non-blocking (``irq(handler)``): ``readinto`` records ``buf``
  and returns ``len(buf)`` at once; the port fills it from the queue as buffers complete and
  then calls ``handler(i2s)`` (on a board: scheduled, between the main loop's bytecodes; here:
  at the DMA event, or at once if the queue already held enough). A ``readinto`` from the
  handler continues the same way (no recursion).

ADC model (``ADCS``): full scale in V rms of a sine at its input; the input is
``source(t_us) -> volts`` (the board's line sense, sim/line_sense.py, less its bias: the ADC's
input is AC-coupled), quantised to 24 bits and clipped at full scale.
"""

from __future__ import annotations

import math

import numpy as np

ADCS = {
    # name: full-scale input (V rms for a full-scale sine)
    "pcm1860": 2.1,
}


class I2sReceiver:
    def __init__(self, port, source, adc: str = "pcm1860"):
        self.port = port
        self.clock = port._clock
        self.source = source
        self.full_scale_v = ADCS[adc] * math.sqrt(2)
        self.rate = port.actual_rate
        self.frames = port.dma_frames
        self.cap = max(port.ibuf // (self.frames * 8), 2)
        self.t0 = float(self.clock.now_us())
        self.j = 0  # next DMA buffer to complete
        self.queue: list[np.ndarray] = []  # completed DMA buffers: int32 samples (24-bit << 8)
        self.head = 0  # frames of queue[0] already taken
        self.dropped_frames = 0
        self.frames_read = 0
        self.pending = None  # (memoryview of the caller's buffer, bytes filled)
        self._servicing = False
        self.event = self.clock.call_at(math.ceil(self._done_us(0)), self._on_dma)

    def _done_us(self, j: int) -> float:
        return self.t0 + (j + 1) * self.frames * 1e6 / self.rate

    def close(self) -> None:
        self.clock.cancel(self.event)
        self.event = None
        self.pending = None

    # ---- DMA ----------------------------------------------------------------------------
    def _on_dma(self) -> None:
        self.event = None
        j = self.j
        self.j = j + 1
        k = np.arange(j * self.frames, (j + 1) * self.frames, dtype=np.float64)
        t_us = self.t0 + k * 1e6 / self.rate
        # the line at those instants (the source flushes the outputs: not under our lock)
        v = np.zeros(k.size) if self.source is None else np.asarray(self.source(t_us))
        codes = np.clip(np.round(v / self.full_scale_v * (1 << 23)), -(1 << 23), (1 << 23) - 1)
        with self.port._lock:
            self.queue.append(codes.astype(np.int64) << 8)
            if len(self.queue) > self.cap:
                self.dropped_frames += self.queue[0].size - self.head
                self.queue.pop(0)
                self.head = 0
            self.event = self.clock.call_at(math.ceil(self._done_us(self.j)), self._on_dma)
        self._service()

    def available(self) -> int:
        return sum(q.size for q in self.queue) - self.head

    def _take(self, n: int) -> np.ndarray:
        out = []
        while n and self.queue:
            q = self.queue[0]
            m = min(n, q.size - self.head)
            out.append(q[self.head : self.head + m])
            self.head += m
            n -= m
            if self.head >= q.size:
                self.queue.pop(0)
                self.head = 0
        self.frames_read += sum(o.size for o in out)
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def _fill(self, mv, off: int) -> int:
        """Copy what the queue holds into mv from byte off; the new offset."""
        p = self.port
        fb = p.frame_bytes
        want = (len(mv) - off) // fb
        s = self._take(min(want, self.available()))
        if not s.size:
            return off
        if p.bits == 16:
            a = (s >> 16).astype("<i2")
        else:
            a = s.astype("<i4")
        if p.channels == 2:
            a = np.repeat(a, 2)
        b = a.tobytes()
        mv[off : off + len(b)] = b
        return off + len(b)

    # ---- reads --------------------------------------------------------------------------
    def readinto(self, buf) -> int:
        mv = memoryview(buf).cast("B")
        n = len(mv) - len(mv) % self.port.frame_bytes
        mv = mv[:n]
        if self.port._handler is not None:
            self.pending = (mv, 0)
            if not self._servicing:
                self._service()
            return n
        off = 0
        while True:
            off = self._fill(mv, off)
            if off >= n:
                return n
            self.clock.advance_to(math.ceil(self._done_us(self.j)))

    def _service(self) -> None:
        if self._servicing:
            return
        self._servicing = True
        try:
            while self.pending is not None:
                with self.port._lock:
                    mv, off = self.pending
                    off = self._fill(mv, off)
                    if off < len(mv):
                        self.pending = (mv, off)
                        return
                    self.pending = None
                h = self.port._handler
                if h is not None:
                    h(self.port)  # may hand over the next buffer (self.pending again)
        finally:
            self._servicing = False

"""One RP2040/RP2350 PWM slice: CSR/DIV/CC/CTR/TOP, its period and wraps, and the CC values in
force period by period.

The period is ``(TOP+1) * (PH_CORRECT+1) * DIV`` system clocks; CC is double-buffered and
latched at each wrap (edge-aligned: the counter's return to 0; phase-correct: the counter runs
0 -> TOP -> 0 and the wrap, where CC/TOP latch and the wrap DREQ fires, is the return to 0,
once per doubled period). CC writes (from the CPU or a DMA channel) are logged with their
times; ``emit_until`` turns the log into one CC value per period and hands runs of periods to
the pin outputs (``Rp2Hardware.pwm_emit``).
"""

from __future__ import annotations

import numpy as np


class PwmSlice:
    IDLE_BLOCK = 1 << 16  # periods per hand-over of a run at one duty (bounded arrays)

    def __init__(self, hw, idx):
        self.hw = hw
        self.idx = idx
        self.csr = 0
        self.div = 1 << 4
        self.top = 0xFFFF
        self.cc = 0
        self.ctr = 0
        self.running = False
        self.anchor = 0  # t16 of the start of period 0 of the current regime
        self.anchor_is_wrap = False
        self.period = self.compute_period()
        self.k_emitted = 0  # periods of this regime already emitted
        self.latched = 0  # CC in effect before the first pending log entry
        self._log_t: list = []  # chunks of write times (t16)
        self._log_v: list = []  # chunks of 32-bit CC values
        self.cc_writes = 0

    def compute_period(self) -> int:
        """The period in t16 from the registers now."""
        div_int = (self.div >> 4) & 0xFF or 256
        div16 = (div_int << 4) | (self.div & 0xF)
        ph = 2 if self.csr & 0x2 else 1
        return (self.top + 1) * ph * div16

    def reset_registers(self) -> None:
        self.div, self.top, self.ctr = 1 << 4, 0xFFFF, 0
        self.period = self.compute_period()

    def rate_hz(self) -> float:
        return self.hw.freq * 16 / self.period

    def wraps_after(self, after: int, limit: int, n: int, offset: int = 0) -> np.ndarray:
        """Wrap instants t with after < t <= limit, at most n of them (plus ``offset``)."""
        if not self.running or n <= 0:
            return np.empty(0, dtype=np.int64)
        p = self.period
        k0 = 0 if self.anchor_is_wrap else 1
        if after >= self.anchor:
            k0 = max(k0, (after - self.anchor) // p + 1)
        if limit < self.anchor + k0 * p:
            return np.empty(0, dtype=np.int64)
        k1 = min((limit - self.anchor) // p, k0 + n - 1)
        t0 = self.anchor + offset
        return np.arange(t0 + k0 * p, t0 + k1 * p + 1, p, dtype=np.int64)

    def wrap_count(self, after: int, limit: int) -> int:
        """How many wrap instants t with after < t <= limit (``wraps_after``'s count)."""
        if not self.running:
            return 0
        p = self.period
        k0 = 0 if self.anchor_is_wrap else 1
        if after >= self.anchor:
            k0 = max(k0, (after - self.anchor) // p + 1)
        if limit < self.anchor + k0 * p:
            return 0
        return (limit - self.anchor) // p - k0 + 1

    def log_write(self, t16, value) -> None:
        if type(t16) is np.ndarray and type(value) is np.ndarray:  # a DMA run (the hot path)
            self._log_t.append(t16.astype(np.int64, copy=False))
            self._log_v.append(value.astype(np.uint32, copy=False))
            self.cc_writes += t16.size
            self.cc = int(value[-1])
            return
        self._log_t.append(np.atleast_1d(np.asarray(t16, dtype=np.int64)))
        self._log_v.append(np.atleast_1d(np.asarray(value, dtype=np.uint32)))
        self.cc_writes += int(np.size(t16))
        self.cc = int(np.atleast_1d(value)[-1])

    def counter_at(self, t16: int) -> int:
        """What the CTR register reads at t16."""
        if not self.running:
            return self.ctr
        ph = (t16 - self.anchor) % self.period
        if self.csr & 0x2:  # phase-correct: 0 -> TOP on the way up, TOP -> 0 down
            up = ph * 2 * (self.top + 1) // self.period
            return int(up if up <= self.top else 2 * (self.top + 1) - 1 - up)
        return int(ph * (self.top + 1) // self.period)

    def emit_until(self, t16: int) -> None:
        """Emit every period that starts at or before t16 (its value is then known)."""
        if not self.running:
            return
        p = self.period
        k_last = (t16 - self.anchor) // p
        if k_last < self.k_emitted:
            return
        if not self._log_t:  # one duty throughout (e.g. idle): in bounded blocks
            k0 = self.k_emitted
            self.k_emitted = k_last + 1
            for b0 in range(k0, k_last + 1, self.IDLE_BLOCK):
                n = min(self.IDLE_BLOCK, k_last + 1 - b0)
                vals = np.full(n, self.latched, dtype=np.uint32)
                self.hw.pwm_emit(self, self.anchor + p * b0, p, vals)
            return
        a0 = self.anchor
        starts = np.arange(a0 + p * self.k_emitted, a0 + p * k_last + 1, p, dtype=np.int64)
        lt_parts, lv_parts = self._log_t, self._log_v
        if len(lt_parts) == 1:
            lt, lv = lt_parts[0], lv_parts[0]
        else:
            lt, lv = np.concatenate(lt_parts), np.concatenate(lv_parts)
            # each part is in time order (a DMA run, or one CPU write); a CPU write may
            # come in before a deferred DMA run of earlier periods
            if any(a[-1] > b[0] for a, b in zip(lt_parts, lt_parts[1:], strict=False)):
                order = np.argsort(lt, kind="stable")
                lt, lv = lt[order], lv[order]
        # a write at the very instant a period starts (CC set, then the slice enabled) is
        # in force for it; DMA writes land a clock after their wrap, i.e. in the next one
        idx = np.searchsorted(lt, starts, side="right")
        vals = np.concatenate(([self.latched], lv)).astype(np.uint32)[idx]
        # keep only what later periods may still need
        keep = int(np.searchsorted(lt, starts[-1], side="left"))
        if keep > 0:
            self.latched = int(lv[keep - 1])
        self._log_t = [lt[keep:]] if keep < lt.size else []
        self._log_v = [lv[keep:]] if keep < lt.size else []
        self.k_emitted = k_last + 1
        self.hw.pwm_emit(self, int(starts[0]), p, vals)

    def reconfigure(self, now16: int, apply) -> None:
        """Apply a register change: the current period finishes with the old settings."""
        if self.running:
            self.emit_until(now16)
            p = self.period
            k_next = max((now16 - self.anchor) // p + 1, 1 if not self.anchor_is_wrap else 0)
            next_wrap = self.anchor + k_next * p
        was_running = self.running
        apply()
        self.running = bool(self.csr & 1)
        self.period = self.compute_period()
        if self.running and not was_running:
            self.anchor = now16  # counter starts from CTR (0 after reset)
            self.anchor_is_wrap = False
            self.k_emitted = 0
            self.latched = self.cc if not self._log_t else self.latched
        elif self.running:
            self.anchor = next_wrap
            self.anchor_is_wrap = True
            self.k_emitted = 0

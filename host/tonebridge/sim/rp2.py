"""RP2040 / RP2350 peripheral models behind the simulated ``machine``/``rp2`` modules.

The firmware configures hardware through ``machine.PWM``, ``rp2.DMA`` and raw register writes
(``machine.mem32``); all of them land in one register model per board (``Rp2Hardware``), which
then *derives* the line signal from what was configured:

* PWM slices (CSR/DIV/CC/CTR/TOP at ``PWM_BASE + 0x14*n``; EN alias register): the period is
  ``(TOP+1) * (PH_CORRECT+1) * DIV`` system clocks; CC is double-buffered and latched at each
  wrap; during each period the pin is high for ``CC/(TOP+1)`` of it (edge-aligned: at the
  start; phase-correct: the counter runs 0 -> TOP -> 0 and the pin is high while it is below
  CC, so high for ``CC/(2(TOP+1))`` at each end of the period, the low part centred on the TOP
  turn-around; the wrap, where CC/TOP latch and the wrap DREQ fires, is the return to 0, once
  per doubled period), resolved into area-exact sub-samples (at least ``PinOutput.pulse_rate``)
  so the carrier and the pulse edges, not only the duty average, reach the analog chain.
* DMA channels (READ/WRITE/TRANS_COUNT/CTRL and their aliases, MULTI_CHAN_TRIGGER, CHAN_ABORT,
  pacing TIMER0-3): transfers happen when their TREQ fires (PWM wrap DREQ of a slice, a pacing
  timer at ``clk_sys * X / Y``, or unpaced), read from the buffers the firmware handed over and
  write to memory or to peripheral registers (a CC write reaches the PWM model with its time).
  Channel completion, CHAIN_TO, IRQ flags and the remaining count are modelled.

Everything is computed lazily and in bulk with numpy: whenever the firmware touches the
hardware (or time moves) the model catches up to "now".

Time inside the model is counted in 1/16 system-clock cycles ("t16"), so fractional PWM
dividers are exact.
"""

from __future__ import annotations

import threading

import numpy as np

# ---- per-MCU constants (pico-sdk hardware/regs, RP2040 and RP2350 datasheets) --------------
MCU = {
    "rp2040": {
        "freq": 125_000_000,
        "pwm_base": 0x40050000,
        "pwm_slices": 8,
        "dreq_pwm_wrap0": 24,
        "dma_base": 0x50000000,
        "dma_channels": 12,
        "dma_timer0": 0x420,
        "dma_multi_trigger": 0x430,
        "dma_abort": 0x444,
        "io_bank0": 0x40014000,
        "gpios": 30,
        # CTRL field (lsb, width)
        "ctrl": {
            "en": (0, 1),
            "high_pri": (1, 1),
            "size": (2, 2),
            "inc_read": (4, 1),
            "inc_write": (5, 1),
            "ring_size": (6, 4),
            "ring_sel": (10, 1),
            "chain_to": (11, 4),
            "treq_sel": (15, 6),
            "irq_quiet": (21, 1),
            "bswap": (22, 1),
            "sniff_en": (23, 1),
            "busy": (24, 1),
            "write_err": (29, 1),
            "read_err": (30, 1),
            "ahb_err": (31, 1),
        },
    },
    "rp2350": {
        "freq": 150_000_000,
        "pwm_base": 0x400A8000,
        "pwm_slices": 12,
        "dreq_pwm_wrap0": 32,
        "dma_base": 0x50000000,
        "dma_channels": 16,
        "dma_timer0": 0x440,
        "dma_multi_trigger": 0x450,
        "dma_abort": 0x464,
        "io_bank0": 0x40028000,
        "gpios": 48,
        "ctrl": {
            "en": (0, 1),
            "high_pri": (1, 1),
            "size": (2, 2),
            "inc_read": (4, 1),
            "inc_read_rev": (5, 1),
            "inc_write": (6, 1),
            "inc_write_rev": (7, 1),
            "ring_size": (8, 4),
            "ring_sel": (12, 1),
            "chain_to": (13, 4),
            "treq_sel": (17, 6),
            "irq_quiet": (23, 1),
            "bswap": (24, 1),
            "sniff_en": (25, 1),
            "busy": (26, 1),
            "write_err": (29, 1),
            "read_err": (30, 1),
            "ahb_err": (31, 1),
        },
    },
}

TREQ_TIMER0 = 59
TREQ_PERMANENT = 63
FUNC_PWM = 4
FUNC_SIO = 5
_ALIAS_XOR, _ALIAS_SET, _ALIAS_CLR = 0x1000, 0x2000, 0x3000
_UNPACED_CYCLES = 4  # an unpaced DMA transfer every few system clocks
_DMA_LATENCY = 16  # t16: a paced transfer lands one system clock after its DREQ
SRAM_BASE = 0x20000000
_NP_DTYPE = {1: np.uint8, 2: np.uint16, 4: np.uint32}


class BusFault(Exception):
    """The firmware made the simulated hardware do something a real chip would fault on."""


def ctrl_field(mcu: str, value: int, name: str) -> int:
    lsb, width = MCU[mcu]["ctrl"][name]
    return (value >> lsb) & ((1 << width) - 1)


# ---- memory: buffers the firmware hands to the DMA get a stable fake address ----------------
class AddressMap:
    def __init__(self):
        self._regions: list = []  # (base, nbytes, ndarray uint8 view, owner)
        self._next = SRAM_BASE + 0x10000

    @staticmethod
    def _host_ptr(obj):
        a = np.frombuffer(obj, dtype=np.uint8)
        return a, a.__array_interface__["data"][0]

    def address_of(self, obj) -> int:
        """Address of a buffer-protocol object (array, bytearray, memoryview slice)."""
        view, ptr = self._host_ptr(obj)
        for base, n, v, _owner in self._regions:
            vptr = v.__array_interface__["data"][0]
            if vptr <= ptr < vptr + n or (n == 0 and ptr == vptr):
                return base + (ptr - vptr)
        base = self._next
        self._regions.append((base, view.size, view, obj))
        self._next = (base + view.size + 0xFFF) & ~0xFFF  # 4 KiB aligned: DMA rings work
        return base

    def resolve(self, addr: int):
        """(uint8 view of the region, offset) for an address inside a known buffer, or None."""
        for base, n, v, _owner in self._regions:
            if base <= addr < base + n:
                return v, addr - base
        return None


class PwmSlice:
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
        self.period = self._period()
        self.k_emitted = 0  # periods of this regime already emitted
        self.latched = 0  # CC in effect before the first pending log entry
        self._log_t: list = []  # chunks of write times (t16)
        self._log_v: list = []  # chunks of 32-bit CC values
        self.cc_writes = 0

    def _period(self) -> int:
        div_int = (self.div >> 4) & 0xFF or 256
        div16 = (div_int << 4) | (self.div & 0xF)
        ph = 2 if self.csr & 0x2 else 1
        return (self.top + 1) * ph * div16

    def rate_hz(self) -> float:
        return self.hw.freq * 16 / self.period

    def wraps_after(self, after: int, limit: int, n: int) -> np.ndarray:
        """Wrap instants t with after < t <= limit, at most n of them."""
        if not self.running or n <= 0:
            return np.empty(0, dtype=np.int64)
        p = self.period
        k0 = 0 if self.anchor_is_wrap else 1
        if after >= self.anchor:
            k0 = max(k0, (after - self.anchor) // p + 1)
        if limit < self.anchor + k0 * p:
            return np.empty(0, dtype=np.int64)
        k1 = min((limit - self.anchor) // p, k0 + n - 1)
        return self.anchor + p * np.arange(k0, k1 + 1, dtype=np.int64)

    def log_write(self, t16, value) -> None:
        self._log_t.append(np.atleast_1d(np.asarray(t16, dtype=np.int64)))
        self._log_v.append(np.atleast_1d(np.asarray(value, dtype=np.uint32)))
        self.cc_writes += int(np.size(t16))
        self.cc = int(np.atleast_1d(value)[-1])

    def emit_until(self, t16: int) -> None:
        """Emit every period that starts at or before t16 (its value is then known)."""
        if not self.running:
            return
        p = self.period
        k_last = (t16 - self.anchor) // p
        if k_last < self.k_emitted:
            return
        starts = self.anchor + p * np.arange(self.k_emitted, k_last + 1, dtype=np.int64)
        if self._log_t:
            lt = np.concatenate(self._log_t)
            lv = np.concatenate(self._log_v)
            if lt.size > 1 and np.any(np.diff(lt) < 0):
                order = np.argsort(lt, kind="stable")
                lt, lv = lt[order], lv[order]
            # a write at the very instant a period starts (CC set, then the slice enabled) is
            # in force for it; DMA writes land a clock after their wrap, i.e. in the next one
            idx = np.searchsorted(lt, starts, side="right") - 1
            vals = np.where(idx >= 0, lv[np.clip(idx, 0, None)], self.latched).astype(np.uint32)
            # keep only what later periods may still need
            keep = np.searchsorted(lt, starts[-1], side="left")
            if keep > 0:
                self.latched = int(lv[keep - 1])
            self._log_t = [lt[keep:]] if keep < lt.size else []
            self._log_v = [lv[keep:]] if keep < lt.size else []
        else:
            vals = np.full(starts.size, self.latched, dtype=np.uint32)
        self.k_emitted = k_last + 1
        self.hw._pwm_emit(self, int(starts[0]), p, vals)

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
        self.period = self._period()
        if self.running and not was_running:
            self.anchor = now16  # counter starts from CTR (0 after reset)
            self.anchor_is_wrap = False
            self.k_emitted = 0
            self.latched = self.cc if not self._log_t else self.latched
        elif self.running:
            self.anchor = next_wrap
            self.anchor_is_wrap = True
            self.k_emitted = 0


class DmaChannel:
    def __init__(self, hw, idx):
        self.hw = hw
        self.idx = idx
        self.read = 0
        self.write = 0
        self.count = 0
        self.reload = 0
        self.ctrl = 0
        self.busy = False
        self.after = 0  # t16 after which the next DREQ counts
        self.transfers = 0
        self.irq_pending = False
        self.claimed = False
        self.completions = 0

    def f(self, name):
        return ctrl_field(self.hw.mcu, self.ctrl, name)

    def ctrl_read(self) -> int:
        lsb, _ = MCU[self.hw.mcu]["ctrl"]["busy"]
        return self.ctrl | (int(self.busy) << lsb)

    def trigger(self, t16: int) -> None:
        if not self.f("en"):
            return
        if self.busy:
            return
        self.busy = True
        self.count = self.reload
        self.after = t16
        if self.count == 0:
            self.hw._complete(self, t16)


class Rp2Hardware:
    def __init__(self, clock, bus, mcu: str = "rp2040"):
        if mcu not in MCU:
            raise ValueError(f"unknown mcu {mcu!r}")
        self.clock = clock
        self.bus = bus
        self.mcu = mcu
        self.c = MCU[mcu]
        self.freq = self.c["freq"]
        self.mem = AddressMap()
        self.slices = [PwmSlice(self, i) for i in range(self.c["pwm_slices"])]
        self.dma = [DmaChannel(self, i) for i in range(self.c["dma_channels"])]
        self.dma_timers = [0, 0, 0, 0]
        self.regs: dict[int, int] = {}  # registers with no model: last value written
        # fn(addr, value) -> value|None, applied to every register write the CPU makes
        # (mem32, machine.PWM, rp2.DMA attributes); DMA transfers do not pass through them
        self.write_hooks: list = []
        self.outputs: dict[int, object] = {}  # gpio -> PinOutput
        self.irq_handlers: dict[int, object] = {}
        self._synced16 = 0
        self._irq_queue: list = []
        self.lock = threading.RLock()

    def reset(self) -> None:
        """Chip reset: PWM slices stop, DMA channels abort and are released, pins float."""
        with self.lock:
            self.sync()
            now16 = self._synced16
            for s in self.slices:
                self._slice_change(s, now16, lambda s=s: setattr(s, "csr", 0))
                s.div, s.top, s.ctr = 1 << 4, 0xFFFF, 0
                s.log_write(now16, 0)
                s.period = s._period()
            for ch in self.dma:
                ch.busy = False
                ch.claimed = False
                ch.ctrl = ch.read = ch.write = ch.count = ch.reload = 0
            self.dma_timers = [0, 0, 0, 0]
            self.regs.clear()
            self.irq_handlers.clear()
            for gpio in list(self.outputs):
                self.set_pin_function(gpio, "null")

    # ---- time ---------------------------------------------------------------------
    def t16(self, t_us=None) -> int:
        if t_us is None:
            t_us = self.clock.now_us()
        return int(t_us) * self.freq * 16 // 1_000_000

    def us(self, t16) -> float:
        return t16 * 1e6 / (self.freq * 16)

    def set_freq(self, hz: int) -> None:
        self.sync()
        if any(s.running for s in self.slices) or any(ch.busy for ch in self.dma):
            raise NotImplementedError("sim: change machine.freq() before starting PWM/DMA")
        self.freq = int(hz)
        self._synced16 = self.t16()

    # ---- catching up ----------------------------------------------------------------
    def sync(self, t_us=None) -> None:
        with self.lock:
            self._sync(t_us)

    def _sync(self, t_us=None) -> None:
        t16 = self.t16(t_us)
        if t16 < self._synced16:
            return
        self._run_dma(t16)
        self._synced16 = t16
        for out in self.outputs.values():
            out.sync(t16)
        while self._irq_queue:
            self._irq_queue.pop(0)()

    def flush(self) -> None:
        with self.lock:
            self._flush()

    def _flush(self) -> None:
        self.sync()
        for out in self.outputs.values():
            out.flush()

    def _requests(self, ch: DmaChannel, limit: int, n: int) -> np.ndarray:
        treq = ch.f("treq_sel")
        w0 = self.c["dreq_pwm_wrap0"]
        if w0 <= treq < w0 + self.c["pwm_slices"]:
            w = self.slices[treq - w0].wraps_after(ch.after - _DMA_LATENCY + 1, limit, n)
            return w + _DMA_LATENCY
        if TREQ_TIMER0 <= treq < TREQ_TIMER0 + 4:
            reg = self.dma_timers[treq - TREQ_TIMER0]
            x, y = reg >> 16, reg & 0xFFFF
            if x == 0 or y == 0:
                return np.empty(0, dtype=np.int64)
            # DREQ k at k * Y / X system clocks
            k0 = ch.after * x // (16 * y) + 1
            k1 = min(limit * x // (16 * y), k0 + n - 1)
            if k1 < k0:
                return np.empty(0, dtype=np.int64)
            k = np.arange(k0, k1 + 1, dtype=np.int64)
            return (k * 16 * y + x - 1) // x
        if treq == TREQ_PERMANENT:
            step = 16 * _UNPACED_CYCLES
            m = min(n, max(0, (limit - ch.after) // step))
            return ch.after + step * np.arange(1, m + 1, dtype=np.int64)
        return np.empty(0, dtype=np.int64)  # a peripheral with no model never asks

    def _run_dma(self, limit: int) -> None:
        for _ in range(100000):
            active = [ch for ch in self.dma if ch.busy and ch.f("en")]
            if not active:
                return
            plans = []
            first_done = None
            for ch in active:
                tt = self._requests(ch, limit, ch.count)
                plans.append((ch, tt))
                if tt.size == ch.count and tt.size:
                    if first_done is None or tt[-1] < first_done:
                        first_done = int(tt[-1])
            cut = limit if first_done is None else first_done
            finished = []
            for ch, tt in plans:
                if first_done is not None:
                    tt = tt[tt <= cut]
                if tt.size:
                    self._transfer(ch, tt)
                if ch.count == 0:
                    finished.append(ch)
            if not finished:
                return
            for ch in finished:
                self._complete(ch, cut)

    def _complete(self, ch: DmaChannel, t16: int) -> None:
        ch.busy = False
        ch.completions += 1
        if not ch.f("irq_quiet"):
            ch.irq_pending = True
            fn = self.irq_handlers.get(ch.idx)
            if fn is not None:
                self._irq_queue.append(fn)  # run once the model has caught up (soft IRQ)
        nxt = ch.f("chain_to")
        if nxt != ch.idx and nxt < len(self.dma):
            self.dma[nxt].trigger(t16)

    def _transfer(self, ch: DmaChannel, tt: np.ndarray) -> None:
        m = tt.size
        size = 1 << ch.f("size")
        if size == 8:
            raise BusFault("DMA DATA_SIZE 3 is reserved")
        dt = _NP_DTYPE[size]
        # read side
        inc_r = ch.f("inc_read")
        ring = ch.f("ring_size")
        ring_on_write = ch.f("ring_sel")
        offs = np.arange(m, dtype=np.int64) * size if inc_r else np.zeros(m, dtype=np.int64)
        if ring and not ring_on_write:
            mask = (1 << ring) - 1
            raddrs = (ch.read & ~mask) | ((ch.read + offs) & mask)
        else:
            raddrs = ch.read + offs
        vals = self._read_many(raddrs, size, dt)
        if ch.f("bswap") and size > 1:
            vals = vals.byteswap()
        # write side
        inc_w = ch.f("inc_write")
        woffs = np.arange(m, dtype=np.int64) * size if inc_w else np.zeros(m, dtype=np.int64)
        if ring and ring_on_write:
            mask = (1 << ring) - 1
            waddrs = (ch.write & ~mask) | ((ch.write + woffs) & mask)
        else:
            waddrs = ch.write + woffs
        self._write_many(waddrs, vals, size, tt)
        # registers advance
        if inc_r:
            ch.read = (
                int(raddrs[-1]) + size
                if not (ring and not ring_on_write)
                else int((ch.read & ~((1 << ring) - 1)) | ((raddrs[-1] + size) & ((1 << ring) - 1)))
            )
        if inc_w:
            ch.write = int(waddrs[-1]) + size
        ch.count -= m
        ch.transfers += m
        ch.after = int(tt[-1])

    def _read_many(self, addrs: np.ndarray, size: int, dt) -> np.ndarray:
        a0 = int(addrs[0])
        r = self.mem.resolve(a0)
        if r is None:
            if addrs.size and np.all(addrs == a0):
                return np.full(addrs.size, self._reg_read(a0), dtype=dt)
            raise BusFault(f"DMA read from unmapped address {a0:#010x}")
        view, off = r
        rel = addrs - a0 + off
        if rel.min() < 0 or rel.max() + size > view.size:
            raise BusFault(f"DMA read runs past the end of its buffer at {a0:#010x}")
        if size == 1:
            return view[rel].astype(dt)
        b = np.stack([view[rel + i] for i in range(size)], axis=1).copy()
        return b.view(f"<u{size}").reshape(-1).astype(dt)

    def _write_many(self, addrs: np.ndarray, vals: np.ndarray, size: int, tt) -> None:
        a0 = int(addrs[0])
        r = self.mem.resolve(a0)
        if r is not None:
            view, off = r
            rel = addrs - a0 + off
            if rel.max() + size > view.size:
                raise BusFault(f"DMA write runs past the end of its buffer at {a0:#010x}")
            raw = vals.astype(f"<u{size}").view(np.uint8).reshape(-1, size)
            for i in range(size):
                view[rel + i] = raw[:, i]
            return
        if not np.all(addrs == a0):
            raise BusFault(f"DMA write with increment into registers at {a0:#010x}")
        # narrow writes to an APB register are replicated across the 32-bit word
        v = vals.astype(np.uint32)
        if size == 2:
            v = v | (v << 16)
        elif size == 1:
            v = v * np.uint32(0x01010101)
        base = self.c["pwm_base"]
        off = a0 - base
        if 0 <= off < 0x14 * len(self.slices) and off % 0x14 == 0x0C:
            self.slices[off // 0x14].log_write(tt, v)
            return
        for t, x in zip(tt.tolist(), v.tolist(), strict=True):
            self._reg_write(a0 & ~3, x, t16=t)

    # ---- register file ------------------------------------------------------------------
    def _reg_read(self, addr: int) -> int:
        addr &= ~3
        c = self.c
        pw = addr - c["pwm_base"]
        n_sl = len(self.slices)
        if 0 <= pw < 0x14 * n_sl:
            s = self.slices[pw // 0x14]
            r = pw % 0x14
            if r == 0x00:
                return s.csr
            if r == 0x04:
                return s.div
            if r == 0x08:
                if not s.running:
                    return s.ctr
                ph = (self._synced16 - s.anchor) % s.period
                if s.csr & 0x2:  # phase-correct: 0 -> TOP on the way up, TOP -> 0 down
                    up = ph * 2 * (s.top + 1) // s.period
                    return int(up if up <= s.top else 2 * (s.top + 1) - 1 - up)
                return int(ph * (s.top + 1) // s.period)
            if r == 0x0C:
                return s.cc
            return s.top
        if pw == 0x14 * n_sl:  # EN
            return sum(1 << i for i, s in enumerate(self.slices) if s.csr & 1)
        d = addr - c["dma_base"]
        if 0 <= d < 0x40 * len(self.dma):
            ch = self.dma[d // 0x40]
            r = d % 0x40
            if r in (0x00, 0x14, 0x28, 0x3C):
                return ch.read
            if r in (0x04, 0x18, 0x2C, 0x34):
                return ch.write
            if r in (0x08, 0x1C, 0x24, 0x38):
                return ch.count
            return ch.ctrl_read()
        if c["dma_timer0"] <= d < c["dma_timer0"] + 16:
            return self.dma_timers[(d - c["dma_timer0"]) // 4]
        if d == 0x400:  # INTR: raw completion flags of channels that are not IRQ_QUIET
            return sum(1 << ch.idx for ch in self.dma if ch.irq_pending)
        if d == 0x40C:  # INTS0 = INTR masked by INTE0
            return self._reg_read(addr - 0x0C) & self.regs.get(c["dma_base"] + 0x404, 0)
        io = addr - c["io_bank0"]
        if 0 <= io < 8 * c["gpios"] and io % 8 == 4:
            fn = self.bus.function(io // 8)
            return {"pwm": FUNC_PWM, "sio": FUNC_SIO}.get(fn, 31)
        return self.regs.get(addr, 0)

    def reg_read(self, addr: int) -> int:
        with self.lock:
            self.sync()
            return self._reg_read(addr) & 0xFFFFFFFF

    def reg_write(self, addr: int, value: int) -> None:
        with self.lock:
            self._reg_write_locked(addr, value)

    def _reg_write_locked(self, addr: int, value: int) -> None:
        self.sync()
        value &= 0xFFFFFFFF
        for hook in self.write_hooks:
            value = hook(addr, value)
            if value is None:
                return
        alias = addr & 0x3000 if (addr >> 28) in (4, 5) else 0
        base_addr = addr - alias
        if alias:
            old = self._reg_read(base_addr)
            value = {_ALIAS_XOR: old ^ value, _ALIAS_SET: old | value, _ALIAS_CLR: old & ~value}[
                alias
            ]
        self._reg_write(base_addr, value)

    def _reg_write(self, addr: int, value: int, t16=None) -> None:
        addr &= ~3
        c = self.c
        now16 = self._synced16 if t16 is None else t16
        pw = addr - c["pwm_base"]
        n_sl = len(self.slices)
        if 0 <= pw < 0x14 * n_sl:
            s = self.slices[pw // 0x14]
            r = pw % 0x14
            if r == 0x0C:
                s.log_write(now16, value)
                return

            def apply():
                if r == 0x00:
                    s.csr = value & 0xFF
                elif r == 0x04:
                    s.div = value & 0xFFF
                elif r == 0x08:
                    s.ctr = value & 0xFFFF
                else:
                    s.top = value & 0xFFFF

            self._slice_change(s, now16, apply)
            return
        if pw == 0x14 * n_sl:  # EN: mirror of the CSR_EN bits
            for i, s in enumerate(self.slices):
                want = (value >> i) & 1
                if want != (s.csr & 1):
                    self._slice_change(
                        s, now16, lambda s=s, w=want: setattr(s, "csr", (s.csr & ~1) | w)
                    )
            return
        d = addr - c["dma_base"]
        if 0 <= d < 0x40 * len(self.dma):
            ch = self.dma[d // 0x40]
            r = d % 0x40
            trig = r in (0x0C, 0x1C, 0x2C, 0x3C)
            if r in (0x00, 0x14, 0x28, 0x3C):
                ch.read = value
            elif r in (0x04, 0x18, 0x2C, 0x34):
                ch.write = value
            elif r in (0x08, 0x1C, 0x24, 0x38):
                # writing TRANS_COUNT sets the reload value; the live counter (what a read
                # returns) is loaded from it only when the channel is triggered
                ch.reload = value
            else:
                busy_lsb = MCU[self.mcu]["ctrl"]["busy"][0]
                ch.ctrl = value & ~(1 << busy_lsb)
            if trig and value != 0:
                ch.trigger(now16)
            return
        if c["dma_timer0"] <= d < c["dma_timer0"] + 16:
            self.dma_timers[(d - c["dma_timer0"]) // 4] = value
            return
        if d in (0x400, 0x40C):  # write 1 to clear completion flags
            for ch in self.dma:
                if (value >> ch.idx) & 1:
                    ch.irq_pending = False
            return
        if d == c["dma_multi_trigger"]:
            for ch in self.dma:
                if (value >> ch.idx) & 1:
                    ch.trigger(now16)
            return
        if d == c["dma_abort"]:
            for ch in self.dma:
                if (value >> ch.idx) & 1:
                    ch.busy = False
            return
        io = addr - c["io_bank0"]
        if 0 <= io < 8 * c["gpios"] and io % 8 == 4:
            gpio = io // 8
            fsel = value & 0x1F
            self.set_pin_function(gpio, {FUNC_PWM: "pwm", FUNC_SIO: "sio"}.get(fsel, f"f{fsel}"))
            return
        self.regs[addr] = value

    def _slice_change(self, s: PwmSlice, now16: int, apply) -> None:
        for out in self.outputs.values():
            out.sync(now16)
        s.reconfigure(now16, apply)
        for out in self.outputs.values():
            out.regime_changed(now16)

    def set_pin_function(self, gpio: int, fn: str) -> None:
        with self.lock:
            self._set_pin_function(gpio, fn)

    def _set_pin_function(self, gpio: int, fn: str) -> None:
        self.sync()
        out = self.outputs.get(gpio)
        if out is not None:
            out.sync(self._synced16)
        self.bus.set_function(gpio, fn)
        if out is not None:
            out.regime_changed(self._synced16)

    # ---- PWM -> pins ----------------------------------------------------------------------
    def slice_of(self, gpio: int) -> int:
        if gpio < 32:
            return (gpio >> 1) & 7
        return 8 + ((gpio >> 1) & 3)

    def _pwm_emit(self, s: PwmSlice, start16: int, period16: int, cc32: np.ndarray) -> None:
        for gpio, out in self.outputs.items():
            if self.slice_of(gpio) == s.idx and self.bus.function(gpio) == "pwm":
                ch_b = gpio & 1
                cc = (cc32 >> 16) if ch_b else (cc32 & 0xFFFF)
                duty = np.minimum(cc.astype(np.float64), s.top + 1) / (s.top + 1)
                inv = bool(s.csr & (0x8 if ch_b else 0x4))
                out.pwm_periods(start16, period16, duty, bool(s.csr & 0x2), inv)

    def attach_output(self, gpio: int, chain, vdd: float = 3.3) -> PinOutput:
        out = PinOutput(self, gpio, chain, vdd)
        self.outputs[gpio] = out
        return out


class PinOutput:
    """The voltage of one GPIO over time, fed into an analog chain
    (``OutputChain.feed(start_us, rate, volts)``). In PWM function it follows its slice period by
    period (duty from the CC latched at that period's start), resolved into area-exact
    sub-samples so the carrier itself reaches the filter; otherwise it holds the SIO level (or
    0 V floating) at ``static_rate``."""

    static_rate = 48_000
    # resolve the PWM pulse train at least this finely. The area-exact sub-samples are a box
    # filter: what the pulse train has near multiples of the sub-sample rate (sidebands of the
    # M-th carrier harmonic) folds into the audio band, only attenuated by ~f/rate. At 96 kHz
    # (M = 2 at a 61 kHz carrier) that alone read -60 dB in band where the exact pulse train
    # gives -58; from M ~ 8 on the figure is converged (tests/sim/test_rp2_purity.py).
    pulse_rate = 500_000
    max_oversampling = 256

    def __init__(self, hw: Rp2Hardware, gpio: int, chain, vdd: float):
        self.hw = hw
        self.gpio = gpio
        self.chain = chain
        self.vdd = vdd
        self.done16 = hw.t16()  # output emitted up to here
        self._pend: list = []  # (start16, period16, volts) waiting to be fed
        self._pend_n = 0
        self.batch = 16384
        self._level = self._sio_level()
        hw.bus.watch(gpio, self._on_pin)

    def _sio_level(self) -> float:
        bus = self.hw.bus
        lv = bus.level(self.gpio) if bus.function(self.gpio) == "sio" else 0
        return self.vdd * (lv or 0)

    def _on_pin(self, gpio, level, t_us) -> None:
        # a GPIO level change: what came before it is emitted with the level it had
        with self.hw.lock:
            if not self._pwm_live():
                self._static(self.hw.t16(t_us))
            self._level = self._sio_level()

    def _pwm_live(self) -> bool:
        s = self.hw.slices[self.hw.slice_of(self.gpio)]
        return s.running and self.hw.bus.function(self.gpio) == "pwm"

    def pwm_periods(
        self,
        start16: int,
        period16: int,
        duty: np.ndarray,
        phase_correct: bool = False,
        invert: bool = False,
    ) -> None:
        end16 = start16 + period16 * duty.size
        if end16 <= self.done16:
            return
        if start16 < self.done16:
            skip = -(-(self.done16 - start16) // period16)
            duty = duty[skip:]
            start16 += skip * period16
            if duty.size == 0:
                return
        if start16 > self.done16:
            self._static(start16)
        self._push(
            start16,
            period16,
            self.vdd * self.pulse_shape(duty, self.hw.freq * 16 / period16, phase_correct, invert),
        )
        self.done16 = start16 + period16 * duty.size

    def oversampling(self, pwm_rate: float) -> int:
        """Sub-samples per PWM period so the pulse train is resolved to >= ``pulse_rate``."""
        return int(min(self.max_oversampling, max(1, -(-self.pulse_rate // pwm_rate))))

    def pulse_shape(self, duty, pwm_rate, phase_correct=False, invert=False) -> np.ndarray:
        """The pin's level (0..1) as M area-exact sub-samples per period: the average over each
        1/M of the period of the real pulse (edge-aligned: high for the first ``duty`` of the
        period; phase-correct: high at both ends, ``duty/2`` each). Returns shape (n*M,)."""
        m = self.oversampling(pwm_rate)
        d = duty[:, None]
        j = np.arange(m, dtype=np.float64)[None, :]
        if phase_correct:
            h = d * (m / 2.0)
            x = np.clip(h - j, 0, 1) + np.clip(j + 1 - (m - h), 0, 1)
        else:
            x = np.clip(d * m - j, 0, 1)
        if invert:
            x = 1.0 - x
        return x.reshape(-1)

    def _static(self, until16: int) -> None:
        if until16 <= self.done16:
            return
        v = self._level
        step = round(self.hw.freq * 16 / self.static_rate)
        n = (until16 - self.done16) // step
        if n <= 0:
            return
        self._push(self.done16, step, np.full(n, v))
        self.done16 += n * step

    def _push(self, start16, period16, volts) -> None:
        """Queue a stream: ``volts`` holds M sub-samples for each period of ``period16``."""
        m = self.oversampling(self.hw.freq * 16 / period16) if period16 else 1
        if volts.size % m:
            m = 1
        self._pend.append((start16, period16, m, volts))
        self._pend_n += volts.size
        if self._pend_n >= self.batch:
            self.flush()

    def sync(self, t16: int) -> None:
        if self._pwm_live():
            s = self.hw.slices[self.hw.slice_of(self.gpio)]
            s.emit_until(t16)
        else:
            self._static(t16)

    def regime_changed(self, t16: int) -> None:
        pass

    def flush(self) -> None:
        """Feed everything pending to the analog chain, merging equal-period runs."""
        if not self._pend:
            return
        runs = []
        for st, p, m, v in self._pend:
            r = runs[-1] if runs else None
            if r and r[1] == p and r[2] == m and r[0] + r[4] * p == st:
                r[3].append(v)
                r[4] += v.size // m
            else:
                runs.append([st, p, m, [v], v.size // m])
        self._pend = []
        self._pend_n = 0
        f16 = self.hw.freq * 16
        for st, p, m, parts, _n in runs:
            self.chain.feed(st * 1e6 / f16, f16 * m / p, np.concatenate(parts))


# ---- the firmware-facing rp2 module ----------------------------------------------------------
def make_rp2_module(hw: Rp2Hardware):
    import types

    mod = types.ModuleType("rp2")

    class DMA:
        def __init__(self):
            for ch in hw.dma:
                if not ch.claimed:
                    ch.claimed = True
                    self._ch = ch
                    break
            else:
                raise OSError(16, "EBUSY")  # MP_EBUSY
            self._closed = False

        def _c(self) -> DmaChannel:
            if self._closed:
                raise ValueError("channel closed")
            hw.sync()
            return self._ch

        @property
        def channel(self):
            return self._ch.idx

        def _addr(self, obj) -> int:
            if isinstance(obj, int):
                return obj & 0xFFFFFFFF
            return hw.mem.address_of(obj)

        @property
        def read(self):
            return self._c().read

        @read.setter
        def read(self, v):
            self._c()
            hw.reg_write(hw.c["dma_base"] + 0x40 * self._ch.idx + 0x14, self._addr(v))

        @property
        def write(self):
            return self._c().write

        @write.setter
        def write(self, v):
            self._c()
            hw.reg_write(hw.c["dma_base"] + 0x40 * self._ch.idx + 0x18, self._addr(v))

        @property
        def count(self):
            return self._c().count

        @count.setter
        def count(self, v):
            self._c()
            hw.reg_write(hw.c["dma_base"] + 0x40 * self._ch.idx + 0x24, int(v))

        @property
        def ctrl(self):
            return self._c().ctrl_read()

        @ctrl.setter
        def ctrl(self, v):
            self._c()
            hw.reg_write(hw.c["dma_base"] + 0x40 * self._ch.idx + 0x10, int(v))

        @property
        def registers(self):
            raise NotImplementedError("sim: DMA.registers memoryview is not modelled")

        def config(self, *, read=None, write=None, count=None, ctrl=None, trigger=False):
            ch = self._c()
            base = hw.c["dma_base"] + 0x40 * ch.idx
            if read is not None:
                hw.reg_write(base + 0x14, self._addr(read))
            if write is not None:
                hw.reg_write(base + 0x18, self._addr(write))
            if count is not None:
                hw.reg_write(base + 0x24, int(count))
            if ctrl is not None:
                hw.reg_write(base + 0x10, int(ctrl))
            if trigger:
                hw.reg_write(hw.c["dma_base"] + hw.c["dma_multi_trigger"], 1 << ch.idx)

        def active(self, value=None):
            ch = self._c()
            if value is not None:
                if value:
                    hw.reg_write(hw.c["dma_base"] + hw.c["dma_multi_trigger"], 1 << ch.idx)
                else:
                    hw.reg_write(hw.c["dma_base"] + hw.c["dma_abort"], 1 << ch.idx)
            return bool(ch.busy)

        def pack_ctrl(self, default=None, **kw):
            fields = MCU[hw.mcu]["ctrl"]
            if default is None:
                value = 0
                for name, v in (
                    ("irq_quiet", 1),
                    ("treq_sel", TREQ_PERMANENT),
                    ("inc_write", 1),
                    ("inc_read", 1),
                    ("size", 2),
                    ("en", 1),
                    ("chain_to", self._ch.idx & 0xF),
                ):
                    lsb, _ = fields[name]
                    value |= v << lsb
            else:
                value = int(default)
            for k, v in kw.items():
                name = "en" if k == "enable" else k
                if name not in fields:
                    raise TypeError(f"unexpected keyword argument '{k}'")
                if name in ("busy", "ahb_err"):
                    continue
                lsb, width = fields[name]
                mask = (1 << width) - 1
                v = int(v)
                if v & mask != v:
                    raise ValueError("bad field value")
                value = (value & ~(mask << lsb)) | (v << lsb)
            return value & 0xFFFFFFFF

        @staticmethod
        def unpack_ctrl(value):
            fields = MCU[hw.mcu]["ctrl"]
            out = {}
            for name, (lsb, width) in fields.items():
                out["enable" if name == "en" else name] = (value >> lsb) & ((1 << width) - 1)
            return out

        def irq(self, handler=None, hard=False):
            if handler is None:
                hw.irq_handlers.pop(self._ch.idx, None)
            else:
                hw.irq_handlers[self._ch.idx] = lambda: handler(self)
            return None

        def close(self):
            if not self._closed:
                hw.sync()
                self._ch.busy = False
                self._ch.claimed = False
                hw.irq_handlers.pop(self._ch.idx, None)
                self._closed = True

        def __del__(self):
            pass

        def __repr__(self):
            return f"DMA({self._ch.idx})"

    mod.DMA = DMA

    def bootsel_button():
        return 0

    mod.bootsel_button = bootsel_button
    return mod

"""RP2040/RP2350 DMA channels: READ/WRITE/TRANS_COUNT/CTRL (and their aliases), chaining,
completion flags, and the transfers themselves.

Transfers happen when their TREQ fires (the wrap DREQ of a PWM slice, a pacing timer at
``clk_sys * X / Y``, or unpaced every few clocks); they read from the buffers the firmware handed
over and write to memory or to peripheral registers (a CC write reaches the PWM slice with its
time). ``DmaEngine.run(limit)`` catches every busy channel up to ``limit`` in bulk with numpy.
"""

from __future__ import annotations

import numpy as np

from . import rp2_dma_bus as bus
from .rp2_mcu import (
    DMA_LATENCY,
    MCU,
    TREQ_PERMANENT,
    TREQ_TIMER0,
    UNPACED_CYCLES,
    ctrl_field,
)

_FIELDS: dict = {}  # (mcu, CTRL) -> its fields, shared by every channel (read only)


class DmaChannel:
    def __init__(self, engine, idx):
        self.engine = engine
        self.mcu = engine.mcu
        self.idx = idx
        self.read = 0
        self.write = 0
        self.count = 0
        self.reload = 0
        self.busy = False
        self.after = 0  # t16 after which the next DREQ counts
        self.transfers = 0
        self.irq_pending = False
        self.claimed = False
        self.completions = 0
        self.kind = False  # DmaEngine._kind's answer, False until asked (see forget_kind)
        self.ctrl = 0

    @property
    def ctrl(self) -> int:
        return self._ctrl

    @ctrl.setter
    def ctrl(self, value: int) -> None:
        self._ctrl = value
        self.kind = False
        key = (self.mcu, value)
        f = _FIELDS.get(key)
        if f is None:
            if len(_FIELDS) > 4096:
                _FIELDS.clear()
            f = {n: ctrl_field(self.mcu, value, n) for n in MCU[self.mcu]["ctrl"]}
            _FIELDS[key] = f
        self.fl = f  # CTRL decoded into its fields (shared, read only)

    def forget_kind(self) -> None:
        """The CPU wrote READ_ADDR or WRITE_ADDR: the channel's shape is looked up again."""
        self.kind = False

    def f(self, name):
        return self.fl[name]

    def fields(self) -> dict:
        """CTRL decoded into its fields."""
        return self.fl

    def ctrl_read(self) -> int:
        lsb, _ = MCU[self.mcu]["ctrl"]["busy"]
        return self._ctrl | (int(self.busy) << lsb)

    def trigger(self, t16: int) -> None:
        if not self.f("en"):
            return
        if self.busy:
            return
        self.busy = True
        self.count = self.reload
        self.after = t16
        if self.count == 0:
            self.engine.complete(self, t16)

    def clear(self) -> None:
        self.busy = False
        self.claimed = False
        self.ctrl = self.read = self.write = self.count = self.reload = 0


class DmaEngine:
    """The channels of one chip. ``hw`` gives the PWM slices (wrap DREQs), the address map
    and the register file for transfers into peripheral registers."""

    def __init__(self, hw):
        self.hw = hw
        self.mcu = hw.mcu
        self.c = hw.c
        self.channels = [DmaChannel(self, i) for i in range(self.c["dma_channels"])]
        self.timers = [0, 0, 0, 0]
        self.irq_handlers: dict[int, object] = {}
        self.irq_queue: list = []
        self._shapes: dict = {}  # (CTRL, WRITE_ADDR) -> may its transfers wait (deferrable)
        self._kinds: dict = {}  # configuration -> _kind()

    def reset(self) -> None:
        for ch in self.channels:
            ch.clear()
        self.timers = [0, 0, 0, 0]
        self.irq_handlers.clear()

    def requests(self, ch: DmaChannel, limit: int, n: int) -> np.ndarray:
        """The next (at most n) DREQ instants of ``ch`` up to ``limit``."""
        treq = ch.fl["treq_sel"]
        w0 = self.c["dreq_pwm_wrap0"]
        if w0 <= treq < w0 + self.c["pwm_slices"]:
            s = self.hw.slices[treq - w0]
            return s.wraps_after(ch.after - DMA_LATENCY + 1, limit, n, DMA_LATENCY)
        if TREQ_TIMER0 <= treq < TREQ_TIMER0 + 4:
            reg = self.timers[treq - TREQ_TIMER0]
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
        adc = self.hw.adc
        if treq == adc.dreq:
            return adc.requests(ch.after, limit, n, DMA_LATENCY)
        if treq == TREQ_PERMANENT:
            step = 16 * UNPACED_CYCLES
            m = min(n, max(0, (limit - ch.after) // step))
            return ch.after + step * np.arange(1, m + 1, dtype=np.int64)
        return np.empty(0, dtype=np.int64)  # a peripheral with no model never asks

    def _wrap_slice(self, ch: DmaChannel):
        """The PWM slice whose wrap paces ``ch``, or None."""
        treq = ch.fl["treq_sel"]
        w0 = self.c["dreq_pwm_wrap0"]
        if w0 <= treq < w0 + self.c["pwm_slices"]:
            return self.hw.slices[treq - w0]
        return None

    def pending(self, ch: DmaChannel, limit: int) -> int:
        """How many transfers of ``ch`` ``run(limit)`` would make (for a channel
        ``deferrable``), counted without making them."""
        if self._adc_ring(ch):
            return min(ch.count, self.hw.adc.request_count(ch.after, limit, DMA_LATENCY))
        s = self._wrap_slice(ch)
        return min(ch.count, s.wrap_count(ch.after - DMA_LATENCY + 1, limit))

    def _adc_ring(self, ch: DmaChannel) -> bool:
        """``ch`` moves ADC samples from the FIFO into a ring in RAM (rp2_adc.py): the
        firmware only looks at the ring after reading the channel's registers, which
        ``Rp2Hardware.reg_read`` then answers with the transfers made (never deferred)."""
        f = ch.fl
        return (
            f["treq_sel"] == self.hw.adc.dreq
            and not f["inc_read"]
            and f["inc_write"]
            and f["ring_size"]
            and f["ring_sel"]
            and self.hw.adc.reads_fifo(ch.read)
        )

    def deferrable(self, limit: int) -> bool:
        """True if ``run(limit)`` may wait: every busy channel is paced by a PWM wrap, reads
        one run of consecutive elements, writes one peripheral register, and none of them
        completes by ``limit`` (no completion, chain or IRQ falls due; nothing the CPU can
        see changes but TRANS_COUNT and READ_ADDR, which ``pending`` gives). Its transfers
        are then the same whenever they are made: the request times are fixed by the slice
        and the buffer being played is not the one the firmware refills (it refills a
        buffer once it saw its channel complete, and a completion is never deferred)."""
        for ch in self.channels:
            if not ch.busy:
                continue
            key = (ch._ctrl, ch.write)
            shape = self._shapes.get(key)
            if shape is None:
                f = ch.fl
                shape = not f["en"] or (
                    self._wrap_slice(ch) is not None
                    and f["inc_read"]
                    and not f["inc_write"]
                    and not f["ring_size"]
                    and not f["bswap"]
                    and (ch.write >> 28) in (4, 5)  # a peripheral register, never RAM
                    and self.hw.mem.resolve(ch.write) is None
                )
                if len(self._shapes) > 64:
                    self._shapes.clear()
                self._shapes[key] = shape
            if not shape and self._adc_ring(ch):
                if not self.held(ch, limit):
                    return False
                continue
            if not shape:
                return False
            if ch.fl["en"] and self.pending(ch, limit) >= ch.count:
                return False
        return True

    # An ADC ring channel (``_kind`` "ring") that does not complete by ``limit`` is *held*:
    # ``run`` leaves its transfers for ``settle_rings``, which ``Rp2Hardware`` calls only when
    # the CPU looks at the channel (its registers), writes a register that could change its
    # transfers (a global DMA register, the channel's own, the ADC's) or resets the chip.
    # Its transfers depend on nothing but the ADC's schedule from the channel's last transfer,
    # so making them late, in one run, gives the same requests, ring addresses and samples
    # (their values are filled in later anyway, rp2_adc.py); what it saves is a DMA run of
    # the ring at every catch-up (every register write and completion of the tone path).
    lazy_rings = True

    def held(self, ch: DmaChannel, limit: int) -> bool:
        kind = self._kind(ch)
        if not self.lazy_rings or kind is None or kind[0] != "ring":
            return False
        # fewer than TRANS_COUNT conversions fit before limit even at the ADC's fastest pace
        # (96 of its 48 MHz clocks; instants k conversions apart are at least k periods - 1
        # t16 apart): held without counting them (the usual case: the firmware arms the ring
        # for 2**32 - 1 transfers, 6 days at 8 kHz)
        if limit - ch.after + 1 < (ch.count - 2) * self.hw.adc.min_period16():
            return True
        return self.hw.adc.request_count(ch.after, limit, DMA_LATENCY) < ch.count

    def settle_rings(self, limit: int) -> None:
        """Make the held ring channels' transfers up to ``limit`` (see above)."""
        if not self.lazy_rings:
            return
        for ch in self.channels:
            if ch.busy and ch.fl["en"] and self.is_ring(ch):
                n = self.hw.adc.request_count(ch.after, limit, DMA_LATENCY)
                if 0 < n < ch.count:
                    self.transfer(ch, self.requests(ch, limit, n))

    def is_ring(self, ch: DmaChannel) -> bool:
        kind = self._kind(ch)
        return kind is not None and kind[0] == "ring"

    def run(self, limit: int) -> None:
        """Every busy channel's transfers up to ``limit``, completions and chains included
        (held ring channels excepted, see above)."""
        for _ in range(100000):
            active = [
                ch for ch in self.channels if ch.busy and ch.fl["en"] and not self.held(ch, limit)
            ]
            if not active:
                return
            plans = []
            first_done = None
            for ch in active:
                tt = self.requests(ch, limit, ch.count)
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
                    self.transfer(ch, tt)
                if ch.count == 0:
                    finished.append(ch)
            if not finished:
                return
            for ch in finished:
                self.complete(ch, cut)

    def complete(self, ch: DmaChannel, t16: int) -> None:
        ch.busy = False
        ch.completions += 1
        if not ch.f("irq_quiet"):
            ch.irq_pending = True
            fn = self.irq_handlers.get(ch.idx)
            if fn is not None:
                self.irq_queue.append(fn)  # run once the model has caught up (soft IRQ)
        nxt = ch.f("chain_to")
        if nxt != ch.idx and nxt < len(self.channels):
            self.channels[nxt].trigger(t16)

    def _kind(self, ch: DmaChannel):
        """The two shapes every tone board uses, recognised once per configuration:
        ("cc", slice) a run of 16/32-bit elements into one PWM slice's CC register;
        ("ring", mask) 16-bit ADC FIFO reads into a write ring in RAM; else None. Kept on the
        channel until the CPU writes its CTRL, READ_ADDR or WRITE_ADDR (a transfer moves only
        the addresses that increment, which the shape does not depend on)."""
        kind = ch.kind
        if kind is not False:
            return kind
        f = ch.fl
        key = (
            ch._ctrl,
            None if f["inc_read"] else ch.read,
            None if f["inc_write"] else ch.write,
        )
        kind = self._kinds.get(key, False)
        if kind is False:
            kind = None
            size = 1 << f["size"]
            off = ch.write - self.c["pwm_base"]
            if (
                f["inc_read"]
                and not f["inc_write"]
                and not f["ring_size"]
                and not f["bswap"]
                and size in (2, 4)
                and 0 <= off < 0x14 * len(self.hw.slices)
                and off % 0x14 == 0x0C
                and self.hw.mem.resolve(ch.write) is None
            ):
                kind = ("cc", self.hw.slices[off // 0x14])
            elif self._adc_ring(ch) and size == 2 and not f["bswap"]:
                kind = ("ring", (1 << f["ring_size"]) - 1)
            if len(self._kinds) > 256:
                self._kinds.clear()
            self._kinds[key] = kind
        ch.kind = kind
        return kind

    def transfer(self, ch: DmaChannel, tt: np.ndarray) -> None:
        kind = self._kind(ch)
        if kind is not None:
            m = tt.size
            if kind[0] == "cc":  # read a run of the buffer, each value to CC at its time
                size = 2 if ch.fl["size"] == 1 else 4
                r = self.hw.mem.resolve(ch.read)
                if r is not None and r[1] + m * size <= r[0].size:
                    v = r[0][r[1] : r[1] + m * size].view(f"<u{size}").astype(np.uint32)
                    if size == 2:
                        v |= v << 16  # a narrow write is replicated across the word
                    kind[1].log_write(tt, v)
                    ch.read += m * size
                    ch.count -= m
                    ch.transfers += m
                    ch.after = int(tt[-1])
                    return
            else:  # the ADC's samples: where they go now, their values once they exist
                mask = kind[1]
                base = ch.write & ~mask
                r = self.hw.mem.resolve(base)
                if r is not None and r[1] + mask + 1 <= r[0].size:
                    offs = ((ch.write - base) + 2 * np.arange(m, dtype=np.int64)) & mask
                    offs += r[1]
                    self.hw.adc.defer(tt, r[0], offs, DMA_LATENCY)
                    ch.write = base | ((ch.write + 2 * m) & mask)
                    ch.count -= m
                    ch.transfers += m
                    ch.after = int(tt[-1])
                    return
        bus.transfer_general(self.hw, ch, tt)

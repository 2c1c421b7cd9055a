"""``Rp2Hardware``: the register model of one simulated RP2040/RP2350 (PWM slices, DMA channels,
GPIO function select), behind the simulated ``machine.PWM``, ``machine.mem32`` and ``rp2.DMA``.

Everything the firmware configures lands in these registers, and the line signal is *derived*
from them: PWM slices (rp2_pwm.py) produce one CC value per period, DMA channels (rp2_dma.py)
move the firmware's buffers into CC at the slice's wrap DREQ, and the tone pin's output
(gpio_output.py: pin-resolved or per-period) feeds the analog chain. Everything is computed
lazily and in bulk with numpy: whenever the firmware touches the hardware (or time moves) the
model catches up to "now".
"""

from __future__ import annotations

import threading

from .pin_output import PinOutput
from .rp2_adc import AdcModel
from .rp2_dma import DmaChannel, DmaEngine
from .rp2_mcu import (
    ALIAS_CLR,
    ALIAS_SET,
    ALIAS_XOR,
    FUNC_PWM,
    FUNC_SIO,
    MCU,
    AddressMap,
    slice_of,
)
from .rp2_pwm import PwmSlice


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
        self.adc = AdcModel(self)  # its input: board.py sets adc.source (the line sense)
        self.dmac = DmaEngine(self)
        self.dma: list[DmaChannel] = self.dmac.channels
        self._pwm_span = 0x14 * len(self.slices)  # register window sizes
        self._dma_span = 0x40 * len(self.dma)
        self.regs: dict[int, int] = {}  # registers with no model: last value written
        # fn(addr, value) -> value|None, applied to every register write the CPU makes
        # (mem32, machine.PWM, rp2.DMA attributes); DMA transfers do not pass through them
        self.write_hooks: list = []
        self.outputs: dict[int, object] = {}  # gpio -> GpioOutput
        self._synced16 = 0  # registers caught up to here (see "catching up")
        self._moved16 = 0  # DMA transfers and outputs caught up to here
        self._synced_us = None  # the clock reading the last catch-up was for
        self.lock = threading.RLock()

    @property
    def dma_timers(self) -> list:
        return self.dmac.timers

    @property
    def irq_handlers(self) -> dict:
        return self.dmac.irq_handlers

    def reset(self) -> None:
        """Chip reset: PWM slices stop, DMA channels abort and are released, pins float."""
        with self.lock:
            self.sync()
            now16 = self._synced16
            self.dmac.settle_rings(now16)
            for s in self.slices:
                self._slice_change(s, now16, lambda s=s: setattr(s, "csr", 0))
                s.reset_registers()
                s.log_write(now16, 0)
            self.dmac.reset()
            self.adc.reset()
            self.regs.clear()
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
        self._synced16 = self._moved16 = self.t16()
        self._synced_us = None

    # ---- catching up ----------------------------------------------------------------
    # Two times: ``_synced16``, the time the registers are read at (the clock, caught up on
    # every access), and ``_moved16``, the time up to which DMA transfers ran and the pins'
    # outputs caught up. They part only while ``dmac.deferrable`` says the transfers may
    # wait (no completion due): then a main-loop pass that only reads a channel's
    # TRANS_COUNT / READ_ADDR / busy bit costs a count, not a DMA run. Any register write,
    # any other read, a completion, a flush or a reset moves the transfers up first. An ADC
    # ring channel is held longer still (``settle_channel``, rp2_dma.py ``held``): its
    # transfers are made when the CPU looks at it or writes what could change them.
    def sync(self, t_us=None) -> None:
        """Catch everything up to now (or ``t_us``)."""
        if t_us is None:
            t_us = self.clock.now_us()
        if t_us == self._synced_us and self._moved16 == self._synced16:
            if not self.dmac.irq_queue:
                return  # caught up at this instant already (several accesses per pass)
        with self.lock:
            self._sync(t_us, False)

    def sync_lazy(self, t_us=None) -> None:
        """Catch the registers up to now; DMA transfers only if they cannot wait."""
        if t_us is None:
            t_us = self.clock.now_us()
        if t_us == self._synced_us and not self.dmac.irq_queue:
            return
        with self.lock:
            self._sync(t_us, True)

    def _sync(self, t_us=None, lazy=False) -> None:
        if t_us is None:
            t_us = self.clock.now_us()
        t16 = self.t16(t_us)
        self._synced_us = None  # (a bus fault below leaves it unset: the next access retries)
        if t16 > self._synced16:
            self._synced16 = t16
        if self._moved16 < self._synced16 and not (lazy and self.dmac.deferrable(t16)):
            # the firmware runs in zero time between clock moves: DMA transfers must have
            # read their buffers before it can see them complete (it may refill them), the
            # pins' output is only needed when someone looks (outputs catch up in batches)
            t16 = self._synced16
            self.dmac.run(t16)
            self._moved16 = t16
            for out in self.outputs.values():
                out.catch_up(t16)
        self._synced_us = t_us
        queue = self.dmac.irq_queue
        while queue:
            queue.pop(0)()

    def settle_channel(self, ch: DmaChannel) -> None:
        """The CPU looks at ``ch``: a held ADC ring channel makes its transfers (rp2_dma.py)."""
        if ch.busy and self.dmac.is_ring(ch):
            self.dmac.settle_rings(self._synced16)

    def dma_count(self, ch: DmaChannel) -> int:
        """TRANS_COUNT as the CPU reads it now (transfers possibly deferred, see above)."""
        self.settle_channel(ch)
        if self._moved16 < self._synced16 and ch.busy:
            return ch.count - self.dmac.pending(ch, self._synced16)
        return ch.count

    def dma_read_addr(self, ch: DmaChannel) -> int:
        """READ_ADDR as the CPU reads it now."""
        self.settle_channel(ch)
        if self._moved16 < self._synced16 and ch.busy:
            return ch.read + self.dmac.pending(ch, self._synced16) * (1 << ch.fl["size"])
        return ch.read

    def dma_write_addr(self, ch: DmaChannel) -> int:
        """WRITE_ADDR as the CPU reads it now (deferred transfers write one register)."""
        self.settle_channel(ch)
        return ch.write

    def flush(self) -> None:
        with self.lock:
            self.sync()
            for out in self.outputs.values():
                out.sync(self._synced16)
                out.flush()

    # ---- register file ------------------------------------------------------------------
    def raw_read(self, addr: int) -> int:
        """A register as the bus reads it now, without catching up (the caller did)."""
        addr &= ~3
        c = self.c
        if self.adc.owns(addr):
            return self.adc.read(addr)
        pw = addr - c["pwm_base"]
        n_sl = self._pwm_span // 0x14
        if 0 <= pw < self._pwm_span:
            s = self.slices[pw // 0x14]
            r = pw % 0x14
            if r == 0x00:
                return s.csr
            if r == 0x04:
                return s.div
            if r == 0x08:
                return s.counter_at(self._synced16)
            if r == 0x0C:
                return s.cc
            return s.top
        if pw == 0x14 * n_sl:  # EN
            return sum(1 << i for i, s in enumerate(self.slices) if s.csr & 1)
        d = addr - c["dma_base"]
        if 0 <= d < self._dma_span:
            ch = self.dma[d // 0x40]
            r = d % 0x40
            if r in (0x00, 0x14, 0x28, 0x3C):
                return self.dma_read_addr(ch)
            if r in (0x04, 0x18, 0x2C, 0x34):
                return self.dma_write_addr(ch)
            if r in (0x08, 0x1C, 0x24, 0x38):
                return self.dma_count(ch)
            return ch.ctrl_read()
        if c["dma_timer0"] <= d < c["dma_timer0"] + 16:
            return self.dmac.timers[(d - c["dma_timer0"]) // 4]
        if d == 0x400:  # INTR: raw completion flags of channels that are not IRQ_QUIET
            return sum(1 << ch.idx for ch in self.dma if ch.irq_pending)
        if d == 0x40C:  # INTS0 = INTR masked by INTE0
            return self.raw_read(addr - 0x0C) & self.regs.get(c["dma_base"] + 0x404, 0)
        io = addr - c["io_bank0"]
        if 0 <= io < 8 * c["gpios"] and io % 8 == 4:
            fn = self.bus.function(io // 8)
            return {"pwm": FUNC_PWM, "sio": FUNC_SIO}.get(fn, 31)
        return self.regs.get(addr, 0)

    def reg_read(self, addr: int) -> int:
        with self.lock:
            d = (addr & ~3) - self.c["dma_base"]
            if 0 <= d < self._dma_span and self.dmac._adc_ring(self.dma[d // 0x40]):
                # the firmware is about to read the ring: its samples are made now (the line
                # at their instants exists once the outputs caught up and flushed)
                self.sync()
                self.dmac.settle_rings(self._synced16)
                if self.adc._pending:
                    for out in self.outputs.values():
                        out.sync(self._synced16)
                        out.flush()
                    self.adc.fill_pending()
            elif 0 <= d < self._dma_span:
                self.sync_lazy()  # a channel's registers: answered with transfers deferred
            else:
                self.sync()
            return self.raw_read(addr) & 0xFFFFFFFF

    def reg_write(self, addr: int, value: int) -> None:
        """A register write by the CPU: catches up, applies the write hooks and SET/CLR/XOR
        aliases."""
        with self.lock:
            self.sync()
            value &= 0xFFFFFFFF
            for hook in self.write_hooks:
                value = hook(addr, value)
                if value is None:
                    return
            alias = addr & 0x3000 if (addr >> 28) in (4, 5) else 0
            base_addr = addr - alias
            if alias:
                old = self.raw_read(base_addr)
                value = {ALIAS_XOR: old ^ value, ALIAS_SET: old | value, ALIAS_CLR: old & ~value}[
                    alias
                ]
            self.raw_write(base_addr, value)

    def raw_write(self, addr: int, value: int, t16=None) -> None:
        """A register write landing at ``t16`` (default: now), without hooks or aliases
        (what a DMA transfer into a register does)."""
        addr &= ~3
        c = self.c
        now16 = self._synced16 if t16 is None else t16
        if self.adc.owns(addr):
            self.dmac.settle_rings(now16)  # (a held ring's transfers follow the ADC's pace)
            self.adc.write(addr, value, now16)
            return
        pw = addr - c["pwm_base"]
        n_sl = self._pwm_span // 0x14
        if 0 <= pw < self._pwm_span:
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
        if 0 <= d < self._dma_span:
            ch = self.dma[d // 0x40]
            r = d % 0x40
            if ch.busy and self.dmac.is_ring(ch):
                self.dmac.settle_rings(now16)
            trig = r in (0x0C, 0x1C, 0x2C, 0x3C)
            if r in (0x00, 0x14, 0x28, 0x3C):
                ch.read = value
                ch.forget_kind()
            elif r in (0x04, 0x18, 0x2C, 0x34):
                ch.write = value
                ch.forget_kind()
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
        if 0 <= d < 0x1000:  # a global DMA register (abort, triggers, flags, timers)
            self.dmac.settle_rings(now16)
        if c["dma_timer0"] <= d < c["dma_timer0"] + 16:
            self.dmac.timers[(d - c["dma_timer0"]) // 4] = value
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
            self.sync()
            out = self.outputs.get(gpio)
            if out is not None:
                out.sync(self._synced16)
            self.bus.set_function(gpio, fn)
            if out is not None:
                out.regime_changed(self._synced16)

    # ---- PWM -> pins ----------------------------------------------------------------------
    @staticmethod
    def slice_of(gpio: int) -> int:
        return slice_of(gpio)

    def pwm_emit(self, s: PwmSlice, start16: int, period16: int, cc32) -> None:
        """A run of periods of slice ``s`` (one 32-bit CC value each) to the pins on it."""
        for gpio, out in self.outputs.items():
            if slice_of(gpio) == s.idx and self.bus.function(gpio) == "pwm":
                ch_b = gpio & 1
                cc = (cc32 >> 16) if ch_b else (cc32 & 0xFFFF)
                inv = bool(s.csr & (0x8 if ch_b else 0x4))
                out.pwm_periods(start16, period16, cc, s.top, bool(s.csr & 0x2), inv)

    def add_output(self, out) -> None:
        """A ``GpioOutput`` watching one pin (``out.gpio``)."""
        self.outputs[out.gpio] = out

    def attach_output(self, gpio: int, chain, vdd: float = 3.3):
        """The pin-resolved output (``PinOutput``) of ``gpio`` into ``chain``."""
        out = PinOutput(self, gpio, chain, vdd)
        self.add_output(out)
        return out

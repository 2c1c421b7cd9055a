"""The ``rp2`` module a simulated rp2 board's firmware imports: ``rp2.DMA`` (channels of the
board's ``Rp2Hardware``, programmed through its registers) and ``bootsel_button``.

The models behind it: rp2_mcu.py (chip facts, address map), rp2_pwm.py (PWM slice),
rp2_dma.py (DMA channels and transfers), rp2_hw.py (the register file tying them together),
gpio_output.py / pin_output.py / period_output.py (the tone pin into the analog chain).
hw/README.md says what is and is not modelled.
"""

from __future__ import annotations

from .rp2_dma import DmaChannel
from .rp2_hw import Rp2Hardware
from .rp2_mcu import MCU, TREQ_PERMANENT, BusFault, ctrl_field

__all__ = ["MCU", "BusFault", "Rp2Hardware", "ctrl_field", "make_rp2_module"]


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
            hw.sync_lazy()  # writes go through hw.reg_write, which catches up in full
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
            return hw.dma_read_addr(self._c())

        @read.setter
        def read(self, v):
            self._c()
            hw.reg_write(hw.c["dma_base"] + 0x40 * self._ch.idx + 0x14, self._addr(v))

        @property
        def write(self):
            return hw.dma_write_addr(self._c())

        @write.setter
        def write(self, v):
            self._c()
            hw.reg_write(hw.c["dma_base"] + 0x40 * self._ch.idx + 0x18, self._addr(v))

        @property
        def count(self):
            return hw.dma_count(self._c())

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
                hw.settle_channel(self._ch)
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

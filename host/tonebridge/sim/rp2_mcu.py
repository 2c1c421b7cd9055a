"""RP2040 / RP2350 facts the peripheral models share: register bases, channel counts, DMA CTRL
field layout (pico-sdk hardware/regs, RP2040 and RP2350 datasheets), and the memory map of the
buffers the firmware hands to the DMA.

Time inside the rp2 models is counted in 1/16 system-clock cycles ("t16"), so fractional PWM
dividers are exact.
"""

from __future__ import annotations

import numpy as np

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
ALIAS_XOR, ALIAS_SET, ALIAS_CLR = 0x1000, 0x2000, 0x3000
UNPACED_CYCLES = 4  # an unpaced DMA transfer every few system clocks
DMA_LATENCY = 16  # t16: a paced transfer lands one system clock after its DREQ
SRAM_BASE = 0x20000000
NP_DTYPE = {1: np.uint8, 2: np.uint16, 4: np.uint32}


class BusFault(Exception):
    """The firmware made the simulated hardware do something a real chip would fault on."""


def ctrl_field(mcu: str, value: int, name: str) -> int:
    lsb, width = MCU[mcu]["ctrl"][name]
    return (value >> lsb) & ((1 << width) - 1)


def slice_of(gpio: int) -> int:
    """The PWM slice a GPIO belongs to (RP2040: 8 slices over 30 pins; RP2350: 12)."""
    if gpio < 32:
        return (gpio >> 1) & 7
    return 8 + ((gpio >> 1) & 3)


class AddressMap:
    """Buffers the firmware hands to the DMA get a stable fake SRAM address."""

    def __init__(self):
        self._regions: list = []  # (base, nbytes, ndarray uint8 view, owner, host address)
        self._next = SRAM_BASE + 0x10000
        self._known: dict = {}  # id(obj) -> (obj, address)

    @staticmethod
    def _host_ptr(obj):
        a = np.frombuffer(obj, dtype=np.uint8)
        return a, a.__array_interface__["data"][0]

    def address_of(self, obj) -> int:
        """Address of a buffer-protocol object (array, bytearray, memoryview slice). An object
        asked about before is answered from ``_known`` (which keeps it alive, so its id is not
        reused; its memory cannot move: every region holds a buffer export of its owner)."""
        hit = self._known.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        view, ptr = self._host_ptr(obj)
        for base, n, _v, _owner, vptr in self._regions:
            if vptr <= ptr < vptr + n or (n == 0 and ptr == vptr):
                return self._remember(obj, base + (ptr - vptr))
        base = self._next
        self._regions.append((base, view.size, view, obj, ptr))
        self._next = (base + view.size + 0xFFF) & ~0xFFF  # 4 KiB aligned: DMA rings work
        return self._remember(obj, base)

    def _remember(self, obj, addr: int) -> int:
        if len(self._known) > 256:
            self._known.clear()
        self._known[id(obj)] = (obj, addr)
        return addr

    def resolve(self, addr: int):
        """(uint8 view of the region, offset) for an address inside a known buffer, or None."""
        for base, n, v, _owner, _p in self._regions:
            if base <= addr < base + n:
                return v, addr - base
        return None

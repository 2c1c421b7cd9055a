"""A DMA channel's general path onto the bus (rp2_dma.py): reading runs or scattered elements from
RAM or a register, writing them to RAM or to a peripheral register at their transfer times
(a CC write reaches its PWM slice's log with its time). ``hw`` is the chip's ``Rp2Hardware``."""

from __future__ import annotations

import numpy as np

from .rp2_mcu import BusFault


def read_run(hw, a0: int, m: int, size: int, dt) -> np.ndarray:
    r = hw.mem.resolve(a0)
    if r is None:
        raise BusFault(f"DMA read from unmapped address {a0:#010x}")
    view, off = r
    end = off + m * size
    if end > view.size:
        raise BusFault(f"DMA read runs past the end of its buffer at {a0:#010x}")
    return view[off:end].view(f"<u{size}").astype(dt)


def write_fixed(hw, a0: int, vals: np.ndarray, size: int, tt) -> None:
    """Every value to one address (a peripheral register, or one memory location)."""
    if hw.mem.resolve(a0) is not None:
        write_many(hw, np.full(vals.size, a0, dtype=np.int64), vals, size, tt)
        return
    write_register(hw, a0, vals, size, tt)


def read_many(hw, addrs: np.ndarray, size: int, dt) -> np.ndarray:
    a0 = int(addrs[0])
    r = hw.mem.resolve(a0)
    if r is None:
        if addrs.size and np.all(addrs == a0):
            return np.full(addrs.size, hw.raw_read(a0), dtype=dt)
        raise BusFault(f"DMA read from unmapped address {a0:#010x}")
    view, off = r
    rel = addrs - a0 + off
    if rel.min() < 0 or rel.max() + size > view.size:
        raise BusFault(f"DMA read runs past the end of its buffer at {a0:#010x}")
    if size == 1:
        return view[rel].astype(dt)
    b = np.stack([view[rel + i] for i in range(size)], axis=1).copy()
    return b.view(f"<u{size}").reshape(-1).astype(dt)


def write_many(hw, addrs: np.ndarray, vals: np.ndarray, size: int, tt) -> None:
    a0 = int(addrs[0])
    r = hw.mem.resolve(a0)
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
    write_register(hw, a0, vals, size, tt)


def write_register(hw, a0: int, vals: np.ndarray, size: int, tt) -> None:
    # narrow writes to an APB register are replicated across the 32-bit word
    v = vals.astype(np.uint32)
    if size == 2:
        v = v | (v << 16)
    elif size == 1:
        v = v * np.uint32(0x01010101)
    base = hw.c["pwm_base"]
    off = a0 - base
    if 0 <= off < 0x14 * len(hw.slices) and off % 0x14 == 0x0C:
        hw.slices[off // 0x14].log_write(tt, v)
        return
    for t, x in zip(tt.tolist(), v.tolist(), strict=True):
        hw.raw_write(a0 & ~3, x, t16=t)

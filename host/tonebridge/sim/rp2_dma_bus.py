"""A DMA channel's general path onto the bus (rp2_dma.py): reading runs or scattered elements from
RAM or a register, writing them to RAM or to a peripheral register at their transfer times
(a CC write reaches its PWM slice's log with its time). ``hw`` is the chip's ``Rp2Hardware``."""

from __future__ import annotations

import numpy as np

from .rp2_mcu import DMA_LATENCY, NP_DTYPE, BusFault


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


def transfer_general(hw, ch, tt: np.ndarray) -> None:
    """Any channel's run of transfers at ``tt`` (the shapes ``DmaEngine._kind`` does not
    recognise): addresses per CTRL's increments, rings and byte swap; registers advance."""
    f = ch.fl
    m = tt.size
    size = 1 << f["size"]
    if size == 8:
        raise BusFault("DMA DATA_SIZE 3 is reserved")
    dt = NP_DTYPE[size]
    # read side
    inc_r, inc_w = f["inc_read"], f["inc_write"]
    ring = f["ring_size"]
    ring_on_write = f["ring_sel"]
    read_ring = bool(ring and not ring_on_write)
    from_adc = not inc_r and hw.adc.reads_fifo(ch.read)
    if from_adc:  # the ADC FIFO: values filled in once the input exists (rp2_adc.py)
        vals = np.zeros(m, dtype=dt)
        last_read = ch.read
    elif inc_r and not read_ring:  # the common case: one run of consecutive elements
        vals = read_run(hw, ch.read, m, size, dt)
        last_read = ch.read + (m - 1) * size
    else:
        offs = np.arange(m, dtype=np.int64) * size if inc_r else np.zeros(m, dtype=np.int64)
        if read_ring:
            mask = (1 << ring) - 1
            raddrs = (ch.read & ~mask) | ((ch.read + offs) & mask)
        else:
            raddrs = ch.read + offs
        vals = read_many(hw, raddrs, size, dt)
        last_read = int(raddrs[-1])
    if f["bswap"] and size > 1:
        vals = vals.byteswap()
    # write side
    if not inc_w and not (ring and ring_on_write):
        write_fixed(hw, ch.write, vals, size, tt)
        last_write = ch.write
    else:
        woffs = np.arange(m, dtype=np.int64) * size if inc_w else np.zeros(m, dtype=np.int64)
        if ring and ring_on_write:
            mask = (1 << ring) - 1
            waddrs = (ch.write & ~mask) | ((ch.write + woffs) & mask)
        else:
            waddrs = ch.write + woffs
        res = hw.mem.resolve(int(waddrs[0])) if from_adc and size == 2 else None
        if res is not None and int(waddrs.max()) - int(waddrs[0]) + res[1] + 2 <= res[0].size:
            # the samples' places in RAM; their values once the input exists (no write now:
            # the firmware reads the ring only after fill_pending has filled them)
            hw.adc.defer(tt, res[0], waddrs - int(waddrs[0]) + res[1], DMA_LATENCY)
        else:
            write_many(hw, waddrs, vals, size, tt)
        last_write = int(waddrs[-1])
    # registers advance
    if inc_r:
        ch.read = (
            last_read + size
            if not read_ring
            else (ch.read & ~((1 << ring) - 1)) | ((last_read + size) & ((1 << ring) - 1))
        )
    if inc_w:
        if ring and ring_on_write:  # WRITE_ADDR wraps within the ring, as on the chip
            mask = (1 << ring) - 1
            ch.write = (ch.write & ~mask) | ((last_write + size) & mask)
        else:
            ch.write = last_write + size
    ch.count -= m
    ch.transfers += m
    ch.after = int(tt[-1])

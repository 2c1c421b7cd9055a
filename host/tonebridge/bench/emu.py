"""Row 9: figures from emulated silicon: the real MicroPython RPI_PICO image on rp2040js.

For each way of deploying the firmware (.mpy compiled for armv6m, and .py sources), on a board
provisioned with that filesystem (tonebridge.emu.fsimage):

- fill cost: CPU cycles per sample of ``Renderer.fill`` on the backend's 1024-sample buffer,
  steady two-tone (the backend's shaped, PWM-corrected path), silence, the direct unshaped path
  (the former design's), and the portable (non-viper) loop for comparison, timed with
  ``time.ticks_us`` on the chip (least of 3 runs, each after ``gc.collect()`` with interrupts
  off) (rp2040js steps the Cortex-M0+ at 125 MHz with its
  instruction cycle counts; it does not model XIP flash wait states or bus contention);
- CPU share while playing: the share of emulated time the core was executing (not in WFI/
  WFE) during the steady part of a 3 s tone at the PWM rate, and while idle (the harness
  counts both);
- main-loop latency: SEND frame in (the last byte handed to the USB-CDC OUT endpoint) ->
  first duty sample out (the first DMA write to the slice's CC register), emulated time;
- heap of a 92-character send (40/40 ms) through the real App and backend, gc.mem_free()
  and the live heap (after gc.collect) sampled while it plays;
- the DTMF receiver (goertzel.py + dtmf_rx.py, the verified-send path): cycles per received
  sample of ``Receiver.feed`` on a DTMF tone (its frequency probes run) and on a quiet line,
  viper and portable, and the heap its code and one Receiver take.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from tonebridge_fw import codec

from tonebridge.bench.footprint import TEXT_92

FILL_CODE = """
import time, json, gc, machine
from array import array
from tonebridge_fw import synth
N = 1024
buf = array('H', bytes(2 * N))
def per_sample(r, plan, skip, chunks):
    # the least of 3 runs, each after gc.collect() with interrupts off: the kernel's own cost
    best = None
    for _ in range(3):
        r.load(plan)
        for _ in range(skip):
            r.fill(buf, 0, N)
        gc.collect()
        irq = machine.disable_irq()
        t = time.ticks_us()
        for _ in range(chunks):
            r.fill(buf, 0, N)
        dt = time.ticks_diff(time.ticks_us(), t)
        machine.enable_irq(irq)
        c = dt * 125 / (chunks * N)
        best = c if best is None else min(best, c)
    return best
from tonebridge_fw import outchain
# the backend's renderer: the shaped duty path with the chain's response compensated
r = synth.Renderer((2000000000, 32768), bits=10, shaping=True,
                   response=outchain.response(2000000000 / 32768))
res = {'fast': synth.FAST}
res['steady'] = per_sample(r, [('5', 4000)], 2, 20)
res['idle'] = per_sample(r, [(None, 4000)], 1, 20)
# the direct (unshaped) path, as the former design rendered PWM duty
d = synth.Renderer((2000000000, 32768), bits=10)
res['direct_steady'] = per_sample(d, [('5', 4000)], 2, 20)
d = None
r._fast = None
res['portable_steady'] = per_sample(r, [('5', 4000)], 2, 2)
gc.collect()
res['mem_free_after_imports'] = gc.mem_free()
print(json.dumps(res))
"""

RX_CODE = """
import time, json, gc, machine
from array import array
from math import sin, pi
gc.collect()
a0 = gc.mem_alloc()
from tonebridge_fw import goertzel, dtmf_rx
gc.collect()
a1 = gc.mem_alloc()
rx = dtmf_rx.Receiver(8000)
gc.collect()
a2 = gc.mem_alloc()
N = 816  # 8 blocks of 102 samples (102 ms at 8 kHz)
tone = array('H', [int(2048 + 480 * sin(2 * pi * 770 * i / 8000)
                       + 600 * sin(2 * pi * 1336 * i / 8000)) for i in range(N)])
quiet = array('H', [2048 + (i * 7919 % 9) - 4 for i in range(N)])
def per_sample(buf):
    best = None
    for _ in range(3):
        rx.feed(buf, 0, N)  # settle (a digit in progress when the tone is fed)
        gc.collect()
        irq = machine.disable_irq()
        t = time.ticks_us()
        rx.feed(buf, 0, N)
        dt = time.ticks_diff(time.ticks_us(), t)
        machine.enable_irq(irq)
        c = dt * 125 / N
        best = c if best is None else min(best, c)
    return best
res = {'fast': goertzel.FAST, 'code_heap': a1 - a0, 'rx_heap': a2 - a1}
res['tone'] = per_sample(tone)
res['quiet'] = per_sample(quiet)
rx.bank._fast = None
res['portable_quiet'] = per_sample(quiet)
print(json.dumps(res))
"""

HEAP_CODE = """
import gc, time, json
gc.collect()
free_boot = gc.mem_free()
from tonebridge_fw import boards
from tonebridge_fw.app import App
class Link:
    def __init__(self, frame):
        self.frame = frame
        self.n = 0
    def read(self):
        f = self.frame
        self.frame = b''
        return f
    def write(self, data):
        self.n += len(data)
    def wait(self, ms):
        time.sleep_ms(ms)
link = Link(FRAME)
app = App(boards.load_config(), link=link)
gc.collect()
base = gc.mem_alloc()
free_ready = gc.mem_free()
live_hw = 0
free_min = gc.mem_free()
steps = 0
while True:
    ms = app.step()
    steps += 1
    f = gc.mem_free()
    if f < free_min:
        free_min = f
    if steps == 1 or steps % 25 == 0:
        gc.collect()
        live_hw = max(live_hw, gc.mem_alloc() - base)
    if steps > 3 and not app.player.busy() and not app.engine.busy():
        break
    time.sleep_ms(ms)
app.shutdown()
print(json.dumps({'free_boot': free_boot, 'free_ready': free_ready, 'free_min': free_min,
                  'live_hw': live_hw, 'steps': steps, 'out_bytes': link.n,
                  'passes': app.passes}))
"""


def _send_frame(text: str) -> bytes:
    body = "SEND dialect=catapult tone=40 gap=40 " + text
    return codec.encode(codec.REQUEST, "h1", body)


def _busy_share(board, seconds: float) -> float:
    a = board.stats()
    time.sleep(seconds)
    b = board.stats()
    return (b["busy_ns"] - a["busy_ns"]) / max(1.0, b["t_ns"] - a["t_ns"])


def measure_mode(image, mpy: bool, quick: bool, log=print) -> dict:
    from tonebridge.emu.board import EmuBoard
    from tonebridge.emu.fsimage import provision
    from tonebridge.emu.protocol_emu import attach
    from tonebridge.emu.repl import RawRepl
    from tonebridge.link import BoardClient

    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="tonebridge-bench-emu-") as tmp:
        flash = Path(tmp) / "pico.lfs"
        provision(flash, "pico", mpy=mpy)
        board = EmuBoard("pico", flash=flash, image=image, probe_cc=True)
        t0 = time.monotonic()
        board.start()
        try:
            client = BoardClient(
                "emu://pico",
                timeout=10.0,
                port_factory=lambda: attach(board),
                on_event=lambda e: e.get("event") == "fault" and log(f"  emu: board fault {e}"),
            )
            client.open_timeout = 60.0
            client.open()
            out["boot_to_hello_s"] = time.monotonic() - t0
            try:
                client.hook(True)
                time.sleep(0.5)
                out["idle_cpu_share"] = _busy_share(board, 1.0)
                # latency: SEND frame in -> first DMA write to CC
                n = 5 if quick else 20
                board.cc_probes.clear()
                for _ in range(n):
                    client.send("1", tone_ms=40, gap_ms=40)
                lat = [(p["cc_ns"] - p["rx_ns"]) / 1e6 for p in board.cc_probes]
                out["latency_ms"] = lat
                # CPU share in the steady part of a 3 s tone
                th = threading.Thread(target=client.send, args=("5",), kwargs={"tone_ms": 3000})
                th.start()
                time.sleep(0.8)
                out["playing_cpu_share"] = _busy_share(board, 1.5)
                th.join(30)
            finally:
                client.close()
            # code on the chip through the raw REPL, in a fresh interpreter
            repl = RawRepl(board)
            repl.enter(soft_reset=True)
            out["fill"] = json.loads(repl.exec(FILL_CODE, timeout=300).strip().splitlines()[-1])
            repl.enter(soft_reset=True)
            out["rx"] = json.loads(repl.exec(RX_CODE, timeout=300).strip().splitlines()[-1])
            repl.enter(soft_reset=True)
            code = f"FRAME = {_send_frame(TEXT_92)!r}\n" + HEAP_CODE
            out["heap"] = json.loads(repl.exec(code, timeout=600).strip().splitlines()[-1])
            repl.exit()
        finally:
            board.close()
    lat = out["latency_ms"]
    if lat:
        out["latency_p50_ms"] = statistics.median(lat)
        out["latency_max_ms"] = max(lat)
    f = out["fill"]
    rate = 125e6 / 2048
    out["renderer_cpu_share"] = f["steady"] * rate / 125e6
    return out


def run(quick: bool = False, log=print) -> dict:
    from tonebridge.emu.image import ImageMissing, find_image

    try:
        image = find_image()
    except ImageMissing as e:
        log(f"  emu: skipped ({e})")
        return {"skipped": str(e)}
    res = {}
    for mode, mpy in (("mpy", True), ("py", False)):
        log(f"  emu: MicroPython RPI_PICO on rp2040js, firmware as .{mode} ...")
        res[mode] = measure_mode(image, mpy, quick, log)
    return res

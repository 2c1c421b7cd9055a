"""The MT8880 driver under the real MicroPython (WebAssembly port): start(), service(),
due_ms() and position() in both modes run under micropython.heap_lock() (nothing allocates per
pass), with a pin double that itself never allocates; a loop that sleeps as due_ms() says passes
once per step boundary (manual) or a few times per chip burst (burst)."""

from tonebridge.testing.micropython import run_micropython

CODE = r"""
import micropython
from tonebridge_fw.backends.mt8880 import MT8880Backend

LEVEL = bytearray(64)  # what the MCU drives
INPUT = bytearray(64)  # what an input pin reads (the chip's side)
MODE = bytearray(64)
COUNT = [0, 0]  # phi2 strobes, status reads answered with TX_EMPTY

class Pin:
    IN = 0
    OUT = 1
    def __init__(self, id, mode):
        self.id = id
        MODE[id] = mode
    def init(self, mode):
        MODE[self.id] = mode
    def value(self, v=None):
        if v is None:
            return INPUT[self.id] if MODE[self.id] == 0 else LEVEL[self.id]
        LEVEL[self.id] = v
        if self.id == 9:
            COUNT[0] += 1

class Clock:
    us = 0
    def ticks_us(self):
        return self.us
    def sleep_ms(self, ms):
        self.us += ms * 1000

def run(mode, plan, step_ms=0):
    clock = Clock()
    prof = {"d_pins": [2, 3, 4, 5], "rs0_pin": 6, "rw_pin": 7, "cs_pin": 8, "phi2_pin": 9,
            "mt8880_mode": mode}
    be = MT8880Backend(prof, pin_class=Pin, ticks_us=clock.ticks_us, sleep_ms=clock.sleep_ms)
    INPUT[3] = 1 if mode == "burst" else 0  # D1 high: status reads see TX_EMPTY
    strobes = COUNT[0]
    passes = 0
    micropython.heap_lock()
    try:
        be.start(plan)
        while be.position() < len(plan) and clock.us < 10000000:
            # the main loop sleeps until the backend has work (or every ms, step_ms=1)
            ms = step_ms or be.due_ms()
            clock.us += 1000 * ms
            be.service()
            passes += 1
        be.abort()
    finally:
        micropython.heap_unlock()
    return passes, COUNT[0] - strobes, be.position()

plan = [("1", 100), (None, 100), ("#", 100), (None, 300), ("D", 100)]
p, s, pos = run("manual", plan, 1)
assert pos == 5 and 690 <= p <= 710 and s > 5, (p, s, pos)
p, s, pos = run("manual", plan)
assert pos == 5 and p == 5 and s > 5, (p, s, pos)  # a pass per step boundary (due_ms)
p2, s2, pos2 = run("burst", plan, 1)
# b1 is read from 96 ms after each write (the double always says empty): 3 x 96 + 249
assert pos2 == 5 and 570 <= p2 <= 600 and s2 >= 10, (p2, s2, pos2)
p2, s2, pos2 = run("burst", plan)
assert pos2 == 5 and p2 <= 10 and s2 >= 10, (p2, s2, pos2)
print("ok", p, s, p2, s2)
"""


def test_mt8880_driver_allocates_nothing_under_micropython():
    run = run_micropython(CODE)
    assert run.ok, run.stderr + run.stdout
    assert run.stdout.startswith("ok ")

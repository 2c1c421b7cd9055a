"""The I2S backend under the real MicroPython (WebAssembly port): it imports, plays a plan
through a machine.I2S double with the port's non-blocking semantics, and its irq handler path
and buffer refill run under micropython.heap_lock() (nothing allocates)."""

import pytest
from tonebridge.testing.micropython import run_micropython

CODE = r"""
import micropython
from tonebridge_fw.backends.i2s_dac import I2SBackend

class Clock:
    us = 0
    def ticks_us(self):
        return self.us

clock = Clock()

class I2S:
    TX = 1
    MONO = 0
    STEREO = 1
    inst = None
    def __init__(self, id, sck, ws, sd, mode, bits, format, rate, ibuf):
        self.args = (id, sck, ws, sd, mode, bits, format, rate, ibuf)
        self.pending = None
        self.handler = None
        self.frames = 0
        self.peak = 0
        I2S.inst = self
    def irq(self, h):
        self.handler = h
    def write(self, buf):
        assert self.pending is None, "write while a write is in flight"
        self.pending = buf
        return len(buf) * 2
    def deinit(self):
        self.pending = None
    def complete(self):
        # the port copied the whole buffer into its ring: play it and run the handler
        buf = self.pending
        self.pending = None
        for s in buf:
            if s > self.peak:
                self.peak = s
        self.frames += len(buf)
        self.handler(self)

class Pin:
    def __init__(self, id):
        self.id = id

prof = {"mcu": "esp32", "sck_pin": 26, "ws_pin": 25, "sd_pin": 22, "i2s_rate": RATE,
        "i2s_buf_frames": BUF}
be = I2SBackend(prof, i2s_class=I2S, pin_class=Pin, ticks_us=clock.ticks_us)
i2s = I2S.inst
assert i2s.args[5] == 16 and i2s.args[7] == RATE and i2s.args[6] == I2S.MONO
plan = [("1", 100), (None, 100), ("#", 100)]
be.start(plan)
assert be.position() == -1
steps = []
locked_calls = 0
while True:
    clock.us += 16000  # the port completes a write every other step (32 ms)
    if i2s.pending is not None and (clock.us // 16000) % 2 == 0:
        micropython.heap_lock()
        try:
            i2s.complete()       # irq handler: hands over the next buffer
            be.service()         # refill the released buffer
            locked_calls += 1
        finally:
            micropython.heap_unlock()
    else:
        be.service()
    p = be.position()
    if not steps or steps[-1] != p:
        steps.append(p)
    if p == len(plan) or clock.us > 2000000:
        break
assert steps[0] == -1 and steps[-1] == 3, steps
assert sorted(steps) == steps
assert 0 in steps and 2 in steps
assert locked_calls > 5
assert i2s.frames >= be._r.total_samples
assert be.underruns == 0
assert 0.7 * 32767 < i2s.peak <= 32767
print("ok", i2s.frames, steps)
"""


@pytest.mark.parametrize("rate,buf", [(16000, 512), (48000, 2048)])
def test_i2s_backend_under_micropython(rate, buf):
    run = run_micropython(f"RATE = {rate}\nBUF = {buf}\n" + CODE)
    assert run.ok, run.stderr + run.stdout
    assert run.stdout.startswith("ok ")

"""BoardClient <-> a SimBoard running the real firmware (main.py -> App), in virtual time.

`SimPort` is what the client sees as its serial port: reading advances the board's virtual
clock, so a 3.5 s pause costs no wall time and every run is deterministic.  Faults: `unplug()`
makes the port (and re-opening it) fail until `replug()`; the board keeps running unless told
to reset.
"""

from __future__ import annotations

import serial
from tonebridge.link.client import BoardClient
from tonebridge.sim import SimBoard, VirtualClock


class SimPort:
    def __init__(self, rig):
        self.rig = rig
        self.gen = rig.gen

    def _check(self):
        if not self.rig.plugged or self.gen != self.rig.gen:
            raise serial.SerialException("device disconnected")

    @property
    def in_waiting(self):
        self._check()
        return self.rig.board.link.host_in_waiting()

    def read(self, n=1):
        self._check()
        link = self.rig.board.link
        if not link.host_in_waiting():
            self.rig.advance(self.rig.step_ms)
            self._check()
        return link.host_read(n)

    def write(self, data):
        self._check()
        return self.rig.board.write(bytes(data))

    def flush(self):
        pass

    def close(self):
        pass

    @property
    def board(self):
        return self.rig.board


class SimRig:
    def __init__(self, board="pico", step_ms=2, config=None):
        self.board = SimBoard(board, VirtualClock(), config=config)
        self.step_ms = step_ms
        self.plugged = True
        self.gen = 0
        self.board.run_for(20)  # boot

    def now(self):
        return self.board.now_us() / 1e6

    def advance(self, ms):
        self.board.run_for(ms)
        if not self.plugged:
            self.board.link.host_read(-1)  # nobody listening: the bytes are lost

    def sleep(self, s):
        self.advance(s * 1000)

    def open_port(self):
        if not self.plugged:
            raise serial.SerialException("no such device")
        return SimPort(self)

    def unplug(self):
        self.plugged = False
        self.gen += 1

    def replug(self):
        self.plugged = True

    def client(self, **kw):
        kw.setdefault("timeout", 0.2)
        return BoardClient(
            "simport://",
            port_factory=self.open_port,
            clock=self.now,
            sleep=self.sleep,
            background=False,
            **kw,
        )

    def close(self):
        self.board.close()

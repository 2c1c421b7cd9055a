"""A virtual-time world for link tests: BoardClient <-> lossy link <-> firmware engine.

The board side is the real firmware engine (tonebridge_fw.engine) with a timeline player
double that "plays" a plan in virtual time and writes every digit it starts and finishes
into a ledger, which is the ground truth the tests compare the host's claims against.
Nothing here sleeps: the client's clock and sleep are the world's, and the port's read
advances the world.
"""

from __future__ import annotations

import random

import serial
from tonebridge.link.client import BoardClient
from tonebridge_fw import engine as fw_engine


class TimelinePlayer:
    """Player double (architecture.md Player API): play/cancel/service in virtual time."""

    def __init__(self, now_ms, ledger, boot):
        self.now_ms = now_ms
        self.ledger = ledger
        self.boot = boot
        self.job = None
        self._pending = []

    def play(self, rid, plan):
        assert self.job is None, "engine started a second plan while one plays"
        t = self.now_ms()
        steps = []
        di = 0
        for key, ms in plan:
            if key is not None:
                steps.append([t, t + ms, key, di, False, False])
                di += 1
            t += ms
        self.job = {"rid": rid, "steps": steps, "end": t, "finished": 0, "total": di}

    def cancel(self):
        job = self.job
        if job is None:
            return
        self.job = None
        self._pending.append(("aborted", job["rid"], job["finished"], "cancelled"))

    def service(self):
        evs = self._pending
        self._pending = []
        job = self.job
        if job is None:
            return evs
        now = self.now_ms()
        rid = job["rid"]
        for st in job["steps"]:
            start, end, key, di, started, finished = st
            if not started and now >= start:
                st[4] = True
                self.ledger.started.append((rid, di, key, self.boot))
                evs.append(("started", rid, di, key))
            if st[4] and not finished and now >= end:
                st[5] = True
                job["finished"] = di + 1
                self.ledger.finished.append((rid, di, key, self.boot))
                evs.append(("finished", rid, di, key))
        if now >= job["end"]:
            evs.append(("done", rid, job["total"]))
            self.job = None
        return evs


class Ledger:
    def __init__(self):
        self.started = []
        self.finished = []

    def count(self, rid, which="finished"):
        return len([x for x in getattr(self, which) if x[0] == rid])


class VBoard:
    """Firmware engine + timeline player; `reset()` is a board reboot (new boot id)."""

    def __init__(self, world):
        self.world = world
        self.ledger = Ledger()
        self.boots = 0
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.powered = True
        self.reset()

    def now_ms(self):
        return int(self.world.t * 1000)

    def reset(self):
        self.boots += 1
        self.boot_id = "%08x" % (0x1000 + self.boots)
        self.engine = fw_engine.Engine(
            self.now_ms, self.boot_id, info={"board": "virtual", "backend": "timeline"}
        )
        self.player = TimelinePlayer(self.now_ms, self.ledger, self.boot_id)
        self.inbox = bytearray()
        self.step()

    def step(self):
        if not self.powered:
            return
        eng = self.engine
        if self.inbox:
            data = bytes(self.inbox)
            self.inbox = bytearray()
            eng.receive(data)
        for _ in range(2):
            for act in eng.actions():
                if act[0] == "play":
                    self.player.play(act[1], act[2])
                elif act[0] == "cancel":
                    self.player.cancel()
            for ev in self.player.service():
                eng.player_event(ev)
        eng.tick()
        out = eng.output()
        if out:
            self.outbox += out


class LossyLink:
    """Per-byte faults in one direction: drop, flip one bit, duplicate."""

    def __init__(self, rnd, drop=0.0, flip=0.0, dup=0.0):
        self.rnd = rnd
        self.drop = drop
        self.flip = flip
        self.dup = dup
        self.faults = 0

    def pass_bytes(self, data):
        if not (self.drop or self.flip or self.dup):
            return bytes(data)
        out = bytearray()
        r = self.rnd
        for b in data:
            x = r.random()
            if x < self.drop:
                self.faults += 1
                continue
            if x < self.drop + self.flip:
                self.faults += 1
                out.append(b ^ (1 << r.randrange(8)))
                continue
            out.append(b)
            if x < self.drop + self.flip + self.dup:
                self.faults += 1
                out.append(b)
        return bytes(out)


class VPort:
    """What BoardClient sees as the serial port."""

    def __init__(self, world):
        self.world = world
        self.open = True
        self.gen = world.plug_gen

    def _check(self):
        if not self.open or not self.world.plugged or self.gen != self.world.plug_gen:
            raise serial.SerialException("device disconnected")

    @property
    def in_waiting(self):
        return 0

    def read(self, n=1):
        self._check()
        w = self.world
        if not w.to_host:
            w.advance(0.005)
            self._check()
        data = bytes(w.to_host[:n])
        del w.to_host[:n]
        return data

    def write(self, data):
        self._check()
        self.world.to_board_wire += self.world.h2b.pass_bytes(data)
        return len(data)

    def flush(self):
        pass

    def close(self):
        self.open = False


class World:
    def __init__(self, seed=0, drop=0.0, flip=0.0, dup=0.0, step_ms=1):
        self.t = 0.0
        self.rnd = random.Random(seed)
        self.h2b = LossyLink(self.rnd, drop, flip, dup)
        self.b2h = LossyLink(self.rnd, drop, flip, dup)
        self.to_board_wire = bytearray()
        self.to_host = bytearray()
        self.plugged = True
        self.plug_gen = 0
        self.step_ms = step_ms
        self.scheduled = []  # (t, fn)
        self.board = VBoard(self)
        self.board.outbox.clear()  # the boot banner went out before anyone listened

    def now(self):
        return self.t

    def at(self, t, fn):
        self.scheduled.append((t, fn))
        self.scheduled.sort(key=lambda x: x[0])

    def advance(self, dt):
        end = self.t + dt
        step = self.step_ms / 1000.0
        while self.t < end - 1e-12:
            self.t = min(end, self.t + step)
            while self.scheduled and self.scheduled[0][0] <= self.t:
                _, fn = self.scheduled.pop(0)
                fn()
            b = self.board
            if self.to_board_wire:
                b.inbox += self.to_board_wire
                self.to_board_wire = bytearray()
            b.step()
            if b.outbox:
                data = bytes(b.outbox)
                b.outbox = bytearray()
                if self.plugged:
                    self.to_host += self.b2h.pass_bytes(data)

    def open_port(self):
        if not self.plugged:
            raise serial.SerialException("no such device")
        return VPort(self)

    def unplug(self, reset_board=False):
        self.plugged = False
        self.plug_gen += 1
        self.to_host.clear()
        self.to_board_wire.clear()
        if reset_board:
            self.board.powered = False

    def replug(self):
        self.plugged = True
        if not self.board.powered:
            self.board.powered = True
            self.board.reset()

    def client(self, **kw):
        kw.setdefault("timeout", 0.25)
        kw.setdefault("reconnect_timeout", 5.0)
        return BoardClient(
            "virtual://",
            port_factory=self.open_port,
            clock=self.now,
            sleep=self.advance,
            background=False,
            **kw,
        )

"""A virtual-time world for link tests: BoardClient <-> lossy link <-> a simulated board.

The board is a `SimBoard` running the firmware's own main.py (App: transport, engine, Player,
line, the pico's PWM/DMA backend) on modelled hardware; nothing of the firmware is replaced.
The link between the host and the board can drop, flip and duplicate bytes, be unplugged and
re-plugged, and the board can be reset mid-sequence.

Ground truth is the line: `World.tones()` decodes the board's recorded line signal (tone-on
intervals on the envelope, each tone's two frequencies fitted by least squares) into
(start_s, end_s, key). `Ledger` attributes those tones to requests: every request of a test
starts with its own marker key that appears nowhere else in that test (`marked_strings`), and
a board plays requests in order, so a marker opens a request's run of tones and the run's
keys must be a prefix of that request's keys. A digit played twice, played for the wrong
request or out of order fails the attribution itself.

Nothing here sleeps: the client's clock and sleep are the world's, and reading the port
advances the world.
"""

from __future__ import annotations

import random

import serial
from tonebridge.analysis import fit_tones, segments
from tonebridge.link.client import BoardClient
from tonebridge.sim import SimBoard, VirtualClock
from tonebridge_fw import dialstring
from tonebridge_fw.keypad import KEYS, freqs

UART = {"uart": {"id": 0, "tx": 0, "rx": 1, "baudrate": 115200}}
LINE_RATE = 8000  # the line is decoded at 8 kHz (DTMF tops out at 1633 Hz)


def _key_of(f_low, f_high):
    best, err = None, 1.0
    for k in KEYS:
        lo, hi = freqs(k)
        e = max(abs(f_low / lo - 1), abs(f_high / hi - 1))
        if e < err:
            best, err = k, e
    return best if err < 0.015 else "?"


def decode_line(x, rate):
    """[(start_s, end_s, key)] for every tone pair in `x` ('?' when it is no DTMF pair)."""
    out = []
    for s, e in segments(x, rate):
        trim = min(0.004, (e - s) * 0.2)  # the ramps out; a tone cut short keeps its middle
        a, b = int((s + trim) * rate), int((e - trim) * rate)
        key = "?"
        if b - a >= int(0.006 * rate):
            f = fit_tones(x[a:b], rate)
            key = _key_of(f.f_low, f.f_high)
        out.append((s, e, key))
    return out


def tone_keys(text):
    """The keys a dial string sends, in order (pauses left out)."""
    plan = dialstring.compile_plan(text, "catapult", 100, 100)
    return [k for k, _ms in plan if k is not None]


def marked_strings(rnd, n, max_body=7, min_body=0):
    """`n` random dial strings for one test, each starting with a marker key of its own that
    appears in no other string (nor again in its own): the line's tones can then be
    attributed to requests without asking the board."""
    keys = list(KEYS)
    rnd.shuffle(keys)
    markers, body = keys[:n], keys[n:]
    return [m + "".join(rnd.choice(body) for _ in range(rnd.randint(min_body, max_body)))
            for m in markers]  # fmt: skip


class Ledger:
    """What each request really played, from the line (see the module docstring).

    `requests`: [(rid, text, tone_ms)] in the order they were sent."""

    def __init__(self, tones, requests):
        self.tones = tones
        self.requests = list(requests)
        marker = {}
        for i, (_rid, text, _ms) in enumerate(self.requests):
            keys = tone_keys(text)
            if not keys:
                continue
            assert keys[0] not in marker, f"marker {keys[0]!r} used twice in the test"
            marker[keys[0]] = i
        for i, (rid, text, _ms) in enumerate(self.requests):
            for k in tone_keys(text)[1:]:
                assert marker.get(k, i) == i and k != tone_keys(text)[0], (
                    f"request {rid}: key {k!r} is another request's marker"
                )
        self.runs = {rid: [] for rid, _t, _ms in self.requests}
        cur, last = None, -1
        for s, e, key in tones:
            assert key != "?", f"a sound on the line that is no DTMF pair at {s:.3f} s"
            if key in marker:
                i = marker[key]
                rid = self.requests[i][0]
                assert not self.runs[rid], f"request {rid} started again at {s:.3f} s"
                assert i > last, f"request {rid} played after a later request"
                cur, last = rid, i
            assert cur is not None, f"tone {key!r} at {s:.3f} s belongs to no request"
            self.runs[cur].append((s, e, key))
        self.tone_ms = {rid: ms for rid, _t, ms in self.requests}
        for rid, text, _ms in self.requests:
            got = [k for _s, _e, k in self.runs[rid]]
            want = tone_keys(text)
            assert got == want[: len(got)], f"request {rid}: played {got}, asked for {want}"

    def started(self, rid):
        """Digits of `rid` heard on the line (at least 10 ms of tone)."""
        return len(self.runs[rid])

    def finished(self, rid):
        """Digits of `rid` heard for their whole planned length."""
        ms = self.tone_ms[rid]
        return sum(1 for s, e, _k in self.runs[rid] if (e - s) * 1000 >= ms - 2)

    def total_tones(self):
        return len(self.tones)


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
    """A host, a link and one simulated board. `uart=True` (default): the board speaks the
    protocol on a UART (where bytes get lost or corrupted; a USB-CDC link does not flip bits,
    and a 0x03 there is MicroPython's Ctrl-C)."""

    def __init__(self, seed=0, drop=0.0, flip=0.0, dup=0.0, step_ms=2, board="pico",
                 uart=True, config=None):  # fmt: skip
        self.rnd = random.Random(seed)
        self.h2b = LossyLink(self.rnd, drop, flip, dup)
        self.b2h = LossyLink(self.rnd, drop, flip, dup)
        self.to_board_wire = bytearray()
        self.to_host = bytearray()
        self.plugged = True
        self.plug_gen = 0
        self.step_ms = step_ms
        self.scheduled = []  # (t, fn)
        self.sent = []  # (rid, text, tone_ms) of run_send, in order
        cfg = dict(UART if uart else {})
        cfg.update(config or {})
        self.board = SimBoard(board, VirtualClock(), config=cfg or None)
        self.board.run_for(20)
        self.board.read()  # the boot banner went out before anyone listened

    @property
    def t(self):
        return self.board.now_us() / 1e6

    def now(self):
        return self.t

    @property
    def app(self):
        """The firmware's running App (for inspection only)."""
        return self.board.app

    @property
    def boot_id(self):
        return self.board.app.engine.boot_id

    def at(self, t, fn):
        self.scheduled.append((t, fn))
        self.scheduled.sort(key=lambda x: x[0])

    def advance(self, dt):
        b = self.board
        end_us = b.now_us() + int(round(dt * 1e6))
        while b.now_us() < end_us:
            step_end = min(end_us, b.now_us() + self.step_ms * 1000)
            while self.scheduled and self.scheduled[0][0] * 1e6 <= step_end:
                t, fn = self.scheduled.pop(0)
                b.run_until_us(max(b.now_us(), int(round(t * 1e6))))
                fn()
            if self.to_board_wire:
                b.write(bytes(self.to_board_wire))
                self.to_board_wire = bytearray()
            b.run_until_us(step_end)
            data = b.read()
            if data and self.plugged:
                self.to_host += self.b2h.pass_bytes(data)

    def reset_board(self):
        """Press the board's reset: the firmware reboots (a new boot id)."""
        self.board.reset()

    def open_port(self):
        if not self.plugged:
            raise serial.SerialException("no such device")
        return VPort(self)

    def unplug(self, reset_board=False):
        """Pull the cable. reset_board: a USB-powered board loses power (it reboots; what it
        says before the host is back goes nowhere)."""
        self.plugged = False
        self.plug_gen += 1
        self.to_host.clear()
        self.to_board_wire.clear()
        if reset_board:
            self.board.reset("power")

    def replug(self):
        self.plugged = True

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

    # ---- ground truth --------------------------------------------------------------------
    def tones(self):
        """Every tone on the line so far: [(start_s, end_s, key)], decoded from the recording."""
        x = self.board.recorder.samples(LINE_RATE, start_us=0, end_us=self.board.now_us())
        return decode_line(x, LINE_RATE)

    def keys_heard(self):
        return "".join(k for _s, _e, k in self.tones())

    def ledger(self):
        return Ledger(self.tones(), self.sent)

    def close(self):
        self.board.close()

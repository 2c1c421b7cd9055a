"""Board identity on the link, in virtual time: boards (SimBoards running the firmware) on
serial paths that can be unplugged and plugged back, possibly another board on the old
path. The host binds to a board's hardware id, refuses any other board (nothing is played
on it), and finds its own board again under another path.
"""

from __future__ import annotations

import os

import pytest
import serial
from tonebridge.analysis import decode_multimon
from tonebridge.link import BoardClient, SendError, SendResult, WrongBoardError
from tonebridge.link.discovery import locate_candidates
from tonebridge.sim import SimBoard, VirtualClock

RATE = 22050
HW_A = "e6614103e73f4a2b"
HW_B = "0123456789abcdef"


class Bench:
    """Simulated boards on serial paths, all advanced together in one virtual time."""

    def __init__(self):
        self.t_us = 0
        self.boards: dict[str, SimBoard] = {}
        self.offset: dict[str, int] = {}
        self.paths: dict[str, str] = {}  # path -> board name
        self.gen: dict[str, int] = {}
        self.deaf: set[str] = set()  # boards that stopped answering (hung firmware)

    def add(self, name, hwid):
        b = SimBoard("pico", VirtualClock(), hwid=hwid)
        self.boards[name] = b
        self.offset[name] = self.t_us - b.now_us()
        return b

    def plug(self, path, name):
        self.paths[path] = name
        self.gen[path] = self.gen.get(path, 0) + 1

    def unplug(self, path):
        self.paths.pop(path, None)
        self.gen[path] = self.gen.get(path, 0) + 1

    def now(self):
        return self.t_us / 1e6

    def advance(self, ms):
        self.t_us += int(ms * 1000)
        for name, b in self.boards.items():
            b.run_until_us(self.t_us - self.offset[name])
            if name in self.deaf or name not in self.paths.values():
                b.link.host_read(-1)  # nobody hears it

    def sleep(self, s):
        self.advance(s * 1000)

    def open(self, path):
        if path not in self.paths:
            raise serial.SerialException(f"could not open port {path}: no such device")
        return PathPort(self, path)

    def candidates(self, hwid):
        return sorted(p for p, n in self.paths.items() if self.boards[n].hwid == hwid)

    def client(self, path, **kw):
        kw.setdefault("timeout", 0.2)
        kw.setdefault("reconnect_timeout", 2.0)
        return BoardClient(
            path,
            opener=self.open,
            clock=self.now,
            sleep=self.sleep,
            background=False,
            locate=self.candidates,
            **kw,
        )

    def line_digits(self, name):
        b = self.boards[name]
        return decode_multimon(b.line.samples(RATE, start_us=0, end_us=b.now_us()), RATE)

    def close(self):
        for b in self.boards.values():
            b.close()


class PathPort:
    def __init__(self, bench, path):
        self.bench = bench
        self.path = path
        self.name = bench.paths[path]
        self.gen = bench.gen[path]

    def _check(self):
        if self.bench.paths.get(self.path) != self.name or self.bench.gen[self.path] != self.gen:
            raise serial.SerialException(f"{self.path}: device disconnected")

    @property
    def board(self):
        return self.bench.boards[self.name]

    @property
    def in_waiting(self):
        self._check()
        return 0 if self.name in self.bench.deaf else self.board.link.host_in_waiting()

    def read(self, n=1):
        self._check()
        if not self.in_waiting:
            self.bench.advance(2)
            self._check()
        if self.name in self.bench.deaf:
            return b""
        return self.board.link.host_read(n)

    def write(self, data):
        self._check()
        if self.name in self.bench.deaf:
            return len(data)
        return self.board.write(bytes(data))

    def close(self):
        pass


@pytest.fixture
def bench():
    b = Bench()
    yield b
    b.close()


def test_binds_to_the_first_board_and_refuses_another_on_the_same_path(bench):
    bench.add("A", HW_A)
    bench.add("B", HW_B)
    bench.plug("/dev/ttyACM0", "A")
    events = []
    c = bench.client("/dev/ttyACM0", on_event=events.append)
    c.open()
    assert c.hwid == HW_A and c.info["hwid"] == HW_A
    assert {"event": "bound", "hwid": HW_A, "path": "/dev/ttyACM0"} in events
    assert c.send("1", tone_ms=60, gap_ms=60) == SendResult(1, 1)

    # board A is unplugged; board B appears under the very same path
    bench.unplug("/dev/ttyACM0")
    bench.plug("/dev/ttyACM0", "B")
    with pytest.raises(SendError) as ei:
        c.send("5", tone_ms=60, gap_ms=60)
    e = ei.value
    assert e.code == "link" and not e.sent and e.played == 0
    assert "wrong board on /dev/ttyACM0" in e.message
    assert HW_A in e.message and HW_B in e.message
    assert "wrong board" in c.fault
    wrong = [ev for ev in events if ev["event"] == "wrong_board"]
    assert len(wrong) == 1 and wrong[0]["found"] == HW_B and wrong[0]["expected"] == HW_A
    # nothing at all was played on board B, and it never saw a SEND
    bench.advance(300)
    assert bench.line_digits("B") == ""
    assert abs(bench.boards["B"].line.samples(RATE, 0, bench.boards["B"].now_us())).max() < 1e-3
    assert b"SEND" not in bytes(bench.boards["B"].link.transcript_to_host)

    # board A comes back under another path: found by its hardware id, and it plays
    bench.plug("/dev/ttyACM1", "A")
    assert c.send("7", tone_ms=60, gap_ms=60) == SendResult(1, 1)
    assert c.url == "/dev/ttyACM1" and c.fault is None
    bench.advance(200)
    assert bench.line_digits("A") == "17"
    assert bench.line_digits("B") == ""
    assert any(ev["event"] == "link" and ev.get("moved") for ev in events)


def test_a_configured_hardware_id_refuses_any_other_board(bench):
    bench.add("B", HW_B)
    bench.plug("/dev/ttyACM0", "B")
    c = bench.client("/dev/ttyACM0", hwid=HW_A.upper(), open_timeout=0.5)
    with pytest.raises(WrongBoardError) as ei:
        c.open()
    assert ei.value.expected == HW_A and ei.value.found == HW_B
    bench.advance(200)
    assert bench.line_digits("B") == ""


def test_a_hung_board_is_noticed_within_one_second(bench):
    """Nothing arrives any more (the firmware hangs, the USB link stays up): the keep-alive
    declares the link lost within 1 s of the last frame, during a long silent pause."""
    bench.add("A", HW_A)
    bench.plug("/dev/ttyACM0", "A")
    seen = []
    c = bench.client("/dev/ttyACM0", on_event=lambda ev: seen.append((bench.now(), ev)))
    c.open()
    hang_at = []

    def progress(ev):
        if ev["event"] == "finished" and not hang_at:
            bench.deaf.add("A")  # hangs right after the first digit, in a 4 s pause
            hang_at.append(bench.now())

    with pytest.raises(SendError) as ei:
        c.send("1WWWW2", tone_ms=60, gap_ms=60, on_progress=progress)
    down = [t for t, ev in seen if ev["event"] == "link" and ev["state"] == "down"]
    assert down, seen
    assert down[0] - hang_at[0] <= 1.0
    e = ei.value
    assert e.uncertain and e.played == 1 and e.at_most <= 2
    assert "does not answer" in c.fault and not c.link_up
    # the board answers again: the link comes back on its first frame, on the same port
    # (nothing reopened: an in-process board would be reset by that)
    bench.deaf.discard("A")
    assert c.send("3", tone_ms=60, gap_ms=60) == SendResult(1, 1)
    assert c.link_up and c.fault is None and c.reconnects == 0


def test_locate_candidates_serial_number_first_then_globs(tmp_path):
    from types import SimpleNamespace

    (tmp_path / "usb-Silicon_Labs_1").touch()
    (tmp_path / "usb-other").touch()
    ports = [
        SimpleNamespace(device="/dev/ttyACM3", serial_number="E6614103E73F4A2B"),
        SimpleNamespace(device="/dev/ttyACM4", serial_number="ffff"),
        SimpleNamespace(device="/dev/ttyS0", serial_number=None),
    ]
    got = locate_candidates(HW_A, [str(tmp_path / "usb-Silicon*")], ports=ports)
    assert got == ["/dev/ttyACM3", str(tmp_path / "usb-Silicon_Labs_1")]


def test_a_path_held_through_a_symlink_is_released_when_the_symlink_is_gone(tmp_path):
    """A line opened through a symlink (udev's /dev/serial/by-id, `tonebridge sim --link`)
    whose link disappears before the port is dropped must not keep the device "held": a
    new board that later gets the same /dev/pts number would otherwise be unreachable."""
    from tonebridge.link import identity
    from tonebridge.link.pty import PtyBridge

    link = str(tmp_path / "ttyACM0")
    bridge = PtyBridge("sim://pico", link_path=link)
    real = os.path.realpath(bridge.start())
    try:
        c = BoardClient(link, background=False).open()
        assert identity.held_elsewhere(real, object())
    finally:
        bridge.stop()  # removes the symlink first
    c.close()
    assert not identity.held_elsewhere(real, object())

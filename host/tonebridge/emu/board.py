"""``EmuBoard``: the real MicroPython RPI_PICO image running on an emulated RP2040 (rp2040js).

    with EmuBoard("pico", flash="pico.lfs", hwid="e6614103e7123456") as b:
        b.write(b"\\x03")           # to the board's USB-CDC console
        b.read()                    # what it printed
        b.line.write_wav("line.wav")

The chip runs in a Node process (harness.mjs, see process.py) paced to the wall clock; this
object owns the host side of the console (``link``: the same host_read / host_in_waiting /
wait_host_data interface as a simulated board's serial link, so ``emu://`` ports and the pty
bridge work unchanged), and the line: the tone, hook and mute pins of the board profile go
through the simulator's analog chain into ``line`` (a ``LineRecorder``), in emulated time.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

from tonebridge_fw import boards

from tonebridge.emu.image import FirmwareImage, find_image
from tonebridge.emu.line import EdgeLine
from tonebridge.emu.process import EmuProcess

BOARDS = ("pico",)  # RP2040 boards whose profile the emulated chip can run


def default_hwid(flash) -> str:
    """The board's 64-bit flash unique id: stable for a given --flash file (so a board keeps its
    identity across runs), random for a board without one."""
    if flash is None:
        return os.urandom(8).hex()
    path = os.path.realpath(os.fspath(flash))
    return hashlib.sha256(b"tonebridge-emu:" + path.encode()).hexdigest()[:16]


class HostLink:
    """Bytes from the board, waiting for the host to read them."""

    def __init__(self):
        self._buf = bytearray()
        self.cond = threading.Condition()
        self.closed = False
        self.host_listeners: list = []

    def push(self, data: bytes) -> None:
        with self.cond:
            self._buf += data
            self.cond.notify_all()
        for fn in list(self.host_listeners):
            fn(data)

    def host_read(self, n: int = -1) -> bytes:
        with self.cond:
            if n < 0 or n >= len(self._buf):
                out = bytes(self._buf)
                self._buf.clear()
            else:
                out = bytes(self._buf[:n])
                del self._buf[:n]
            return out

    def host_in_waiting(self) -> int:
        with self.cond:
            return len(self._buf)

    def wait_host_data(self, timeout_s: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self._buf or self.closed, timeout_s)

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


class EmuBoard:
    def __init__(
        self,
        board: str = "pico",
        *,
        flash=None,
        hwid: str | None = None,
        image: FirmwareImage | None = None,
        pace: bool = True,
        without=(),
        probe_cc: bool = False,
        log=None,
    ):
        if board not in BOARDS:
            raise ValueError(
                f"no emulated {board!r}: the emulator is an RP2040, board one of {', '.join(BOARDS)}"
            )
        self.name = board
        self.profile = boards.profile(board)
        self.flash = flash
        self.hwid = (hwid or default_hwid(flash)).lower()
        if len(bytes.fromhex(self.hwid)) != 8:
            raise ValueError("hwid wants 16 hex digits (the flash's 64-bit unique id)")
        self.image = image or find_image()
        self.link = HostLink()
        self.edge_line = EdgeLine(self.profile)
        self.events: list[dict] = []
        self.usb_connects = 0
        self.resets: list[tuple[float, str]] = []
        self.cc_probes: list[dict] = []
        self._cond = threading.Condition()
        self._line_lock = threading.Lock()
        slice_ = (self.profile["pwm_pin"] >> 1) & 7
        self.proc = EmuProcess(
            self.image,
            flash=flash,
            hwid=self.hwid,
            watch=self.edge_line.pins(),
            without=without,
            pace=pace,
            probe_cc=slice_ if probe_cc else None,
            ear=_ear(self.profile),
            on_data=self.link.push,
            on_edges=self._on_edges,
            on_event=self._on_event,
            log=log,
        )

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> EmuBoard:
        self.proc.start(timeout)
        self.wait_usb(timeout)
        return self

    def wait_usb(self, timeout: float = 30.0, after: int = 0) -> None:
        """Wait until the board's USB-CDC has enumerated (more than ``after`` times)."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: self.usb_connects > after or self.proc.closed.is_set(), timeout
            )
        if not ok or self.usb_connects <= after:
            raise TimeoutError("the emulated board's USB did not enumerate")

    def close(self) -> None:
        self.proc.close()
        self.link.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # ---- console --------------------------------------------------------------------------
    def write(self, data: bytes) -> int:
        self.proc.write(data)
        return len(data)

    def read(self, n: int = -1) -> bytes:
        return self.link.host_read(n)

    def reset(self, wait: bool = True, timeout: float = 30.0) -> None:
        """Power-cycle the chip (flash kept); wait for USB to enumerate again."""
        n = self.usb_connects
        self.proc.reset()
        if wait:
            self.wait_usb(timeout, after=n)

    def stats(self) -> dict:
        return self.proc.stats()

    # ---- line -----------------------------------------------------------------------------
    @property
    def line(self):
        return self.edge_line.recorder

    @property
    def line_lock(self):
        """Hold while reading ``line`` from another thread (edges keep arriving)."""
        return self._line_lock

    def now_us(self) -> float:
        return self.edge_line.upto_ns / 1000.0

    def _on_edges(self, upto_ns, t_ns, gpio, state) -> None:
        with self._line_lock:
            self.edge_line.feed(upto_ns, t_ns, gpio, state)

    def _on_event(self, ev: dict) -> None:
        kind = ev.get("ev")
        with self._cond:
            self.events.append(ev)
            if kind == "usb":
                self.usb_connects += 1
            elif kind == "reset":
                self.resets.append((ev["t_ns"] / 1000.0, ev["reason"]))
            elif kind == "cc":
                self.cc_probes.append(ev)
            self._cond.notify_all()

    def wait_for(self, pred, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            return self._cond.wait_for(pred, max(0.0, deadline - time.monotonic()))


def _ear(profile: dict):
    """The line sense the harness feeds ADC ``rx_adc`` with (harness.mjs --ear), or None."""
    if profile.get("rx_adc") is None or profile.get("pwm_pin") is None:
        return None
    return (
        profile["pwm_pin"],
        profile.get("hook_pin", -1),
        profile.get("mute_pin", -1),
        profile.get("loop_pin", -1) if profile.get("loop_pin") is not None else -1,
        profile["rx_adc"],
    )

"""``SbcBoard``: the firmware's own App (main loop, engine, player, line, MT8880 driver) running
in CPython on a Linux single-board computer, its pins on the SBC's GPIO.

The firmware files are loaded unmodified through the simulator's per-board import namespace
(``tonebridge.sim.loader.FirmwareLoader``) with this module set instead of simulated hardware:
``machine`` (Pin = RPi.GPIO adapter), ``time`` (MicroPython ticks on ``clock``), ``sys``,
``os``. The protocol link is in-process (``SbcLink``): the host side writes/reads bytes, the
firmware side is what ``App`` expects from ``transport.StdioLink`` (``read()``, ``write()``,
``wait(ms)``).

Two ways to run it:

* ``start()`` / ``stop()``: ``App.run()`` (the firmware's own forever loop) in a thread, in real
  time (``RealClock``): what ``sbc://`` and ``tonebridge sbc`` use on a Pi.
* ``run_for(ms)`` on a ``VirtualClock`` (tests): the same ``App.run()`` in a thread that takes
  turns with the caller (lockstep): the loop's ``link.wait`` moves the virtual clock, and hands
  back to the caller when the next sleep would pass the ``run_for`` target (or the caller
  wrote input, which wakes the loop at once, as a poll would).
"""

from __future__ import annotations

import tempfile
import threading
import types
from pathlib import Path

from tonebridge.sim.clock import RealClock
from tonebridge.sim.loader import FIRMWARE_ROOT, FirmwareLoader

from .modules import make_machine_module, make_os_module, make_sys_module, make_time_module


class _Stop(BaseException):
    """Raised in the firmware thread's link.wait() to end App.run() (its finally hangs up)."""


class SbcLink:
    """In-process serial link. Firmware side: read(), write(data), wait(ms); host side:
    host_write(b), host_read(n), host_in_waiting(), wait_host_data(timeout_s)."""

    MAX_READ = 512

    def __init__(self, clock):
        self.clock = clock
        self.virtual_wait = None  # virtual time: the board's lockstep wait(ms)
        self.cond = threading.Condition()
        self._to_board = bytearray()
        self._to_host = bytearray()
        self.closed = False

    # firmware side
    def read(self):
        with self.cond:
            if not self._to_board:
                return b""
            data = bytes(self._to_board[: self.MAX_READ])
            del self._to_board[: len(data)]
            return data

    def write(self, data):
        with self.cond:
            self._to_host += data
            self.cond.notify_all()

    def wait(self, ms):
        if self.clock.virtual:
            self.virtual_wait(ms)
            return
        with self.cond:
            if self.closed:
                raise _Stop()
            if ms > 0 and not self._to_board:
                self.cond.wait(ms / 1000.0)
            if self.closed:
                raise _Stop()
        self.clock.run_due()

    # host side
    def host_write(self, data) -> int:
        with self.cond:
            self._to_board += data
            self.cond.notify_all()
        return len(data)

    def host_read(self, n=-1) -> bytes:
        with self.cond:
            if n < 0:
                n = len(self._to_host)
            data = bytes(self._to_host[:n])
            del self._to_host[: len(data)]
            return data

    def host_in_waiting(self) -> int:
        with self.cond:
            return len(self._to_host)

    def wait_host_data(self, timeout_s) -> bool:
        with self.cond:
            if not self._to_host and not self.closed:
                self.cond.wait(timeout_s)
            return bool(self._to_host)

    def close(self):
        with self.cond:
            self.closed = True
            self.cond.notify_all()


class SbcBoard:
    """``SbcBoard("rpi-mt8880", gpio)``: builds the firmware's App on this machine's GPIO.

    ``gpio``: an RPi.GPIO-style module; ``clock``: RealClock (default) or VirtualClock;
    ``config``: profile overrides (as tonebridge.json would give); ``pin_map``: profile pin id ->
    BCM channel where the wiring differs from the profile.
    """

    def __init__(
        self,
        board: str = "rpi-mt8880",
        gpio=None,
        clock=None,
        *,
        config: dict | None = None,
        pin_map: dict | None = None,
        boot_id: str | None = None,
        firmware_root=FIRMWARE_ROOT,
    ):
        if gpio is None:
            from . import gpio_module

            gpio = gpio_module()
        self.name = board
        self.gpio = gpio
        self.clock = clock if clock is not None else RealClock()
        self.fs_root = Path(tempfile.gettempdir())
        host = types.SimpleNamespace(name=f"{board} (sbc)", fs_root=self.fs_root)
        self.machine = make_machine_module(gpio, pin_map)
        sim = {
            "machine": self.machine,
            "time": make_time_module(self.clock),
            "sys": make_sys_module(),
            "os": make_os_module(),
        }
        self.loader = FirmwareLoader(host, sim, firmware_root)
        boards = self.loader.load("tonebridge_fw.boards")
        self.profile = boards.profile(board, config)
        if self.profile.get("backend") != "mt8880":
            raise ValueError(
                f"board {board!r} uses the {self.profile.get('backend')!r} backend; "
                "a single-board computer drives an MT8880 (backend 'mt8880')"
            )
        self.link = SbcLink(self.clock)
        self.link.virtual_wait = self._virtual_wait
        self._cv = threading.Condition()
        self._turn = "harness"
        self._target = self.clock.now_us()
        app_mod = self.loader.load("tonebridge_fw.app")
        ticks_ms = sim["time"].ticks_ms
        try:
            self.app = app_mod.App(self.profile, ticks_ms, link=self.link, boot_id=boot_id)
        except BaseException:
            self.machine.Pin.cleanup()
            raise
        self._thread: threading.Thread | None = None
        self.crash: BaseException | None = None
        self._closed = False

    # ---- real time: the firmware's own App.run() in a thread ---------------------------------
    def start(self) -> None:
        if self.clock.virtual:
            raise RuntimeError("start() runs in real time; use run_for() on a VirtualClock")
        self._thread = threading.Thread(target=self._run, name=f"sbc {self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            if self.clock.virtual:
                with self._cv:
                    self._cv.wait_for(lambda: self._turn == "fw" or self.link.closed)
                if self.link.closed:
                    return
            self.app.run()
        except _Stop:
            pass
        except BaseException as e:  # noqa: BLE001  (reported; the link closes)
            self.crash = e
            self.link.write(f"\r\nsbc: firmware stopped: {type(e).__name__}: {e}\r\n".encode())
        finally:
            with self._cv:
                self._turn = "harness"
                self._cv.notify_all()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ---- virtual time (tests): App.run() in lockstep with the caller ------------------------
    def run_for(self, ms: int) -> None:
        """Let the firmware's main loop run for ``ms`` of virtual time."""
        if not self.clock.virtual:
            raise RuntimeError("run_for() needs a VirtualClock; a real-time board uses start()")
        self._target = self.clock.now_us() + int(ms) * 1000
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"sbc {self.name}", daemon=True)
            self._thread.start()
        with self._cv:
            self._turn = "fw"
            self._cv.notify_all()
            self._cv.wait_for(lambda: self._turn == "harness" or not self._thread.is_alive())
        if self.clock.now_us() < self._target:  # the loop ended (crash, close): time goes on
            self.clock.advance_to(self._target)

    def _virtual_wait(self, ms) -> None:
        """``link.wait(ms)`` in the firmware thread, on the virtual clock."""
        end = self.clock.now_us() + max(0, int(ms)) * 1000
        while True:
            if self.link._to_board:
                return  # input wakes the loop
            if end <= self._target:
                self.clock.advance_to(end)
                return
            if self.clock.now_us() < self._target:
                self.clock.advance_to(self._target)
            with self._cv:
                self._turn = "harness"
                self._cv.notify_all()
                self._cv.wait_for(lambda: self._turn == "fw" or self.link.closed)
            if self.link.closed:
                raise _Stop()

    def now_us(self) -> int:
        return self.clock.now_us()

    # ---- shutdown ------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the loop (silence, hang up: App.run's finally), release the bus and the GPIO."""
        if self._closed:
            return
        self._closed = True
        self.link.close()
        with self._cv:
            self._cv.notify_all()  # a lockstepped loop waiting for its turn sees the close
        if self._thread is not None:
            self._thread.join(timeout=5)
        else:
            try:
                self.app.shutdown()
            except Exception:  # noqa: BLE001
                pass
        try:
            self.app.backend.close()
        finally:
            self.machine.Pin.cleanup()

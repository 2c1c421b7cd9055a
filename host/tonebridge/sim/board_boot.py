"""Boot, reset and the firmware thread of a simulated board (``SimBoard`` inherits this).

A boot makes the board's simulated modules afresh (``machine``, ``time``, ``sys``, ``select``,
``rp2``, ``network`` ...) and runs ``main.py`` in the firmware thread (runtime.py), as on a
board after power-up; when main.py ends the board runs a MicroPython-like REPL (repl.py).
Resets: ``machine.reset()``, a watchdog that was not fed in time, or ``reset()`` from the
harness reboot the board: peripherals back to reset state, pins floating (the hook relay
drops), the firmware loaded afresh and ``main.py`` run again. ``resets`` lists
``(t_us, reason)``.
"""

from __future__ import annotations

import ctypes
import traceback
import types

from . import machine as sim_machine
from .loader import (
    FirmwareLoader,
    make_gc_module,
    make_micropython_module,
    make_os_module,
    make_uctypes_module,
)
from .netstack import make_network_module, make_socket_module
from .netstack_tls import make_ssl_module
from .repl import Repl
from .rp2 import make_rp2_module
from .runtime import BoardReset
from .stdio import make_select_module, make_sys_module
from .timemod import make_time_module
from .watchdog import Watchdog


class BoardBoot:
    """What boots and resets a ``SimBoard`` (its attributes are set up by SimBoard)."""

    # ---- boot / reset -----------------------------------------------------------------------
    def _make_modules(self) -> None:
        self.heap_locked = 0
        self.scheduled: list = []
        self.loader = FirmwareLoader(self, {}, self.firmware_root)
        sim = self.loader.sim
        sim["time"] = make_time_module(self)
        sim["micropython"] = make_micropython_module(self)
        sim["gc"] = make_gc_module(self)
        sim["os"] = make_os_module(self)
        sim["sys"] = make_sys_module(self)
        sim["select"] = make_select_module(self)
        sim["machine"] = sim_machine.make_machine_module(self)
        if self.has_wifi:
            self.net.reset()  # a reset takes the interface down and its sockets with it
            sim["network"] = make_network_module(self)
            sim["socket"] = make_socket_module(self)
            sim["ssl"] = make_ssl_module(self)
        if self.hw is not None:
            sim["rp2"] = make_rp2_module(self.hw)
            sim["uctypes"] = make_uctypes_module(self)

    @property
    def has_wifi(self) -> bool:
        """A Pico W or an ESP32: the firmware can import network and socket."""
        return self.name == "picow" or self.sys_platform == "esp32"

    def _boot(self) -> None:
        self._make_modules()
        self.crash = None
        self.state = "running" if self.run_main else "idle"
        if self.run_main:
            self.runtime.start(self._fw_main, f"sim-{self.name}")
        else:
            self.runtime.thread = None

    def load(self, name: str):
        """A firmware module in this board's namespace (fresh per board and per boot)."""
        return self.loader.load(name)

    @property
    def modules(self) -> dict:
        """The simulated modules the firmware sees (``machine``, ``time``, ...)."""
        return self.loader.sim

    def request_reset(self, reason: str, cause: int = sim_machine.HARD_RESET) -> None:
        """Reset the board (from a clock event, the firmware, or the harness)."""
        rt = self.runtime
        if self.reset_pending is None:
            self.reset_pending = (reason, cause)
        if rt.in_firmware():
            raise BoardReset(reason)
        if rt.alive() and not rt.lockstep:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(rt.thread.ident), ctypes.py_object(BoardReset)
            )
            rt.wake()

    def reset(self, reason: str = "harness") -> None:
        """Reset the board now (like pressing RUN): the firmware restarts."""
        self.request_reset(reason, sim_machine.HARD_RESET)
        rt = self.runtime
        if rt.lockstep:
            if rt.alive():
                rt.target = self.clock.now_us()
                rt.resume()
            self.do_pending_reset()

    def do_pending_reset(self) -> None:
        """Carry out the reset ``request_reset`` noted: reboot the board."""
        reason, cause = self.reset_pending
        self.reset_pending = None
        rt = self.runtime
        if rt.thread is not None and not rt.in_firmware():
            rt.thread.join(timeout=5)
        self.resets.append((self.clock.now_us(), reason))
        self.reset_cause = cause
        if cause != sim_machine.SOFT_RESET:
            self._boot_raw = False
        if self.wdt is not None and cause != sim_machine.SOFT_RESET:
            self.wdt.stop()  # a soft reboot leaves the watchdog running, as on the chip
            self.wdt = None
        if self.hw is not None:
            self.hw.reset()
        for gpio in self.bus.configured():
            self.bus.configure(gpio, mode=0, pull=None)
        self._boot()

    def soft_reboot(self, raw: bool = False) -> None:
        """Ctrl-D at the REPL: ``MPY: soft reboot``, main.py again (skipped from raw mode)."""
        self.link.board_write(b"MPY: soft reboot\r\n")
        self._boot_raw = raw
        self.request_reset("soft reboot", sim_machine.SOFT_RESET)

    def start_watchdog(self, timeout_us: int) -> Watchdog:
        self.wdt = Watchdog(self, timeout_us)
        return self.wdt

    # ---- the firmware thread --------------------------------------------------------------------
    def _fw_main(self) -> None:
        rt = self.runtime
        try:
            if not rt.wait_first_turn():
                return
            raw = self._boot_raw
            self._boot_raw = False
            if raw:  # soft reset from the raw REPL: MicroPython skips main.py
                self.state = "repl"
                self._repl().run(raw=True)
                return
            try:
                rt.check_async()
                self.run_firmware_main()
                self.state = "repl"
            except KeyboardInterrupt:
                self.state = "repl"
                self.link.board_write(
                    b"Traceback (most recent call last):\r\nKeyboardInterrupt: \r\n"
                )
            except SystemExit:
                self.state = "repl"
            except BoardReset:
                raise
            except BaseException as e:  # the firmware crashed: MicroPython prints it
                self.crash = e
                self.state = "crashed"
                text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
                self.link.board_write(text.replace("\n", "\r\n").encode())
            repl = self._repl()
            repl.banner()
            repl.run()
        except BoardReset:
            self.state = "reset"
        finally:
            rt.firmware_ended()
            if not rt.lockstep and self.reset_pending is not None and not rt.closed:
                self.do_pending_reset()  # paced/real time: nobody else is there to reboot the board

    def _repl(self) -> Repl:
        main = self.loader.modules.get("__main__")
        ns = main.__dict__ if main is not None else {"__builtins__": self.loader.builtins}
        return Repl(self, ns)

    def run_firmware_main(self) -> None:
        """What the board does after boot: run ``main.py`` as ``__main__``."""
        path = self.firmware_root / "main.py"
        mod = types.ModuleType("__main__")
        mod.__file__ = str(path)
        mod.__builtins__ = self.loader.builtins
        self.loader.modules["__main__"] = mod
        exec(compile(path.read_text(), str(path), "exec"), mod.__dict__)

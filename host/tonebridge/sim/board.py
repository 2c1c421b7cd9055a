"""``SimBoard``: one simulated tonebridge board running the firmware files unmodified.

The board owns its clock, pin bus, rp2 register model (rp2 boards), analog output chain, line
interface (hook relay + mute), line recorder and serial link; its firmware modules are loaded by a
per-board ``FirmwareLoader`` with simulated ``machine``/``rp2``/``time``/``sys``/``select``/
``micropython``/``gc``/``os`` modules.

Running the firmware:

* ``run_main=True`` (default when ``firmware/main.py`` exists): the firmware's ``main.py`` runs in
  its own thread, as on a board after boot. With a ``VirtualClock`` the board and the test harness
  take turns (lockstep): ``run_for(ms)`` lets the firmware run until its next sleep/poll would
  pass the target time, so everything is deterministic and a 3.5 s pause costs no wall time. With
  a ``RealClock`` the firmware thread just runs.
* ``run_main=False``: nothing runs by itself; unit tests of one peripheral or backend load firmware
  modules with ``board.load(name)`` and drive them, advancing time with ``run_for``.

``play_on_board``/``render_on_board`` (the audio tests, ``tonebridge render``, the bench) send a
SEND request over the board's serial link to its running main loop: the whole firmware plays.

Resets: ``machine.reset()``, a watchdog that was not fed in time, or ``reset()`` from the harness
reboot the board: peripherals back to reset state, pins floating (the hook relay drops), the
firmware loaded afresh and ``main.py`` run again. ``resets`` lists ``(t_us, reason)``.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import sys
import tempfile
import threading
import traceback
from pathlib import Path

from . import machine as sim_machine
from .analog import LineInterface, LineRecorder, OutputChain
from .clock import VirtualClock
from .loader import (
    FIRMWARE_ROOT,
    FirmwareLoader,
    make_gc_module,
    make_micropython_module,
    make_os_module,
    make_uctypes_module,
)
from .period_chain import PeriodChain
from .period_output import PeriodOutput
from .pin_output import PinOutput
from .pinbus import PinBus
from .rp2 import make_rp2_module
from .rp2_hw import Rp2Hardware
from .stdio import SerialLink, make_select_module, make_sys_module
from .timemod import make_time_module

MACHINE_NAMES = {
    "pico": "Raspberry Pi Pico with RP2040",
    "pico2": "Raspberry Pi Pico2 with RP2350",
    "picow": "Raspberry Pi Pico W with RP2040",
    "pico-mt8880": "Raspberry Pi Pico with RP2040",
    "esp32-i2s": "Generic ESP32 module with ESP32",
    "esp32s3-i2s": "Generic ESP32S3 module with ESP32S3",
}


def mp_exception_line(e: BaseException) -> str:
    """The last traceback line as MicroPython prints it. MicroPython has no OSError
    subclasses and names the errno (`OSError: [Errno 2] ENOENT`); tools such as mpremote
    parse exactly that, so the simulated REPL must not print CPython's
    `FileNotFoundError: [Errno 2] No such file or directory`."""
    if isinstance(e, OSError) and e.errno is not None:
        return f"OSError: [Errno {e.errno}] {errno.errorcode.get(e.errno, e.errno)}"
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _check_hwid(hwid: str) -> str:
    try:
        raw = bytes.fromhex(hwid)
    except ValueError:
        raw = b""
    if not 1 <= len(raw) <= 16:
        raise ValueError(f"hwid must be 1-16 bytes as hex digits, got {hwid!r}")
    return raw.hex()


class BoardReset(BaseException):
    """Raised inside the firmware thread to unwind it when the board resets."""


class _ClockView:
    """The board clock as peripheral models see it: advancing goes through the board, so a
    model that blocks the firmware (e.g. a full I2S ring) keeps the lockstep intact."""

    def __init__(self, board):
        self._b = board
        self.virtual = board.clock.virtual

    def now_us(self):
        return self._b.clock.now_us()

    def call_at(self, t_us, fn):
        return self._b.clock.call_at(t_us, fn)

    def call_later(self, d_us, fn):
        return self._b.clock.call_later(d_us, fn)

    def cancel(self, h):
        return self._b.clock.cancel(h)

    def advance_to(self, t_us):
        self._b._advance_to(t_us)

    def advance_us(self, n):
        self._b._advance_us(n)


class _Watchdog:
    def __init__(self, board, timeout_us):
        self.board = board
        self.timeout_us = max(1000, int(timeout_us))
        self._h = None
        self.feeds = 0
        self.feed()

    def feed(self):
        clock = self.board.clock
        clock.cancel(self._h)
        self.feeds += 1
        self.deadline_us = clock.now_us() + self.timeout_us
        self._h = clock.call_at(self.deadline_us, self._expire)

    def _expire(self):
        self._h = None
        self.board.request_reset("watchdog", sim_machine.WDT_RESET)

    def stop(self):
        self.board.clock.cancel(self._h)
        self._h = None


class SimBoard:
    def __init__(
        self,
        board: str = "pico",
        clock=None,
        *,
        config: dict | None = None,
        fs_root=None,
        run_main: bool | None = None,
        ticks_offset_us: int = 0,
        relay_us: int = 5000,
        firmware_root=FIRMWARE_ROOT,
        hwid: str | None = None,
        pin_model: str = "period",
    ):
        from tonebridge_fw import boards as fw_boards

        self.name = board
        self.clock = clock if clock is not None else VirtualClock()
        self.clock_view = _ClockView(self)
        self.profile = fw_boards.profile(board, config)
        self.machine_name = MACHINE_NAMES.get(board, board)
        mcu = self.profile.get("mcu", "")
        self.sys_platform = "rp2" if mcu.startswith("rp2") else "esp32"
        # what machine.unique_id() returns (hex): 8 bytes like an rp2's flash id, 6 like an
        # esp32's MAC; random per board unless given, and kept across resets
        n = 8 if self.sys_platform == "rp2" else 6
        self.hwid = _check_hwid(hwid) if hwid is not None else os.urandom(n).hex()
        self.ticks_offset_us = int(ticks_offset_us)
        self.firmware_root = Path(firmware_root)
        self.cpu_freq = 240_000_000
        self.regs: dict[int, int] = {}
        # hardware
        self.bus = PinBus(self.clock)
        self.recorder = LineRecorder(drop_gated=True)
        self.link = SerialLink()
        if self.profile.get("uart"):
            # the protocol runs on a UART: the host's bytes never reach the console, so a 0x03
            # among them is data, not MicroPython's Ctrl-C
            self.link.kbd_intr_char = -1
        self.hw = Rp2Hardware(self.clock, self.bus, mcu) if mcu.startswith("rp2") else None
        self.line_if = LineInterface(self.bus, self.recorder, self.profile, relay_us=relay_us)
        self.chain = None
        if pin_model not in ("period", "resolved"):
            raise ValueError(f"pin_model must be 'period' or 'resolved', not {pin_model!r}")
        self.pin_model = pin_model
        if self.hw is not None:
            if self.profile.get("backend") == "pwm_dma":
                pin = self.profile["pwm_pin"]
                if pin_model == "resolved":  # the pulse train in sub-samples (reference)
                    self.chain = OutputChain(self.recorder, "pwm")
                    self.hw.add_output(PinOutput(self.hw, pin, self.chain))
                else:  # an exact filter update per PWM period
                    self.chain = PeriodChain(self.recorder, "pwm")
                    self.hw.add_output(PeriodOutput(self.hw, pin, self.chain))
            self.recorder.add_flusher(self.hw.flush)
            if self.clock.virtual:
                self.clock.add_listener(lambda t: self.hw.sync(t))
        self.chip = None
        if self.profile.get("backend") == "mt8880":
            from .mt8880_chip import MT8880Chip

            self.chip = MT8880Chip(self.bus, self.clock_view, self.recorder, self.profile)
            self.recorder.add_flusher(self.chip.flush)
        # flash filesystem with the board's tonebridge.json
        self._own_fs = fs_root is None
        self.fs_root = (
            Path(fs_root)
            if fs_root is not None
            else Path(tempfile.mkdtemp(prefix=f"tonebridge-{board}-"))
        )
        cfg = self.fs_root / "tonebridge.json"
        if not cfg.exists():
            data = {"board": board}
            data.update(config or {})
            cfg.write_text(json.dumps(data))
        # run state
        self.reset_cause = sim_machine.PWRON_RESET
        self.resets: list[tuple[int, str]] = []
        self.wdt: _Watchdog | None = None
        self.crash: BaseException | None = None
        self.state = "off"
        self._cv = threading.Condition()
        self._turn = "harness"
        self._target = self.clock.now_us()
        self._fw_thread: threading.Thread | None = None
        self._reset_pending: tuple[str, int] | None = None
        self._boot_raw = False
        self._closed = False
        if run_main is None:
            run_main = (self.firmware_root / "main.py").is_file()
        self.run_main = run_main
        self._boot()

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
        if self.hw is not None:
            sim["rp2"] = make_rp2_module(self.hw)
            sim["uctypes"] = make_uctypes_module(self)

    def _boot(self) -> None:
        self._make_modules()
        self.crash = None
        self.state = "running" if self.run_main else "idle"
        if self.run_main:
            t = threading.Thread(target=self._fw_main, name=f"sim-{self.name}", daemon=True)
            self._fw_thread = t
            t.start()
            if not self.clock.virtual:
                return
        else:
            self._fw_thread = None

    def load(self, name: str):
        """A firmware module in this board's namespace (fresh per board and per boot)."""
        return self.loader.load(name)

    @property
    def modules(self) -> dict:
        """The simulated modules the firmware sees (``machine``, ``time``, ...)."""
        return self.loader.sim

    def request_reset(self, reason: str, cause: int = sim_machine.HARD_RESET) -> None:
        """Reset the board (from a clock event, the firmware, or the harness)."""
        if self._reset_pending is None:
            self._reset_pending = (reason, cause)
        if threading.current_thread() is self._fw_thread:
            raise BoardReset(reason)
        if self._fw_thread is not None and self._fw_thread.is_alive() and not self.clock.virtual:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self._fw_thread.ident), ctypes.py_object(BoardReset)
            )

    def reset(self, reason: str = "harness") -> None:
        """Reset the board now (like pressing RUN): the firmware restarts."""
        self.request_reset(reason, sim_machine.HARD_RESET)
        if self.clock.virtual:
            if self._fw_thread is not None and self._fw_thread.is_alive():
                self._target = self.clock.now_us()
                self._resume_fw()
            self._do_reset()

    def _do_reset(self) -> None:
        reason, cause = self._reset_pending
        self._reset_pending = None
        if self._fw_thread is not None and self._fw_thread is not threading.current_thread():
            self._fw_thread.join(timeout=5)
        self.resets.append((self.clock.now_us(), reason))
        self.reset_cause = cause
        if cause != sim_machine.SOFT_RESET:
            self._boot_raw = False
        if self.wdt is not None and cause != sim_machine.SOFT_RESET:
            self.wdt.stop()  # a soft reboot leaves the watchdog running, as on the chip
            self.wdt = None
        if self.hw is not None:
            self.hw.reset()
        for gpio in list(self.bus._mode):
            self.bus.configure(gpio, mode=0, pull=None)
        self._boot()

    def start_watchdog(self, timeout_us: int) -> _Watchdog:
        self.wdt = _Watchdog(self, timeout_us)
        return self.wdt

    # ---- the firmware thread --------------------------------------------------------------------
    def _fw_main(self) -> None:
        try:
            if self.clock.virtual:
                with self._cv:
                    self._cv.wait_for(lambda: self._turn == "fw" or self._closed)
            if self._closed:
                return
            raw = self._boot_raw
            self._boot_raw = False
            if raw:  # soft reset from the raw REPL: MicroPython skips main.py
                self.state = "repl"
                self._repl(raw=True)
                return
            try:
                self._check_async()
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
            self._banner()
            self._repl()
        except BoardReset:
            self.state = "reset"
        finally:
            with self._cv:
                self._turn = "harness"
                self._cv.notify_all()
            if not self.clock.virtual and self._reset_pending is not None and not self._closed:
                self._do_reset()  # real time: nobody else is there to reboot the board

    # ---- a small REPL: friendly mode, raw mode (what mpremote uses), Ctrl-D soft reboot ------
    def _repl(self, raw: bool = False) -> None:
        main = self.loader.modules.get("__main__")
        ns = main.__dict__ if main is not None else {"__builtins__": self.loader.builtins}
        line = bytearray()
        paste_req = 0
        out = self.link.board_write
        if raw:
            out(b"raw REPL; CTRL-B to exit\r\n>")
        while True:
            try:
                self._wait_until(lambda: self.link.board_available() > 0, None)
                data = self.link.board_read(-1)
            except KeyboardInterrupt:
                line.clear()
                if not raw:
                    out(b"\r\n>>> ")
                continue
            for b in data:
                if raw:
                    if paste_req:  # Ctrl-E 'A' Ctrl-A: raw-paste query; answer "unsupported"
                        paste_req = paste_req + 1 if (paste_req, b) in ((1, 0x41),) else 0
                        if paste_req == 2:
                            continue
                        if b == 0x01 and paste_req == 0:
                            out(b"R\x00")
                            continue
                    if b == 0x05 and not line:
                        paste_req = 1
                    elif b == 0x04:
                        if not line:
                            out(b"OK\r\n")
                            self._soft_reboot(raw=True)
                        out(b"OK")
                        err = self._exec_code(bytes(line).decode("utf-8", "replace"), ns, "exec")
                        out(b"\x04" + err.encode() + b"\x04>")
                        line.clear()
                    elif b == 0x02:
                        raw = False
                        line.clear()
                        out(b"\r\n")
                        self._banner()
                    elif b == 0x01:
                        line.clear()
                        out(b"raw REPL; CTRL-B to exit\r\n>")
                    else:
                        line.append(b)
                    continue
                if b == 0x01:
                    raw = True
                    line.clear()
                    out(b"\r\nraw REPL; CTRL-B to exit\r\n>")
                elif b == 0x04:
                    if not line:
                        self._soft_reboot()
                elif b in (0x0D, 0x0A):
                    out(b"\r\n")
                    src = bytes(line).decode("utf-8", "replace")
                    line.clear()
                    if src.strip():
                        err = self._exec_code(src, ns, "single")
                        if err:
                            out(err.replace("\n", "\r\n").encode())
                    out(b">>> ")
                elif b in (0x08, 0x7F):
                    if line:
                        line.pop()
                        out(b"\x08 \x08")
                elif b == 0x02:
                    out(b"\r\n")
                    self._banner()
                elif b >= 0x20:
                    line.append(b)
                    out(bytes([b]))

    def _exec_code(self, src: str, ns: dict, mode: str) -> str:
        """Run REPL input in the board's namespace; returns the error text ('' if none)."""
        try:
            if mode == "single":
                try:
                    code = compile(src, "<stdin>", "eval")
                except SyntaxError:
                    code = None
                if code is not None:
                    val = eval(code, ns)
                    if val is not None:
                        self.link.board_write((repr(val) + "\r\n").encode())
                    return ""
            exec(compile(src, "<stdin>", "exec"), ns)
            return ""
        except BoardReset:
            raise
        except BaseException as e:
            if isinstance(e, SystemExit):
                return ""
            return (
                'Traceback (most recent call last):\n  File "<stdin>", line 1, in <module>\n'
                f"{mp_exception_line(e)}\n"
            )

    def _soft_reboot(self, raw: bool = False) -> None:
        self.link.board_write(b"MPY: soft reboot\r\n")
        self._boot_raw = raw
        self.request_reset("soft reboot", sim_machine.SOFT_RESET)

    def _banner(self):
        self.link.board_write(
            f"MicroPython v1.24.1 (tonebridge sim); {self.machine_name}\r\n"
            'Type "help()" for more information.\r\n>>> '.encode()
        )

    def run_firmware_main(self) -> None:
        """What the board does after boot: run ``main.py`` as ``__main__``."""
        path = self.firmware_root / "main.py"
        import types

        mod = types.ModuleType("__main__")
        mod.__file__ = str(path)
        mod.__builtins__ = self.loader.builtins
        self.loader.modules["__main__"] = mod
        exec(compile(path.read_text(), str(path), "exec"), mod.__dict__)

    def _check_async(self) -> None:
        if self._reset_pending is not None and threading.current_thread() is self._fw_thread:
            raise BoardReset(self._reset_pending[0])
        if self.link.interrupt_pending and threading.current_thread() is self._fw_thread:
            if self.link.take_interrupt():
                raise KeyboardInterrupt
        while self.scheduled:
            fn, arg = self.scheduled.pop(0)
            fn(arg)

    def _touch(self) -> None:
        """Called on every time read / pin access by the firmware."""
        if self._fw_thread is not None and threading.current_thread() is self._fw_thread:
            self._check_async()

    def _yield_to_harness(self) -> None:
        with self._cv:
            self._turn = "harness"
            self._cv.notify_all()
            self._cv.wait_for(lambda: self._turn == "fw" or self._closed)
        if self._closed:
            raise BoardReset("closed")
        self._check_async()

    def _resume_fw(self) -> None:
        with self._cv:
            self._turn = "fw"
            self._cv.notify_all()
            self._cv.wait_for(lambda: self._turn == "harness")

    # ---- time as the firmware experiences it ---------------------------------------------------
    def _advance_us(self, n: int, until_event: bool = False) -> None:
        end = self.clock.now_us() + max(0, int(n))
        if until_event:
            nxt = self.clock.next_event_us()
            if nxt is not None:
                end = min(end, max(nxt, self.clock.now_us()))
        self._advance_to(end)

    def _advance_to(self, t_end: int, wake=None) -> bool:
        """Let time pass until ``t_end`` or until ``wake()`` is true. True if woken."""
        in_fw = self._fw_thread is not None and threading.current_thread() is self._fw_thread
        if in_fw:
            self._check_async()
        if not self.clock.virtual:
            return self._advance_real(t_end, wake, in_fw)
        if not in_fw:
            if wake is not None and wake():
                return True
            self.clock.advance_to(max(t_end, self.clock.now_us()))
            return bool(wake and wake())
        while True:
            if wake is not None and wake():
                return True
            if t_end <= self._target:
                if t_end > self.clock.now_us():
                    self.clock.advance_to(t_end)
                self._check_async()
                return bool(wake and wake())
            if self.clock.now_us() < self._target:
                self.clock.advance_to(self._target)
                self._check_async()
                if wake is not None and wake():
                    return True
            self._yield_to_harness()

    def _advance_real(self, t_end, wake, in_fw) -> bool:
        while True:
            self.clock.run_due()
            if in_fw:
                self._check_async()
            if wake is not None and wake():
                return True
            now = self.clock.now_us()
            if now >= t_end:
                return False
            step = min(t_end - now, 2000)
            nxt = self.clock.next_event_us()
            if nxt is not None:
                step = max(0, min(step, nxt - now))
            with self.link.cond:
                self.link.cond.wait(step / 1e6)

    def _wait_until(self, pred, timeout_ms) -> bool:
        """Block the firmware until ``pred()`` or ``timeout_ms`` passes (None: forever)."""
        if pred():
            return True
        if timeout_ms is None:
            far = 1 << 62
            return self._advance_to(far, pred)
        return self._advance_to(self.clock.now_us() + int(timeout_ms) * 1000, pred)

    def _readable(self, obj) -> bool:
        stdin = self.loader.sim["sys"].stdin
        if obj is stdin or obj is getattr(stdin, "buffer", None):
            return self.link.board_available() > 0 or self.link.interrupt_pending
        any_ = getattr(obj, "any", None)
        if callable(any_):
            return any_() > 0
        return False

    def pin_number(self, pin_id) -> int:
        if isinstance(pin_id, int):
            return pin_id
        if isinstance(pin_id, str):
            if pin_id in ("LED", "WL_GPIO0"):
                led = self.profile.get("led_pin", 25)
                return led if isinstance(led, int) else 64
            s = pin_id.upper()
            for prefix in ("GPIO", "GP"):
                if s.startswith(prefix) and s[len(prefix) :].isdigit():
                    return int(s[len(prefix) :])
        raise ValueError(f"invalid pin {pin_id!r}")

    # ---- harness API ----------------------------------------------------------------------------
    def now_us(self) -> int:
        return self.clock.now_us()

    def run_for(self, ms: float) -> None:
        self.run_until_us(self.clock.now_us() + int(round(ms * 1000)))

    def run_until_us(self, t_us: int) -> None:
        if not self.clock.virtual:
            import time

            while self.clock.now_us() < t_us:
                time.sleep(min(0.05, (t_us - self.clock.now_us()) / 1e6))
                self._service_real()
            return
        for _ in range(10_000):
            alive = self._fw_thread is not None and self._fw_thread.is_alive()
            if alive and self._turn == "harness":
                self._target = t_us
                self._resume_fw()
                alive = self._fw_thread.is_alive()
            if self._reset_pending is not None:
                self._do_reset()
                continue
            if alive and self.clock.now_us() >= t_us:
                break
            # no firmware thread (or it ended): the harness moves time
            while self.clock.now_us() < t_us and self._reset_pending is None:
                nxt = self.clock.next_event_us()
                step = t_us if nxt is None else min(t_us, max(nxt, self.clock.now_us()))
                self.clock.advance_to(step)
            if self._reset_pending is not None:
                continue
            break
        if self.hw is not None:
            self.hw.sync()

    def _service_real(self) -> None:
        if self._fw_thread is None or not self._fw_thread.is_alive():
            self.clock.run_due()  # e.g. the watchdog of a board sitting at the REPL
        if self._reset_pending is not None and (
            self._fw_thread is None or not self._fw_thread.is_alive()
        ):
            self._do_reset()

    def run_until(self, pred, timeout_ms: float = 60_000, step_ms: float = 1) -> bool:
        """Run until ``pred()`` is true (checked every ``step_ms``); False on timeout."""
        end = self.clock.now_us() + int(timeout_ms * 1000)
        while not pred():
            if self.clock.now_us() >= end:
                return False
            self.run_until_us(min(end, self.clock.now_us() + int(step_ms * 1000)))
        return True

    # serial link, host side
    def write(self, data: bytes) -> int:
        return self.link.host_write(data)

    def read(self, n: int = -1) -> bytes:
        return self.link.host_read(n)

    @property
    def line(self) -> LineRecorder:
        return self.recorder

    @property
    def app(self):
        """The firmware's running ``App`` (main.py's main loop), found as a debugger finds it:
        in the firmware thread's stack, while that thread waits for its turn. None when the
        firmware is not in ``App.run`` (at the REPL, crashed, not started)."""
        t = self._fw_thread
        if t is None or not t.is_alive():
            return None
        frame = sys._current_frames().get(t.ident)
        while frame is not None:
            if frame.f_code.co_name == "run":
                obj = frame.f_locals.get("self")
                if obj is not None and type(obj).__name__ == "App":
                    return obj
            frame = frame.f_back
        return None

    def close(self) -> None:
        self._closed = True
        with self._cv:
            self._cv.notify_all()
        if self._fw_thread is not None and self._fw_thread.is_alive():
            if not self.clock.virtual:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self._fw_thread.ident), ctypes.py_object(BoardReset)
                )
            self._fw_thread.join(timeout=2)
        if self._own_fs:
            shutil.rmtree(self.fs_root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _event_tuple(rid: str, body: str):
    """A board event frame as a tuple: ("started", rid, i, key), ("finished", rid, i, key),
    ("done", rid, n) or ("aborted", rid, n, reason); None for other events."""
    w = body.split()
    if w[0] == "START":
        return ("started", rid, int(w[1]), w[2])
    if w[0] == "END":
        return ("finished", rid, int(w[1]), w[2])
    if w[0] == "DONE":
        return ("done", rid, int(w[1]))
    if w[0] == "ABORT":
        return ("aborted", rid, int(w[1]), w[2] if len(w) > 2 else "")
    return None


def play_on_board(
    sb: SimBoard,
    text: str,
    dialect: str = "catapult",
    tone_ms: int = 100,
    gap_ms: int = 100,
    *,
    lead_ms: int = 50,
    tail_ms: int = 50,
    rid: str = "1",
) -> dict:
    """Play ``text`` on a simulated board running its own ``main.py`` (``run_main=True``), in
    virtual time: after ``lead_ms`` a SEND request goes in over the board's serial link and the
    firmware's main loop (``App``: transport, engine, player, line, backend) does the rest. The
    board's frames are collected, each at the virtual time the firmware wrote it, until the
    sequence's DONE or ABORT; then ``tail_ms`` more run.

    Returns a dict: plan, events [(t_us, event)] (tuples as ``_event_tuple``), frames
    [(t_us, mark, rid, body)], reply (the SEND's reply body), start_us (the SEND written),
    end_us, and app/backend/line/player: the running firmware's objects, for inspection.
    Raises RuntimeError if the board refuses the request or the sequence never finishes
    (the firmware's stall guard aborted it, or no end came at all)."""
    if not sb.run_main:
        raise ValueError("play_on_board needs a board running its main.py (run_main=True)")
    codec = sb.load("tonebridge_fw.codec")
    fw_dial = sb.load("tonebridge_fw.dialstring")
    plan = fw_dial.compile_plan(text, dialect, tone_ms, gap_ms)
    decoder = codec.Decoder(accept=codec.REPLY + codec.EVENT)
    frames: list = []

    def heard():
        data = sb.link.host_read(-1)
        if data:
            t = sb.now_us()
            for f in decoder.feed(data):
                frames.append((t, f[0], f[1], f[2]))

    # stamp frames with the board time at which the firmware wrote them
    sb.link.host_listeners.append(heard)
    try:
        sb.run_for(lead_ms)
        del frames[:]  # the boot banner
        t_start = sb.now_us()
        body = f"SEND dialect={dialect} tone={tone_ms} gap={gap_ms} {text}"
        sb.write(codec.encode(codec.REQUEST, rid, body))

        def ended():
            return any(f[1] == codec.EVENT and f[2] == rid and
                       f[3].split()[0] in ("DONE", "ABORT") for f in frames)  # fmt: skip

        budget_ms = fw_dial.plan_ms(plan) + 3 * 2000 + 1000
        ok = sb.run_until(ended, timeout_ms=budget_ms, step_ms=5)
        replies = [f[3] for f in frames if f[1] == codec.REPLY and f[2] == rid]
        if not replies or not replies[0].startswith("OK"):
            raise RuntimeError(f"sim: the board refused {body!r}: {replies}")
        if not ok:
            raise RuntimeError(f"sim: the sequence never finished (frames: {frames})")
        t_end = [f[0] for f in frames if f[2] == rid and f[1] == codec.EVENT][-1]
        sb.run_until_us(max(sb.now_us(), t_end + tail_ms * 1000))
    finally:
        sb.link.host_listeners.remove(heard)
    events = []
    for t, mark, r, b in frames:
        ev = _event_tuple(r, b) if mark == codec.EVENT and r == rid else None
        if ev is not None:
            events.append((t, ev))
    if events and events[-1][1][0] == "aborted" and events[-1][1][3] == "stalled":
        raise RuntimeError(f"sim: the sequence never finished: the firmware aborted it {events}")
    app = sb.app
    return {
        "plan": plan,
        "events": events,
        "frames": frames,
        "reply": replies[0],
        "start_us": t_start,
        "end_us": sb.now_us(),
        "app": app,
        "backend": app.backend if app is not None else None,
        "line": app.line if app is not None else None,
        "player": app.player if app is not None else None,
    }


def render_on_board(
    board: str,
    text: str,
    dialect: str = "catapult",
    tone_ms: int = 100,
    gap_ms: int = 100,
    out=None,
    *,
    rate: int = 22050,
    lead_ms: int = 50,
    tail_ms: int = 50,
    config: dict | None = None,
) -> dict:
    """Play ``text`` on a fresh simulated ``board`` running its firmware in virtual time (see
    ``play_on_board``) and write the recorded line signal, from ``lead_ms`` before the SEND to
    ``tail_ms`` after the sequence ended, as 16-bit WAV to ``out`` (if given). Returns the
    ``play_on_board`` dict plus samples (numpy, volts, at ``rate``), rate and board."""
    sb = SimBoard(board, VirtualClock(), config=config)
    try:
        res = play_on_board(sb, text, dialect, tone_ms, gap_ms, lead_ms=lead_ms, tail_ms=tail_ms)
        t0 = res["start_us"] - lead_ms * 1000
        res["samples"] = sb.recorder.samples(rate, start_us=t0, end_us=res["end_us"])
        if out is not None:
            sb.recorder.write_wav(out, rate, start_us=t0, end_us=res["end_us"])
        res["rate"] = rate
        res["board"] = sb
        return res
    finally:
        sb.close()

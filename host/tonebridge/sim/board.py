"""``SimBoard``: one simulated tonebridge board running the firmware files unmodified.

The board owns its clock, pin bus, rp2 register model (rp2 boards), analog output chain, line
interface (hook relay + mute), line recorder and serial link; its firmware modules are loaded by a
per-board ``FirmwareLoader`` with simulated ``machine``/``rp2``/``time``/``sys``/``select``/
``micropython``/``gc``/``os`` modules.

Running the firmware (runtime.py): ``run_main=True`` (default when ``firmware/main.py``
exists) runs main.py in its own thread, as on a board after boot; with a ``VirtualClock`` the
board and the test harness take turns (``run_for(ms)``), with ``paced=True`` the board keeps
itself at the wall clock (``sim://``), with a ``RealClock`` it just runs. ``run_main=False``:
nothing runs by itself; unit tests load firmware modules with ``board.load(name)``.

Boot, resets and the firmware thread (``machine.reset()``, an unfed watchdog, ``reset()`` from
the harness; the REPL when main.py ends): board_boot.py. Playing a dial string through the
board's own main loop: play.py.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from . import machine as sim_machine
from .analog import OutputChain
from .board_boot import BoardBoot
from .clock import VirtualClock
from .line_recorder import LineRecorder
from .line_sense import BIAS_V, LineSense
from .line_switches import LineInterface
from .loader import FIRMWARE_ROOT
from .netstack import NetState
from .period_chain import PeriodChain
from .period_output import PeriodOutput
from .pin_output import PinOutput
from .pinbus import PinBus
from .rp2_hw import Rp2Hardware
from .runtime import BoardReset, BoardRuntime, ClockView
from .stdio import SerialLink
from .watchdog import Watchdog

__all__ = ["BoardReset", "SimBoard"]

MACHINE_NAMES = {
    "pico": "Raspberry Pi Pico with RP2040",
    "pico2": "Raspberry Pi Pico2 with RP2350",
    "picow": "Raspberry Pi Pico W with RP2040",
    "pico-mt8880": "Raspberry Pi Pico with RP2040",
    "esp32-i2s": "Generic ESP32 module with ESP32",
    "esp32s3-i2s": "Generic ESP32S3 module with ESP32S3",
}


def _check_hwid(hwid: str) -> str:
    try:
        raw = bytes.fromhex(hwid)
    except ValueError:
        raw = b""
    if not 1 <= len(raw) <= 16:
        raise ValueError(f"hwid must be 1-16 bytes as hex digits, got {hwid!r}")
    return raw.hex()


class SimBoard(BoardBoot):
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
        paced: bool = False,
        access_points: dict | None = None,
    ):
        from tonebridge_fw import boards as fw_boards

        self.name = board
        self.clock = clock if clock is not None else VirtualClock()
        self.runtime = BoardRuntime(self, self.clock, paced=paced)
        self.clock_view = ClockView(self.runtime)
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
        self.net = NetState()  # the Wi-Fi interface (netstack.py): picow and esp32 boards
        self.access_points = access_points  # {ssid: key} in range; None: any
        if self.profile.get("uart"):
            # the protocol runs on a UART: the host's bytes never reach the console, so a 0x03
            # among them is data, not MicroPython's Ctrl-C
            self.link.kbd_intr_char = -1
        self.hw = Rp2Hardware(self.clock, self.bus, mcu) if mcu.startswith("rp2") else None
        self.line_if = LineInterface(self.bus, self.recorder, self.profile, relay_us=relay_us)
        self.sense = None
        if self.hw is not None and self.profile.get("rx_adc") is not None:
            self.sense = LineSense(self.recorder, self.line_if, self.profile["rx_adc"])
            self.hw.adc.source = self.sense
        self.rx_source = None  # ESP32: what the I2S ADC's input sees (sim/i2s_rx.py)
        if self.hw is None and self.profile.get("rx_i2s") is not None:
            # the line sense (U4 with the profile's gain) into the ADC, AC-coupled
            self.sense = LineSense(self.recorder, self.line_if, 0, self.profile.get("rx_gain", 1.0))
            self.rx_source = lambda t_us: self.sense(t_us, 0) - BIAS_V
        self._attach_tone_output(pin_model)
        if self.hw is not None:
            self.recorder.add_flusher(self.hw.flush)
            if self.clock.virtual:
                self.clock.add_listener(self.hw.sync_lazy)
        self.chip = None
        if self.profile.get("backend") == "mt8880":
            from .mt8880_chip import MT8880Chip

            self.chip = MT8880Chip(self.bus, self.clock_view, self.recorder, self.profile)
            self.recorder.add_flusher(self.chip.flush)
            if self.profile.get("mt8880_rx"):
                # IN+/IN- across the line through the hybrid (unity gain, hw/wiring.md): the
                # line's signal as the sense hears it, the board's own tones included
                hybrid = LineSense(self.recorder, self.line_if, 0)
                self.sense = hybrid  # (its far_end: a scripted exchange, sim/exchange.py)
                self.chip.listen(lambda t_us: hybrid(t_us, 0) - BIAS_V)
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
        self.wdt: Watchdog | None = None
        self.crash: BaseException | None = None
        self.state = "off"
        self.reset_pending: tuple[str, int] | None = None
        self._boot_raw = False
        if run_main is None:
            run_main = (self.firmware_root / "main.py").is_file()
        self.run_main = run_main
        self._boot()

    def _attach_tone_output(self, pin_model: str) -> None:
        """The rp2 PWM tone pin into the analog chain: an exact update per PWM period
        ("period", the default) or the pulse train resolved into sub-samples ("resolved")."""
        if pin_model not in ("period", "resolved"):
            raise ValueError(f"pin_model must be 'period' or 'resolved', not {pin_model!r}")
        self.pin_model = pin_model
        self.chain = None
        if self.hw is None or self.profile.get("backend") != "pwm_dma":
            return
        pin = self.profile["pwm_pin"]
        if pin_model == "resolved":
            self.chain = OutputChain(self.recorder, "pwm")
            self.hw.add_output(PinOutput(self.hw, pin, self.chain))
        else:
            self.chain = PeriodChain(self.recorder, "pwm")
            self.hw.add_output(PeriodOutput(self.hw, pin, self.chain))

    def readable(self, obj) -> bool:
        """``select.poll`` on the board: is there input on ``obj`` (stdin or a UART)?"""
        stdin = self.loader.sim["sys"].stdin
        if obj is stdin or obj is getattr(stdin, "buffer", None):
            return self.link.board_available() > 0 or self.link.interrupt_pending
        sock = getattr(obj, "_sim_readable", None)
        if callable(sock):
            return sock()
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
        """Let the board run until its clock reads ``t_us`` (lockstep: in turns with the
        firmware; paced/real: wait for the wall clock)."""
        if self.runtime.run_until_us(t_us) and self.hw is not None:
            self.hw.sync()

    def run_until(self, pred, timeout_ms: float = 60_000, step_ms: float = 1) -> bool:
        """Run until ``pred()`` is true (checked every ``step_ms``); False on timeout."""
        end = self.clock.now_us() + int(timeout_ms * 1000)
        while not pred():
            if self.clock.now_us() >= end:
                return False
            self.run_until_us(min(end, self.clock.now_us() + int(step_ms * 1000)))
        return True

    def behind_s(self) -> float:
        """A paced board: how far its clock is behind the wall clock while it is busy."""
        return self.runtime.behind_s()

    def seed_line_fault(self, kind: str, value=None) -> None:
        """Break the line interface now (line_switches.LineSwitches.seed_fault): ``relay``,
        ``transformer`` or ``attenuation`` (``value`` dB)."""
        if self.hw is not None:
            self.hw.sync()
        self.line_if.seed_fault(kind, self.clock.now_us(), value)

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
        rt = self.runtime
        if not rt.alive():
            return None
        frame = sys._current_frames().get(rt.thread.ident)
        while frame is not None:
            if frame.f_code.co_name == "run":
                obj = frame.f_locals.get("self")
                if obj is not None and type(obj).__name__ == "App":
                    return obj
            frame = frame.f_back
        return None

    def close(self) -> None:
        rt = self.runtime
        rt.closed = True
        with rt.cv:
            rt.cv.notify_all()
        rt.wake()
        if rt.alive() and not rt.lockstep:
            # the cooperative way first: the firmware thread sees `closed` at its next call
            # into the board (check_async). An exception raised into it asynchronously can land
            # while it holds a lock: the link's, or CPython's import lock (seen: an agent closed
            # a board that missed its HELLO while the firmware was importing at boot, and no
            # thread of that process could import anything again)
            rt.thread.join(timeout=0.5)
        if rt.alive():
            if not rt.lockstep:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(rt.thread.ident), ctypes.py_object(BoardReset)
                )
                rt.wake()
            rt.thread.join(timeout=2)
        self.net.reset()
        if self._own_fs:
            shutil.rmtree(self.fs_root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

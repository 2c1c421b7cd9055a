"""The MicroPython modules the firmware imports, as they are on a Linux single-board computer.

``make_machine_module(gpio)``: ``machine.Pin`` is the RPi.GPIO adapter (gpio_pin.py);
``freq()`` reads cpufreq; ``unique_id()`` comes from /etc/machine-id; ``WDT`` is accepted but
does nothing (it logs that once: on Linux use systemd's ``WatchdogSec=`` for the process);
``Timer`` runs periodic callbacks on a host thread (the firmware uses it only to feed that WDT);
``reset()`` ends the firmware's main loop (SystemExit; systemd restarts the service).

``make_time_module(clock)``: MicroPython's ``ticks_ms/ticks_us/ticks_cpu/ticks_diff/ticks_add``
(2**30 period) and ``sleep/sleep_ms/sleep_us`` on a clock with the sim clock API
(``now_us()``, ``advance_us(n)``): ``tonebridge.sim.clock.RealClock`` (time.monotonic) on a
Pi, a ``VirtualClock`` in tests.
"""

from __future__ import annotations

import logging
import os
import sys as _host_sys
import threading
import types

from tonebridge.sim.timemod import TICKS_MAX, ticks_add, ticks_diff

from .gpio_pin import make_pin_class

log = logging.getLogger("tonebridge.sbc")
EPOCH_OFFSET_S = 0


def make_time_module(clock) -> types.ModuleType:
    mod = types.ModuleType("time")

    def ticks_us():
        return clock.now_us() & TICKS_MAX

    def ticks_ms():
        return (clock.now_us() // 1000) & TICKS_MAX

    def sleep_us(us):
        clock.advance_us(max(0, int(us)))

    def sleep_ms(ms):
        clock.advance_us(max(0, int(ms)) * 1000)

    def sleep(s):
        clock.advance_us(max(0, int(round(float(s) * 1_000_000))))

    import time as host_time

    mod.ticks_us = ticks_us
    mod.ticks_ms = ticks_ms
    mod.ticks_cpu = ticks_us
    mod.ticks_diff = ticks_diff
    mod.ticks_add = ticks_add
    mod.sleep_us = sleep_us
    mod.sleep_ms = sleep_ms
    mod.sleep = sleep
    mod.time = lambda: int(host_time.time())
    mod.time_ns = host_time.time_ns
    mod.gmtime = host_time.gmtime
    mod.localtime = host_time.localtime
    mod.mktime = host_time.mktime
    return mod


def _cpu_freq() -> int:
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq") as f:
            return int(f.read().strip()) * 1000
    except (OSError, ValueError):
        return 0


def _cpuinfo_serial(path="/proc/cpuinfo") -> bytes | None:
    """A Raspberry Pi's SoC serial number ("Serial : 10000000a1b2c3d4" in /proc/cpuinfo)."""
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "Serial":
                    raw = bytes.fromhex(value.strip())
                    if raw.strip(b"\0"):
                        return raw[-8:]
    except (OSError, ValueError):
        pass
    return None


def _machine_id() -> bytes:
    """machine.unique_id() on an SBC: the SoC serial (Raspberry Pi), else the systemd
    machine id; a profile "hwid" (tonebridge.json / sbc://...?hwid=) overrides both."""
    serial = _cpuinfo_serial()
    if serial is not None:
        return serial
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            with open(path) as f:
                return bytes.fromhex(f.read().strip())[:8]
        except (OSError, ValueError):
            continue
    return os.urandom(8)


def make_machine_module(gpio, pin_map: dict | None = None) -> types.ModuleType:
    mod = types.ModuleType("machine")
    mod.Pin = make_pin_class(gpio, pin_map)
    mod.PWRON_RESET, mod.HARD_RESET, mod.WDT_RESET, mod.SOFT_RESET = 1, 2, 3, 5

    def freq(*a):
        if a:
            raise OSError("machine.freq(): the CPU clock is Linux's to set (cpufreq)")
        return _cpu_freq()

    class WDT:
        def __init__(self, id=0, timeout=5000):
            self.timeout = timeout
            self.feeds = 0
            log.warning(
                "machine.WDT(timeout=%d) is a no-op on Linux: supervise the process with "
                "systemd (WatchdogSec=, Restart=always) instead",
                timeout,
            )

        def feed(self):
            self.feeds += 1

    class Timer:
        ONE_SHOT, PERIODIC = 0, 1

        def __init__(self, id=-1, **kw):
            self._stop = None
            if kw:
                self.init(**kw)

        def init(self, mode=PERIODIC, period=1000, callback=None, freq=None):
            self.deinit()
            stop = threading.Event()
            self._stop = stop
            dt = (1.0 / freq) if freq else period / 1000.0

            def run():
                while not stop.wait(dt):
                    if callback is not None:
                        callback(self)
                    if mode == Timer.ONE_SHOT:
                        break

            threading.Thread(target=run, name="machine.Timer", daemon=True).start()

        def deinit(self):
            if self._stop is not None:
                self._stop.set()
                self._stop = None

    def reset():
        raise SystemExit("machine.reset()")

    mod.freq = freq
    mod.WDT = WDT
    mod.Timer = Timer
    mod.reset = reset
    mod.soft_reset = reset
    mod.unique_id = _machine_id
    mod.reset_cause = lambda: mod.PWRON_RESET
    mod.idle = lambda: None
    return mod


def make_os_module() -> types.ModuleType:
    mod = types.ModuleType("os")
    mod.urandom = os.urandom
    mod.uname = os.uname
    mod.sep = "/"
    return mod


def make_sys_module() -> types.ModuleType:
    """What the firmware sees as ``sys``: its print() goes to the host's stderr (the protocol
    has its own in-process link)."""
    mod = types.ModuleType("sys")
    mod.platform = "linux"
    mod.implementation = types.SimpleNamespace(name="cpython", version=_host_sys.version_info[:3])
    mod.stdout = _host_sys.stderr
    mod.stderr = _host_sys.stderr
    mod.maxsize = _host_sys.maxsize
    mod.byteorder = _host_sys.byteorder
    mod.print_exception = lambda e, file=None: log.error("firmware: %r", e)
    return mod

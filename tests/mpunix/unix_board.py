# The board around the firmware when it runs under MicroPython's unix port (tests only).
#
# The unix port has the real MicroPython VM, select.poll on stdin/stdout, os.urandom and the
# native emitter, but no board peripherals. This module supplies them as models that record
# what the firmware did, one line per action on stderr (the protocol owns stdout):
#   PIN <id> <level> <ms>        a pin written (hook relay 14, mute 15 on a pico profile)
#   WDT <timeout> / FEED <ms>    machine.WDT started / fed
#   TIMER <period> / TFEED       the REPL keep-alive timer started / fired
#   STEP <i> <key|-> <ms>        the tone backend began plan step i
#   ABORT <position> <ms>        the tone backend was stopped
# RecordingBackend is a tone backend whose output stage is that log: it walks the plan on the
# millisecond clock as a hardware sequencer would. It exists only here, for the unix port, and
# is registered under the name "recording" by run_fw.py; no board profile names it.

import sys
import time


def log(*words):
    sys.stderr.write(" ".join([str(w) for w in words]) + "\n")


class _Machine:
    def __init__(self):
        self.fail_pins = []  # pin ids that raise OSError when driven high (a driver fault)
        self.levels = {}
        machine = self

        class Pin:
            IN = 0
            OUT = 1
            PULL_UP = 1
            PULL_DOWN = 2

            def __init__(self, pin_id, mode=-1, pull=None, value=None):
                self.id = pin_id
                if value is not None:
                    self.value(value)

            def value(self, v=None):
                if v is None:
                    return machine.levels.get(self.id, 0)
                if v and self.id in machine.fail_pins:
                    raise OSError(5)  # EIO
                machine.levels[self.id] = 1 if v else 0
                log("PIN", self.id, 1 if v else 0, time.ticks_ms())

            def on(self):
                self.value(1)

            def off(self):
                self.value(0)

        class WDT:
            def __init__(self, id=0, timeout=5000):
                log("WDT", timeout)

            def feed(self):
                log("FEED", time.ticks_ms())

        class Timer:
            PERIODIC = 1
            ONE_SHOT = 0

            def __init__(self, id=-1):
                self.cb = None

            def init(self, mode=1, period=1000, callback=None):
                self.cb = callback
                log("TIMER", period)
                callback(self)  # one tick at once: the callback itself runs for real
                log("TFEED")

            def deinit(self):
                log("TIMER_OFF")

        self.Pin = Pin
        self.WDT = WDT
        self.Timer = Timer


machine = _Machine()


class RecordingBackend:
    """Tone backend for the unix port (see the module comment)."""

    def __init__(self, profile):
        self._plan = ()
        self._t0 = 0
        self._pos = 0
        self._on = False

    def start(self, plan):
        self._plan = plan
        self._t0 = time.ticks_ms()
        self._pos = -1
        self._on = True
        self.service()

    def service(self):
        if not self._on:
            return
        t = time.ticks_diff(time.ticks_ms(), self._t0)
        pos = 0
        acc = 0
        plan = self._plan
        while pos < len(plan) and t >= acc + plan[pos][1]:
            acc += plan[pos][1]
            pos += 1
        while self._pos < pos:
            self._pos += 1
            if self._pos < len(plan):
                k = plan[self._pos][0]
                log("STEP", self._pos, "-" if k is None else k, time.ticks_ms())
        if pos >= len(plan):
            self._on = False
            log("END", time.ticks_ms())

    def position(self):
        return self._pos if self._on else len(self._plan)

    def busy(self):
        return self._on

    def abort(self):
        if self._on:
            log("ABORT", self._pos, time.ticks_ms())
        self._on = False
        self._plan = ()

    def close(self):
        self.abort()

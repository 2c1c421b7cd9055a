"""The wires of one simulated board.

The firmware's ``machine.Pin`` is a thin view on the bus: it sets a pin's mode and output level.
External models (MT8880 chip, hook relay, line interface) watch pins and may drive input pins.
"""

from __future__ import annotations

IN, OUT, OPEN_DRAIN, ALT = 0, 1, 2, 3
PULL_UP, PULL_DOWN = 1, 2


class PinBus:
    def __init__(self, clock):
        self.clock = clock
        self._mode: dict[int, int | None] = {}
        self._out: dict[int, int] = {}
        self._pull: dict[int, int | None] = {}
        self._driven: dict[int, int | None] = {}
        self._watchers: dict[int, list] = {}
        self._function: dict[int, str] = {}
        self.log: list[tuple[int, int, str, int | None]] = []  # (t_us, gpio, what, value)
        self.keep_log = True

    # ---- what models use -------------------------------------------------------
    def watch(self, gpio: int, fn) -> None:
        """``fn(gpio, level, t_us)`` on every output level or mode change of ``gpio``."""
        self._watchers.setdefault(int(gpio), []).append(fn)

    def drive(self, gpio: int, level) -> None:
        """An external device drives ``gpio`` (0/1), or releases it (None); or ``level`` is a
        callable ``t_us -> 0 | 1 | None`` asked at each read (an output that changes faster
        than anything watches it: the MT8880's call-progress wave)."""
        if callable(level):
            self._driven[int(gpio)] = level
            return
        self._driven[int(gpio)] = None if level is None else (1 if level else 0)

    def level(self, gpio: int):
        """Level on the wire: the firmware's output if it drives the pin, else an external
        driver, else the pull resistor; None when floating."""
        gpio = int(gpio)
        mode = self._mode.get(gpio)
        if mode == OUT:
            return self._out.get(gpio, 0)
        if mode == OPEN_DRAIN and self._out.get(gpio, 0) == 0:
            return 0
        ext = self._driven.get(gpio)
        if callable(ext):
            ext = ext(self.clock.now_us())
        if ext is not None:
            return ext
        pull = self._pull.get(gpio)
        if pull == PULL_UP:
            return 1
        if pull == PULL_DOWN:
            return 0
        return None

    def mode(self, gpio: int):
        return self._mode.get(int(gpio))

    def pull(self, gpio: int):
        return self._pull.get(int(gpio))

    def configured(self) -> list:
        """GPIOs whose mode was ever set."""
        return list(self._mode)

    def function(self, gpio: int) -> str:
        """'sio' (plain GPIO), 'pwm', 'i2s', ... or 'null' when never configured."""
        return self._function.get(int(gpio), "null")

    # ---- what the firmware side (machine.Pin, peripherals) uses ----------------
    def set_function(self, gpio: int, fn: str) -> None:
        gpio = int(gpio)
        if self._function.get(gpio) != fn:
            self._function[gpio] = fn
            self._notify(gpio, "func", None)

    def configure(self, gpio: int, mode=None, pull=-1, value=None) -> None:
        gpio = int(gpio)
        self._function[gpio] = "sio"
        if pull != -1:
            self._pull[gpio] = pull
        if value is not None:
            self._out[gpio] = 1 if value else 0
        if mode is not None and self._mode.get(gpio) != mode:
            self._mode[gpio] = mode
            self._notify(gpio, "mode", mode)
        elif value is not None:
            self._notify(gpio, "out", self._out[gpio])

    def set_output(self, gpio: int, value) -> None:
        gpio = int(gpio)
        v = 1 if value else 0
        old = self._out.get(gpio)
        self._out[gpio] = v
        if old != v:
            self._notify(gpio, "out", v)

    def output_latch(self, gpio: int) -> int:
        return self._out.get(int(gpio), 0)

    def read(self, gpio: int) -> int:
        """What ``Pin.value()`` returns: the wire level (floating reads 0)."""
        lv = self.level(gpio)
        return 0 if lv is None else lv

    def _notify(self, gpio, what, value):
        t = self.clock.now_us()
        if self.keep_log:
            self.log.append((t, gpio, what, value))
        lv = self.level(gpio)
        for fn in self._watchers.get(gpio, ()):
            fn(gpio, lv, t)

"""A `machine.Pin`-compatible class on top of an RPi.GPIO-style module (BCM numbering).

The firmware's MT8880 driver and line controller only use what machine.Pin offers:
``Pin(id, mode=-1, pull=-1, value=None)``, ``.value([v])``, ``.init(mode)``, ``on()``/``off()``,
``pin()`` and the constants ``Pin.IN``/``OUT``/``PULL_UP``/``PULL_DOWN``. ``make_pin_class(gpio)``
returns such a class bound to ``gpio``, an object with the RPi.GPIO API (``setmode``, ``setup``,
``output``, ``input``, ``cleanup``, ``BCM``, ``IN``, ``OUT``, ``PUD_*``): on a Pi the real
``RPi.GPIO`` (or rpi-lgpio's drop-in on a Pi 5), in tests tests/sbc/fake_rpi_gpio.py.

Pin ids are BCM GPIO numbers, as in the "rpi-mt8880" board profile. ``pin_map`` (optional)
maps a profile pin id to a different BCM channel (a board wired differently from the profile).
"""

from __future__ import annotations


class PinError(ValueError):
    pass


def make_pin_class(gpio, pin_map: dict | None = None):
    """A machine.Pin-like class driving ``gpio``; ``Pin.channels`` lists the channels set up,
    ``Pin.cleanup()`` releases them (RPi.GPIO.cleanup per channel)."""
    pin_map = dict(pin_map or {})
    gpio.setwarnings(False)
    mode_now = gpio.getmode()
    if mode_now is None:
        gpio.setmode(gpio.BCM)
    elif mode_now != gpio.BCM:
        raise PinError("RPi.GPIO is in BOARD numbering; tonebridge needs BCM GPIO numbers")

    class Pin:
        IN = 0
        OUT = 1
        OPEN_DRAIN = 2
        PULL_UP = 1
        PULL_DOWN = 2
        channels: set = set()

        def __init__(self, id, mode=-1, pull=-1, value=None):
            if isinstance(id, bool) or not isinstance(id, int) or id < 0:
                raise PinError(f"pin id must be a BCM GPIO number, not {id!r}")
            self.id = id
            self._ch = pin_map.get(id, id)
            self._mode = None
            self._pull = None
            self._latch = 0
            self.init(mode, pull, value=value)

        def init(self, mode=-1, pull=-1, value=None):
            if value is not None:
                self._latch = 1 if value else 0
            if pull != -1:
                if pull not in (None, Pin.PULL_UP, Pin.PULL_DOWN):
                    raise PinError(f"unsupported pull {pull!r}")
                self._pull = pull
            if mode == -1:
                mode = self._mode
                if mode is None:
                    if pull != -1:
                        mode = Pin.IN
                    elif value is not None:
                        raise PinError(f"GPIO{self._ch}: set a mode before a value")
                    else:
                        return
                elif mode == Pin.OUT:
                    if value is not None:
                        gpio.output(self._ch, self._latch)
                    return
            if mode == Pin.OUT:
                # the level is set in the same call: no glitch when switching to output
                gpio.setup(self._ch, gpio.OUT, initial=gpio.HIGH if self._latch else gpio.LOW)
            elif mode == Pin.IN:
                pud = {
                    None: gpio.PUD_OFF,
                    Pin.PULL_UP: gpio.PUD_UP,
                    Pin.PULL_DOWN: gpio.PUD_DOWN,
                }[self._pull]
                gpio.setup(self._ch, gpio.IN, pull_up_down=pud)
            else:
                raise PinError(f"GPIO{self._ch}: mode {mode!r} is not supported on RPi.GPIO")
            self._mode = mode
            Pin.channels.add(self._ch)

        def value(self, v=None):
            if v is None:
                if self._mode is None:
                    raise PinError(f"GPIO{self._ch} is not set up")
                return 1 if gpio.input(self._ch) else 0
            self._latch = 1 if v else 0
            if self._mode == Pin.OUT:
                gpio.output(self._ch, gpio.HIGH if self._latch else gpio.LOW)
            return None

        def __call__(self, v=None):
            return self.value(v)

        def on(self):
            self.value(1)

        def off(self):
            self.value(0)

        high = on
        low = off

        def mode(self, m=None):
            if m is None:
                return self._mode
            self.init(m)
            return None

        def __repr__(self):
            return f"Pin(GPIO{self._ch}, mode={self._mode})"

        @classmethod
        def cleanup(cls):
            """Return every channel this class set up to an input (RPi.GPIO.cleanup)."""
            chans = sorted(cls.channels)
            cls.channels = set()
            if chans:
                gpio.cleanup(chans)

    Pin.channels = set()
    return Pin

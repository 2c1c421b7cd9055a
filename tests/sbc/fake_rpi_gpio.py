"""A test double of the RPi.GPIO module on top of the simulator's PinBus.

It implements the part of the RPi.GPIO API tonebridge uses (setmode/getmode/setwarnings, setup
with pull_up_down and initial, output, input, cleanup; the real constant values) with RPi.GPIO's
own rules (output() on a channel not set up as an output and input() on a channel never set up
raise RuntimeError). Behind it is the simulator's PinBus, on which the real sim MT8880Chip model
sits: the firmware's driver talks to the chip model only through this API surface.

``wires`` maps a Pi BCM channel to the bus line it is soldered to (default: the same number);
swapping two entries models a wiring fault. Every call first lets the chip model's scheduled
events that are due run (``clock.run_due()``), as a real chip runs by itself.
"""

from tonebridge.sim import pinbus

BCM = 11
BOARD = 10
OUT = 0
IN = 1
HIGH = 1
LOW = 0
PUD_OFF = 20
PUD_DOWN = 21
PUD_UP = 22
VERSION = "0.7.1 (tonebridge fake)"
RPI_INFO = {"TYPE": "fake", "P1_REVISION": 3}


class FakeGPIO:
    BCM, BOARD, OUT, IN, HIGH, LOW = BCM, BOARD, OUT, IN, HIGH, LOW
    PUD_OFF, PUD_DOWN, PUD_UP = PUD_OFF, PUD_DOWN, PUD_UP
    VERSION, RPI_INFO = VERSION, RPI_INFO

    def __init__(self, bus, wires=None):
        self.bus = bus
        self.wires = dict(wires or {})
        self._mode = None
        self._dir = {}  # channel -> IN / OUT
        self.calls = 0
        self.warnings = True

    def _wire(self, ch):
        if self._mode is None:
            raise RuntimeError(
                "Please set pin numbering mode using GPIO.setmode(GPIO.BOARD) or GPIO.setmode(GPIO.BCM)"
            )
        if not isinstance(ch, int) or not 0 <= ch <= 27:
            raise ValueError("The channel sent is invalid on a Raspberry Pi")
        self.calls += 1
        self.bus.clock.run_due()
        return self.wires.get(ch, ch)

    @staticmethod
    def _chans(channel):
        return list(channel) if isinstance(channel, (list, tuple)) else [channel]

    def setwarnings(self, flag):
        self.warnings = bool(flag)

    def setmode(self, mode):
        if mode not in (BCM, BOARD):
            raise ValueError("An invalid mode was passed to setmode()")
        if self._mode is not None and mode != self._mode:
            raise ValueError("A different mode has already been set!")
        self._mode = mode

    def getmode(self):
        return self._mode

    def setup(self, channel, direction, pull_up_down=PUD_OFF, initial=-1):
        for ch in self._chans(channel):
            w = self._wire(ch)
            if direction == OUT:
                if pull_up_down != PUD_OFF:
                    raise ValueError("pull_up_down parameter is not valid for outputs")
                value = None if initial == -1 else (1 if initial else 0)
                self.bus.configure(w, mode=pinbus.OUT, pull=None, value=value)
            elif direction == IN:
                if initial != -1:
                    raise ValueError("initial parameter is not valid for inputs")
                pull = {PUD_OFF: None, PUD_UP: pinbus.PULL_UP, PUD_DOWN: pinbus.PULL_DOWN}[
                    pull_up_down
                ]
                self.bus.configure(w, mode=pinbus.IN, pull=pull)
            else:
                raise ValueError("An invalid direction was passed to setup()")
            self._dir[ch] = direction

    def output(self, channel, value):
        chans = self._chans(channel)
        values = self._chans(value) if isinstance(value, (list, tuple)) else [value] * len(chans)
        for ch, v in zip(chans, values, strict=True):
            w = self._wire(ch)
            if self._dir.get(ch) != OUT:
                raise RuntimeError("The GPIO channel has not been set up as an OUTPUT")
            self.bus.set_output(w, 1 if v else 0)

    def input(self, channel):
        w = self._wire(channel)
        if channel not in self._dir:
            raise RuntimeError("You must setup() the GPIO channel first")
        return HIGH if self.bus.read(w) else LOW

    def cleanup(self, channel=None):
        chans = list(self._dir) if channel is None else self._chans(channel)
        for ch in chans:
            if ch in self._dir:
                w = self.wires.get(ch, ch)
                self.bus.configure(w, mode=pinbus.IN, pull=None)
                del self._dir[ch]
        if channel is None:
            self._mode = None

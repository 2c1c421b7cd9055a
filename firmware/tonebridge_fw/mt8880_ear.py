# The board's ear on an MT8880 board: the chip's own DTMF receiver, read through its registers
# (backends/mt8880.py), with listen.Listener's interface so the engine verifies the sends the
# same way (HEARD, verified=, FAULT):
#
#   ear = ChipEar(backend, ticks_ms)
#   for h in ear.service(want):   # want: 0 (only finish a digit being heard), 1 or 2 (listen)
#       h.key, h.on, h.off, h.words ("ms=<d>")
#
# The chip loads the receive register when its delayed steering rises (the tone lasted the
# guard time set by its steering RC) and sets status b2 (and b3, delayed steering, while the
# tone goes on); reading the receive register clears b2. Polled from the main loop: each pass
# reads the status once. A digit is reported when b3 falls (the tone ended): on = when b2 was
# seen, off = when b3 was seen low, ms = the steering's length, which tracks the tone's (both
# edges are delayed by about the guard time). The chip gives no levels or frequencies
# (Heard.figures False): in a self-test (the loop relay puts the chip's own tones on its
# input) selftest.judge passes a key on what the chip decides, the key decoded and its
# duration. No call progress either: cp is None, as on a Listener without a country.

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


from tonebridge_fw.heard import Heard
from tonebridge_fw.keypad import MT8880_CODE
from tonebridge_fw.ticks import ticks_diff

_ST_RX_FULL = const(0x04)
_ST_DSTEER = const(0x08)


class ChipEar:
    def __init__(self, backend, ticks_ms):
        self.backend = backend
        self.ticks_ms = ticks_ms
        self._keys = [None] * 16  # receive code -> key (built once)
        for k in MT8880_CODE:
            self._keys[MT8880_CODE[k]] = k
        self.listening = False
        self.cp = None  # no call progress from the chip's DTMF receiver (Listener.cp)
        self.progress_on = False
        self.backlog = 0  # (Listener.backlog: the chip latches its digits, nothing waits)
        self.key = None  # the digit being heard (b2 seen, b3 not yet low)
        self._on = 0

    def start(self):
        # a code left in the receive register from before is not this sequence's
        if self.backend.poll_status() & _ST_RX_FULL:
            self.backend.read_rx()
        self.key = None
        self.listening = True

    def stop(self):
        self.listening = False

    def service(self, want=True):
        if want and not self.listening:
            self.start()
        if not self.listening:
            return ()
        st = self.backend.poll_status()
        now = self.ticks_ms()
        out = ()
        if st & _ST_RX_FULL:
            if self.key is not None:  # a new digit before the last one's end was seen
                out = (self._heard(now),)
            self.key = self._keys[self.backend.read_rx() & 15]
            self._on = now
        if self.key is not None and not st & _ST_DSTEER:
            out = out + (self._heard(now),)
            self.key = None
        if not want and self.key is None:
            self.stop()
        return out

    def _heard(self, now):
        ms = ticks_diff(now, self._on)
        return Heard(self.key, self._on, now, "ms=%d" % ms, ms, figures=False)

    def late_ms(self):
        return 0

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
# reads the status once, and while listening due_ms() asks for a pass every POLL_MS (the loop
# otherwise sleeps until the backend's next step boundary). A digit is reported when b3 falls
# (the tone ended): on = when b2 was seen, off = when b3 was seen low, ms = the steering's
# length, which tracks the tone's (both edges are delayed by about the guard time; each is
# seen up to POLL_MS late, so ms is within POLL_MS of it). The chip gives no levels or
# frequencies (Heard.figures False): in a self-test (the loop relay puts the chip's own tones
# on its input) selftest.judge passes a key on what the chip decides, the key decoded and its
# duration.
#
# Call progress (profile "country": attach_progress(callprogress.Classifier(country,
# in_band=True))): while hear_progress(True) (the line held, none of our digits on it) the
# chip is in its call-progress mode (backend.call_progress: CRA CP+IRQ): the IRQ/CP pin then
# carries a rectangular wave while a tone in the chip's call-progress band is above its
# detection level, and the DTMF receiver decodes nothing. Each service() samples the pin
# for 3 ms (backend.cp_lows: more than a period of any call-progress tone); every BLOCK_MS the block is "tone" when the pin was seen low (the wave) and
# "quiet" otherwise, and the classifier follows the cadence of those blocks (the chip gives
# no frequencies: docs/callprogress.md). Nothing is allocated per block.

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


from tonebridge_fw.heard import Heard
from tonebridge_fw.keypad import MT8880_CODE
from tonebridge_fw.ticks import ticks_add, ticks_diff

_ST_RX_FULL = const(0x04)
_ST_DSTEER = const(0x08)
BLOCK_MS = const(32)  # call progress: the classifier's block
# while listening (DTMF mode), the status is read at least every POLL_MS: a tenth of the
# shortest tone (40 ms); the chip latches the code and holds b3 for the tone, so a later read
# loses nothing but the precision of on/off
POLL_MS = const(4)


class ChipEar:
    def __init__(self, backend, ticks_ms):
        self.backend = backend
        self.ticks_ms = ticks_ms
        self._keys = [None] * 16  # receive code -> key (built once)
        for k in MT8880_CODE:
            self._keys[MT8880_CODE[k]] = k
        self.listening = False
        self.cp = None  # call progress (attach_progress: a callprogress.Classifier, in band)
        self.progress_on = False
        self._cp_changed = False
        self._pin = None  # IRQ/CP while in call-progress mode
        self._pw = [0]  # the classifier's power[0]: the block was tone (1) or not (0)
        self._lows = 0
        self._blk_t0 = 0
        self.backlog = 0  # (Listener.backlog: the chip latches its digits, nothing waits)
        self.key = None  # the digit being heard (b2 seen, b3 not yet low)
        self._on = 0
        self._polled = 0  # ticks_ms of the last status read

    def attach_progress(self, classifier):
        self.cp = classifier

    def hear_progress(self, on):
        """The chip in call-progress mode (on) or DTMF mode (off: before our digits play, so
        that they are heard and verified); turned on again it starts afresh."""
        if self.cp is None or on == self.progress_on:
            return
        if on and self.key is not None:
            return  # our last digit is still being heard: CP mode once it has ended
        self._pin = self.backend.call_progress(on)
        if on:
            self.cp.reset()
            self._cp_changed = False
            self._lows = 0
            self._blk_t0 = self.ticks_ms()
        self.key = None  # (the receiver decodes nothing in CP mode)
        self.progress_on = on and self._pin is not None

    def progress(self):
        """The call-progress state's name if it changed since the last call, else None."""
        if not self._cp_changed:
            return None
        self._cp_changed = False
        from tonebridge_fw.callprogress import NAMES

        return NAMES[self.cp.state]

    def _sample_cp(self):
        self._lows += self.backend.cp_lows()
        now = self.ticks_ms()
        cp = self.cp
        pw = self._pw
        while ticks_diff(now, self._blk_t0) >= BLOCK_MS:
            self._blk_t0 = ticks_add(self._blk_t0, BLOCK_MS)
            t = 1 if self._lows else 0
            pw[0] = t
            self._lows = 0
            cp.block(pw, t)
            if cp.changed:
                self._cp_changed = True

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
        if self.progress_on:
            self._sample_cp()
            return ()
        st = self.backend.poll_status()
        now = self.ticks_ms()
        self._polled = now
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

    def due_ms(self):
        """ms until the ear wants its next status read (the main loop may sleep that long):
        while listening in DTMF mode, what is left of POLL_MS since the last read (at least 1);
        0 when it needs no pass (not listening; call-progress mode keeps the caller's pace)."""
        if not self.listening or self.progress_on:
            return 0
        left = POLL_MS - ticks_diff(self.ticks_ms(), self._polled)
        return left if left > 0 else 1

    def _heard(self, now):
        ms = ticks_diff(now, self._on)
        return Heard(self.key, self._on, now, "ms=%d" % ms, ms, figures=False)

    def late_ms(self):
        return 0

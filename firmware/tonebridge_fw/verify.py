# Verified sends: which played digits the board's own receiver heard on the line (sans-I/O).
#
#   v = Verifier(margin_ms=MARGIN_MS)
#   v.begin()                         # a new sequence
#   v.started(idx, key, t)            # the player began digit idx at ticks t
#   v.finished(idx, key, t)           # ... and played it in full: it must be heard by t + margin
#   idx = v.heard(key, on, off)       # the receiver heard key from ticks on to off: the index
#                                     # of the played digit it confirms, or -1 (a stray tone)
#   v.overdue(now)                    # (idx, key) of the first digit not heard in time, or None
#   v.pending()                       # digits played but not yet heard (nor overdue)
#
# A heard digit confirms the oldest unconfirmed played digit with the same key whose start it
# overlaps (within SLACK_MS: the player reports a start when its pass notices it, the receiver
# times the tone from the samples). The margin covers the receiver's decision (two 12.75 ms
# blocks after the tone ends) and the main loop's polling.

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


from tonebridge_fw.ticks import ticks_add, ticks_diff

MARGIN_MS = const(150)
SLACK_MS = const(60)


class Verifier:
    def __init__(self, margin_ms=MARGIN_MS):
        self.margin_ms = margin_ms
        self._idx = []  # played digits in order: index, key, start, deadline (0: not finished)
        self._key = []
        self._start = []
        self._due = []
        self._done = []  # heard already
        self.verified = 0

    def begin(self):
        self._idx = []
        self._key = []
        self._start = []
        self._due = []
        self._done = []
        self.verified = 0

    def _find(self, idx):
        for i in range(len(self._idx)):
            if self._idx[i] == idx:
                return i
        return -1

    def started(self, idx, key, t):
        if self._find(idx) < 0:
            self._idx.append(idx)
            self._key.append(key)
            self._start.append(t)
            self._due.append(None)
            self._done.append(False)

    def finished(self, idx, key, t):
        i = self._find(idx)
        if i < 0:
            self.started(idx, key, t)
            i = len(self._idx) - 1
        self._due[i] = ticks_add(t, self.margin_ms)

    def heard(self, key, on, off):
        for i in range(len(self._idx)):
            if self._done[i] or self._key[i] != key:
                continue
            s = self._start[i]
            due = self._due[i]
            # the tone heard overlaps the digit's time on the line
            if ticks_diff(off, s) >= -SLACK_MS and (
                due is None or ticks_diff(on, ticks_add(due, -self.margin_ms)) <= SLACK_MS
            ):
                self._done[i] = True
                self.verified += 1
                return self._idx[i]
        return -1

    def give_up(self, idx):
        """Stop waiting for digit idx (a self-test reports it not heard and goes on)."""
        i = self._find(idx)
        if i >= 0:
            self._done[i] = True

    def overdue(self, now):
        for i in range(len(self._idx)):
            if not self._done[i] and self._due[i] is not None:
                if ticks_diff(now, self._due[i]) >= 0:
                    return (self._idx[i], self._key[i])
        return None

    def pending(self):
        for i in range(len(self._idx)):
            if not self._done[i] and self._due[i] is not None:
                return True
        return False

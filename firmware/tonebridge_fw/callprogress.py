# Call progress (sans-I/O): what the line is doing, from the receive path's Goertzel bank.
#
#   det = Detector("us", rate=8000)       # bank at the country's frequencies, 32 ms blocks
#   if det.feed(buf, start, count):       # ADC codes, as goertzel.Bank.feed takes them
#       det.state, NAMES[det.state]       # the state changed: SILENCE, DIAL, RINGING, BUSY,
#                                         # REORDER, VOICE or UNKNOWN (nothing decided yet)
#
#   cls = Classifier("uk", block_ms=32, floor=f)  # the same without the bank:
#   cls.block(power, total)               # per block: power[k] at the country's freqs[k] and
#                                         # the block's total energy, in the same units
#
# Each block is classified as QUIET (total below `floor`, or 24 dB below the recent tone
# level), one of the country's tone classes (the frequency sets of cptones.COUNTRIES: the set
# holds at least 1/4 of the block's energy, each of its frequencies at least 1/5 of the set's
# share (so a neighbour's leakage makes no second tone), the set holding most; a tone that
# fills only part of a block holds that part of its energy), or OTHER (energy that is no known tone: a voice, music, an announcement). Consecutive blocks of one class
# form a run (a class must hold two blocks to start a new run: one odd block is absorbed);
# the last RING finished runs are kept with their lengths. A signal is recognised when the
# finished runs, newest first, match `need` consecutive elements of its cadence (at least one
# of them a tone) and the run going on fits the next element so far; each element within
# +-12.5 % +- two blocks. (With need 1 the tone's own run counts once it has lasted its
# shortest length: a tone no other signal of the country uses.) A continuous signal (need 0) is recognised
# when its run has lasted min_ms. VOICE: OTHER blocks add up to voice_ms with no quiet gap
# longer than gap_ms and no tone run in between. SILENCE: a quiet run of silence_ms.
# A recognised signal stays the state while the runs still agree with it.
#
# Nothing is allocated per block (fixed arrays; tuples iterated in place): it runs in the
# receive path's service loop under MicroPython (tests/firmware/test_callprogress.py checks
# with the heap locked).

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


from array import array

from tonebridge_fw import cptones

SILENCE = const(0)
DIAL = const(1)
RINGING = const(2)
BUSY = const(3)
REORDER = const(4)
VOICE = const(5)
UNKNOWN = const(6)
NAMES = ("silence", "dial", "ringing", "busy", "reorder", "voice", "unknown")
_STATES = {"dial": DIAL, "ringing": RINGING, "busy": BUSY, "reorder": REORDER}

QUIET = const(0)  # block classes: 0 quiet, 1.. a tone class (index into masks + 1), OTHER
OTHER = const(127)
TRUNC = const(128)  # flag on a finished run: the first, cut short by the start of listening
RING = const(8)  # finished runs kept (the longest need is 3; 8 leaves room for phases)
BLOCK_HZ = 31.25  # the bank's bin spacing: rate / n; 32 ms blocks


class Classifier:
    def __init__(
        self,
        country=cptones.DEFAULT_COUNTRY,
        block_ms=32,
        floor=1,
        voice_ms=400,
        gap_ms=600,
        silence_ms=5000,
        in_band=False,
    ):
        desc, freqs, signals = cptones.country(country)
        if in_band:
            freqs, signals = cptones.in_band(signals, block_ms)
        self.country = country
        self.freqs = freqs
        masks = []
        sig = []
        lo = []
        hi = []
        for name, fs, cad, need in signals:
            m = 0
            for f in fs:
                m |= 1 << freqs.index(f)
            if m not in masks:
                masks.append(m)
            sig.append((_STATES[name], masks.index(m) + 1, cad, need))
            lo.append(tuple([ms - ms // 8 - 2 * block_ms for ms in cad]))
            hi.append(tuple([ms + ms // 8 + 2 * block_ms for ms in cad]))
        bits = []
        for m in masks:
            bits.append(tuple([k for k in range(len(freqs)) if (m >> k) & 1]))
        self._bits = tuple(bits)  # per tone class: the indices into freqs/power
        self._sig = tuple(sig)  # (state, class, cadence, need)
        self._lo = tuple(lo)
        self._hi = tuple(hi)
        self.in_band = in_band
        self.block_ms = block_ms
        self._bias = block_ms * 3 // 4
        self.floor = floor
        self.voice_ms = voice_ms
        self.gap_ms = gap_ms
        self.silence_ms = silence_ms
        self._seg_cls = bytearray(RING)
        self._seg_ms = array("i", [0] * RING)
        self.reset()

    def reset(self):
        """Forget the line's history (e.g. after dialling: our own tones were on it)."""
        self._nseg = 0
        self._head = 0
        self._whole = False
        self._tone = False
        self._agree = False
        self._run_cls = QUIET
        self._run_ms = 0
        self._pend_cls = QUIET
        self._pend_n = 0
        self._voice = 0
        self._gap = 0
        self.state = UNKNOWN
        self.changed = False
        self.blocks = 0
        self.level = 0
        self.last = QUIET  # the last block's class
        self._ref = 0  # recent tone level: a block 24 dB below it is quiet

    def classify(self, power, total):
        """The class of one block: QUIET, a tone class (1..) or OTHER."""
        ref = self._ref
        self._ref = ref - (ref >> 7)  # the recent tone level decays (~4 s at 32 ms blocks)
        if total < self.floor or total < (ref >> 8):
            return QUIET
        lim = total - (total >> 2)  # the set holds at least 1/4 (a block a tone fills part of)
        best = OTHER
        best_rest = 0
        c = 0
        for ks in self._bits:
            c += 1
            rest = total
            for k in ks:
                rest -= power[k]
            if rest < 0:
                rest = 0  # neighbouring bins each caught some of the other tone
            if rest > lim or (best != OTHER and rest >= best_rest):
                continue
            part = (total - rest) // 5  # and each of its frequencies 1/5 of the set's energy
            for k in ks:
                if power[k] < part:
                    rest = -1
                    break
            if rest >= 0:
                best = c
                best_rest = rest
        if best != OTHER and total > self._ref:
            self._ref = total
        return best

    def block(self, power, total):
        """Feed one block's powers (power[k] at freqs[k]) and total energy; returns the state
        (self.changed says whether it changed with this block)."""
        self.blocks += 1
        self.level = total
        c = self.classify(power, total)
        self.last = c
        b = self.block_ms
        if c == self._run_cls:
            self._run_ms += b * (1 + self._pend_n)  # an odd block in between is absorbed
            self._pend_n = 0
        else:
            if self._pend_n and c == self._pend_cls:
                self._pend_n += 1
            else:
                self._run_ms += b * self._pend_n
                self._pend_cls = c
                self._pend_n = 1
            if self._pend_n >= 2:
                self._push(self._run_cls, self._run_ms)
                self._run_cls = c
                self._run_ms = b * self._pend_n
                self._pend_n = 0
        if c == OTHER:
            self._voice += b
            self._gap = 0
        elif c == QUIET:
            self._gap += b
            if self._gap > self.gap_ms:
                self._voice = 0
        elif self._run_cls == c and not self.in_band:
            self._voice = 0  # a tone run: what came before was no voice
        new = self._decide()
        self.changed = new != self.state
        self.state = new
        return new

    def _push(self, cls, ms):
        if ms <= 0:
            return
        ms = self._corrected(cls, ms)
        if not self._whole:
            self._whole = True  # the first run began before we listened: its length is not
            cls |= TRUNC  # the signal's (it lasted at least ms)
        elif self.in_band:
            self._misfit(cls, ms)
        self._head = (self._head + 1) % RING
        self._seg_cls[self._head] = cls
        self._seg_ms[self._head] = ms
        if self._nseg < RING:
            self._nseg += 1

    def _misfit(self, cls, ms):
        """In band (no OTHER class): a finished run that fits no element of any signal (a
        syllable, a pause between words) counts towards VOICE; one that fits takes as much
        off it."""
        odd = 1 if cls == QUIET else 0
        for j in range(len(self._sig)):
            lo = self._lo[j]
            hi = self._hi[j]
            cad = self._sig[j][2]
            if not self._sig[j][3]:
                if not odd and ms >= cad[0]:
                    break
                continue
            e = odd
            while e < len(cad):
                if lo[e] <= ms <= hi[e]:
                    break
                e += 2
            if e < len(cad):
                break
        else:
            self._voice += ms
            return
        self._voice = self._voice - ms if self._voice > ms else 0

    def _corrected(self, cls, ms):
        """A run's length as sounded: a block a tone fills 1/4 or more of counts as tone, so
        tone runs read long and the quiet between them short, by 3/4 block on average
        (measured over 300/300 ms cadences on the bank: +22 / -26 ms at 32 ms blocks)."""
        if cls == QUIET:
            return ms + self._bias
        if cls == OTHER:
            return ms
        return ms - self._bias

    def _decide(self):
        st = self.state
        if self.in_band:
            if self._voice >= self.voice_ms:
                return VOICE  # runs that fit no signal outweigh those that do
            if st == RINGING or st == VOICE:
                return self._after_ringing(st)
        keep = False
        for j in range(len(self._sig)):
            s = self._sig[j]
            n = self._match(j)
            need = s[3]
            if self._tone and n >= (need if need else 1):
                return s[0]
            if self._agree and s[0] == st:
                keep = True  # the runs still agree with it (so far)
        if keep:
            return st
        if self._voice >= self.voice_ms:
            return VOICE
        if self._run_cls == QUIET and self._run_ms >= self.silence_ms:
            return SILENCE
        return UNKNOWN

    def _after_ringing(self, st):
        """In band, once it rang: the ringback while its cadence holds; energy that breaks it
        is the far end answering (VOICE, kept while there is energy); a long quiet, SILENCE.
        (Speech has a syllable rhythm that cadence alone cannot tell from busy or reorder: a
        line that rang does not turn busy.)"""
        if st == RINGING:
            for j in range(len(self._sig)):
                if self._sig[j][0] == RINGING:
                    self._match(j)
                    if self._agree:
                        return RINGING
        if self._run_cls == QUIET:
            return SILENCE if self._run_ms >= self.silence_ms else st
        return VOICE

    def _match(self, j):
        """How many consecutive elements of signal j's cadence the finished runs match, newest
        first, while the run going on still fits the element after them. Sets self._tone (at
        least one of them is a tone: needed to recognise the signal) and self._agree (the run
        going on and the newest finished one fit: enough to keep it). A run still going could
        yet grow into another signal's element, so it counts only for need 1 (a tone no other
        signal of the country has). The first run (TRUNC) agrees with any element it is no
        longer than, and counts for none. A continuous signal: 1 once its run lasted min_ms."""
        state, cls, cad, need = self._sig[j]
        rc = self._run_cls
        rm = self._corrected(rc, self._run_ms)
        self._tone = False
        self._agree = False
        if not need:
            self._tone = True
            n = 1 if rc == cls and rm >= cad[0] else 0
            self._agree = n == 1
            return n
        lo = self._lo[j]
        hi = self._hi[j]
        n_el = len(cad)
        best = 0
        for ph in range(n_el):  # the cadence element the run going on now stands for
            want = QUIET if ph & 1 else cls
            if rc != want or rm > hi[ph]:
                continue
            n = 0
            tone = False
            if need == 1 and not (ph & 1) and rm >= lo[ph]:
                n = 1  # a tone only this signal has: its run so far is enough
                tone = True
            agree = self._nseg == 0
            e = ph
            i = 0
            while i < self._nseg and (n < need or not tone):
                e = e - 1 if e else n_el - 1
                idx = (self._head - i) % RING
                want = QUIET if e & 1 else cls
                m = self._seg_ms[idx]
                c = self._seg_cls[idx]
                if c & TRUNC:
                    if c & ~TRUNC == want and m <= hi[e]:
                        agree = True
                    break
                if c != want or m < lo[e] or m > hi[e]:
                    break
                agree = True
                n += 1
                if not (e & 1):
                    tone = True
                i += 1
            if agree:
                self._agree = True
            if n > best or (n == best and tone):
                best = n
                self._tone = tone
        return best


class Detector:
    """A goertzel.Bank at the country's frequencies (blocks of rate / 31.25 samples: 32 ms,
    bins 31.25 Hz apart) feeding a Classifier. min_amplitude: the quietest sine (ADC counts)
    that counts as sound; quieter blocks are QUIET."""

    def __init__(self, country=cptones.DEFAULT_COUNTRY, rate=8000, bits=12, min_amplitude=8, **kw):
        from tonebridge_fw.goertzel import Bank

        freqs = cptones.country(country)[1]
        n = int(rate / BLOCK_HZ)
        self.bank = Bank(freqs, n, rate, bits)
        a = min_amplitude >> self.bank.shift
        if a < 1:
            a = 1
        # the total of a sine of amplitude a over the whole block: (a n / 2)**2 / 4**pshift
        floor = ((a * n // 2) ** 2) >> (2 * self.bank.pshift)
        self.cls = Classifier(country, n * 1000 // rate, floor, **kw)

    @property
    def state(self):
        return self.cls.state

    def reset(self):
        self.bank.reset()
        self.cls.reset()

    def feed(self, buf, start, count):
        """Run buf[start:start+count] through the bank and the classifier; True when the
        state changed in the blocks this completed."""
        changed = False
        bank = self.bank
        cls = self.cls
        n = bank.n
        ps2 = 2 * bank.pshift
        while count > 0:
            used = bank.feed(buf, start, count)
            start += used
            count -= used
            if bank.ready:
                # the bank's total is about its bias at the block's start; the bias follows
                # the signal's mean a block late (a tone's last part-cycle moves it), and that
                # step of DC is no sound: take the block's own mean out
                m = bank.mean >> bank.shift
                dc = (((n * m * m) >> ps2) * n) >> 1
                t = bank.total - dc
                cls.block(bank.power, t if t > 0 else 0)
                if cls.changed:
                    changed = True
        return changed

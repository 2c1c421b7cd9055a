"""Dial strings -> plans: explicit dialects, validated as a whole before anything plays.

A plan is a list of steps (key, ms): key is one of keypad.KEYS for a tone, None for
silence. Digits are separated by one gap of gap_ms; a run of pause characters replaces
the gap between its neighbours; a leading/trailing pause is a leading/trailing silence;
no trailing gap after the last tone.

Dialects (see docs/dialstrings.md):
  catapult    Bandwidth Catapult dtmfOut: [A-D0-9#*,wW]+, at most 92 characters;
              ',' and 'w' pause 500 ms, 'W' pauses 1000 ms. Upper-case A-D only.
  gws         Genesys GWS SendDtmf: 0-9, also * # A-D; no pauses; at most 92 characters;
              lower-case a-d are rejected.
  tonebridge  the catapult characters, with ',' and 'p' pausing for pause_ms (the line's
              pause, 500 ms by default as in catapult), plus held keys: a key followed by
              its length in parentheses, 5(2000), plays that key for 40-10000 ms; and '!',
              a hook flash: the step (FLASH, flash_ms), a timed on-hook break of 50-1500 ms
              (100 ms by default), spaced from its neighbours like a key.

A dialect is a row of DIALECTS: which characters pause and for how long (a number of ms,
or PAUSE for the SEND's pause_ms), its maximum length, whether keys may be held, and
whether '!' flashes the hook. A flash step counts as a step wherever tones are counted
(digits_in, a SEND's played/digits); the player turns it into silence for the backend
and a hook break on the line.
"""

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


from tonebridge_fw.keypad import KEYS

TIMING_MIN_MS = const(40)
TIMING_MAX_MS = const(5000)
HOLD_MAX_MS = const(10000)  # a held key: TIMING_MIN_MS .. HOLD_MAX_MS
DEFAULT_TONE_MS = const(100)
DEFAULT_GAP_MS = const(100)
DEFAULT_PAUSE_MS = const(500)
MAX_LENGTH = const(92)
PAUSE = const(-1)  # in a dialect's pause table: "pause_ms", the SEND's configurable pause
FLASH = "!"  # a plan step's key for a hook flash: (FLASH, flash_ms)
FLASH_MIN_MS = const(50)
FLASH_MAX_MS = const(1500)
DEFAULT_FLASH_MS = const(100)

# dialect -> (pause characters -> ms or PAUSE, maximum length, held keys allowed, '!' flash)
DIALECTS = {
    "catapult": ({",": 500, "w": 500, "W": 1000}, MAX_LENGTH, False, False),
    "gws": ({}, MAX_LENGTH, False, False),
    "tonebridge": ({",": PAUSE, "p": PAUSE, "w": 500, "W": 1000}, MAX_LENGTH, True, True),
}
DEFAULT_DIALECT = "catapult"

_DIGITS = "0123456789"


class DialStringError(ValueError):
    """A dial string or timing the compiler refuses. .position (0-based, or None) and .char."""

    def __init__(self, message, position=None, char=None):
        super().__init__(message)
        self.message = message
        self.position = position
        self.char = char

    def __str__(self):
        return self.message


def _check_ms(name, v, hi=TIMING_MAX_MS):
    if not isinstance(v, int) or isinstance(v, bool):
        raise DialStringError("%s must be a whole number of milliseconds, got %s" % (name, repr(v)))
    if v < TIMING_MIN_MS or v > hi:
        raise DialStringError("%s %d is outside %d-%d ms" % (name, v, TIMING_MIN_MS, hi))


def check_timing(tone_ms, gap_ms, pause_ms=DEFAULT_PAUSE_MS):
    """Raise DialStringError unless each is whole ms within TIMING_MIN_MS..TIMING_MAX_MS."""
    _check_ms("tone_ms", tone_ms)
    _check_ms("gap_ms", gap_ms)
    _check_ms("pause_ms", pause_ms)


def check_flash(flash_ms):
    """Raise DialStringError unless flash_ms is whole ms within FLASH_MIN_MS..FLASH_MAX_MS."""
    if not isinstance(flash_ms, int) or isinstance(flash_ms, bool):
        raise DialStringError(
            "flash_ms must be a whole number of milliseconds, got %s" % repr(flash_ms)
        )
    if flash_ms < FLASH_MIN_MS or flash_ms > FLASH_MAX_MS:
        raise DialStringError(
            "flash_ms %d is outside %d-%d ms" % (flash_ms, FLASH_MIN_MS, FLASH_MAX_MS)
        )


def _dialect(dialect):
    d = DIALECTS.get(dialect)
    if d is None:
        names = sorted(DIALECTS)
        raise DialStringError(
            "unknown dialect %s (use %s or %s)" % (repr(dialect), ", ".join(names[:-1]), names[-1])
        )
    return d


def _bad(c, i, why=""):
    return DialStringError("invalid character %s at position %d%s" % (repr(c), i, why), i, c)


def _scan(text, dialect, tone_ms, gap_ms, pause_ms, hold_max_ms, plan, flash_ms):
    """Check `text` against the dialect, first problem first. If `plan` is a list, append the
    plan's steps to it as the characters are read (no intermediate list: a board's heap)."""
    pauses, max_len, holds, flashes = _dialect(dialect)
    if not isinstance(text, str):
        raise DialStringError("dial string must be text, got %s" % type(text).__name__)
    n = len(text)
    if n == 0:
        raise DialStringError("empty dial string")
    pause = 0  # ms of pause characters since the last tone
    seen_tone = False
    i = 0
    while i < n:
        c = text[i]
        ms = pauses.get(c)
        if ms is not None:
            pause += pause_ms if ms == PAUSE else ms
            i += 1
            continue
        ms = tone_ms
        if c == FLASH and flashes:
            ms = flash_ms
        elif len(c) != 1 or KEYS.find(c) < 0:
            if c == "(" and holds:
                raise DialStringError(
                    "'(' at position %d does not follow a key" % i, position=i, char=c
                )
            raise _bad(c, i)
        if holds and c != FLASH and i + 1 < n and text[i + 1] == "(":
            ms = _held(text, i, hold_max_ms)
            i = text.find(")", i + 2) + 1
        else:
            i += 1
        if plan is not None:
            if seen_tone:
                plan.append((None, pause if pause else gap_ms))
            elif pause:
                plan.append((None, pause))
            plan.append((c, ms))
        seen_tone = True
        pause = 0
    if n > max_len:
        raise DialStringError(
            "dial string too long: %d characters, at most %d" % (n, max_len),
            position=max_len,
            char=text[max_len],
        )
    if pause and plan is not None:
        plan.append((None, pause))


def _held(text, i, hold_max_ms):
    """The length of the held key text[i] (text[i + 1] is '('), checked."""
    n = len(text)
    j = i + 2
    v = 0
    while j < n and text[j] != ")":
        c = text[j]
        d = _DIGITS.find(c)
        if len(c) != 1 or d < 0:
            raise _bad(c, j, " (a held key's length is whole milliseconds, e.g. 5(2000))")
        if v <= HOLD_MAX_MS:  # stays a small int however many digits follow
            v = v * 10 + d
        j += 1
    if j >= n:
        raise DialStringError(
            "held key at position %d is not closed: ')' expected at position %d" % (i, n),
            position=n,
        )
    if j == i + 2:
        raise DialStringError(
            "held key at position %d has no length, e.g. 5(2000)" % i, position=j, char=")"
        )
    if hold_max_ms < TIMING_MIN_MS:
        raise DialStringError(
            "held key at position %d: this board cannot hold keys (its tones have a fixed "
            "length)" % i,
            position=i + 1,
            char="(",
        )
    if v < TIMING_MIN_MS or v > hold_max_ms:
        raise DialStringError(
            "held key at position %d: %s ms is outside %d-%d ms"
            % (i, text[i + 2 : j] if v > HOLD_MAX_MS else str(v), TIMING_MIN_MS, hold_max_ms),
            position=i + 2,
            char=text[i + 2],
        )
    return v


def validate(text, dialect=DEFAULT_DIALECT, hold_max_ms=HOLD_MAX_MS):
    """Check `text` against the dialect; raise DialStringError for the first problem."""
    _scan(
        text,
        dialect,
        DEFAULT_TONE_MS,
        DEFAULT_GAP_MS,
        DEFAULT_PAUSE_MS,
        hold_max_ms,
        None,
        DEFAULT_FLASH_MS,
    )


def compile_plan(
    text,
    dialect=DEFAULT_DIALECT,
    tone_ms=DEFAULT_TONE_MS,
    gap_ms=DEFAULT_GAP_MS,
    pause_ms=DEFAULT_PAUSE_MS,
    hold_max_ms=HOLD_MAX_MS,
    flash_ms=DEFAULT_FLASH_MS,
):
    """Compile a dial string into a plan [(key|None, ms), ...]; validates everything first
    (a string refused part-way returns nothing). pause_ms is the length of the dialect's
    configurable pause (tonebridge ',' and 'p'); a held key plays for its own length instead of
    tone_ms; hold_max_ms is the longest hold the board can play (below TIMING_MIN_MS: none);
    flash_ms the length of a hook flash (tonebridge '!': the step (FLASH, flash_ms))."""
    check_timing(tone_ms, gap_ms, pause_ms)
    check_flash(flash_ms)
    plan = []
    _scan(text, dialect, tone_ms, gap_ms, pause_ms, hold_max_ms, plan, flash_ms)
    return plan


def plan_ms(plan):
    """Total duration of a plan in ms."""
    total = 0
    for step in plan:
        total += step[1]
    return total


def digits_in(plan):
    """Number of tone steps in a plan (a hook flash counts as one)."""
    n = 0
    for step in plan:
        if step[0] is not None:
            n += 1
    return n


def plan_text(plan):
    """The keys of a plan's tone and flash steps as a string (pauses dropped)."""
    return "".join([s[0] for s in plan if s[0] is not None])

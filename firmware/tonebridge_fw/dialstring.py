"""Dial strings -> plans: explicit dialects, validated as a whole before anything plays.

A plan is a list of steps (key, ms): key is one of keypad.KEYS for a tone, None for
silence. Digits are separated by one gap of gap_ms; a run of pause characters replaces
the gap between its neighbours; a leading/trailing pause is a leading/trailing silence;
no trailing gap after the last tone.

Dialects (see docs/dialstrings.md):
  catapult  Bandwidth Catapult dtmfOut: [A-D0-9#*,wW]+, at most 92 characters;
            ',' and 'w' pause 500 ms, 'W' pauses 1000 ms. Upper-case A-D only.
  gws       Genesys GWS SendDtmf: 0-9, also * # A-D; no pauses; at most 92 characters;
            lower-case a-d are rejected.
"""

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


from tonebridge_fw.keypad import KEYS

TIMING_MIN_MS = const(40)
TIMING_MAX_MS = const(5000)
DEFAULT_TONE_MS = const(100)
DEFAULT_GAP_MS = const(100)
MAX_LENGTH = const(92)

# dialect -> (pause characters -> ms, maximum length)
DIALECTS = {
    "catapult": ({",": 500, "w": 500, "W": 1000}, MAX_LENGTH),
    "gws": ({}, MAX_LENGTH),
}
DEFAULT_DIALECT = "catapult"


class DialStringError(ValueError):
    """A dial string or timing the compiler refuses. .position (0-based, or None) and .char."""

    def __init__(self, message, position=None, char=None):
        super().__init__(message)
        self.message = message
        self.position = position
        self.char = char

    def __str__(self):
        return self.message


def check_timing(tone_ms, gap_ms):
    """Raise DialStringError unless both are whole ms within TIMING_MIN_MS..TIMING_MAX_MS."""
    for name, v in (("tone_ms", tone_ms), ("gap_ms", gap_ms)):
        if not isinstance(v, int) or isinstance(v, bool):
            raise DialStringError(
                "%s must be a whole number of milliseconds, got %s" % (name, repr(v))
            )
        if v < TIMING_MIN_MS or v > TIMING_MAX_MS:
            raise DialStringError(
                "%s %d is outside %d-%d ms" % (name, v, TIMING_MIN_MS, TIMING_MAX_MS)
            )


def _dialect(dialect):
    d = DIALECTS.get(dialect)
    if d is None:
        raise DialStringError(
            "unknown dialect %s (use %s)" % (repr(dialect), " or ".join(sorted(DIALECTS)))
        )
    return d


def validate(text, dialect=DEFAULT_DIALECT):
    """Check `text` against the dialect; raise DialStringError for the first problem."""
    pauses, max_len = _dialect(dialect)
    if not isinstance(text, str):
        raise DialStringError("dial string must be text, got %s" % type(text).__name__)
    n = len(text)
    if n == 0:
        raise DialStringError("empty dial string")
    for i in range(n):
        c = text[i]
        if c in pauses:
            continue
        if len(c) != 1 or KEYS.find(c) < 0:
            raise DialStringError(
                "invalid character %s at position %d" % (repr(c), i), position=i, char=c
            )
    if n > max_len:
        raise DialStringError(
            "dial string too long: %d characters, at most %d" % (n, max_len),
            position=max_len,
            char=text[max_len],
        )


def compile_plan(text, dialect=DEFAULT_DIALECT, tone_ms=DEFAULT_TONE_MS, gap_ms=DEFAULT_GAP_MS):
    """Compile a dial string into a plan [(key|None, ms), ...]; validates everything first."""
    check_timing(tone_ms, gap_ms)
    validate(text, dialect)
    pauses = DIALECTS[dialect][0]
    plan = []
    pause = 0  # ms of pause characters seen since the last tone
    seen_tone = False
    for c in text:
        ms = pauses.get(c)
        if ms is not None:
            pause += ms
            continue
        if seen_tone:
            plan.append((None, pause if pause else gap_ms))
        elif pause:
            plan.append((None, pause))
        plan.append((c, tone_ms))
        seen_tone = True
        pause = 0
    if pause:
        plan.append((None, pause))
    return plan


def plan_ms(plan):
    """Total duration of a plan in ms."""
    total = 0
    for step in plan:
        total += step[1]
    return total


def digits_in(plan):
    """Number of tone steps in a plan."""
    n = 0
    for step in plan:
        if step[0] is not None:
            n += 1
    return n


def plan_text(plan):
    """The keys of a plan's tone steps as a string (pauses dropped)."""
    return "".join([s[0] for s in plan if s[0] is not None])

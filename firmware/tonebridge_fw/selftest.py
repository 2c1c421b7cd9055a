# Self-test: the 16 keys played on hook through the board's local loop (the loop relay K2 puts
# a 600 ohm test load on the line transformer and the line sense on it; hw/line-interface.md),
# each judged from what the board's own receiver measured.
#
#   plan(tone_ms)        the sequence: a settle pause for the loop relay, then every key
#   judge(h, tone_ms)    True if the Heard h (listen.Heard) is within the limits below
#
# Limits: each tone within +-1.8 % of nominal (ITU-T Q.23); each tone's level -13 to -7 dBm
# into 600 ohm (the usual national range, dtmf-facts.md); twist (high minus low) 0 to 4 dB
# (AS/CA S002: 2 +- 2 dB); duration within 10 ms of the tone time. A receiver that measures no
# levels or frequencies (Heard.figures False: the MT8880's own decoder, mt8880_ear.py) is
# judged on what it decides: the key decoded (the chip latches a key only when its row and
# column tone each stand out in their group and reach its input sensitivity) and the duration.

from tonebridge_fw import dialstring, keypad

FREQ_TOL = 0.018
LEVEL_DBM = (-13.0, -7.0)
TWIST_DB = (0.0, 4.0)
DURATION_TOL_MS = 10
TONE_MS = 60
SETTLE_MS = 30  # the loop relay closes (5 ms) and the receiver sees a quiet line first


def plan(tone_ms=TONE_MS):
    return [(None, SETTLE_MS)] + dialstring.compile_plan(keypad.KEYS, "catapult", tone_ms, tone_ms)


def judge(h, tone_ms=TONE_MS):
    if h.figures and not _within_limits(h):
        return False
    return abs(h.ms - tone_ms) <= DURATION_TOL_MS


def _within_limits(h):
    lo, hi = keypad.freqs(h.key)
    if abs(h.lo_hz - lo) > FREQ_TOL * lo or abs(h.hi_hz - hi) > FREQ_TOL * hi:
        return False
    for v in (h.lo_dbm, h.hi_dbm):
        if not LEVEL_DBM[0] <= v <= LEVEL_DBM[1]:
            return False
    return TWIST_DB[0] <= h.twist <= TWIST_DB[1]

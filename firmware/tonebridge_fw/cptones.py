# Call-progress tones as data: per country, the frequencies the detector listens on and each
# signal's frequencies and cadence (issue 12 item 4; docs/callprogress.md).
#
# COUNTRIES[name] = (description, freqs, signals)
#   freqs    every frequency (Hz) a signal of the country uses: the Goertzel bank's bins
#   signals  (state, freqs, cadence, need), checked in this order:
#     state    "dial", "ringing", "busy" or "reorder" (congestion, number unobtainable)
#     freqs    the frequencies present while the tone sounds (a subset of the country's)
#     cadence  ms: (on, off, on, off, ...) repeating; or (min_ms,) with need 0: continuous,
#              recognised once it has sounded for min_ms without a break
#     need     how many consecutive finished cadence elements must match before the state is
#              reported: enough that no other signal of the same frequencies could have
#              produced them (1: a tone only this signal has; its run counts while it lasts)
#
# Figures: ITU-T E.180 Supplement 2 (the national tone tables) and the national standards it
# quotes: North America ANSI T1.401 / the AT&T precise tone plan; UK BT SIN 350 (and its
# congestion / "number unobtainable" tones); the CEPT 425 Hz family as CEPT T/CS 20-15 (ETSI
# TR 101 041) recommends it, with the German (busy 480/480, congestion 240/240, within the
# tolerance of the recommended 500/500 and 200/200) and French (ringing 1.5 s / 3.5 s) variants.
# Cadence tolerance (callprogress.Classifier): +-12.5 % +- two detection blocks (64 ms).

COUNTRIES = {
    "us": (
        "North America (ANSI T1.401 precise tones)",
        (350, 440, 480, 620),
        (
            ("dial", (350, 440), (500,), 0),
            ("ringing", (440, 480), (2000, 4000), 1),
            ("busy", (480, 620), (500, 500), 2),
            ("reorder", (480, 620), (250, 250), 2),
        ),
    ),
    "uk": (
        "United Kingdom (BT SIN 350)",
        (350, 400, 440, 450),
        (
            ("dial", (350, 440), (500,), 0),
            ("ringing", (400, 450), (400, 200, 400, 2000), 1),
            ("busy", (400,), (375, 375), 3),
            ("reorder", (400,), (400, 350, 225, 525), 3),  # congestion ("path engaged")
            ("reorder", (400,), (2500,), 0),  # number unobtainable: steady 400 Hz
        ),
    ),
    "cept": (
        "CEPT 425 Hz (T/CS 20-15: most of continental Europe)",
        (425,),
        (
            # longer than any 425 Hz burst below (1.5 s French ringing), so never a burst
            ("dial", (425,), (1800,), 0),
            ("ringing", (425,), (1000, 4000), 2),
            ("ringing", (425,), (1500, 3500), 2),  # France
            ("busy", (425,), (500, 500), 2),
            ("reorder", (425,), (200, 200), 2),
        ),
    ),
}
DEFAULT_COUNTRY = "us"


def country(name):
    """COUNTRIES[name], or ValueError naming the known ones."""
    c = COUNTRIES.get(name)
    if c is None:
        raise ValueError(
            "unknown country %s (known: %s)" % (repr(name), ", ".join(sorted(COUNTRIES)))
        )
    return c


def in_band(signals, block_ms):
    """The country's signals for a receive path that only says "a tone in the call-progress
    band" (the MT8880's CP mode: mt8880_ear.py): one class, power[0], for every tone; so a
    tone no other signal has no longer exists (need 1 -> 2), and a continuous tone must outlast
    every other signal's tone element (at its longest: +12.5 % + two blocks) to be one."""
    longest = 0
    for name, fs, cad, need in signals:
        if need:
            for i in range(0, len(cad), 2):
                ms = cad[i] + cad[i] // 8 + 2 * block_ms
                if ms > longest:
                    longest = ms
    out = []
    for name, fs, cad, need in signals:
        if not need:
            cad = (cad[0] if cad[0] > longest else longest + block_ms,)
        elif need == 1:
            need = 2
        out.append((name, (0,), cad, need))
    return (0,), tuple(out)

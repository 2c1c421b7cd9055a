# A digit the board's receiver heard on its line (listen.py's ADC receiver, mt8880_ear.py's
# chip receiver): what Engine.heard() takes.
#   key                 the key
#   on, off             ticks_ms of the tone's start and end (as the receiver times them)
#   words               what HEARD reports after the key ("ms=<d> ...")
#   ms, lo_dbm, hi_dbm, twist, lo_hz, hi_hz   the figures (0 where the receiver has none)
#   figures             False: the receiver measures no levels or frequencies (the MT8880's
#                       decoder says only which key, and for how long: selftest.judge)


class Heard:
    def __init__(
        self, key, on, off, words, ms=0, dbm=(0.0, 0.0), twist=0.0, hz=(0.0, 0.0), figures=True
    ):
        self.key = key
        self.figures = figures
        self.on = on
        self.off = off
        self.words = words
        self.ms = ms
        self.lo_dbm, self.hi_dbm = dbm
        self.twist = twist
        self.lo_hz, self.hi_hz = hz

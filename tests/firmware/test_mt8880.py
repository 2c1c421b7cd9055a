"""MT8880 driver logic against a small pin double (runs under CPython and MicroPython).

The double is a 6800-style bus decoder: it sees only what the driver does through the pin
interface (Pin(id, mode), value([v]), init(mode), Pin.IN, Pin.OUT) and records each bus
cycle: writes latched on the phi2 falling edge, reads answered while phi2 is high.
"""

from fwtest import raises
from tonebridge_fw.backends.mt8880 import MT8880Backend

PROFILE = {"d_pins": [10, 11, 12, 13], "rs0_pin": 14, "rw_pin": 15, "cs_pin": 16, "phi2_pin": 17}


class Clock:
    def __init__(self):
        self.us = 5000
        self.sleeps = []

    def ticks_us(self):
        return self.us

    def sleep_ms(self, ms):
        self.sleeps.append((self.us, ms))
        self.us += ms * 1000


class Bus:
    """Pin-level double of the chip's bus interface."""

    def __init__(self, clock):
        self.clock = clock
        self.mode = {}
        self.out = {}
        self.cycles = []  # (t_us, "w"|"r", rs0, value)
        self.status = 0
        self.status_script = []  # values returned by successive status reads (then self.status)
        self.rx = 0
        self.errors = []
        self.reading = False
        bus = self

        class Pin:
            IN = 0
            OUT = 1

            def __init__(self, id, mode):
                self.id = id
                bus.mode[id] = mode
                if mode == Pin.OUT and id not in bus.out:
                    bus.out[id] = 0

            def init(self, mode):
                bus.mode[self.id] = mode

            def value(self, v=None):
                if v is None:
                    return bus.read(self.id)
                bus.write(self.id, 1 if v else 0)

        self.Pin = Pin

    def level(self, pin):
        return self.out.get(pin, 0)

    def read(self, pin):
        if self.mode.get(pin) != 0:
            self.errors.append("read of output pin %d" % pin)
        if pin in PROFILE["d_pins"]:
            if not self.reading:
                self.errors.append("D sampled outside a read cycle")
            return (self.value_out >> PROFILE["d_pins"].index(pin)) & 1
        return 0

    def write(self, pin, v):
        if self.mode.get(pin) != 1:
            self.errors.append("write to input pin %d" % pin)
        old = self.out.get(pin, 0)
        self.out[pin] = v
        if pin != PROFILE["phi2_pin"] or old == v:
            return
        cs = self.level(PROFILE["cs_pin"])
        rw = self.level(PROFILE["rw_pin"])
        rs0 = self.level(PROFILE["rs0_pin"])
        if cs:
            self.errors.append("phi2 strobe with /CS high")
            return
        if v and rw:  # read: chip drives D while phi2 is high
            for d in PROFILE["d_pins"]:
                if self.mode.get(d) != 0:
                    self.errors.append("bus conflict: D%d is an output on a read" % d)
            if rs0:
                self.value_out = self.status_script.pop(0) if self.status_script else self.status
            else:
                self.value_out = self.rx  # the receive data register
            self.reading = True
            self.cycles.append((self.clock.us, "r", rs0, self.value_out))
        elif not v and not rw:  # write: latched on the falling edge
            val = 0
            for i, d in enumerate(PROFILE["d_pins"]):
                if self.mode.get(d) != 1:
                    self.errors.append("write cycle with D%d not an output" % d)
                val |= self.level(d) << i
            self.cycles.append((self.clock.us, "w", rs0, val))
        elif not v:
            self.reading = False

    def take(self):
        c = [x[1:] for x in self.cycles]
        self.cycles = []
        return c


def make(mode=None):
    clock = Clock()
    bus = Bus(clock)
    prof = dict(PROFILE)
    if mode:
        prof["mt8880_mode"] = mode
    be = MT8880Backend(prof, pin_class=bus.Pin, ticks_us=clock.ticks_us, sleep_ms=clock.sleep_ms)
    return be, bus, clock


INIT = [("r", 1, 0), ("w", 1, 0), ("w", 1, 0), ("w", 1, 8), ("w", 1, 0), ("r", 1, 0)]


def test_power_up_sequence_manual():
    be, bus, clock = make()
    assert clock.sleeps == [(5000, 100)]
    assert bus.cycles[0][0] >= 5000 + 100000  # first access after the 100 ms wait
    # datasheet sequence, then CRA=RSEL, CRB=BURST (manual mode)
    assert bus.take() == INIT + [("w", 1, 8), ("w", 1, 1)]
    assert be.cra == 0 and be.crb == 1
    assert bus.errors == []


def test_power_up_sequence_burst():
    be, bus, clock = make("burst")
    # CRA = TOUT|IRQ|RSEL, CRB = 0 (burst mode on)
    assert bus.take() == INIT + [("w", 1, 13), ("w", 1, 0)]
    assert be.cra == 5 and be.crb == 0
    assert bus.errors == []


def run_until(be, clock, t_us, step_us=1000):
    while clock.us < t_us:
        clock.us += step_us
        be.service()


def test_manual_mode_schedule():
    be, bus, clock = make()
    bus.take()
    plan = [("5", 100), (None, 50), ("#", 80), (None, 30), ("D", 40)]
    t0 = clock.us
    be.start(plan)
    assert bus.take() == [("w", 0, 5), ("w", 1, 1)]  # code, then TOUT on
    assert be.position() == 0
    run_until(be, clock, t0 + 99000)
    assert bus.take() == [] and be.position() == 0
    run_until(be, clock, t0 + 100000)
    assert bus.take() == [("w", 1, 0)] and be.position() == 1  # TOUT off at 100 ms
    run_until(be, clock, t0 + 150000)
    assert bus.take() == [("w", 0, 0xC), ("w", 1, 1)] and be.position() == 2
    run_until(be, clock, t0 + 230000)
    assert bus.take() == [("w", 1, 0)]
    run_until(be, clock, t0 + 260000)
    assert bus.take() == [("w", 0, 0x0), ("w", 1, 1)]
    run_until(be, clock, t0 + 299000)
    assert be.position() == 4
    run_until(be, clock, t0 + 300000)
    assert bus.take() == [("w", 1, 0)]
    assert be.position() == len(plan)
    assert bus.errors == []


def test_manual_mode_due_ms_is_the_next_step_boundary():
    # the main loop sleeps due_ms() between passes: one pass per step boundary, none early
    be, bus, clock = make()
    bus.take()
    assert be.due_ms() == 0  # not playing
    plan = [("5", 100), (None, 50), ("#", 80), (None, 30), ("D", 40)]
    t0 = clock.us
    be.start(plan)
    assert be.due_ms() == 100
    clock.us = t0 + 99001
    assert be.due_ms() == 1  # rounded up: a pass never comes before the boundary
    clock.us = t0 + 100000
    be.service()
    assert be.due_ms() == 50
    clock.us = t0 + 130000  # a pass in between (input)
    be.service()
    assert be.due_ms() == 20
    bus.take()
    passes = 0
    while be.position() < len(plan):
        clock.us += 1000 * be.due_ms()
        be.service()
        passes += 1
    assert passes == 4 and clock.us == t0 + 300000  # the last four boundaries, on time
    assert bus.take() == [("w", 0, 0xC), ("w", 1, 1), ("w", 1, 0)] + [
        ("w", 0, 0x0),
        ("w", 1, 1),
        ("w", 1, 0),
    ]
    assert be.due_ms() == 0
    assert bus.errors == []


def test_manual_mode_late_service_keeps_schedule():
    # A main loop that stalls for 35 ms still switches every step and does not drift.
    be, bus, clock = make()
    bus.take()
    plan = [("1", 40), (None, 40), ("2", 40)]
    t0 = clock.us
    be.start(plan)
    bus.take()
    run_until(be, clock, t0 + 35000, step_us=35000)
    run_until(be, clock, t0 + 70000, step_us=35000)  # 40 ms due: late by 30 ms
    assert bus.take() == [("w", 1, 0)] and be.position() == 1
    run_until(be, clock, t0 + 80000, step_us=10000)  # 80 ms due: on time
    assert bus.take() == [("w", 0, 2), ("w", 1, 1)] and be.position() == 2


def test_burst_mode_waits_for_transmit_empty():
    be, bus, clock = make("burst")
    bus.take()
    plan = [("7", 100), (None, 40), ("0", 100), (None, 151), ("*", 100)]
    be.start(plan)
    # stale TX_EMPTY cleared by a status read, then the code
    assert bus.take() == [("r", 1, 0), ("w", 0, 7)]
    t_w = clock.us
    run_until(be, clock, t_w + 50000)
    assert be.position() == 0
    run_until(be, clock, t_w + 52000)
    assert be.position() == 1  # chip ended the 51 ms tone: the pause step is playing
    assert bus.take() == []  # no status read while the chip's tone plays
    run_until(be, clock, t_w + 95000)
    assert bus.take() == []  # nor in the first 95 ms of its 102 ms burst
    run_until(be, clock, t_w + 98000)
    assert bus.take() == [("r", 1, 0)] * 3  # polling status from 96 ms on, not writing
    assert be.due_ms() == 4  # the loop sleeps until the pause's nominal end
    bus.status_script = [0x03]  # pause over: IRQ + transmit register empty
    clock.us += 1000
    be.service()
    # silence step 40 ms <= chip pause: next code at once
    assert bus.take() == [("r", 1, 3), ("r", 1, 0), ("w", 0, 0xA)]
    t_w = clock.us
    assert be.due_ms() == 51  # the chip's tone end: the player reports it
    run_until(be, clock, t_w + 102000)
    bus.status_script = [0x02]
    clock.us += 1000
    be.service()
    assert bus.take() == [("r", 1, 0)] * 7 + [("r", 1, 2)]  # 96-102 ms, then b1
    # silence step 151 ms: 100 ms more than the chip's 51 ms pause, in software
    t_w = clock.us
    assert be.due_ms() == 100
    run_until(be, clock, t_w + 99000)
    assert [c for c in bus.take() if c[0] == "w"] == []
    run_until(be, clock, t_w + 100000)
    assert bus.take() == [("r", 1, 0), ("w", 0, 0xB)]
    bus.status_script = [0x02]
    run_until(be, clock, clock.us + 103000)
    assert be.position() == len(plan)
    assert bus.errors == []


def test_abort_silences_at_once():
    be, bus, clock = make()
    bus.take()
    be.start([("9", 1000), (None, 100), ("9", 100)])
    bus.take()
    run_until(be, clock, clock.us + 300000)
    be.abort()
    assert bus.take() == [("w", 1, 0)]  # TOUT off
    assert be.position() == 0  # the step that was sounding
    run_until(be, clock, clock.us + 2000000)
    assert bus.take() == []


def test_abort_burst_clears_tout():
    be, bus, clock = make("burst")
    bus.take()
    be.start([("3", 100), (None, 100)])
    bus.take()
    be.abort()
    assert bus.take() == [("w", 1, 4)]  # CRA = IRQ only: TOUT off
    be.abort()  # already silent: nothing to write
    assert bus.take() == []
    clock.us += 60000  # past the chip's tone time: still the step the abort cut
    assert be.position() == 0
    be.start([("3", 100)])
    assert bus.take() == [("w", 1, 5), ("r", 1, 0), ("w", 0, 3)]


def test_burst_plan_after_a_finished_one_keeps_tout_on():
    # the chip's output stays enabled between plans: no CRA write, just the next code
    be, bus, clock = make("burst")
    bus.take()
    be.start([("3", 100)])
    bus.status_script = [0x02]
    clock.us += 103000
    be.service()
    assert be.position() == 1
    bus.take()
    be.start([("4", 100)])
    assert bus.take() == [("r", 1, 0), ("w", 0, 4)]


def test_control_register_b_written_alone():
    # write_crb sets RSEL in CRA first when it is clear; CRA keeps its other bits
    be, bus, clock = make()
    bus.take()
    be.write_crb(0x1)
    assert bus.take() == [("w", 1, 8), ("w", 1, 1)] and be.cra == 0 and be.crb == 1
    be.write_cra(0x5)
    be.write_crb(0x0)
    assert bus.take() == [("w", 1, 5), ("w", 1, 13), ("w", 1, 0)] and be.cra == 5
    assert bus.errors == []


def test_bad_profiles_and_plans():
    clock = Clock()
    bus = Bus(clock)
    prof = dict(PROFILE)
    prof["d_pins"] = [1, 2, 3]
    e = raises(ValueError, MT8880Backend, prof, bus.Pin, clock.ticks_us, clock.sleep_ms)
    assert "4 data pins" in str(e)
    prof["d_pins"] = [1, 2, 3, 4, 5]
    e = raises(ValueError, MT8880Backend, prof, bus.Pin, clock.ticks_us, clock.sleep_ms)
    assert "4 data pins" in str(e)
    prof = dict(PROFILE)
    prof["mt8880_mode"] = "fast"
    raises(ValueError, MT8880Backend, prof, bus.Pin, clock.ticks_us, clock.sleep_ms)
    be, bus, clock = make()
    raises(ValueError, be.start, [("x", 100)])
    raises(ValueError, be.start, [("1", 0)])
    raises(ValueError, be.start, [("1", 1.5)])
    raises(ValueError, be.start, [("1", 100), (None, -40)])  # negative: not just zero


def test_manual_mode_across_ticks_wrap():
    # MicroPython's ticks_us wraps at 2**30; a schedule crossing it must not stall or jump.
    import sys

    mask = (1 << 30) - 1 if sys.implementation.name == "micropython" else -1
    be, bus, clock = make()
    bus.take()
    clock.us = (1 << 30) - 50000
    be._ticks_us = lambda: clock.us & mask
    plan = [("1", 100), (None, 100), ("2", 100)]
    t0 = clock.us
    be.start(plan)
    bus.take()
    run_until(be, clock, t0 + 99000)
    assert be.position() == 0
    run_until(be, clock, t0 + 100000)
    assert be.position() == 1
    run_until(be, clock, t0 + 200000)
    assert be.position() == 2 and bus.take() == [("w", 1, 0), ("w", 0, 2), ("w", 1, 1)]
    run_until(be, clock, t0 + 300000)
    assert be.position() == 3


def test_manual_mode_holds_a_key_for_ten_seconds_across_ticks_wrap():
    # A held key is one long tone step: TOUT stays on for exactly 10 s, with no bus cycle in
    # between, also when the 10 s cross MicroPython's ticks_us wrap (2**30 us).
    import sys

    mask = (1 << 30) - 1 if sys.implementation.name == "micropython" else -1
    be, bus, clock = make()
    bus.take()
    clock.us = (1 << 30) - 4000000
    be._ticks_us = lambda: clock.us & mask
    t0 = clock.us
    be.start([("5", 10000), (None, 100), ("1", 100)])
    assert bus.take() == [("w", 0, 5), ("w", 1, 1)]
    run_until(be, clock, t0 + 9999000, step_us=1000)
    assert bus.take() == [] and be.position() == 0
    run_until(be, clock, t0 + 10000000)
    assert bus.take() == [("w", 1, 0)] and be.position() == 1
    run_until(be, clock, t0 + 10200000)
    assert be.position() == 3 and bus.errors == []


def test_burst_mode_says_it_cannot_hold_keys():
    # burst tones are the chip's ~51 ms: the engine refuses held keys on such a board
    from tonebridge_fw.dialstring import HOLD_MAX_MS

    assert make("burst")[0].hold_max_ms == 0
    assert make()[0].hold_max_ms == HOLD_MAX_MS == 10000


def test_bus_idle_during_the_power_up_wait():
    # while the chip powers up: /CS high, phi2 low, R/W high (read), RS0 low, D0-D3 inputs
    clock = Clock()
    bus = Bus(clock)
    levels = []

    def sleep_ms(ms):
        p = PROFILE
        levels.append(
            (bus.level(p["cs_pin"]), bus.level(p["phi2_pin"]), bus.level(p["rw_pin"]),
             bus.level(p["rs0_pin"]), [bus.mode[d] for d in p["d_pins"]])
        )  # fmt: skip
        clock.sleep_ms(ms)

    be = MT8880Backend(PROFILE, pin_class=bus.Pin, ticks_us=clock.ticks_us, sleep_ms=sleep_ms)
    assert levels == [(1, 0, 1, 0, [0, 0, 0, 0])]
    assert be.status_reads == 2 and be.position() == 0  # two status reads; no plan yet
    bus.take()
    clock.us += 1000000
    be.service()  # a main loop passing before any plan: nothing to do
    assert bus.take() == [] and be.position() == 0
    # after every cycle the bus is idle again
    p = PROFILE
    assert (bus.level(p["cs_pin"]), bus.level(p["phi2_pin"]), bus.level(p["rw_pin"])) == (1, 0, 1)


def test_status_register_read_whole():
    be, bus, clock = make()
    bus.take()
    for v in (0x0, 0x1, 0x2, 0x4, 0x8, 0xD, 0xF):
        bus.status = v
        assert be.read_status() == v
        assert bus.level(PROFILE["cs_pin"]) == 1  # the read cycle ends with /CS released
    assert be.status_reads == 2 + 7
    assert bus.take() == [("r", 1, v) for v in (0x0, 0x1, 0x2, 0x4, 0x8, 0xD, 0xF)]
    assert bus.errors == []


def test_abort_of_an_idle_or_silent_chip_touches_nothing():
    be, bus, clock = make()
    bus.take()
    be.abort()  # nothing played yet
    assert bus.take() == [] and be.position() == 0
    t0 = clock.us
    be.start([("4", 50), (None, 200), ("6", 50)])
    run_until(be, clock, t0 + 60000)
    bus.take()
    be.abort()  # in the silence: the tone is already off
    assert bus.take() == [] and be.position() == 1
    run_until(be, clock, t0 + 400000)
    assert bus.take() == [] and be.position() == 1


def test_shortest_steps_are_taken():
    be, bus, clock = make()
    bus.take()
    t0 = clock.us
    be.start([("1", 1), (None, 1), ("2", 1)])
    assert bus.take() == [("w", 0, 1), ("w", 1, 1)]
    run_until(be, clock, t0 + 3000)
    assert bus.take() == [("w", 1, 0), ("w", 0, 2), ("w", 1, 1), ("w", 1, 0)]
    assert be.position() == 3


def test_burst_plan_opening_with_a_short_silence_starts_at_once():
    # a sequence that opens with its gap (shorter than the chip's pause): the code goes out
    # at once, without waiting for a transmit-empty status that no burst has caused yet
    be, bus, clock = make("burst")
    bus.take()
    be.start([(None, 30), ("1", 100), (None, 100)])
    assert bus.take() == []
    clock.us += 60000  # a late main loop: the code is not out yet, so step 0 still plays
    assert be.position() == 0
    be.service()
    # stale transmit-empty cleared, then the code (the burst's status is read near its end)
    assert bus.take() == [("r", 1, 0), ("w", 0, 1)]
    assert be.position() == 1


def test_burst_position_at_the_chips_tone_end():
    be, bus, clock = make("burst")
    bus.take()
    be.start([("1", 100), (None, 100)])
    t_w = clock.us
    clock.us = t_w + 50999
    assert be.position() == 0
    clock.us = t_w + 51000  # the chip's 51 ms tone is over: the pause step plays
    assert be.position() == 1
    # a plan that ends with a tone: its step lasts until the chip's pause ended
    be.start([("2", 100)])
    t_w = clock.us
    clock.us = t_w + 60000
    assert be.position() == 0
    bus.status_script = [0x02]
    be.service()
    assert be.position() == 0  # b1 cannot have come yet: not read
    clock.us = t_w + 102000
    be.service()
    assert be.position() == 1


def test_close_leaves_the_bus_released():
    be, bus, clock = make()
    bus.take()
    be.start([("8", 500)])
    bus.take()
    be.close()
    assert bus.take() == [("w", 1, 0)]  # TOUT off
    assert [bus.mode[d] for d in PROFILE["d_pins"]] == [0, 0, 0, 0]  # D released
    assert bus.level(PROFILE["cs_pin"]) == 1
    assert bus.errors == []


def test_burst_wait_ends_on_transmit_empty_only():
    # the receiver half hears our own tone: IRQ + receive-register-full (0x05) while the burst
    # is still sounding, or the delayed-steering bit: neither means the transmit register emptied
    be, bus, clock = make("burst")
    bus.take()
    be.start([("1", 100), (None, 100)])
    bus.take()
    clock.us += 95000
    for st in (0x01, 0x05, 0x08, 0x0D):
        bus.status_script = [st]
        clock.us += 1000
        be.service()
        assert bus.take() == [("r", 1, st)]
        assert be.position() == 1  # the chip's pause: still waiting for b1
        assert be.due_ms() <= 6
    bus.status_script = [0x07]
    be.service()
    assert be.due_ms() == 49  # b1: the 100 ms silence goes on for 49 ms in software


def test_burst_silence_beyond_the_chip_pause_is_timed_to_the_microsecond():
    be, bus, clock = make("burst")
    bus.take()
    be.start([("1", 100), (None, 151), ("2", 100)])
    bus.status_script = [0x02]
    clock.us += 103000
    be.service()  # pause over: the silence step begins now, 100 ms to wait in software
    t = clock.us
    bus.take()
    clock.us = t + 99999
    be.service()
    assert [c for c in bus.take() if c[0] == "w"] == [] and be.position() == 1
    clock.us = t + 100000
    be.service()
    assert [c for c in bus.take() if c[0] == "w"] == [("w", 0, 2)] and be.position() == 2


def test_burst_silence_ends_on_a_late_main_loop():
    # a pass 50 ms late still ends the software silence (and sends the next code)
    be, bus, clock = make("burst")
    bus.take()
    be.start([("1", 100), (None, 151), ("2", 100)])
    bus.status_script = [0x02]
    clock.us += 103000
    be.service()
    bus.take()
    clock.us += 150000
    be.service()
    assert [c for c in bus.take() if c[0] == "w"] == [("w", 0, 2)] and be.position() == 2

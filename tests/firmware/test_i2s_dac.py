"""I2S DAC backend against a machine.I2S double with the ports' non-blocking semantics (runs under
CPython and MicroPython): the I2S configuration it asks for, the samples each write hands over
(the Renderer's, padded with idle; stereo frames L = R), the ping-pong between the irq handler
and service(), underruns, the played-frames estimate and position() on an injected microsecond
clock, back-to-back plans, abort and close. The audio itself is checked on the simulated
PCM5102A in tests/sim_i2s."""

from fwtest import raises
from tonebridge_fw.backends.i2s_dac import I2SBackend
from tonebridge_fw.synth import Renderer


class Clock:
    def __init__(self, us=1000000):
        self.us = us

    def ticks_us(self):
        return self.us

    def at_frames(self, t0, frames, rate):
        """Set the clock to the first microsecond at which `frames` frames have passed at `rate`
        (an exact count for rates that are whole kHz)."""
        self.us = t0 + (frames * 1000000 + rate - 1) // rate


class Pin:
    def __init__(self, pin_id):
        self.id = pin_id


class I2S:
    """machine.I2S as the backend uses it, non-blocking: write() returns at once; the test plays
    the port, which copies the caller's buffer into its ring (read when copied, as on a board)
    and then runs the irq handler."""

    TX = 5  # values unlike MONO/STEREO/RX, so a mixed-up constant shows
    RX = 4
    MONO = 0
    STEREO = 1
    made = []

    def __init__(self, i2s_id, sck, ws, sd, mode, bits, format, rate, ibuf):
        self.args = (i2s_id, sck.id, ws.id, sd.id, mode, bits, format, rate, ibuf)
        self.handler = None
        self.pending = None
        self.copied = []  # each buffer as the port copied it
        self.writes = 0
        self.closed = False
        I2S.made.append(self)

    def irq(self, handler):
        self.handler = handler

    def write(self, buf):
        assert not self.closed, "write after deinit"
        assert self.pending is None, "write while a write is in flight"
        self.pending = buf
        self.writes += 1
        return 2 * len(buf)

    def deinit(self):
        self.closed = True
        self.pending = None

    def accept(self):
        """The port has copied the buffer in flight into its ring: the irq handler runs."""
        buf = self.pending
        self.pending = None
        self.copied.append(list(buf))
        self.handler(self)


ESP32 = {"mcu": "esp32", "sck_pin": 26, "ws_pin": 25, "sd_pin": 22}


def make(clock=None, **over):
    I2S.made = []
    prof = dict(ESP32)
    prof.update(over)
    if clock is None:
        clock = Clock()
    be = I2SBackend(prof, i2s_class=I2S, pin_class=Pin, ticks_us=clock.ticks_us)
    return be, I2S.made[-1], clock


def reference(plan, rate, level=None):
    if level is None:
        r = Renderer(rate, bits=16, signed=True)
    else:
        r = Renderer(rate, bits=16, signed=True, level=level)
    r.load(plan)
    return r, list(r.render(plan))


def take_all(be, i2s, limit=1000):
    """The port takes every buffer as soon as it is written; the main loop's passes (two per
    buffer here) refill the one freed."""
    n = 0
    while i2s.pending is not None and n < limit:
        i2s.accept()
        be.service()
        be.service()
        n += 1
    return n


PLAN = [("1", 40), (None, 40), ("2", 40)]


def test_i2s_opened_as_the_profile_says():
    be, i2s, clock = make()
    assert i2s.args == (0, 26, 25, 22, I2S.TX, 16, I2S.MONO, 44100, 8192)
    assert i2s.handler is not None and i2s.writes == 0
    assert be.rate == 44100 and be.channels == 1 and be.ibuf == 8192
    be, i2s, clock = make(i2s_id=1, i2s_format="stereo", i2s_rate=16000, i2s_ibuf=4096)
    assert i2s.args == (1, 26, 25, 22, I2S.TX, 16, I2S.STEREO, 16000, 4096)
    assert be.rate == 16000 and be.channels == 2 and be.ibuf == 4096
    be, i2s, clock = make(i2s_format="mono")
    assert i2s.args[6] == I2S.MONO and be.channels == 1
    e = raises(ValueError, make, i2s_format="tdm")
    assert str(e) == "i2s_format must be 'mono' or 'stereo'"


def test_mono_writes_carry_the_renderer_samples_then_idle():
    r, want = reference(PLAN, 16000)
    # buffers of 256 frames, and of 244, where the plan's last sample is alone in its buffer
    assert len(want) % 244 == 1
    for size in (256, 244):
        be, i2s, clock = make(i2s_rate=16000, i2s_buf_frames=size)
        be.start(PLAN)
        assert i2s.writes == 1 and len(i2s.pending) == size
        take_all(be, i2s)
        n = (len(want) + size - 1) // size
        assert len(i2s.copied) == n and i2s.writes == n, size
        assert [len(b) for b in i2s.copied] == [size] * n
        got = [s for b in i2s.copied for s in b]
        assert got == want + [0] * (size * n - len(want))  # the last buffer padded with idle
        assert be.underruns == 0
        clock.us += 10000000
        assert be.position() == len(PLAN)


def test_stereo_frames_carry_each_sample_on_both_channels():
    be, i2s, clock = make(i2s_rate=16000, i2s_buf_frames=128, i2s_format="stereo")
    be.start(PLAN)
    assert len(i2s.pending) == 256
    take_all(be, i2s)
    r, want = reference(PLAN, 16000)
    n = (len(want) + 127) // 128
    assert len(i2s.copied) == n and [len(b) for b in i2s.copied] == [256] * n
    got = [s for b in i2s.copied for s in b]
    assert got[0::2] == want + [0] * (128 * n - len(want))
    assert got[1::2] == got[0::2]
    assert be.underruns == 0


def test_level_from_the_profile_and_from_configure():
    be, i2s, clock = make(i2s_rate=16000, level=0.5)
    be.start(PLAN)
    take_all(be, i2s)
    r, want = reference(PLAN, 16000, level=0.5)
    got = [s for b in i2s.copied for s in b]
    assert got[: len(want)] == want
    assert be.configure() == {"twist": 2.0, "level": 0.5}
    assert be.configure(level=0.25, twist=3.0) == {"twist": 3.0, "level": 0.25}
    be.start(PLAN)  # the next plan plays at the new settings (the port reopened: still playing)
    i2s = I2S.made[-1]
    take_all(be, i2s)
    r = Renderer(16000, bits=16, signed=True, level=0.25, twist_db=3.0)
    want = list(r.render(PLAN))
    got = [s for b in i2s.copied for s in b]
    assert got[: len(want)] == want


def test_handler_hands_over_the_filled_buffer_and_counts_underruns():
    be, i2s, clock = make(i2s_rate=16000, i2s_buf_frames=256)
    be.start([("5", 200)])  # ~13 buffers
    first = i2s.pending
    i2s.accept()  # the handler writes the other buffer, already filled by start()
    assert i2s.writes == 2 and i2s.pending is not first and be.underruns == 0
    i2s.accept()  # the main loop did not refill the first one in time
    assert i2s.pending is None and i2s.writes == 2 and be.underruns == 1
    be.service()  # refills it and writes it at once
    assert i2s.pending is first and i2s.writes == 3
    be.service()  # the other buffer refilled; one write in flight at a time
    assert i2s.writes == 3
    i2s.accept()
    assert i2s.writes == 4 and be.underruns == 1
    be.service()
    take_all(be, i2s)
    r, want = reference([("5", 200)], 16000)
    got = [s for b in i2s.copied for s in b]
    assert got[: len(want)] == want and be.underruns == 1
    # the last buffer taken: nothing is left to play, so that is no underrun
    assert i2s.pending is None


def test_played_frames_follow_the_clock_within_what_was_written():
    # 16 kHz: frames = us * 16 // 1000 exactly; latency 100 frames
    clock = Clock()
    be, i2s, clock = make(clock, i2s_rate=16000, i2s_buf_frames=256, i2s_ibuf=65536,
                          i2s_latency_frames=100)  # fmt: skip
    t0 = clock.us
    be.start([("5", 1000)])
    assert be.played() == 0 and be.position() == -1
    clock.us = t0 + 6250  # 100 frames by the clock: the latency, nothing out yet
    assert be.played() == 0
    clock.us = t0 + 6313  # 101 frames: the first one has left the DAC
    assert be.played() == 1
    clock.us = t0 + 6375  # 102
    assert be.played() == 2
    for _ in range(20):  # the port takes 20 buffers at once (its ring is large)
        i2s.accept()
        be.service()
    # written: 21 buffers of 256 frames; the clock since start minus the latency
    clock.us = t0 + 100000
    assert be.played() == 1600 - 100
    clock.us = t0 + 123457
    assert be.played() == 1975 - 100
    clock.us = t0 + 1000000
    assert be.played() == 21 * 256  # never more than was written
    # no irq for a second: an underrun; the next irq pulls the time base back to what was
    # written (+ the latency) at that moment
    i2s.accept()
    clock.us = t0 + 1010000
    assert be.played() == 21 * 256 + 100 + 160 - 100


def test_clock_arithmetic_at_a_rate_that_is_not_whole_khz():
    # 44.1 kHz: (dt // 1000) * r // 1000 + (dt % 1000) * r // 10**6 frames, never ahead of
    # dt * r / 10**6 and at most 1 frame behind
    clock = Clock(0)
    be, i2s, clock = make(clock, i2s_buf_frames=8192, i2s_ibuf=1 << 20, i2s_latency_frames=0)
    be.start([("5", 2000)])
    for _ in range(6):
        i2s.accept()
        be.service()
    for dt in (999, 1000, 1001, 123457, 1000500, 1000999):
        clock.us = dt
        exact = dt * 44100 // 1000000
        assert exact - 1 <= be.played() <= exact, (dt, be.played(), exact)


def test_clock_frames_exact_where_the_rate_divides_evenly():
    # 48 kHz: 125 us is exactly 6 frames, 1.125 ms exactly 54 (the sub-millisecond part counts
    # whole frames, not one short)
    clock = Clock(0)
    be, i2s, clock = make(clock, i2s_rate=48000, i2s_buf_frames=8192, i2s_ibuf=1 << 20,
                          i2s_latency_frames=0)  # fmt: skip
    be.start([("5", 2000)])
    for _ in range(6):
        i2s.accept()
        be.service()
    for dt, frames in ((124, 5), (125, 6), (1125, 54), (1000250, 48012)):
        clock.us = dt
        assert be.played() == frames, dt


def test_played_never_below_what_the_ring_cannot_hold():
    # frames the port took into its ring beyond its capacity have left it: the clock (here
    # stopped) cannot put the estimate below accepted - ring - latency
    # both: a 1024-frame ring (a stereo ibuf of 4098 bytes holds 1024 whole frames)
    for fmt, ibuf in (("mono", 2048), ("stereo", 4096), ("stereo", 4098)):
        be, i2s, clock = make(i2s_rate=16000, i2s_buf_frames=256, i2s_ibuf=ibuf,
                              i2s_format=fmt, i2s_latency_frames=100)  # fmt: skip
        be.start([("5", 1000)])
        for _ in range(8):
            i2s.accept()
            be.service()
        assert be.played() == 8 * 256 - 1024 - 100, (fmt, ibuf)


def test_latency_default_per_port():
    # 3 DMA buffers of the port: rp2 32 frames, esp32 (and any other port) 256 frames; a
    # profile may set it
    for over, lat in (({}, 768), ({"mcu": "rp2040"}, 96), ({"mcu": "rp2350"}, 96),
                      ({"mcu": "esp32s3"}, 768), ({"mcu": "stm32"}, 768),
                      ({"i2s_latency_frames": 7}, 7)):  # fmt: skip
        clock = Clock()
        be, i2s, clock = make(clock, i2s_rate=16000, i2s_buf_frames=1024, **over)
        t0 = clock.us
        be.start([("5", 1000)])
        for _ in range(3):
            i2s.accept()
            be.service()
        clock.us = t0 + 125000  # 2000 frames
        assert be.played() == 2000 - lat, (over, be.played())


def test_position_steps_at_the_plan_boundaries_once_heard():
    clock = Clock()
    be, i2s, clock = make(clock, i2s_rate=16000, i2s_buf_frames=256, i2s_latency_frames=0)
    r, want = reference(PLAN, 16000)
    h = r.lead_in
    b1, b2, total = r.step_start(1), r.step_start(2), r.total_samples
    assert be.position() == 0  # no plan yet
    t0 = clock.us
    be.start(PLAN)
    n = take_all(be, i2s)
    assert n == (total + 255) // 256 and i2s.pending is None
    for frames, pos in ((0, -1), (h - 1, -1), (h, 0), (b1 - 1, 0), (b1, 1), (b2 - 1, 1),
                        (b2, 2), (total - 1, 2)):  # fmt: skip
        clock.at_frames(t0, frames, 16000)
        assert be.position() == pos, (frames, pos, be.position())
    clock.at_frames(t0, total, 16000)
    assert be.position() == 3  # all of it has left the DAC
    clock.us = t0
    assert be.position() == 3  # and the plan stays finished
    be.service()
    assert i2s.writes == n


def test_position_waits_for_the_last_buffer_to_be_taken():
    # 8 buffers of 256 frames (the last one is buffer 1) and 7 of 300 (the last is buffer 0)
    for n in (256, 300):
        clock = Clock()
        be, i2s, clock = make(clock, i2s_rate=16000, i2s_buf_frames=n, i2s_latency_frames=0)
        r, want = reference(PLAN, 16000)
        t0 = clock.us
        be.start(PLAN)
        k = 0
        while k < (r.total_samples + n - 1) // n - 1:  # all but the last buffer taken
            i2s.accept()
            be.service()
            k += 1
        assert i2s.pending is not None
        clock.at_frames(t0, r.total_samples, 16000)
        assert be.position() == 2, n  # the last step: not finished while its buffer is in flight
        clock.at_frames(t0, 100000, 16000)
        assert be.position() == 2, n
        i2s.accept()
        assert be.position() == 3


def test_a_plan_started_right_after_another_counts_the_queued_padding():
    # the first plan's last buffer was padded with idle: a plan started as soon as the first
    # finished is heard only after that padding left the DAC
    clock = Clock()
    be, i2s, clock = make(clock, i2s_rate=16000, i2s_buf_frames=256, i2s_latency_frames=0)
    r, want = reference(PLAN, 16000)
    total = r.total_samples
    pad = (total + 255) // 256 * 256 - total
    assert pad > 20
    t0 = clock.us
    be.start(PLAN)
    take_all(be, i2s)
    clock.at_frames(t0, total, 16000)
    assert be.position() == 3
    t1 = clock.us
    be.start(PLAN)
    take_all(be, i2s)
    h = r.lead_in
    clock.at_frames(t1, pad + h - 1, 16000)
    assert be.position() == -1
    clock.at_frames(t1, pad + h, 16000)
    assert be.position() == 0
    clock.at_frames(t1, pad + r.step_start(1), 16000)
    assert be.position() == 1
    # a plan started long after: nothing is queued any more
    clock.us += 5000000
    assert be.position() == 3
    t2 = clock.us
    be.start(PLAN)
    take_all(be, i2s)
    clock.at_frames(t2, h, 16000)
    assert be.position() == 0
    # a plan started one frame after the last one's padding left the DAC: nothing queued
    clock.at_frames(t2, total + pad + 1, 16000)
    assert be.position() == 3
    t3 = clock.us
    be.start(PLAN)
    take_all(be, i2s)
    clock.at_frames(t3, h - 1, 16000)
    assert be.position() == -1
    clock.at_frames(t3, h, 16000)
    assert be.position() == 0


def test_queued_padding_is_capped_by_what_the_port_can_hold():
    # latency 20 frames, a 32-frame ring; the port took the whole first plan at once, so by the
    # ring's bound it has left (clock stopped): a plan started now is queued behind at most
    # 32 + 20 frames, i.e. 32 beyond the latency, not behind everything that was written
    clock = Clock()
    be, i2s, clock = make(clock, i2s_rate=16000, i2s_buf_frames=256, i2s_ibuf=64,
                          i2s_latency_frames=20)  # fmt: skip
    r, want = reference(PLAN, 16000)
    t0 = clock.us
    be.start(PLAN)
    take_all(be, i2s)
    assert be.played() == 2048 - 32 - 20 and be.position() == 3
    be.start(PLAN)  # one buffer in flight, none taken yet
    h = r.lead_in
    clock.at_frames(t0, 32 + 20 + h - 1, 16000)
    assert be.position() == -1
    clock.at_frames(t0, 32 + 20 + h, 16000)
    assert be.position() == 0


def test_abort_silences_by_reopening_the_port():
    clock = Clock()
    be, i2s, clock = make(clock, i2s_rate=16000, i2s_buf_frames=256, i2s_latency_frames=0)
    r, want = reference(PLAN, 16000)
    t0 = clock.us
    be.start(PLAN)
    take_all(be, i2s)
    clock.at_frames(t0, r.step_start(1) + 10, 16000)
    be.abort()
    # the queued samples cannot be dropped: the port is stopped and opened afresh, as before
    assert i2s.closed and len(I2S.made) == 2
    fresh = I2S.made[-1]
    assert fresh.args == i2s.args and fresh.handler is not None and not fresh.closed
    assert be.position() == 1  # where it stopped
    clock.us += 1000000
    be.service()
    assert be.position() == 1 and fresh.writes == 0
    be.abort()  # nothing playing: no second reopen
    assert len(I2S.made) == 2 and not fresh.closed
    # a late irq of the old port changes nothing
    i2s.handler(i2s)
    assert fresh.writes == 0 and be.position() == 1
    be.start(PLAN)
    assert fresh.writes == 1
    # the port was emptied by the reopen: the new plan is heard after the latency alone (0
    # here), not behind the aborted plan's frames
    t1 = clock.us
    h = r.lead_in
    clock.at_frames(t1, h - 1, 16000)
    assert be.position() == -1
    clock.at_frames(t1, h, 16000)
    assert be.position() == 0


def test_a_first_plan_is_heard_after_the_latency_alone():
    # also long after boot (600 s: ticks_us is more than half its 2**30 wrap away from 0)
    for boot_us in (1000000, 600000000):
        _first_plan_heard_after_the_latency(Clock(boot_us))


def _first_plan_heard_after_the_latency(clock):
    be, i2s, clock = make(clock, i2s_rate=16000, i2s_buf_frames=256, i2s_latency_frames=0)
    r, want = reference(PLAN, 16000)
    t0 = clock.us
    be.start(PLAN)
    h = r.lead_in
    clock.at_frames(t0, h - 1, 16000)
    assert be.position() == -1
    clock.at_frames(t0, h, 16000)
    assert be.position() == 0
    # aborted and started again at once: the reopened port holds nothing of the first
    be.abort()
    t1 = clock.us
    be.start(PLAN)
    clock.at_frames(t1, h - 1, 16000)
    assert be.position() == -1
    clock.at_frames(t1, h, 16000)
    assert be.position() == 0


def test_start_while_playing_aborts_first():
    be, i2s, clock = make(i2s_rate=16000, i2s_buf_frames=256)
    be.start([("5", 500)])
    i2s.accept()
    be.start(PLAN)
    assert i2s.closed and len(I2S.made) == 2 and I2S.made[-1].writes == 1
    # restarted while both buffers still hold the old plan: the new port gets only the new one
    be.start([("5", 500)])
    be.start(PLAN)
    port = I2S.made[-1]
    take_all(be, port)
    r, want = reference(PLAN, 16000)
    got = [s for b in port.copied for s in b]
    assert got[: len(want)] == want and set(got[len(want) :]) <= {0}


def test_an_empty_plan_is_done_at_once():
    be, i2s, clock = make(i2s_rate=16000)
    be.start([])
    assert i2s.writes == 0 and be.position() == 0 and be.played() == 0
    be.service()
    assert i2s.writes == 0


def test_close_releases_the_port():
    be, i2s, clock = make(i2s_rate=16000)
    be.close()
    assert i2s.closed and be.position() == 0 and be.played() == 0
    be.close()  # twice is harmless
    be, i2s, clock = make(i2s_rate=16000, i2s_buf_frames=256, i2s_latency_frames=0)
    be.start(PLAN)
    be.close()
    assert i2s.closed and len(I2S.made) == 1
    assert be.played() == reference(PLAN, 16000)[0].total_samples


def test_machine_supplies_whichever_class_is_not_given():
    import sys

    class Machine:
        pass

    for given in ("i2s", "pin"):
        m = Machine()
        m.I2S = I2S
        m.Pin = Pin
        I2S.made = []
        sys.modules["machine"] = m
        try:
            if given == "i2s":
                be = I2SBackend(ESP32, i2s_class=I2S, ticks_us=Clock().ticks_us)
            else:
                be = I2SBackend(ESP32, pin_class=Pin, ticks_us=Clock().ticks_us)
        finally:
            del sys.modules["machine"]
        assert I2S.made[-1].args[1:4] == (26, 25, 22), given
        be.start(PLAN)
        assert I2S.made[-1].writes == 1


def test_abort_before_any_plan_leaves_the_port_alone():
    be, i2s, clock = make()
    be.abort()
    assert len(I2S.made) == 1 and not i2s.closed and be.position() == 0
    be.start(PLAN)
    assert i2s.writes == 1

"""PWM+DMA backend sequencing against register-level doubles of machine and rp2 (runs under
CPython and MicroPython). The audio itself is checked on the simulated hardware in tests/sim;
here: the registers it programs, the DMA hand-over between the two channels, underrun recovery,
abort. The doubles are installed in sys.modules only while the backend is imported."""

import sys

PWM0 = 0x40050000  # RP2040 PWM base; GP16 is slice 0 channel A


class Mem:
    def __init__(self):
        self.regs = {}
        self.log = []

    def __setitem__(self, addr, v):
        self.regs[addr] = v
        self.log.append((addr, v))

    def __getitem__(self, addr):
        return self.regs.get(addr, 0)


class FakeMachine:
    def __init__(self, hz):
        self.hz = hz
        self.mem32 = Mem()
        self.pwm_pins = []
        outer = self

        class Pin:
            def __init__(self, n, *a, **k):
                self.n = n

        class PWM:
            def __init__(self, pin):
                outer.pwm_pins.append(pin.n)

        self.Pin = Pin
        self.PWM = PWM

    def freq(self):
        return self.hz


class FakeDMA:
    """Just enough of rp2.DMA: registers as attributes; the test completes transfers."""

    made = []
    on_access = None  # called after each ctrl write and active() call (hardware moving meanwhile)

    def __init__(self):
        self.channel = len(FakeDMA.made)
        FakeDMA.made.append(self)
        self.read = 0
        self.write = 0
        self.count = 0
        self.reload = 0
        self._ctrl = 0
        self.busy = False
        self.buf = None
        self.triggers = 0
        self.instant = False  # finish every transfer sequence the moment it starts

    @property
    def ctrl(self):
        return self._ctrl

    @ctrl.setter
    def ctrl(self, v):
        self._ctrl = v
        if FakeDMA.on_access is not None:
            FakeDMA.on_access()

    def pack_ctrl(self, default=None, **kw):
        f = {"chain_to": self.channel, "treq_sel": 63, "size": 2}
        if default is not None:
            f = dict(default)
        for k in kw:
            f[k] = kw[k]
        return f

    def config(self, read=None, write=None, count=None, ctrl=None, trigger=False):
        if read is not None:
            self.buf = read
            self.read = 0x20000000 + 0x1000 * self.channel
        if write is not None:
            self.write = write
        if count is not None:
            self.reload = count
        if ctrl is not None:
            self.ctrl = ctrl
        if trigger:
            self.active(1)

    def active(self, v=None):
        if v is not None:
            if v:
                self.busy = True
                self.count = self.reload
                self.triggers += 1
                if self.instant:
                    self.complete()
            else:
                self.busy = False
            if FakeDMA.on_access is not None:
                FakeDMA.on_access()
        return self.busy

    def close(self):
        pass

    # test side: the hardware finishes this channel's transfers
    def complete(self, chain=True):
        self.moved(self.count)
        self.busy = False
        to = self.ctrl["chain_to"]
        if chain and to != self.channel:
            FakeDMA.made[to].active(1)

    def moved(self, n):
        """The hardware moved n more samples: each went to the write address (CC), the last
        one stays there, as on the chip."""
        done = self.reload - self.count
        for i in range(done, done + n):
            FakeDMA.mem[self.write] = self.buf[i]
        self.read += 2 * n
        self.count -= n


class FakeRp2:
    DMA = FakeDMA


def _forget():
    # import the backend afresh each time, bound to this test's doubles
    sys.modules.pop("tonebridge_fw.backends.pwm_dma_rp2", None)
    import tonebridge_fw.backends as pkg

    if "pwm_dma_rp2" in pkg.__dict__:
        delattr(pkg, "pwm_dma_rp2")


def _backend(hz=125000000, mcu="rp2040", chunk=64, pin=16, **kw):
    FakeDMA.made = []
    m = FakeMachine(hz)
    FakeDMA.mem = m.mem32
    sys.modules["machine"] = m
    sys.modules["rp2"] = FakeRp2
    _forget()
    try:
        from tonebridge_fw.backends import pwm_dma_rp2

        if chunk is None:
            be = pwm_dma_rp2.PwmDmaBackend({"mcu": mcu, "pwm_pin": pin})
        else:
            be = pwm_dma_rp2.PwmDmaBackend({"mcu": mcu, "pwm_pin": pin}, chunk=chunk, **kw)
    finally:
        del sys.modules["machine"]
        del sys.modules["rp2"]
        _forget()
    return be, m, FakeDMA.made


def test_registers_and_sample_rate_from_the_clock():
    be, m, dma = _backend()
    assert m.pwm_pins == [16]
    r = m.mem32.regs
    assert r[PWM0 + 0x10] == 1023  # TOP: 10-bit duty
    assert r[PWM0 + 0x04] == 16  # DIV 1.0 (8.4 fixed point): 125 MHz / (2 * 1024) ~ 61 kHz
    assert r[PWM0 + 0x0C] == 512 | (512 << 16)  # idle at mid-scale
    assert r[PWM0] == 3  # phase-correct (bit 1) and enabled (bit 0), written last
    assert m.mem32.log[-1] == (PWM0, 3)
    assert be.rate == (125000000 * 16, 16 * 2 * 1024)
    assert 61035.1 < be.sample_rate < 61035.2
    for d in dma:
        assert d.write == PWM0 + 0x0C
        assert d.ctrl["size"] == 1 and d.ctrl["inc_read"] == 1 and d.ctrl["inc_write"] == 0
        assert d.ctrl["treq_sel"] == 24  # DREQ_PWM_WRAP0
        assert d.ctrl["chain_to"] == d.channel  # not chained while idle
        assert d.ctrl["irq_quiet"] == 1 and d.ctrl["high_pri"] == 1  # no IRQ, DMA priority
    # the slice set up in this order: stopped, divider, wrap, mid-scale, counter, started
    assert m.mem32.log == [
        (PWM0, 0), (PWM0 + 0x04, 16), (PWM0 + 0x10, 1023), (PWM0 + 0x0C, 512 | (512 << 16)),
        (PWM0 + 0x08, 0), (PWM0, 3),
    ]  # fmt: skip
    assert be.chunks == 0 and be.underruns == 0 and be.samples_played() == 0


def test_rp2350_constants():
    be, m, dma = _backend(150000000, "rp2350")
    base = 0x400A8000
    assert m.mem32.regs[base + 0x04] == 16  # DIV 1 at 150 MHz: 73242 Hz
    assert m.mem32.regs[base] == 3
    assert dma[0].ctrl["treq_sel"] == 32
    assert be.rate == (150000000 * 16, 16 * 2 * 1024)
    assert 73242.1 < be.sample_rate < 73242.2


def test_divider_is_an_integer_from_the_clock():
    # an overclocked RP2040 keeps the rate near the target with a whole divider (no fraction:
    # a fractional divider jitters the pulse edges)
    be, m, dma = _backend(250000000)
    assert m.mem32.regs[PWM0 + 0x04] == 32  # DIV 2.0
    assert 61035.1 < be.sample_rate < 61035.2
    be, m, dma = _backend(48000000)  # underclocked: DIV 1 is the floor
    assert m.mem32.regs[PWM0 + 0x04] == 16
    assert be.rate == (48000000 * 16, 16 * 2 * 1024)
    from_div = []
    for hz in (100000000, 133000000, 200000000, 300000000):
        be, m, dma = _backend(hz)
        div16 = m.mem32.regs[PWM0 + 0x04]
        assert div16 % 16 == 0
        from_div.append(div16 // 16)
        assert be.rate == (hz * 16, div16 * 2 * 1024)
    assert from_div == [1, 1, 2, 2]


PLAN = [("1", 40), (None, 40), ("2", 40)]


def test_double_buffered_hand_over_and_position():
    be, m, (a, b) = _backend(chunk=512)
    be.start(PLAN)
    assert a.busy and a.triggers == 1 and a.reload == 384  # the first chunk is short
    assert not b.busy and b.reload == 512
    assert a.ctrl["chain_to"] == b.channel  # the next chunk is armed and chained
    assert be.position() == 0
    total = be._r.total_samples
    played = 0
    steps = []
    while be.busy():
        cur = a if a.busy else b
        played += cur.count
        cur.complete()
        be.service()
        steps.append(be.position())
    assert be.underruns == 0
    assert steps[-1] == len(PLAN)
    assert steps == sorted(steps)
    assert played >= total
    assert m.mem32.regs[PWM0 + 0x0C] == 512 | (512 << 16)


def _played(be, dma):
    """Every duty value the DMA writes while `be` plays to the end (the chain followed)."""
    out = []
    while be.busy():
        cur = dma[0] if dma[0].busy else dma[1]
        out.extend(cur.buf[cur.reload - cur.count : cur.reload])
        cur.complete()
        be.service()
    return out


def test_the_first_chunk_is_short_and_the_samples_are_the_same():
    # start() triggers the DMA on a short first chunk (less to render before the tone starts)
    # and renders a whole buffer while it plays: the line gets the very samples one whole-
    # buffer start gives, only sooner
    plan = [("1", 40), (None, 40), ("2", 100)]
    be, m, dma = _backend(chunk=None)
    be.start(plan)
    assert dma[0].busy and dma[0].reload == 384 and dma[1].reload == 1024
    assert dma[0].ctrl["chain_to"] == dma[1].channel
    short = _played(be, dma)
    assert be.underruns == 0 and be.position() == len(plan)
    be, m, dma = _backend(chunk=1024, first_chunk=1024)  # the former start: a whole buffer
    be.start(plan)
    assert dma[0].reload == 1024
    assert short == _played(be, dma)
    assert len(short) >= be._r.total_samples


def test_late_chain_is_detected_and_restarted():
    be, m, (a, b) = _backend(chunk=512)
    be.start(PLAN)
    a.complete(chain=False)  # the main loop was late: the chain was not followed
    be.service()
    assert be.underruns == 1
    assert b.busy and b.triggers == 1


def test_abort_stops_at_once_and_reports_where():
    be, m, (a, b) = _backend(chunk=512)
    be.start(PLAN)
    a.complete()
    be.service()
    b.moved(412)  # part way through the second chunk: 100 samples left
    cc = m.mem32.regs[PWM0 + 0x0C]
    assert cc != 512 | (512 << 16) and cc != 512  # mid-tone: CC holds a tone sample
    pos = be.position()
    be.abort()
    assert not a.busy and not b.busy
    assert be.position() == pos
    assert not be.busy()
    # back at mid-scale: no DC step, no click when the line is unmuted next time
    assert m.mem32.regs[PWM0 + 0x0C] == 512 | (512 << 16)


def _module():
    """The backend module, imported with the doubles in place (its pure helpers stay usable)."""
    sys.modules["machine"] = FakeMachine(125000000)
    sys.modules["rp2"] = FakeRp2
    _forget()
    try:
        from tonebridge_fw.backends import pwm_dma_rp2

        return pwm_dma_rp2
    finally:
        del sys.modules["machine"]
        del sys.modules["rp2"]
        _forget()


def test_slice_of_every_pin():
    mod = _module()
    want = {0: 0, 1: 0, 2: 1, 15: 7, 16: 0, 17: 0, 30: 7, 31: 7, 32: 8, 33: 8, 34: 9, 47: 11}
    for pin in want:
        assert mod.slice_of(pin) == want[pin], pin


def test_refuses_a_non_rp2_mcu():
    FakeDMA.made = []
    sys.modules["machine"] = FakeMachine(1)
    sys.modules["rp2"] = FakeRp2
    _forget()
    try:
        from tonebridge_fw.backends import pwm_dma_rp2

        try:
            pwm_dma_rp2.PwmDmaBackend({"mcu": "esp32", "pwm_pin": 16})
        except ValueError as e:
            assert str(e) == "pwm_dma backend needs an rp2 mcu, not esp32"
        else:
            raise AssertionError("no ValueError")
    finally:
        del sys.modules["machine"]
        del sys.modules["rp2"]
        _forget()


def test_idle_backend_is_not_busy_and_counts_chunks():
    be, m, (a, b) = _backend(chunk=512)
    assert not be.busy() and be.position() == 0
    be.start(PLAN)
    assert be.busy() and be.chunks == 1
    n = 0
    while be.busy():
        cur = a if a.busy else b
        cur.complete()
        n += 1
        be.service()
    assert be.chunks == n  # one per chunk the DMA played


def test_close_stops_the_slice_and_the_channels():
    be, m, (a, b) = _backend(chunk=512)
    be.start(PLAN)
    closed = []
    a.close = lambda: closed.append("a")
    b.close = lambda: closed.append("b")
    be.close()
    assert m.mem32.regs[PWM0] == 0  # CSR: slice disabled
    assert sorted(closed) == ["a", "b"] and not be.busy()


def test_registers_of_another_slice():
    # GP5 is slice 2 channel B: registers 2 * 0x14 above slice 0, its own wrap DREQ
    be, m, dma = _backend(pin=5)
    base = PWM0 + 2 * 0x14
    assert be.slice == 2
    assert m.mem32.log == [
        (base, 0), (base + 0x04, 16), (base + 0x10, 1023), (base + 0x0C, 512 | (512 << 16)),
        (base + 0x08, 0), (base, 3),
    ]  # fmt: skip
    for d in dma:
        assert d.write == base + 0x0C and d.ctrl["treq_sel"] == 24 + 2
    be, m, dma = _backend(150000000, "rp2350", pin=33)  # slice 8 of an RP2350B
    assert m.mem32.log[0] == (0x400A8000 + 8 * 0x14, 0)
    assert dma[0].ctrl["treq_sel"] == 32 + 8


def test_divider_rounds_to_the_nearest_whole_step():
    # 61 kHz target, TOP 1023: one divider step is 61000 * 2 * 1024 Hz of clk_sys; a clock of
    # exactly 1.5 steps rounds up to DIV 2, one hertz less rounds down to DIV 1
    mod = _module()
    step = 61000 * 2 * 1024
    assert mod.pwm_divider(3 * step // 2, 1023, 61000) == 2 << 4
    assert mod.pwm_divider(3 * step // 2 - 1, 1023, 61000) == 1 << 4
    be, m, dma = _backend(3 * step // 2)
    assert m.mem32.regs[PWM0 + 0x04] == 2 << 4
    be, m, dma = _backend(3 * step // 2 - 1)
    assert m.mem32.regs[PWM0 + 0x04] == 1 << 4
    # other wraps and rates: nearest of freq / (rate * 2 * (TOP + 1)), halves up
    assert mod.pwm_divider(5 * 8000 * 2 * 256 // 2, 255, 8000) == 3 << 4
    assert mod.pwm_divider(5 * 8000 * 2 * 256 // 2 - 1, 255, 8000) == 2 << 4
    # the 8-bit integer divider: 1 .. 255
    assert mod.pwm_divider(1000, 1023, 61000) == 1 << 4
    assert mod.pwm_divider(256 * 2 * 1024 * 100, 1023, 100) == 255 << 4  # 256 -> 255
    assert mod.pwm_divider(255 * 2 * 1024 * 100, 1023, 100) == 255 << 4
    assert mod.pwm_divider(125000000, 1023, 100) == 255 << 4  # 610 -> 255


def _play(be, a, b, limit=200):
    """Let the DMA finish chunk after chunk (following its chains) with a service() after each;
    the CC values the DMA wrote, in order."""
    pwm_cc = a.write
    start = len(FakeDMA.mem.log)
    n = 0
    while be.busy() and n < limit:
        cur = a if a.busy else b
        cur.complete()
        be.service()
        n += 1
    return [v for addr, v in FakeDMA.mem.log[start:] if addr == pwm_cc and v < 65536]


def _reference(plan, **kw):
    """The samples a fresh backend's renderer gives for the plan, rendered in one go."""
    ref, m, dma = _backend(**kw)
    return list(ref._r.render(plan))


LONG = [("1", 40), (None, 40), ("2", 40), (None, 40), ("3", 40)]


def test_the_dma_carries_the_renderers_samples_in_order():
    be, m, (a, b) = _backend(chunk=512)
    first = len(m.mem32.log)
    be.start(LONG)
    assert a.buf is be._buf[0] and a.reload == 384 and a.triggers == 1  # a short first chunk
    assert b.buf is be._buf[1] and b.triggers == 0
    got = [v for addr, v in m.mem32.log[first:] if addr == PWM0 + 0x0C and v < 65536]
    got += _play(be, a, b)
    want = _reference(LONG, chunk=512)
    assert got == want
    assert be.underruns == 0 and be.chunks == 1 + (len(want) - 384 + 511) // 512
    assert be.samples_played() == len(want) and be.position() == len(LONG)
    assert m.mem32.regs[PWM0 + 0x0C] == 512 | (512 << 16)  # back at mid-scale


def test_samples_played_counts_what_the_dma_transferred():
    be, m, (a, b) = _backend(chunk=512)
    assert be.samples_played() == 0
    be.start(LONG)
    assert be.samples_played() == 0
    a.moved(100)
    assert be.samples_played() == 100
    a.complete()
    be.service()
    assert be.samples_played() == 384  # the first chunk is short
    b.moved(300)
    assert be.samples_played() == 684
    r = _backend(chunk=512)[0]._r
    r.load(LONG)
    assert be.position() == r.step_at(684)
    b.moved(1)
    pos = be.position()
    be.abort()
    assert be.samples_played() == 685 and be.position() == pos
    be.service()  # an aborted backend stays where it stopped
    assert be.samples_played() == 685 and be.position() == pos and not be.busy()
    be.start(LONG)
    total = len(_play(be, a, b))
    assert be.samples_played() == total and be.position() == len(LONG)
    be.service()  # a finished plan stays finished
    assert be.samples_played() == total and be.position() == len(LONG)


def test_position_follows_the_steps():
    be, m, (a, b) = _backend(chunk=256)
    r = _backend(chunk=256)[0]._r
    r.load(LONG)
    be.start(LONG)
    seen = []
    while be.busy():
        cur = a if a.busy else b
        cur.moved(cur.count // 2)
        assert be.position() == r.step_at(be.samples_played())
        seen.append(be.position())
        cur.complete()
        be.service()
    assert sorted(set(seen)) == [0, 1, 2, 3, 4]
    assert be.position() == len(LONG)
    total = be.samples_played()
    assert total == r.total_samples
    be.abort()  # after the plan ended: nothing to stop, and the figures stay
    assert be.position() == len(LONG) and be.samples_played() == total


def test_a_plan_shorter_than_a_chunk_uses_one_channel():
    # PLAN: 7.4k samples, within the first chunk
    be, m, (a, b) = _backend(chunk=8192, first_chunk=8000)
    be.start(PLAN)
    assert a.ctrl["chain_to"] == a.channel  # nothing armed, nothing chained
    a.complete()
    be.service()
    assert not be.busy() and be.position() == len(PLAN)
    assert b.triggers == 0 and be.underruns == 0 and be.chunks == 1


def test_an_empty_plan_plays_nothing():
    be, m, (a, b) = _backend(chunk=512)
    be.start([])
    assert not be.busy() and be.position() == 0 and be.samples_played() == 0
    assert a.triggers == 0 and b.triggers == 0


def test_main_loop_late_by_two_chunks():
    # both channels finished before service() ran: the first chained to the second in time (no
    # underrun), the second found nothing armed behind it (one underrun, restarted once)
    be, m, (a, b) = _backend(chunk=256)
    first = len(m.mem32.log)
    be.start(LONG)
    a.complete()
    b.complete()
    be.service()
    assert be.underruns == 1 and b.triggers == 1 and a.triggers == 2 and be.chunks == 3
    got = [v for addr, v in m.mem32.log[first:] if addr == PWM0 + 0x0C and v < 65536]
    got += _play(be, a, b)
    assert got == _reference(LONG, chunk=256)  # nothing played twice, nothing skipped


def test_one_pass_hands_over_at_most_three_chunks():
    # a DMA that finishes every chunk the moment it starts (a main loop stalled far behind):
    # one service() handles three chunk ends, so a main-loop pass stays bounded; the next
    # call carries on
    be, m, (a, b) = _backend(chunk=64)
    be.start(LONG)
    a.instant = b.instant = True
    a.complete()
    be.service()
    assert be.chunks == 4
    be.service()
    assert be.chunks == 7


def test_idle_after_a_plan_unchains_and_stops_both_channels():
    be, m, (a, b) = _backend(chunk=512)
    be.start(LONG)
    a.complete()
    be.service()  # b plays, a armed: b chains to a
    assert b.ctrl["chain_to"] == a.channel
    be.abort()
    assert not a.busy and not b.busy
    assert a.ctrl["chain_to"] == a.channel and b.ctrl["chain_to"] == b.channel
    be.start(LONG)  # a plays, b armed
    be.abort()
    assert a.ctrl["chain_to"] == a.channel and b.ctrl["chain_to"] == b.channel


def test_abort_as_the_playing_chunk_ends_leaves_nothing_running():
    # the chunk playing may end at any moment during abort(): had it ended after the armed
    # channel was stopped but before itself, CHAIN_TO would start the armed one after the
    # abort, playing up to a chunk of tone and leaving CC off mid-scale (a DC step and a click)
    for playing in (0, 1):
        for moment in range(6):  # after the backend's n-th DMA register access in abort()
            be, m, (a, b) = _backend(chunk=512)
            be.start(LONG)
            if playing:
                a.complete()
                be.service()
            cur, nxt = (a, b) if playing == 0 else (b, a)
            assert cur.busy and cur.ctrl["chain_to"] == nxt.channel
            cur.moved(500)
            seen = [0]

            def hardware():
                seen[0] += 1
                if seen[0] > moment and cur.busy:
                    FakeDMA.on_access = None
                    cur.complete()  # its last transfer lands now

            FakeDMA.on_access = hardware
            try:
                be.abort()
            finally:
                FakeDMA.on_access = None
            for d in (a, b):
                if d.busy:  # whatever still runs plays to its end
                    d.complete()
            assert m.mem32.regs[PWM0 + 0x0C] == 512 | (512 << 16), (playing, moment)
            assert not be.busy() and not a.busy and not b.busy


def test_after_close_nothing_is_reported_or_played():
    be, m, (a, b) = _backend(chunk=512)
    be.start(LONG)
    a.complete()
    be.service()
    b.moved(10)
    be.close()
    be.service()
    assert be.position() == 0 and be.samples_played() == 0 and not be.busy()
    be.abort()  # an abort of the closed (idle) backend changes nothing
    assert be.position() == 0 and be.samples_played() == 0 and not be.busy()
    assert a.triggers == 1 and b.triggers == 1


def test_abort_reports_the_step_playing_when_it_was_called():
    # the DMA may move a few more samples while abort() stops it: position() keeps the step
    # that was sounding when the abort was asked for, even if those samples crossed a boundary
    be, m, (a, b) = _backend(chunk=4096)
    r = _backend(chunk=4096)[0]._r
    r.load(LONG)
    edge = r.step_start(1)
    be.start(LONG)
    a.moved(edge - 1)
    assert be.position() == 0

    def hardware():
        FakeDMA.on_access = None
        a.moved(2)  # the channel runs on into step 1 before it stops

    FakeDMA.on_access = hardware
    try:
        be.abort()
    finally:
        FakeDMA.on_access = None
    assert be.samples_played() == edge + 1
    assert be.position() == 0

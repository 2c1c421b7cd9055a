"""DDS renderer tests; run under CPython and under real MicroPython (no numpy here).

The audio itself (frequencies, purity, edge timing, decodability) is measured on the
host in tests/core/test_synth_audio.py; these tests pin the buffer contract.
"""

from array import array

from fwtest import raises
from tonebridge_fw.dialstring import compile_plan
from tonebridge_fw.synth import Renderer

SEED_PLAN = [("1", 100), (None, 3500), ("5", 100), (None, 100), ("9", 100), (None, 100), ("#", 100)]


def render(r, plan, chunk, typecode="H"):
    r.load(plan)
    out = []
    buf = array(typecode, [0] * chunk)
    while True:
        n = r.fill(buf)
        out.extend(buf[:n])
        if n < chunk:
            return out


def test_step_boundaries_are_cumulative_and_exact():
    # hand-computed: boundary k = H + round(t_k * fs / 1000), H = round(ramp_ms * fs / 2000),
    # end = 2H + 1 + round(plan_ms * fs / 1000)
    cases = (
        (8000, 8, [0, 808, 28808, 29608, 30408, 31208, 32008, 32817]),
        ((125000000, 8192), 15, [0, 1541, 54947, 56473, 57998, 59524, 61050, 62592]),
        (48000, 48, [0, 4848, 172848, 177648, 182448, 187248, 192048, 196897]),
    )
    for rate, h, starts in cases:
        r = Renderer(rate)
        r.load(SEED_PLAN)
        assert r.lead_in == h
        assert [r.step_start(k) for k in range(len(SEED_PLAN) + 1)] == starts
        assert r.total_samples == starts[-1]


def test_float_rate_equals_rational_rate():
    a = Renderer(125e6 / 8192)
    b = Renderer((125000000, 8192))
    assert (a.rate_num, a.rate_den) == (b.rate_num, b.rate_den) == (1953125, 128)
    a.load(SEED_PLAN)
    b.load(SEED_PLAN)
    assert a.total_samples == b.total_samples


def test_no_drift_over_a_long_plan():
    r = Renderer((125000000, 8192))
    plan = compile_plan("1" * 92, tone_ms=41, gap_ms=43)
    r.load(plan)
    t = 0
    for k in range(len(plan)):
        t += plan[k][1]
        # exact: round(t * 1953125 / 128 / 1000) without floats
        expect = 15 + (2 * t * 1953125 + 128000) // 256000
        if k + 1 < len(plan):
            assert r.step_start(k + 1) == expect
    assert r.total_samples == 2 * 15 + 1 + (2 * t * 1953125 + 128000) // 256000


def test_step_at_inverts_step_start():
    r = Renderer(16000)
    r.load(SEED_PLAN)
    for k in range(len(SEED_PLAN)):
        assert r.step_at(r.step_start(k)) == k
        assert r.step_at(r.step_start(k + 1) - 1) == k
    assert r.step_at(r.total_samples) == len(SEED_PLAN)
    assert r.step_at(10**9) == len(SEED_PLAN)


def test_unsigned_range_idle_and_edges():
    r = Renderer(8000, bits=12)
    plan = compile_plan("1D", tone_ms=40, gap_ms=60)
    out = render(r, plan, 100)
    assert len(out) == r.total_samples
    assert min(out) >= 0 and max(out) <= 4095
    h = r.lead_in
    assert out[0] == 2048 and out[-1] == 2048
    # the gap between the two tones idles at exactly mid-scale
    gap = out[r.step_start(1) + h : r.step_start(2) - h]
    assert len(gap) > 0 and gap == [2048] * len(gap)
    # the tone reaches its level: peak close to level * full scale
    peak = max(abs(v - 2048) for v in out)
    assert 0.7 * 2047 < peak <= 0.8 * 2047 + 1


def test_bits_8_and_16_unsigned_and_signed():
    for bits in (8, 10, 14, 16):
        r = Renderer(22050, bits=bits)
        out = render(r, [("5", 50)], 64)
        assert min(out) >= 0 and max(out) <= (1 << bits) - 1
        assert out[0] == 1 << (bits - 1)
        assert max(out) - min(out) > (1 << bits) // 2
    r = Renderer(48000, bits=16, signed=True)
    out = render(r, [(None, 40), ("#", 50), (None, 40)], 333, "h")
    assert out[0] == 0 and out[-1] == 0
    assert min(out) >= -32768 and max(out) <= 32767
    assert max(out) > 20000 and min(out) < -20000


def test_chunked_fill_equals_one_fill():
    plan = compile_plan("1W2", tone_ms=40, gap_ms=40)
    whole = render(Renderer(16000), plan, 50000)
    for chunk in (1, 7, 64, 255):
        assert render(Renderer(16000), plan, chunk) == whole, chunk


def test_fill_into_offsets_and_memoryview():
    r = Renderer(8000)
    plan = [("4", 40)]
    ref = render(Renderer(8000), plan, 1000)
    r.load(plan)
    buf = array("H", [7] * (len(ref) + 20))
    n = r.fill(buf, 10, 5)
    assert n == 5 and list(buf[:10]) == [7] * 10 and list(buf[10:15]) == ref[:5]
    mv = memoryview(buf)
    n = r.fill(mv, 15)
    assert n == len(ref) - 5
    assert list(buf[10 : 10 + len(ref)]) == ref
    assert r.done
    assert r.fill(buf) == 0  # past the end: nothing more


def test_reload_restarts_from_the_beginning():
    r = Renderer(8000)
    a = render(r, [("7", 40)], 13)
    b = render(r, [("7", 40)], 13)
    assert a == b
    r.load([("7", 40)])
    buf = array("H", [0] * 5)
    r.fill(buf)
    r.load([("7", 40)])
    r.fill(buf)
    assert list(buf) == a[:5]


def test_bursts_start_at_the_same_phase():
    r = Renderer(8000)
    plan = [("3", 40), (None, 40), ("3", 40)]
    out = render(r, plan, 100)
    a0 = r.step_start(0)
    b0 = r.step_start(2) - r.lead_in
    n = r.step_start(1) + r.lead_in
    assert out[a0:n] == out[b0 : b0 + n - a0]


def test_twist_sets_the_amplitude_ratio():
    for twist in (0.0, 2.0, 4.0):
        r = Renderer(8000, twist_db=twist)
        ratio = r.amp_high / r.amp_low
        want = 10 ** (twist / 20)
        assert abs(ratio / want - 1) < 1e-4
    assert Renderer(8000).twist_db == 2.0


def test_phase_increments_give_nominal_frequencies():
    rates = (8000, (125000000, 8192), 16000, 22050, (2000000000, 81920), (125000000, 4096))
    for rate in rates + (44100, 48000, (150000000 * 16, 24 * 4096)):
        r = Renderer(rate)
        for hz in (697, 770, 852, 941, 1209, 1336, 1477, 1633):
            assert abs(r.actual_hz(hz) / hz - 1) < 1e-5, (rate, hz)


def test_bad_settings_are_errors():
    e = raises(ValueError, Renderer, 8000, 7)
    assert "bits must be 8..16" in str(e)
    raises(ValueError, Renderer, 8000, 17)
    e = raises(ValueError, Renderer, 8000, 12, False, 0.8, 4.5)
    assert "twist_db" in str(e) and "0.0..4.0" in str(e)
    raises(ValueError, Renderer, 8000, 12, False, 0.8, -0.5)
    e = raises(ValueError, Renderer, 8000, 12, False, 0.8, 2.0, 5)
    assert "ramp_ms" in str(e)
    raises(ValueError, Renderer, 8000, 12, False, 0.8, 2.0, 0.5)
    raises(ValueError, Renderer, 8000, 12, False, 0.0)
    raises(ValueError, Renderer, 8000, 12, False, 1.5)
    e = raises(ValueError, Renderer, 3000)
    assert "too low" in str(e)
    raises(ValueError, Renderer, 0)
    raises(ValueError, Renderer, (1, 0))
    raises(ValueError, Renderer, "8000")


def test_bad_plans_are_errors():
    r = Renderer(8000)
    e = raises(ValueError, r.load, [("1", 40), ("2", 40)])
    assert "separated by silence" in str(e)
    raises(ValueError, r.load, [("x", 40)])
    raises(ValueError, r.load, [("1", 0)])
    raises(ValueError, r.load, [("1", 40.0)])
    e = raises(ValueError, r.load, [("1", 1)])
    assert "shorter than" in str(e)
    r.load([])
    assert r.total_samples == 0 and r.fill(array("H", [0] * 4)) == 0


def test_a_short_leading_silence_delays_the_tones_exactly():
    # the engine opens a sequence queued right after another with what is left of the gap
    # (1 ms, say): shorter than a ramp, yet valid (no edge precedes it); the output is the
    # plain plan's, later by exactly that silence
    # (at 8 kHz a ms is a whole number of samples: the rest of the output is the same; at the
    # PWM backend's 61035.15625 Hz the later boundaries round differently, so the comparison
    # stops at the first tone's falling edge)
    for rate, chunk, same in ((8000, 64, None), ((125_000_000 * 16, 32768), 1024, 2000)):
        r = Renderer(rate, bits=10)
        plain = render(r, [("1", 40), (None, 40)], chunk)
        for ms in (1, 2, 3):
            late = render(r, [(None, ms), ("1", 40), (None, 40)], chunk)
            d = r.step_start(1) - r.lead_in
            assert d > 0 and late[:d] == [512] * d
            if same is None:
                assert late[d:] == plain
            else:
                assert late[d : d + same] == plain[:same]
                assert abs(len(late) - len(plain) - d) <= 1
    # a short silence anywhere else is still an error
    e = raises(ValueError, Renderer(8000).load, [("1", 40), (None, 1), ("2", 40)])
    assert "shorter than" in str(e)


def test_fill_allocates_nothing():
    try:
        import micropython

        lock = micropython.heap_lock
        unlock = micropython.heap_unlock
    except (ImportError, AttributeError):
        return  # CPython: the MicroPython run of this test is the proof
    r = Renderer((125000000, 8192), bits=12)
    plan = compile_plan("1W5#", tone_ms=40, gap_ms=40)
    r.load(plan)
    buf = array("H", [0] * 97)
    total = 0
    n = 0
    lock()
    try:
        while True:
            n = r.fill(buf)
            total += n
            if n < 97:
                break
    finally:
        unlock()
    assert total == r.total_samples
    r2 = Renderer(48000, bits=16, signed=True)
    r2.load(plan)
    buf2 = array("h", [0] * 128)
    lock()
    try:
        while r2.fill(buf2) == 128:
            pass
    finally:
        unlock()
    assert r2.done
    # a fresh renderer whose first plan opens with silence: the first tone's region is
    # entered inside a locked fill() (every attribute it sets must already exist)
    r3 = Renderer(8000)
    r3.load([(None, 40), ("5", 40), (None, 40)])
    lock()
    try:
        while r3.fill(buf) == 97:
            pass
    finally:
        unlock()
    assert r3.done
    # the shaped (PWM) path with its response compensation, as the rp2 backend renders
    from tonebridge_fw import outchain

    r4 = Renderer(
        (125000000 * 16, 32768), bits=10, shaping=True, response=outchain.response(61035.0)
    )
    r4.load(plan)
    lock()
    try:
        while r4.fill(buf) == 97:
            pass
    finally:
        unlock()
    assert r4.done


def test_fast_path_off_without_a_native_emitter():
    # CPython and the WebAssembly port have no viper: the portable loops render
    from tonebridge_fw import synth

    assert synth.FAST is False
    assert synth.Renderer(8000)._fast is None


def _heap_tools():
    """(gc, heap_lock, heap_unlock) under MicroPython; None under CPython."""
    try:
        import gc

        import micropython

        return gc, micropython.heap_lock, micropython.heap_unlock, gc.mem_alloc
    except (ImportError, AttributeError):
        return None


def test_load_keeps_one_word_per_step():
    # the regions are derived while rendering, not stored: a 92-digit plan (183 steps,
    # ~370 regions) costs the boundary array only (4 bytes a step), the boundary arithmetic
    # makes no big-int garbage even at the PWM rate, and reloading a plan no longer than
    # the last one reuses the array (nothing allocated: heap_lock)
    tools = _heap_tools()
    if tools is None:
        return  # CPython: the MicroPython run of this test is the proof
    gc, lock, unlock, mem_alloc = tools
    plan = compile_plan(("1234567890*#ABCD" * 6)[:92], "catapult", 40, 40)
    assert len(plan) == 183
    short = compile_plan("159", "catapult", 40, 40)
    for rate in (8000, (125000000, 5120), 44100.3):
        r = Renderer(rate)
        gc.disable()
        try:
            m0 = mem_alloc()
            r.load(plan)
            grown = mem_alloc() - m0
        finally:
            gc.enable()
        assert grown <= 4 * 184 + 128, (rate, grown)
        lock()
        try:
            r.load(plan)
            r.load(short)
            err = None
        except MemoryError as e:
            err = e
        finally:
            unlock()
        assert err is None, rate
        assert r.step_at(r.total_samples) == len(short)


def test_boundaries_equal_ms_to_samples_for_long_plans():
    # load() advances the boundaries in small-int pieces; they must equal the direct
    # formula h + round(t_k * fs / 1000) for every step, also after minutes of plan
    plan = [("1", 40), (None, 60000), ("2", 97), (None, 3500), ("3", 41), (None, 123457)]
    rates = (8000, (125000000, 5120), (125000000, 8192), 44100.3, 48000, (2000000000, 81920))
    for rate in rates + ((150000000 * 16, 24 * 4096), 22050.77):
        r = Renderer(rate)
        r.load(plan)
        t = 0
        for k in range(len(plan)):
            t += plan[k][1]
            want = r.lead_in + r.ms_to_samples(t)
            if k + 1 < len(plan):
                assert r.step_start(k + 1) == want, (rate, k)
            else:
                assert r.total_samples == want + r.lead_in + 1, rate


def test_step_at_allocates_nothing():
    tools = _heap_tools()
    if tools is None:
        return  # CPython: the MicroPython run of this test is the proof
    gc, lock, unlock, mem_alloc = tools
    r = Renderer((125000000, 8192), bits=12)
    plan = compile_plan("1W5#", tone_ms=40, gap_ms=40)
    r.load(plan)
    got = []
    total = r.total_samples
    lock()
    try:
        a = r.step_at(0)
        b = r.step_at(r.step_start(2))
        c = r.step_at(total - 1)
        d = r.step_at(total)
        e = r.step_start(len(plan))
    finally:
        unlock()
    got = [a, b, c, d, e]
    assert got == [0, 2, len(plan) - 1, len(plan), total]


def test_a_rejected_plan_leaves_the_current_one_playing():
    plan = compile_plan("1W5#", tone_ms=40, gap_ms=40)
    want = render(Renderer(8000), plan, 1000)
    r = Renderer(8000)
    r.load(plan)
    buf = array("H", [0] * 200)
    out = []
    n = r.fill(buf)
    out.extend(buf[:n])
    starts = [r.step_start(k) for k in range(len(plan) + 1)]
    long_bad = [("1", 40), (None, 40)] * 20 + [("2", 40), ("3", 40)]
    raises(ValueError, r.load, long_bad)
    raises(ValueError, r.load, [(None, 40), ("x", 40)])
    assert [r.step_start(k) for k in range(len(plan) + 1)] == starts
    while True:
        n = r.fill(buf)
        out.extend(buf[:n])
        if n < 200:
            break
    assert out == want


def test_a_shorter_plan_after_a_longer_one():
    long_plan = compile_plan("1234567890", tone_ms=40, gap_ms=40)
    short = compile_plan("7", tone_ms=40, gap_ms=40)
    r = Renderer(8000)
    render(r, long_plan, 64)
    got = render(r, short, 64)
    assert got == render(Renderer(8000), short, 64)
    n = len(short)
    assert r.step_start(n) == r.total_samples
    assert r.step_at(r.total_samples) == n
    raises(IndexError, r.step_start, n + 1)
    raises(IndexError, r.step_start, -1)


def test_minimum_steps_and_runs_of_silence():
    # tones and gaps exactly one ramp long (no steady part, no idle between edges), runs of
    # silent steps, leading/trailing silence: idle exactly outside the tone windows
    # [b0 - H, b1 + H), the same samples whatever the chunking, ending at idle
    r = Renderer(8000, ramp_ms=2)
    h = r.lead_in
    plans = (
        [("5", 2), (None, 2), ("6", 2)],
        [(None, 2), ("1", 2), (None, 3), (None, 2), ("D", 5)],
        [(None, 10), (None, 20), ("#", 2), (None, 2), (None, 2)],
        [(None, 7)],
    )
    for plan in plans:
        whole = render(r, plan, 100000)
        assert len(whole) == r.total_samples
        for chunk in (1, 3, 17):
            assert render(r, plan, chunk) == whole, (plan, chunk)
        n = len(plan)
        tone = [False] * len(whole)
        for k in range(n):
            if plan[k][0] is None:
                continue
            b0 = r.step_start(k) if k else h
            b1 = r.step_start(k + 1) if k + 1 < n else r.total_samples - h - 1
            for i in range(b0 - h, b1 + h):
                tone[i] = True
            # the 50 % point: a full-scale sample is somewhere in the burst
            assert max(abs(v - 2048) for v in whole[b0 - h : b1 + h]) > 500
        for i in range(len(whole)):
            if not tone[i]:
                assert whole[i] == 2048, (plan, i)
        assert whole[-1] == 2048 and not tone[-1]


def test_configure_retunes_from_the_next_plan_without_disturbing_this_one():
    plan = compile_plan("5#", "catapult", 60, 60)
    loud = Renderer(8000, bits=12, level=0.8, twist_db=2.0).render(plan)
    soft = Renderer(8000, bits=12, level=0.4, twist_db=0.0).render(plan)
    assert loud != soft
    r = Renderer(8000, bits=12, level=0.8, twist_db=2.0)
    assert r.configure() == {"twist": 2.0, "level": 0.8}
    r.load(plan)
    buf = array("H", [0] * r.total_samples)
    n = r.fill(buf, 0, 100)
    assert r.configure(twist=0.0) == {"twist": 0.0, "level": 0.8}
    assert r.configure(level=0.4) == {"twist": 0.0, "level": 0.4}
    n += r.fill(buf, n)
    assert n == r.total_samples and buf == loud  # the plan playing keeps its levels
    assert r.render(plan) == soft  # the next plan has the new ones
    assert r.level == 0.4 and r.twist_db == 0.0


def test_configure_rejects_out_of_range_and_keeps_the_settings():
    r = Renderer(8000, bits=12)
    raises(ValueError, r.configure, twist=4.5)
    raises(ValueError, r.configure, level=0.0)
    raises(ValueError, r.configure, level=1.5)
    assert r.configure() == {"twist": 2.0, "level": 0.8}

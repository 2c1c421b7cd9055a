"""I2S boards end to end in the simulator: the firmware's I2S backend (unmodified) writes
Renderer samples through the simulated machine.I2S into the PCM5102A model; the recorded line
is checked with multimon-ng, a least-squares tone fit and envelope timing. Fault seeding: a
wrong I2S rate or format gives wrong audio."""

import numpy as np
import pytest
from tonebridge.analysis import decode_multimon, fit_tones, segments, steady_slices
from tonebridge.sim import SimBoard, play_on_board
from tonebridge.sim.clock import VirtualClock
from tonebridge_fw import boards
from tonebridge_fw.keypad import freqs

RATE = 48000
ALL = "123A456B789C*0#D"
# rp2 with an external I2S DAC: the pico profile with the I2S backend (sck/ws consecutive)
RP2_I2S = {"backend": "i2s", "sck_pin": 18, "ws_pin": 19, "sd_pin": 20, "i2s_rate": 48000}


class Played:
    pass


def play(board, text, tone_ms=60, gap_ms=50, config=None, patch=None):
    sb = SimBoard(board, VirtualClock(), config=config)
    try:
        if patch is not None:
            patch(sb)
        res = play_on_board(sb, text, "catapult", tone_ms, gap_ms)
        p = Played()
        p.t0 = res["start_us"] - 50_000
        p.x = sb.recorder.samples(RATE, start_us=p.t0, end_us=res["end_us"])
        p.rate = RATE
        p.events = res["events"]
        p.plan = res["plan"]
        p.backend = res["backend"]
        # the tone output's I2S (the ESP32 boards' receive path has its own, in RX mode)
        p.i2s = [i for i in sb.modules["machine"].I2S.instances if i.mode == i.TX]
        p.i2s_rx = [i for i in sb.modules["machine"].I2S.instances if i.mode == i.RX]
        p.bus = sb.bus
        return p
    finally:
        sb.close()


def durations(p):
    seg = segments(p.x, p.rate)
    tones = [(e - s) * 1000 for s, e in seg]
    gaps = [(seg[i + 1][0] - seg[i][1]) * 1000 for i in range(len(seg) - 1)]
    return seg, tones, gaps


def check_board(p, text, tone_ms, gap_ms):
    assert decode_multimon(p.x, p.rate) == text
    seg, tones, gaps = durations(p)
    assert len(seg) == len(text)
    assert max(abs(t - tone_ms) for t in tones) < 1.0
    assert max(abs(g - gap_ms) for g in gaps) < 1.0
    for key, sl in zip(text, steady_slices(p.x, p.rate), strict=True):
        f = fit_tones(sl, p.rate)
        lo, hi = freqs(key)
        assert abs(f.f_low / lo - 1) < 5e-4
        assert abs(f.f_high / hi - 1) < 5e-4
        assert 20 * np.log10(f.a_high / f.a_low) == pytest.approx(2.0, abs=0.2)
    assert p.backend.underruns == 0
    (i2s,) = p.i2s
    assert i2s.overlapping_writes == 0 and i2s.underrun_frames == 0


@pytest.mark.parametrize("board", ["esp32-i2s", "esp32s3-i2s"])
def test_esp32_i2s_all_keys(board):
    p = play(board, ALL)
    check_board(p, ALL, 60, 50)
    (i2s,) = p.i2s
    assert i2s.rate == 44100 and i2s.bits == 16 and i2s.format == i2s.MONO
    assert p.bus.function(i2s.pins[2]) == "i2s"
    # the receive path (verifying the digits): I2S1 in RX mode at 8 kHz on the profile's pins
    (rx,) = p.i2s_rx
    prof = boards.PROFILES[board]
    assert rx.id == 1 and rx.rate == 8000 and rx.bits == 16 and rx.format == rx.MONO
    assert rx.pins == [prof["rx_sck_pin"], prof["rx_ws_pin"], prof["rx_sd_pin"]]


def test_rp2_i2s_all_keys():
    p = play("pico", ALL, config=RP2_I2S)
    check_board(p, ALL, 60, 50)
    assert p.i2s[0].rate == 48000
    # the PIO divider makes the sample clock 64 ppm fast: every tone is 64 ppm high
    ppm = p.i2s[0].actual_rate / 48000
    f = fit_tones(steady_slices(p.x, p.rate)[0], p.rate)
    assert f.f_low == pytest.approx(697 * ppm, rel=2e-6)
    assert f.f_high == pytest.approx(1209 * ppm, rel=2e-6)


def test_esp32_i2s_stereo_format():
    p = play("esp32-i2s", "0#D", config={"i2s_format": "stereo", "i2s_rate": 48000})
    check_board(p, "0#D", 60, 50)
    (i2s,) = p.i2s
    assert i2s.format == i2s.STEREO and i2s.rate == 48000


def test_esp32_i2s_pause_and_long_tones():
    p = play("esp32-i2s", "1W#", tone_ms=300, gap_ms=80)
    assert decode_multimon(p.x, p.rate) == "1#"
    seg, tones, gaps = durations(p)
    assert abs(tones[0] - 300) < 1 and abs(tones[1] - 300) < 1
    assert abs(gaps[0] - 1000) < 1


def test_line_level_is_pcm5102a_full_scale_times_renderer_level():
    p = play("esp32-i2s", "5")
    f = fit_tones(steady_slices(p.x, p.rate)[0], p.rate)
    # Renderer: peak of the two-tone sum = the profile's level (a fraction) of (32768 - 2)/32768
    # full scale; the DAC's full scale is 2.1 V rms, i.e. 2.97 V peak
    from tonebridge_fw.boards import PROFILES

    fs_peak = 2.1 * np.sqrt(2) * (32766 / 32768)
    level = PROFILES["esp32-i2s"]["level"]
    assert f.a_low + f.a_high == pytest.approx(level * fs_peak, rel=2e-3)


@pytest.mark.parametrize("board,config", [("esp32-i2s", None), ("pico", RP2_I2S)])
def test_events_never_ahead_of_the_audio(board, config):
    p = play(board, "1234", tone_ms=60, gap_ms=60, config=config)
    seg, _, _ = durations(p)
    ev = [t for t, e in p.events if e[0] in ("started", "finished")]
    edges = [p.t0 + s * 1e6 for pair in seg for s in pair]
    assert len(ev) == len(edges) == 8
    dma_ms = p.i2s[0].dma_frames / p.i2s[0].rate * 1000
    for t_ev, t_audio in zip(ev, edges, strict=True):
        late_ms = (t_ev - t_audio) / 1000
        # never before the edge was heard; at most one DMA buffer + one loop pass after (the
        # last "finished" also waits for the renderer's 1 ms ramp-down tail)
        assert -0.05 <= late_ms <= dma_ms + 2.05, (late_ms, dma_ms)
    assert p.events[-1][1][0] == "done"


def test_abort_silences_at_once():
    sb = SimBoard("esp32-i2s", VirtualClock(), run_main=False)
    try:
        be, line = sb.load("tonebridge_fw.board").make_board(
            sb.load("tonebridge_fw.boards").load_config()
        )
        line.off_hook()
        line.unmute()
        sb.run_for(50)
        plan = [("8", 2000)]
        be.start(plan)
        for _ in range(300):
            be.service()
            sb.run_for(1)
        t_abort = sb.now_us()
        be.abort()
        assert be.position() == 0
        for _ in range(100):
            be.service()
            sb.run_for(1)
        x = sb.recorder.samples(RATE, start_us=t_abort, end_us=sb.now_us(), gated=False)
        assert np.max(np.abs(x)) == 0.0
        before = sb.recorder.samples(RATE, start_us=t_abort - 50_000, end_us=t_abort, gated=False)
        assert np.max(np.abs(before)) > 0.5
    finally:
        sb.close()


# ---- fault seeding --------------------------------------------------------------------


def test_fault_wrong_i2s_rate_shifts_every_frequency():
    def patch(sb):
        cls = sb.load("tonebridge_fw.backends.i2s_dac").I2SBackend
        orig = cls._open

        def _open(self):
            r = self.rate
            self.rate = 48620  # I2S clocked 10.25 % fast, samples rendered for 44.1 kHz
            try:
                orig(self)
            finally:
                self.rate = r

        cls._open = _open

    p = play("esp32-i2s", "1", tone_ms=100, patch=patch)
    f = fit_tones(steady_slices(p.x, p.rate)[0], p.rate)
    assert f.f_low == pytest.approx(697 * 48620 / 44100, rel=1e-3)
    assert f.f_high == pytest.approx(1209 * 48620 / 44100, rel=1e-3)
    ((s, e),) = segments(p.x, p.rate)
    assert (e - s) * 1000 == pytest.approx(100 * 44100 / 48620, abs=0.5)
    assert decode_multimon(p.x, p.rate) != "1"


def test_fault_stereo_format_with_mono_buffers_doubles_frequencies():
    def patch(sb):
        cls = sb.load("tonebridge_fw.backends.i2s_dac").I2SBackend
        orig = cls._open

        def _open(self):
            a = self._i2s_args
            self._i2s_args = a[:4] + (self._I2S.STEREO,)  # format wrong, buffers still mono
            orig(self)

        cls._open = _open

    p = play("esp32-i2s", "1", tone_ms=100, patch=patch)
    # the left channel gets every other mono sample: twice the frequencies, half the time
    x = steady_slices(p.x, p.rate)[0]
    n = 1 << 20
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size), n))
    f = np.fft.rfftfreq(n, 1 / p.rate)
    i1 = int(np.argmax(spec))
    spec[np.abs(f - f[i1]) < 60] = 0
    i2 = int(np.argmax(spec))
    assert sorted((f[i1], f[i2])) == pytest.approx([2 * 697, 2 * 1209], abs=1.0)
    ((s, e),) = segments(p.x, p.rate)
    assert (e - s) * 1000 == pytest.approx(50, abs=3)


@pytest.mark.parametrize("board,config", [("esp32-i2s", None), ("pico", RP2_I2S)])
def test_back_to_back_plans_events_never_ahead(board, config):
    # Two SENDs in one write: the board's engine starts the second the moment the first is
    # done, its first samples queued behind the first plan's padding still in the port; the
    # events must account for that. Between the two, the sequence gap is kept on the line.
    from tonebridge_fw import codec

    sb = SimBoard(board, VirtualClock(), config=config)
    events = []
    dec = codec.Decoder(accept="<!")

    def heard():
        for f in dec.feed(sb.link.host_read(-1)):
            if f[0] == "!" and f[1] in ("1", "2"):
                events.append((sb.now_us(), f[1], f[2]))

    sb.link.host_listeners.append(heard)
    try:
        sb.run_for(20)
        t0 = sb.now_us()
        sb.write(codec.encode(">", "1", "SEND tone=60 gap=60 12")
                 + codec.encode(">", "2", "SEND tone=60 gap=60 34"))  # fmt: skip
        sb.run_until(lambda: any(e[2].startswith("DONE") and e[1] == "2" for e in events), 3000)
        sb.run_for(100)
        x = sb.recorder.samples(RATE, start_us=t0, end_us=sb.now_us(), gated=False)
    finally:
        sb.close()
    assert decode_multimon(x, RATE) == "1234"
    seg = segments(x, RATE)
    edges = [t0 + s * 1e6 for pair in seg for s in pair]
    ev = [t for t, _rid, body in events if body.split()[0] in ("START", "END")]
    assert len(ev) == len(edges) == 8
    dma_ms = 256 / 44100 * 1000 if board == "esp32-i2s" else 64 / 48000 * 1000
    late = [(a - b) / 1000 for a, b in zip(ev, edges, strict=True)]
    assert min(late) >= -0.05, late
    assert max(late) <= dma_ms + 2.05, late
    gaps = [seg[i + 1][0] - seg[i][1] for i in range(3)]
    assert min(gaps) > 0.055, gaps  # 2 -> 3 across the two sequences too

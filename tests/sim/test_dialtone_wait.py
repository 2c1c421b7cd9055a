"""SEND dialtone=<ms> on a simulated board's own main loop (issue 12 item 4): the board holds the
line and plays nothing until call progress reports dial tone, then dials; without dial tone the
sequence ends "ABORT 0 no-dial-tone" and nothing reaches the line.

Here the engine's input from the receive path, engine.line_event("progress", ...), is delivered
as a model event at a chosen virtual time (in the firmware's own thread), so the timing of the
hold and of the timeout is exact and independent of the classifier;
tests/sim/test_call_progress_line.py runs the same through the board's receive path with a
scripted exchange."""

from tonebridge.analysis import decode_multimon, segments
from tonebridge.sim import SimBoard
from tonebridge.sim.clock import VirtualClock


def _board():
    sb = SimBoard("pico", VirtualClock())
    sb.run_for(100)
    sb.link.host_read(-1)
    sb.app.engine.hears = True  # what a board with a receive path sets
    return sb


def _frames(sb, codec, dec, out):
    for f in dec.feed(sb.link.host_read(-1)):
        out.append((sb.now_us(), f[0], f[1], f[2]))


def test_digits_wait_for_dial_tone():
    sb = _board()
    try:
        codec = sb.load("tonebridge_fw.codec")
        dec = codec.Decoder(accept=codec.REPLY + codec.EVENT)
        frames = []
        t0 = sb.now_us()
        sb.clock.call_at(t0 + 700_000, lambda: sb.app.engine.line_event("progress", "dial"))
        sb.write(codec.encode(codec.REQUEST, "d1", "SEND dialtone=3000 159"))
        for _ in range(200):
            sb.run_for(10)
            _frames(sb, codec, dec, frames)
        events = [f[3] for f in frames if f[2] == "d1" and f[1] == "!"]
        assert [f[3] for f in frames if f[2] == "d1" and f[1] == "<"][0].startswith("OK state=")
        assert events[:2] == ["DIALTONE wait 3000", "DIALTONE heard"]
        assert events[-1] == "DONE 3 verified=3"
        t_heard = [f[0] for f in frames if f[3] == "DIALTONE heard"][0]
        assert 700_000 <= t_heard - t0 <= 711_000
        assert sb.line_if.hook_log[0][1] is True and sb.line_if.hook_log[0][0] - t0 < 20_000
        x = sb.recorder.samples(22050, start_us=t0, end_us=sb.now_us())
        segs = segments(x, 22050)
        assert decode_multimon(x, 22050) == "159"
        assert segs[0][0] >= 0.7  # no tone before the dial tone was heard
    finally:
        sb.close()


def test_no_dial_tone_plays_nothing():
    sb = _board()
    try:
        codec = sb.load("tonebridge_fw.codec")
        dec = codec.Decoder(accept=codec.REPLY + codec.EVENT)
        frames = []
        t0 = sb.now_us()
        sb.clock.call_at(t0 + 300_000, lambda: sb.app.engine.line_event("progress", "silence"))
        sb.write(codec.encode(codec.REQUEST, "d2", "SEND dialtone=1500 159"))
        for _ in range(250):
            sb.run_for(10)
            _frames(sb, codec, dec, frames)
        events = [f[3] for f in frames if f[2] == "d2" and f[1] == "!"]
        assert events == ["DIALTONE wait 1500", "ABORT 0 no-dial-tone verified=0"]
        t_end = [f[0] for f in frames if f[3].startswith("ABORT 0 no-dial-tone")][0]
        assert 1_500_000 <= t_end - t0 <= 1_525_000
        assert ("!", "-", "PROGRESS silence") in [(f[1], f[2], f[3]) for f in frames]
        x = sb.recorder.samples(22050, start_us=t0, end_us=sb.now_us())
        assert segments(x, 22050) == [] and float(abs(x).max()) < 1e-3
        assert sb.line_if.off_hook  # held: the caller decides to hang up or try again
    finally:
        sb.close()

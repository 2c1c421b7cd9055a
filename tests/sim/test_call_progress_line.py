"""Call progress end to end on a simulated Pico and ESP32 (issue 12 item 4): a scripted
exchange (tonebridge.sim.exchange) sends dial tone, ringback and a voice down the line; the
board's own receive path (the rp2 ADC model and its DMA ring, or the ESP32's I2S ADC model;
listen.py) feeds the firmware's callprogress.Detector beside the DTMF receiver; the engine holds
`SEND dialtone=` until dial tone is heard and reports PROGRESS as the line changes. Profile
"country" turns it on. On pico-mt8880 the chip's call-progress mode (sim/mt8880_cp.py: its
band-pass and the rectangular wave on IRQ/CP) feeds the cadence-only classifier
(mt8880_ear.py), and the chip is back in DTMF mode for our digits (verified)."""

import pytest
from tonebridge.analysis import decode_multimon
from tonebridge.sim import SimBoard
from tonebridge.sim.clock import VirtualClock
from tonebridge.sim.exchange import Exchange


def _run(sb, codec, seconds, frames):
    dec = codec.Decoder(accept=codec.REPLY + codec.EVENT)
    for _ in range(int(seconds * 100)):
        sb.run_for(10)
        for f in dec.feed(sb.link.host_read(-1)):
            frames.append((sb.now_us() / 1e6, f[0], f[1], f[2]))


def _dial_heard_s(country, board):
    """When dial tone is recognised after going off-hook: CEPT's 425 Hz after 1.8 s, the others
    after 0.5 s; in band only (the MT8880's CP mode), a continuous tone must outlast every
    other signal's tone (US ringback 2 s: 2.31 s)."""
    if country == "cept":
        return 1.85
    return 2.4 if board == "pico-mt8880" else 0.57


def _board(country, exchange, board="pico"):
    sb = SimBoard(board, VirtualClock(), config={"country": country})
    sb.sense.far_end = exchange
    sb.run_for(100)
    sb.link.host_read(-1)
    return sb


@pytest.mark.parametrize(
    "country, board",
    [
        ("us", "pico"),
        ("uk", "pico"),
        ("cept", "pico"),
        ("us", "esp32-i2s"),
        ("cept", "esp32s3-i2s"),
        ("us", "pico-mt8880"),
        ("cept", "pico-mt8880"),
    ],
)
@pytest.mark.slow
def test_dial_tone_then_ringing_then_answer(country, board):
    ex = Exchange(country, level_dbm=-16)
    # dial tone until just after the first digit (CEPT dial tone is recognised after 1.8 s,
    # the others after 0.5 s, and the board polls its ADC ring every 10 ms)
    first_digit = _dial_heard_s(country, board) + 0.15
    ex.at(0, "dial").at(first_digit + 0.05, "silence").at(3.5, "ringing").at(16.0, "voice")
    sb = _board(country, ex, board)
    try:
        codec = sb.load("tonebridge_fw.codec")
        hello = []
        sb.write(codec.encode(codec.REQUEST, "h", "HELLO"))
        _run(sb, codec, 0.05, hello)
        assert " progress=1" in hello[0][3]
        frames = []
        sb.write(codec.encode(codec.REQUEST, "d", "SEND dialtone=4000 159"))
        _run(sb, codec, 19.5, frames)
        ev = [(round(t, 2), b) for t, m, r, b in frames if m == "!" and r in ("d", "-")]
        names = [b for _, b in ev if not b.startswith("HOOK")]
        assert names[:2] == ["DIALTONE wait 4000", "PROGRESS dial"], ev
        t_dial = [t for t, b in ev if b == "PROGRESS dial"][0]
        t_heard = [t for t, b in ev if b == "DIALTONE heard"][0]
        assert t_heard == t_dial
        done = [b for _, b in ev if b.startswith("DONE")]
        assert done == ["DONE 3 verified=3"], ev
        # after the digits: ringing while it rings, the voice when answered, nothing between
        after = [(t, b) for t, b in ev if t > t_heard and b.startswith("PROGRESS")]
        states = [b.split()[1] for _, b in after if b.split()[1] not in ("unknown", "silence")]
        assert states == ["ringing", "voice"], ev
        t_voice = [t for t, b in after if b == "PROGRESS voice"][0]
        assert 16.1 <= t_voice <= 17.2, ev
        print(country, "dial tone heard at", t_dial, "s; answered at", t_voice, "s")
        x = sb.recorder.samples(22050, start_us=0, end_us=sb.now_us())
        assert decode_multimon(x, 22050) == "159"  # what the exchange heard: our digits
    finally:
        sb.close()


@pytest.mark.parametrize("board", ["pico", "esp32-i2s", "pico-mt8880"])
def test_no_dial_tone_and_a_busy_line(board):
    ex = Exchange("us", level_dbm=-16).at(0, "silence")
    sb = _board("us", ex, board)
    try:
        codec = sb.load("tonebridge_fw.codec")
        frames = []
        sb.write(codec.encode(codec.REQUEST, "d", "SEND dialtone=2000 159"))
        _run(sb, codec, 2.5, frames)
        ev = [b for t, m, r, b in frames if m == "!" and r == "d"]
        assert ev == ["DIALTONE wait 2000", "ABORT 0 no-dial-tone verified=0"], ev
        x = sb.recorder.samples(22050, start_us=0, end_us=sb.now_us())
        assert decode_multimon(x, 22050) == ""
        # busy after dialling
        t = sb.now_us() / 1e6
        dial_s = _dial_heard_s("us", board) + 0.8
        ex.at(t, "dial").at(t + dial_s, "busy")
        frames = []
        sb.write(codec.encode(codec.REQUEST, "e", "SEND dialtone=4000 2"))
        _run(sb, codec, dial_s + 3.6, frames)
        prog = [b for _, m, r, b in frames if m == "!" and b.startswith("PROGRESS")]
        assert prog[0] == "PROGRESS dial" and prog[-1] == "PROGRESS busy", prog
        assert [b for _, m, r, b in frames if r == "e" and b.startswith("DONE")] == [
            "DONE 1 verified=1"
        ]
        # a send after listening to the line is still heard and verified
        frames = []
        sb.write(codec.encode(codec.REQUEST, "f", "SEND 37"))
        _run(sb, codec, 0.6, frames)
        assert [b for _, m, r, b in frames if r == "f" and b.startswith("DONE")] == [
            "DONE 2 verified=2"
        ], frames
    finally:
        sb.close()

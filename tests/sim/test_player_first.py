"""The main loop keeps the tone going while requests arrive (app.py): a burst of SEND, STATUS and
PING frames that reaches a simulated Pico while a sequence plays leaves no gap on the line, and
STATUS says how often the output ran dry (underruns=).

The simulator runs firmware code in zero time, so the CPU cost of the frame path is put back
into the board's own loaded firmware: decoding costs what the emulated RP2040 measured (63 us
a byte: a 49-byte SEND frame 3.1 ms) and handling a request 15 ms for a SEND (the chip's 14.6 ms
including its reply), 5 ms for anything else (docs/emulator.md, row 9). Before the main loop
serviced the player between frames, this burst (about 70 ms of CPU) emptied both DMA buffers
(16.8 ms each) and the line heard the PWM's held duty value for tens of ms in the middle of the
tone."""

import pytest
from tonebridge.analysis import decode_multimon, segments
from tonebridge.sim import SimBoard, VirtualClock
from tonebridge_fw import codec

from .test_app_loop import Talk

RATE = 48000
DECODE_US_PER_BYTE = 63
SEND_US = 15000
OTHER_US = 5000


def _costly(send_us=SEND_US):
    """A simulated Pico whose frame path costs the RP2040's time."""
    sb = SimBoard("pico", VirtualClock())
    fw_codec = sb.load("tonebridge_fw.codec")
    fw_engine = sb.load("tonebridge_fw.engine")
    feed, handle = fw_codec.Decoder.feed, fw_engine.Engine.handle

    def costly_feed(self, data):
        sb.runtime.advance_us(DECODE_US_PER_BYTE * len(data))
        return feed(self, data)

    def costly_handle(self, rid, body):
        sb.runtime.advance_us(send_us if body.startswith("SEND") else OTHER_US)
        return handle(self, rid, body)

    fw_codec.Decoder.feed = costly_feed
    fw_engine.Engine.handle = costly_handle
    return sb


@pytest.fixture
def costly_pico():
    sb = _costly()
    yield sb
    sb.close()


def _status(t, rid):
    reply = t.send(rid, "STATUS", ms=40)
    return dict(kv.split("=", 1) for kv in reply.split()[1:])


def test_a_burst_of_requests_while_a_tone_plays_leaves_no_gap(costly_pico):
    sb = costly_pico
    sb.run_for(50)
    t = Talk(sb)
    t0 = sb.now_us()
    assert t.send("a", "SEND tone=1500 gap=100 5", ms=300).startswith("OK state=playing")
    burst = b""
    for i in range(3):
        burst += codec.encode(">", f"s{i}", f"SEND tone=40 gap=40 {i + 1}")
        burst += codec.encode(">", f"q{i}", "STATUS")
        burst += codec.encode(">", f"p{i}", "PING")
    assert len(burst) > 128  # more than one FEED_BYTES slice of input
    sb.write(burst)
    sb.run_for(2000)
    assert t.events("s2")[-1].startswith("DONE 1")
    st = _status(t, "z")
    x = sb.line.samples(RATE, start_us=t0, end_us=sb.now_us())
    tones = [(e - s) * 1000 for s, e in segments(x, RATE)]
    print("tones on the line (ms):", [round(v, 3) for v in tones], "status:", st)
    assert decode_multimon(x, RATE) == "5123"
    assert len(tones) == 4 and abs(tones[0] - 1500) <= 0.1, tones
    assert st["underruns"] == "0", st


def test_status_counts_underruns(costly_pico):
    # the counter is the backend's own: a main loop that cannot keep up shows in STATUS
    sb = costly_pico
    sb.run_for(50)
    t = Talk(sb)
    assert _status(t, "0")["underruns"] == "0"
    app = sb.load("tonebridge_fw.app")
    slow = app.App.step

    def step(self):
        ms = slow(self)
        if self.player.busy():
            sb.runtime.advance_us(40000)  # a pass that takes longer than both buffers
        return ms

    app.App.step = step
    t.send("1", "SEND tone=300 gap=40 5", ms=400)
    assert int(_status(t, "2")["underruns"]) >= 1


@pytest.mark.parametrize("offset_ms", [2, 4, 7, 9, 11, 13])
def test_a_send_costing_more_than_a_chunk_still_leaves_no_gap(offset_ms):
    # a SEND handled in 20 ms (the slow end of the chip's frame path: engine 14.6 ms, its
    # reply 3.9 ms) is longer than a DMA chunk (16.8 ms): before handling a frame the loop
    # makes sure at least ROOM_MS (24 ms) is queued, waiting for the playing chunk to end and
    # refilling it if not. With the wait taken out (Player.slack_ms always -1) the tone ran
    # dry at 5 of these 6 arrival times (offset_ms into the first tone's playing chunk)
    sb = _costly(send_us=20_000)
    try:
        sb.run_for(100)
        t = Talk(sb)
        t.send("a", "SEND tone=1500 gap=100 5", ms=300 + offset_ms)
        sb.write(b"".join(codec.encode(">", f"s{i}", f"SEND tone=40 {i + 1}") for i in range(3)))
        sb.run_for(1800)
        assert t.events("s2")[-1].startswith("DONE 1")
        assert _status(t, "z")["underruns"] == "0"
    finally:
        sb.close()

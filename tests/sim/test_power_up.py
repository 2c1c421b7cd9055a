"""A SEND that reaches a simulated Pico right after it boots: the PWM slice starts driving
mid-scale at power-up and the output stage (DC block C9, level stage C8, line transformer;
hw/filter.json) rings down for tens of ms. The player keeps the tone path muted until the
backend says the stage has settled (PwmDmaBackend.ready, SETTLE_MS), so the line hears the
first tone and nothing before it. On the old firmware a send within ~3 ms of boot heard a
decaying transient of up to 0.2 (a tone peaks at 0.7) in the 10 ms the relay settled."""

import numpy as np
import pytest
from tonebridge.analysis import decode_multimon, segments
from tonebridge.sim import SimBoard, VirtualClock
from tonebridge_fw import codec

RATE = 48000


@pytest.mark.parametrize("at_ms", [0, 2, 3, 20])
def test_a_send_right_after_boot_hears_no_transient(at_ms):
    sb = SimBoard("pico", VirtualClock())
    try:
        sb.run_until_us(at_ms * 1000)
        sb.write(codec.encode(">", "1", "SEND tone=100 gap=100 5"))
        sb.run_for(300)
        x = sb.line.samples(RATE, start_us=0, end_us=sb.now_us())
        (seg,) = segments(x, RATE)
        # everything before the first tone's rising edge (it starts 1 ms before its 50 % point)
        before = x[: int((seg[0] - 0.0015) * RATE)]
        tone = float(np.max(np.abs(x)))
        print(
            f"send at {at_ms} ms: tone from {seg[0] * 1000:.1f} ms, peak before it "
            f"{np.max(np.abs(before)):.5f}, tone peak {tone:.3f}"
        )
        assert np.max(np.abs(before)) < 0.001 * tone  # below -60 dB of the tone
        assert 0.68 < tone < 0.71  # the tone alone, no offset riding on it
        assert seg[1] - seg[0] == pytest.approx(0.100, abs=0.0005)
        assert decode_multimon(x, RATE) == "5"
        assert b"!1 DONE 1" in sb.read()
    finally:
        sb.close()

"""The SBC path in virtual time: the firmware's App + MT8880 driver (loaded unmodified, with the
SBC machine/time modules) on the RPi.GPIO adapter, through the fake RPi.GPIO, into the real
sim MT8880 chip model; the recorded line is checked with multimon-ng and a tone fit."""

import numpy as np
from tonebridge.analysis import decode_multimon, fit_tones, steady_slices
from tonebridge.sbc.board import SbcBoard
from tonebridge.sim.clock import VirtualClock
from tonebridge.sim.mt8880_chip import tone_hz
from tonebridge_fw import codec
from tonebridge_fw.keypad import MT8880_CODE

from .conftest import Rig

RATE = 48000
ALL = "123A456B789C*0#D"


def send(board, rig, text, rid="r1", tone=60, gap=60, limit_ms=20_000):
    """One SEND frame over the in-process link; run until the board reports DONE/ABORT."""
    board.link.host_write(codec.encode(">", rid, f"SEND tone={tone} gap={gap} {text}"))
    out = b""
    t_end = board.now_us() + limit_ms * 1000
    while board.now_us() < t_end:
        board.run_for(20)
        out += board.link.host_read()
        if f"!{rid} DONE".encode() in out or f"!{rid} ABORT".encode() in out:
            break
    board.run_for(50)
    return out + board.link.host_read()


def play(text, config=None, wires=None, tone=60, gap=60):
    rig = Rig(VirtualClock(), wires)
    board = SbcBoard("rpi-mt8880", rig.gpio, rig.clock, config=config, boot_id="0000abcd")
    try:
        t0 = board.now_us()
        out = send(board, rig, text, tone=tone, gap=gap)
        x = rig.samples(RATE, start_us=t0)
    finally:
        board.close()
    return rig, out, x


def test_every_key_decodes_and_has_the_chip_frequencies():
    rig, out, x = play(ALL)
    assert b"!r1 DONE 16 " in out
    assert decode_multimon(x, RATE) == ALL
    slices = steady_slices(x, RATE)
    assert len(slices) == len(ALL)
    for key, s in zip(ALL, slices, strict=True):
        fl, _al, fh, _ah, _res = fit_tones(s, RATE)
        el, eh = tone_hz(MT8880_CODE[key])
        assert abs(fl - el) < 0.5 and abs(fh - eh) < 0.5, (key, fl, fh, el, eh)
    assert rig.tx_codes() == [MT8880_CODE[k] for k in ALL]
    assert rig.chip.bus_conflicts == 0


def test_burst_mode_from_the_profile_override_also_plays():
    rig, out, x = play("159#", config={"mt8880_mode": "burst"})
    assert b"!r1 DONE" in out
    assert decode_multimon(x, RATE) == "159#"


def test_tone_and_gap_lengths_follow_the_plan():
    from tonebridge.analysis import segments

    _rig, _out, x = play("2580", tone=80, gap=120)
    seg = segments(x, RATE)
    tones = [(e - s) * 1000 for s, e in seg]
    gaps = [(seg[i + 1][0] - seg[i][1]) * 1000 for i in range(len(seg) - 1)]
    assert len(tones) == 4
    assert all(abs(t - 80) < 3 for t in tones), tones
    assert all(abs(g - 120) < 3 for g in gaps), gaps


def test_line_is_on_hook_and_silent_after_close():
    rig, _out, _x = play("1")
    assert not rig.line_if.off_hook and rig.line_if.muted
    assert not rig.chip.sounding
    assert rig.gpio._dir == {}  # every channel released (RPi.GPIO.cleanup)


def test_swapped_data_wires_give_no_audio():
    # D0 and D1 (BCM 5 and 6) soldered the wrong way round on the header: every nibble has
    # b0/b1 exchanged, so CRA TOUT (b0) lands as CP (b1) and CRB BURST-off (b0) as TEST (b1):
    # the tone output is never enabled. The control registers are write-only, but the chip's
    # own receiver hears the silent line: the first digit is a line FAULT (docs/sbc.md).
    rig, out, x = play("1234", wires={5: 6, 6: 5})
    assert b"!- FAULT line digit 0 key 1 not heard on the line" in out
    assert b"not-heard verified=0" in out and b"DONE" not in out
    assert decode_multimon(x, RATE) == ""
    assert rig.chip.crb == 0x2 and not rig.chip.segments
    # the digits that reached the chip were wrong too; the fault stopped the sequence
    assert rig.tx_codes() == [2, 1]


def test_a_dead_phi2_wire_gives_no_audio():
    # phi2 (BCM 26) on a pin the chip is not connected to: no bus cycle ever reaches it
    rig, out, x = play("5", wires={26: 4})
    assert not rig.chip.initialised
    assert decode_multimon(x, RATE) == ""
    assert len(x) == 0 or float(np.max(np.abs(x))) == 0.0


def test_a_gpio_error_mid_sequence_is_reported_and_the_board_recovers():
    rig = Rig(VirtualClock())
    board = SbcBoard("rpi-mt8880", rig.gpio, rig.clock, boot_id="0000abcd")
    real_output = rig.gpio.output

    def failing_output(ch, v):
        if ch == 26:  # phi2: RPi.GPIO raising, e.g. the channel taken by another process
            raise RuntimeError("GPIO busy")
        return real_output(ch, v)

    try:
        rig.gpio.output = failing_output
        out = send(board, rig, "12")
        assert b"!- FAULT backend RuntimeError GPIO busy" in out
        assert b"!r1 ABORT 0 error" in out
        rig.gpio.output = real_output
        t0 = board.now_us()
        out = send(board, rig, "3", rid="r2")
        assert b"!r2 DONE 1 " in out
        assert decode_multimon(rig.samples(RATE, start_us=t0), RATE) == "3"
    finally:
        board.close()


def test_a_held_key_on_the_pi(tmp_path):
    """`5(2000)` in the tonebridge dialect: the MT8880 driver (manual mode) times the 2 s tone
    in software on the Pi's clock; measured on the recorded line."""
    from tonebridge.analysis import segments

    rig = Rig(VirtualClock())
    board = SbcBoard("rpi-mt8880", rig.gpio, rig.clock, boot_id="0000abcd")
    try:
        t0 = board.now_us()
        board.link.host_write(codec.encode(">", "h1", "SEND dialect=tonebridge 15(2000)2"))
        out = b""
        while b"!h1 DONE" not in out and board.now_us() < t0 + 10_000_000:
            board.run_for(20)
            out += board.link.host_read()
        board.run_for(50)
        x = rig.samples(RATE, start_us=t0)
    finally:
        board.close()
    assert b"!h1 DONE 3" in out
    assert decode_multimon(x, RATE) == "152"
    tones = [(e - s) * 1000 for s, e in segments(x, RATE)]
    assert len(tones) == 3 and abs(tones[1] - 2000) <= 1.0, tones  # a main-loop pass: 1 ms
    print("rpi-mt8880 held 5:", round(tones[1], 3), "ms")

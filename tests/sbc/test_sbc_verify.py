"""rpi-mt8880 hears its line (issue 12): the firmware's ChipEar, run by the SBC in CPython,
polls the chip's status and receive registers over the same GPIO bus (the fake RPi.GPIO on
the simulator's pin bus) and verifies every digit; SELFTEST plays the 16 keys through the loop
relay into the chip's own receiver. Virtual time."""

import numpy as np
from tonebridge.sbc.board import SbcBoard
from tonebridge.sim.clock import VirtualClock
from tonebridge_fw import boards, codec, keypad

from .conftest import Rig


def _run(text, config=None, fault=None, body=None, ms=4000):
    rig = Rig(VirtualClock(), config=config)
    board = SbcBoard("rpi-mt8880", rig.gpio, rig.clock, config=config, boot_id="0000abcd")
    try:
        board.run_for(30)
        if fault:
            rig.line_if.seed_fault(fault, rig.clock.now_us())
        board.link.host_write(codec.encode(">", "0", "HELLO"))
        board.link.host_write(codec.encode(">", "1", body or f"SEND tone=60 gap=60 {text}"))
        board.run_for(ms)
        frames = list(codec.Decoder(accept="<!").feed(board.link.host_read()))
    finally:
        board.close()
    return rig, frames


def _ev(frames, rid="1"):
    return [f[2] for f in frames if f[1] == rid and f[0] == "!"]


def _hello(frames):
    reply = [f[2] for f in frames if f[1] == "0"][0]
    return dict(w.split("=", 1) for w in reply.split()[1:] if "=" in w)


def test_the_profile_has_the_chips_receiver_and_a_loop_relay():
    p = boards.profile("rpi-mt8880")
    assert p["mt8880_rx"] is True and p["loop_pin"] == 16


def test_sixteen_keys_are_verified_digit_by_digit_over_the_gpio_bus():
    rig, frames = _run(keypad.KEYS)
    assert _hello(frames)["verify"] == "1"
    ev = _ev(frames)
    heard = [e.split() for e in ev if e.startswith("HEARD")]
    assert [(h[1], h[2]) for h in heard] == [(str(i), k) for i, k in enumerate(keypad.KEYS)]
    assert all(45 <= int(h[3][3:]) <= 65 for h in heard), heard
    assert ev[-1] == "DONE 16 verified=16"
    assert rig.chip.bus_conflicts == 0


def test_a_relay_that_does_not_close_is_a_fault_naming_digit_0():
    _rig, frames = _run("5#9", fault="relay")
    faults = [f[2] for f in frames if f[2].startswith("FAULT")]
    assert faults == ["FAULT line digit 0 key 5 not heard on the line"]
    assert _ev(frames)[-1].endswith("not-heard verified=0")


def test_selftest_through_the_loop_relay_with_the_line_on_hook():
    rig, frames = _run("", body="SELFTEST")
    ev = _ev(frames)
    heard = [e.split() for e in ev if e.startswith("HEARD")]
    assert [h[2] for h in heard] == list(keypad.KEYS)
    assert all(h[-1] == "pass=1" for h in heard), heard
    assert ev[-1] == "DONE 16 verified=16 pass=16"
    assert rig.line_if.hook_log == []
    assert np.max(np.abs(rig.samples(8000))) == 0  # no exchange heard it
    assert [c for _, c in rig.line_if.loop_log] == [True, False]


def test_a_pi_built_without_the_receiver_sends_unverified_and_refuses_selftest():
    cfg = {"mt8880_rx": None}
    _rig, frames = _run("12", config=cfg)
    assert _hello(frames)["verify"] == "0"
    assert _ev(frames)[-1] == "DONE 2"
    _rig, frames = _run("", config=cfg, body="SELFTEST", ms=200)
    assert [f[2] for f in frames if f[1] == "1"] == [
        "ERR bad-arg this board has no receive path and loop relay"
    ]

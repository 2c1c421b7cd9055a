"""SELFTEST (firmware/tonebridge_fw/selftest.py): all 16 keys on hook through the loop relay,
each judged from what the board's receiver measured; nothing reaches the line."""

import numpy as np
import pytest
from tonebridge.commands import selftest as cli_selftest
from tonebridge.sim import SimBoard, VirtualClock
from tonebridge_fw import boards, codec, keypad

# an ADC on the line sense: rp2 ADC0 (rx_adc) or an I2S ADC on an ESP32 (rx_i2s)
HEARING = sorted(
    n
    for n, p in boards.PROFILES.items()
    if p.get("rx_adc") is not None or p.get("rx_i2s") is not None
)


def _selftest(sb, fault=None, run_ms=2400):
    sb.run_for(30)
    if fault:
        sb.seed_line_fault(fault)
    sb.read()
    sb.write(codec.encode(">", "9", "SELFTEST"))
    sb.run_for(run_ms)
    return [f[2] for f in codec.Decoder(accept="<!").feed(sb.read()) if f[1] == "9"]


@pytest.mark.parametrize("name", HEARING)
def test_every_key_passes_and_the_line_stays_on_hook(name):
    with SimBoard(name, VirtualClock()) as sb:
        ev = _selftest(sb)
        heard = [e.split() for e in ev if e.startswith("HEARD")]
        assert [h[2] for h in heard] == list(keypad.KEYS)
        assert all(h[-1] == "pass=1" for h in heard), heard
        for h in heard:  # frequencies measured within 1 % (low group) and 0.5 % (high)
            flo, fhi = (float(v) for v in dict(w.split("=") for w in h[3:])["hz"].split(","))
            want = keypad.freqs(h[2])
            assert abs(flo / want[0] - 1) < 0.01 and abs(fhi / want[1] - 1) < 0.005, h
        assert ev[-1] == "DONE 16 verified=16 pass=16"
        assert sb.line_if.hook_log == []  # never off hook
        assert np.max(np.abs(sb.line.samples(8000))) == 0  # the exchange heard nothing
        assert [c for _, c in sb.line_if.loop_log] == [True, False]  # loop relay opened again


@pytest.mark.parametrize("name", ["pico", "esp32-i2s"])
def test_an_open_transformer_fails_every_key_but_a_dead_hook_relay_does_not(name):
    with SimBoard(name, VirtualClock()) as sb:
        ev = _selftest(sb, "transformer")
        assert [e.split()[0] for e in ev[1:-1] if not e.startswith(("START", "END"))] == [
            "UNHEARD"
        ] * 16
        assert ev[-1] == "DONE 16 verified=0 pass=0"
    with SimBoard(name, VirtualClock()) as sb:
        assert _selftest(sb, "relay")[-1] == "DONE 16 verified=16 pass=16"  # K1 is not in it


def test_the_mt8880_board_judges_every_key_with_the_chips_own_receiver():
    # the loop relay puts the chip's tones on IN+/IN- through the hybrid (sim/mt8880_rx.py);
    # the chip measures no levels or frequencies: a key passes when the chip decoded it and its
    # steering lasted the tone time within 10 ms
    with SimBoard("pico-mt8880", VirtualClock()) as sb:
        ev = _selftest(sb)
        heard = [e.split() for e in ev if e.startswith("HEARD")]
        assert [h[2] for h in heard] == list(keypad.KEYS)
        assert all(h[-1] == "pass=1" for h in heard), heard
        assert all(50 <= int(h[3][3:]) <= 70 for h in heard), heard
        assert ev[-1] == "DONE 16 verified=16 pass=16"
        assert sb.line_if.hook_log == []
        assert np.max(np.abs(sb.line.samples(8000))) == 0
        assert [c for _, c in sb.line_if.loop_log] == [True, False]
    with SimBoard("pico-mt8880", VirtualClock()) as sb:
        ev = _selftest(sb, "transformer")
        assert [e for e in ev if e.startswith("UNHEARD")][0] == "UNHEARD 0 1 pass=0"
        assert ev[-1] == "DONE 16 verified=0 pass=0"


def test_selftest_is_refused_off_hook_and_without_a_receive_path():
    with SimBoard("pico", VirtualClock()) as sb:
        sb.run_for(30)
        sb.write(codec.encode(">", "1", "HOOK off"))
        sb.run_for(20)
        ev = _selftest(sb, run_ms=20)
        assert ev[0].startswith("ERR busy the self-test runs on hook")
    for cfg in ({"mt8880_rx": None}, {"loop_pin": None}):
        with SimBoard("pico-mt8880", VirtualClock(), config=cfg) as sb:
            ev = _selftest(sb, run_ms=300)
            assert ev == ["ERR bad-arg this board has no receive path and loop relay"], cfg
            assert sb.line_if.loop_log == []


@pytest.mark.slow
def test_the_cli_prints_every_key_and_exits_0(capsys):
    class Args:
        port = "sim://pico"
        timeout = 1.0

    assert cli_selftest.run(Args()) == 0
    out = capsys.readouterr().out.splitlines()
    assert len([ln for ln in out if " pass " in ln]) == 16
    assert out[-1] == "selftest: 16/16 keys pass, 16/16 heard"


def test_the_cli_self_tests_an_mt8880_board(capsys):
    class Args:
        port = "sim://pico-mt8880"
        timeout = 1.0

    assert cli_selftest.run(Args()) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(" 1/16 '1' pass  ") and out[0].endswith(" ms"), out[0]
    assert out[-1] == "selftest: 16/16 keys pass, 16/16 heard"


def test_a_pico_built_without_line_sense_refuses_selftest_clearly(capsys):
    with SimBoard("pico", VirtualClock(), config={"rx_adc": None}) as sb:
        ev = _selftest(sb, run_ms=300)
        assert ev == ["ERR bad-arg this board has no receive path and loop relay"]
        assert sb.line_if.loop_log == []  # the loop relay never closed

    class Args:
        port = "sim://pico?rx_adc=null"  # the same override as a sim:// query
        timeout = 1.0

    assert cli_selftest.run(Args()) == 3
    err = capsys.readouterr().err
    assert err.strip() == (
        "tonebridge selftest: board refused the sequence: "
        "this board has no receive path and loop relay"
    )

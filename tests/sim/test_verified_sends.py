"""Verified sends on every board profile that hears its line (firmware/tonebridge_fw/listen.py,
verify.py): the simulated board's ADC samples the line sense (sim/line_sense.py) and the
firmware's own receiver confirms each digit; a broken line interface is a FAULT naming the
first digit not heard."""

import pytest
from tonebridge.sim import SimBoard, VirtualClock, play_on_board
from tonebridge_fw import boards, keypad

# an ADC on the line sense: rp2 ADC0 (rx_adc) or an I2S ADC on an ESP32 (rx_i2s)
HEARING = sorted(
    n
    for n, p in boards.PROFILES.items()
    if p.get("rx_adc") is not None or p.get("rx_i2s") is not None
)


def _events(res):
    return [f[3] for f in res["frames"] if f[1] == "!" and f[2] == "1"]


def _faults(res):
    return [f[3] for f in res["frames"] if f[1] == "!" and f[3].startswith("FAULT")]


def test_the_pico_and_esp32_profiles_hear_their_line():
    assert HEARING == ["esp32-i2s", "esp32s3-i2s", "pico", "pico2", "picow"]


@pytest.mark.parametrize("name", HEARING)
def test_sixteen_keys_verified_digit_by_digit(name):
    with SimBoard(name, VirtualClock()) as sb:
        res = play_on_board(sb, keypad.KEYS, "catapult", 40, 40, lead_ms=30)
        ev = _events(res)
        heard = [e.split() for e in ev if e.startswith("HEARD")]
        assert [(h[1], h[2]) for h in heard] == [(str(i), k) for i, k in enumerate(keypad.KEYS)]
        for h in heard:
            kv = dict(w.split("=") for w in h[3:])
            assert 33 <= int(kv["ms"]) <= 47, h  # 40 ms tones
            lo, hi = (float(v) for v in kv["lvl"].split(","))
            assert -12.5 < lo < -9.5 and -10.5 < hi < -7.5, h  # -11 / -9 dBm stated
            assert "hz" not in kv  # frequencies are measured in the self-test only
        assert ev[-1] == "DONE 16 verified=16"
        assert not _faults(res)


@pytest.mark.parametrize("name", ["pico", "esp32-i2s", "esp32s3-i2s"])
@pytest.mark.parametrize(
    "fault, value",
    [("relay", None), ("transformer", None), ("attenuation", 40)],
)
def test_a_broken_line_is_a_fault_naming_the_first_digit_not_heard(fault, value, name):
    with SimBoard(name, VirtualClock()) as sb:
        sb.run_for(30)
        sb.seed_line_fault(fault, value)
        res = play_on_board(sb, "5#9", "catapult", 40, 40, lead_ms=10)
        assert _faults(res) == ["FAULT line digit 0 key 5 not heard on the line"]
        ev = _events(res)
        assert not any(e.startswith("HEARD") for e in ev)
        assert ev[-1].startswith("ABORT") and ev[-1].endswith("not-heard verified=0")


@pytest.mark.parametrize("name", ["pico", "esp32-i2s"])
def test_attenuated_by_20_db_is_still_heard(name):
    # the receiver's floor (12 ADC codes, about -41 dBm on the line; -42 dBm on the ESP32's
    # I2S ADC behind its x2 sense stage) sits between the two
    with SimBoard(name, VirtualClock()) as sb:
        sb.run_for(30)
        sb.seed_line_fault("attenuation", 20)
        res = play_on_board(sb, "5#9", "catapult", 40, 40, lead_ms=10)
        assert _events(res)[-1] == "DONE 3 verified=3"


def test_a_fault_mid_sequence_names_the_digit_it_hit():
    with SimBoard("pico", VirtualClock()) as sb:
        sb.run_for(30)
        sb.link.host_read(-1)
        codec = sb.load("tonebridge_fw.codec")
        sb.write(codec.encode(">", "1", "SEND tone=60 gap=60 1234567"))
        # digits 0-2 play (120 ms each from ~10 ms after the SEND); the relay drops at 330 ms
        sb.run_for(330)
        sb.seed_line_fault("relay")
        sb.run_for(1500)
        frames = list(codec.Decoder(accept="<!").feed(sb.link.host_read(-1)))
        ev = [f[2] for f in frames if f[0] == "!"]
        heard = [e.split()[1] for e in ev if e.startswith("HEARD")]
        assert heard == ["0", "1", "2"]
        faults = [e for e in ev if e.startswith("FAULT")]
        assert faults == ["FAULT line digit 3 key 4 not heard on the line"]
        end = [e for e in ev if e.startswith(("DONE", "ABORT"))]
        assert len(end) == 1 and end[0].endswith("not-heard verified=3")


def test_a_pico_built_without_line_sense_sends_unverified():
    # tonebridge.json {"board": "pico", "rx_adc": null}: no receive path (nor its hardware)
    with SimBoard("pico", VirtualClock(), config={"rx_adc": None}) as sb:
        assert sb.sense is None
        assert '"rx_adc": null' in (sb.fs_root / "tonebridge.json").read_text()
        sb.run_for(30)
        sb.link.host_read(-1)
        codec = sb.load("tonebridge_fw.codec")
        sb.write(codec.encode(">", "0", "HELLO"))
        sb.run_for(20)
        hello = [f[2] for f in codec.Decoder(accept="<").feed(sb.link.host_read(-1))]
        assert len(hello) == 1 and " verify=0" in hello[0], hello
        res = play_on_board(sb, keypad.KEYS, "catapult", 40, 40, lead_ms=10)
        ev = _events(res)
        assert res["reply"].startswith("OK state=playing played=0 digits=16 ms=")
        assert ev[-1] == "DONE 16"  # no verified= claim at all
        assert not [e for e in ev if e.startswith(("HEARD", "UNHEARD"))]
        assert not _faults(res)
        sb.write(codec.encode(">", "2", "RESULT 1"))
        sb.run_for(50)
        frames = list(codec.Decoder(accept="<!").feed(sb.link.host_read(-1)))
        result = [f[2] for f in frames if f[1] == "2"][0]
        assert result.startswith("OK state=done played=16 digits=16") and "verified" not in result

"""hw/line-sense.json (the receive path's front end as data) is what the firmware's profiles and
the simulator use: the sense stage's gain per board, the ESP32 ADC's full scale, and the rp2
ADC's 12 bits over 3.3 V."""

import json
import math
from pathlib import Path

import pytest
from tonebridge.sim import SimBoard, VirtualClock
from tonebridge.sim.i2s_rx import ADCS
from tonebridge_fw import boards
from tonebridge_fw.backends import adc_i2s

HW = Path(__file__).resolve().parents[2] / "hw"
SENSE = json.loads((HW / "line-sense.json").read_text())


def test_every_board_that_hears_its_line_has_one_variant():
    hearing = sorted(
        n
        for n, p in boards.PROFILES.items()
        if p.get("rx_adc") is not None or p.get("rx_i2s") is not None
    )
    listed = sorted(b for v in SENSE["variants"].values() for b in v["boards"])
    assert listed == hearing


@pytest.mark.parametrize("variant", sorted(SENSE["variants"]))
def test_the_gain_is_the_stage_and_the_profile_and_the_simulator(variant):
    v = SENSE["variants"][variant]
    gain = 1 + v["RF"] / v["RG"] if v["RG"] else 1.0
    assert gain == v["gain"]
    for name in v["boards"]:
        assert boards.PROFILES[name].get("rx_gain", 1.0) == gain, name
        with SimBoard(name, VirtualClock(), run_main=False) as sb:
            assert sb.sense.gain == gain, name


def test_the_esp32_adc_full_scale_is_the_firmware_and_the_model():
    fs = SENSE["variants"]["esp32_i2s_adc"]["adc_full_scale_vrms"]
    assert ADCS["pcm1860"] == fs
    assert adc_i2s.FULL_SCALE_V == pytest.approx(fs * 2**0.5)
    assert adc_i2s.VOLTS_PER_CODE == pytest.approx(fs * 2**0.5 / 2048)


def test_both_variants_clip_near_the_same_line_level():
    # +3.6 dBm of sine on the rp2 ADC (1.65 V peak at gain 1); +2.6 dBm on the ESP32's ADC
    # behind gain 2 (1.48 V peak): the same headroom above the board's own -9 dBm within 1 dB
    rp2 = SENSE["variants"]["rp2_adc"]
    esp = SENSE["variants"]["esp32_i2s_adc"]
    v_rp2 = rp2["adc_full_scale_vpeak"] / rp2["gain"]
    v_esp = esp["adc_full_scale_vrms"] * 2**0.5 / esp["gain"]
    assert abs(20 * math.log10(v_esp / v_rp2)) < 1.0

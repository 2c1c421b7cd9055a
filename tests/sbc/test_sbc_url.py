"""sbc:// through BoardClient in real time (as `tonebridge serve/send --port sbc://rpi-mt8880`
run on a Pi), with the fake RPi.GPIO injected by tonebridge.sbc.set_gpio_module: the chip model
on the other side of the API records the line."""

import pytest
import serial
import tonebridge.sbc as sbc
from tonebridge.analysis import decode_multimon
from tonebridge.link import BoardClient
from tonebridge.link.pty import PtyBridge
from tonebridge_fw.keypad import MT8880_CODE

RATE = 48000


def test_send_over_sbc_url_plays_digits_that_decode(rrig):
    events = []
    with BoardClient("sbc://rpi-mt8880", timeout=2.0) as c:
        info = c.hello()
        assert info.get("board") == "rpi-mt8880" and info.get("backend") == "mt8880"
        res = c.send("159#", tone_ms=60, gap_ms=60, on_progress=events.append)
        assert (res.played, res.total) == (4, 4)
    assert [e["key"] for e in events if e["event"] == "started"] == list("159#")
    assert decode_multimon(rrig.samples(RATE), RATE) == "159#"
    assert not rrig.line_if.off_hook  # closing the port hung up
    assert rrig.gpio._dir == {}  # and released the GPIO


def test_a_retried_send_is_answered_from_the_window_not_replayed(rrig):
    with BoardClient("sbc://rpi-mt8880", timeout=2.0) as c:
        r1 = c.send("73", tone_ms=50, gap_ms=50, request_id="once-1")
        r2 = c.send("73", tone_ms=50, gap_ms=50, request_id="once-1")
        assert (r1.played, r2.played) == (2, 2)
    assert rrig.tx_codes() == [MT8880_CODE["7"], MT8880_CODE["3"]]
    assert decode_multimon(rrig.samples(RATE), RATE) == "73"


def test_the_same_board_cannot_be_opened_twice(rrig):
    p = serial.serial_for_url("sbc://rpi-mt8880", timeout=0.1)
    try:
        with pytest.raises(serial.SerialException, match="already open"):
            serial.serial_for_url("sbc://rpi-mt8880")
    finally:
        p.close()
    serial.serial_for_url("sbc://rpi-mt8880").close()  # free again


def test_pty_bridge_serves_the_sbc_board(rrig):
    with PtyBridge("sbc://rpi-mt8880") as bridge:
        with BoardClient(bridge.path, timeout=2.0) as c:
            assert c.hello().get("board") == "rpi-mt8880"
            c.send("0", tone_ms=50, gap_ms=50)
    assert decode_multimon(rrig.samples(RATE), RATE) == "0"


def test_bad_urls_are_clear_errors(rrig):
    with pytest.raises(serial.SerialException, match="unknown sbc:// option 'colour'"):
        serial.serial_for_url("sbc://rpi-mt8880?colour=red")
    with pytest.raises(serial.SerialException, match="unknown board 'pi9'"):
        serial.serial_for_url("sbc://pi9")
    with pytest.raises(serial.SerialException, match="'pwm_dma' backend"):
        serial.serial_for_url("sbc://pico")
    with pytest.raises(serial.SerialException, match="mt8880_mode"):
        serial.serial_for_url("sbc://rpi-mt8880?mt8880_mode=loud")
    assert rrig.gpio._dir == {}  # a failed open leaves no channel set up


def test_without_rpi_gpio_the_error_says_what_to_install():
    sbc.set_gpio_module(None)
    try:
        import RPi.GPIO  # noqa: F401

        pytest.skip("RPi.GPIO is installed here")
    except (ImportError, RuntimeError):
        pass
    with pytest.raises(serial.SerialException, match="RPi.GPIO"):
        serial.serial_for_url("sbc://rpi-mt8880")


def test_the_board_reports_a_hardware_id(rrig, tmp_path):
    """An SBC board's HELLO carries a hardware id: the profile's `hwid` (sbc://...?hwid=) when
    given, else the SoC serial from /proc/cpuinfo (else /etc/machine-id)."""
    from tonebridge.sbc.modules import _cpuinfo_serial

    with BoardClient("sbc://rpi-mt8880?hwid=00000000a1b2c3d4", timeout=2.0) as c:
        assert c.hello()["hwid"] == "00000000a1b2c3d4" and c.hwid == "00000000a1b2c3d4"
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nHardware\t: BCM2835\nSerial\t\t: 10000000a1b2c3d4\n")
    assert _cpuinfo_serial(str(cpuinfo)) == bytes.fromhex("10000000a1b2c3d4")
    cpuinfo.write_text("processor\t: 0\n")
    assert _cpuinfo_serial(str(cpuinfo)) is None

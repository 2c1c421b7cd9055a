"""Board profiles and tonebridge.json handling (runs under CPython and MicroPython)."""

from fwtest import raises
from tonebridge_fw import boards
from tonebridge_fw.backends import REGISTRY

NEEDS = {
    "pwm_dma": ("pwm_pin",),
    "i2s": ("sck_pin", "ws_pin", "sd_pin"),
    "mt8880": ("d_pins", "rs0_pin", "rw_pin", "cs_pin", "phi2_pin"),
}


def _pins(p):
    out = []
    for k in p:
        if k.endswith("_pin") and isinstance(p[k], int):
            out.append(p[k])
    if "d_pins" in p:
        out += p["d_pins"]
    return out


def test_every_profile_is_complete_and_has_no_pin_twice():
    assert sorted(boards.PROFILES) == sorted(
        ["pico", "pico2", "picow", "pico-mt8880", "rpi-mt8880", "esp32-i2s", "esp32s3-i2s"]
    )
    for name in boards.PROFILES:
        p = boards.PROFILES[name]
        assert p["mcu"] in ("rp2040", "rp2350", "esp32", "esp32s3", "linux"), name
        assert p["backend"] in REGISTRY, name
        for k in NEEDS[p["backend"]] + ("hook_pin", "mute_pin"):
            assert k in p, (name, k)
        pins = _pins(p)
        assert len(pins) == len(set(pins)), (name, pins)
        if p["backend"] == "pwm_dma":
            assert p["mcu"] in ("rp2040", "rp2350")


def test_profile_copies_and_applies_overrides():
    p = boards.profile("pico", {"board": "pico", "pwm_pin": 18, "max_offhook_s": 30})
    assert p["board"] == "pico" and p["pwm_pin"] == 18 and p["max_offhook_s"] == 30
    assert boards.PROFILES["pico"]["pwm_pin"] == 16  # the table is untouched
    q = boards.profile("pico-mt8880")
    q["d_pins"][0] = 99
    assert boards.PROFILES["pico-mt8880"]["d_pins"][0] == 2


def test_bad_profile_requests_are_clear_errors():
    e = raises(boards.ConfigError, boards.profile, "pico3")
    assert "unknown board 'pico3'" in str(e)
    assert isinstance(e, ValueError)
    e = raises(boards.ConfigError, boards.profile, "pico", {"pwm_pin": "16"})
    assert "pwm_pin" in str(e)
    raises(boards.ConfigError, boards.profile, "pico", {"hook_pin": -1})
    raises(boards.ConfigError, boards.profile, "pico-mt8880", {"d_pins": [1, 2, 3]})


def _write(path, text):
    f = open(path, "w")
    f.write(text)
    f.close()


def _remove(path):
    try:
        import os

        os.remove(path)
    except OSError:
        pass


def test_load_config_reads_the_board_file():
    path = "tb_test_config.json"
    try:
        _write(path, '{"board": "pico2", "mute_pin": 13}')
        p = boards.load_config(path)
        assert p["board"] == "pico2" and p["mcu"] == "rp2350" and p["mute_pin"] == 13
        _write(path, "{not json")
        e = raises(boards.ConfigError, boards.load_config, path)
        assert "not valid JSON" in str(e)
        _write(path, "[1, 2]")
        raises(boards.ConfigError, boards.load_config, path)
        _write(path, "{}")
        assert boards.load_config(path)["board"] == boards.DEFAULT_BOARD
    finally:
        _remove(path)


def test_missing_config_file_means_default_board():
    p = boards.load_config("no_such_tonebridge.json")
    assert p["board"] == "pico"


def test_timing_keys_are_checked():
    assert boards.profile("pico", {"watchdog_ms": 5000})["watchdog_ms"] == 5000
    assert boards.profile("pico", {"relay_settle_ms": 20})["relay_settle_ms"] == 20
    raises(boards.ConfigError, boards.profile, "pico", {"watchdog_ms": "5s"})
    raises(boards.ConfigError, boards.profile, "pico", {"relay_settle_ms": -1})


def test_mqtt_tls_keys_are_checked():
    mqtt = {"host": "192.0.2.10", "ssl": True, "ca": "/ca.der"}
    assert boards.profile("picow", {"mqtt": mqtt})["mqtt"]["ssl"] is True
    e = raises(boards.ConfigError, boards.profile, "picow", {"mqtt": dict(mqtt, ssl="yes")})
    assert "mqtt.ssl" in str(e)
    e = raises(boards.ConfigError, boards.profile, "picow", {"mqtt": dict(mqtt, ssl=False)})
    assert "mqtt.ca needs mqtt.ssl" in str(e)
    raises(boards.ConfigError, boards.profile, "picow", {"mqtt": dict(mqtt, ca="")})


def test_backend_classes_are_imported_by_name():
    from tonebridge_fw import board

    cls = board.backend_class("mt8880")
    assert cls.__name__ == "MT8880Backend"
    e = raises(ValueError, board.backend_class, "pwm")
    assert "unknown backend 'pwm'" in str(e)

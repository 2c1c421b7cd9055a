"""The firmware's MQTT link (tonebridge_fw/mqttlink.py) under real MicroPython: the unix
port runs main.py -> App with a profile that has "mqtt" (no "wifi": the unix port has no
network module, its sockets are the host's), micropython-lib's umqtt.simple on its /lib, a
real Mosquitto on loopback; the host drives it with an mqtt:// BoardClient. The tone backend
is unix_board's log (STEP lines), so "played once" is read from what the backend was told."""

import os
import shutil
import time

import pytest
from test_app_unix import UnixBoard
from tonebridge.fleet.broker import Mosquitto, mosquitto_path
from tonebridge.link import BoardClient
from tonebridge.sim.mplib import umqtt_simple

HWID = "a1b2c3d4e5f6"


@pytest.fixture
def broker(tmp_path):
    if mosquitto_path() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("mosquitto is not installed (make sysdeps)")
        pytest.skip("mosquitto is not installed (make sysdeps installs it when root)")
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


def test_mqtt_link_under_micropython_plays_a_repeated_request_once(broker, tmp_path):
    fs = tmp_path / "board"
    (fs / "lib" / "umqtt").mkdir(parents=True)
    shutil.copyfile(umqtt_simple(), fs / "lib" / "umqtt" / "simple.py")
    cfg = {"board": "picow", "backend": "recording", "hwid": HWID,
           "mqtt": {"host": "127.0.0.1", "port": broker.port, "keepalive": 10}}  # fmt: skip
    board = UnixBoard(fs, "main", cfg)
    client = BoardClient(f"mqtt://127.0.0.1:{broker.port}/{HWID}")
    try:
        deadline = time.monotonic() + 20
        while True:  # the board may still be connecting
            try:
                client.open()
                break
            except Exception:
                assert time.monotonic() < deadline and board.proc.poll() is None, board.stderr_now()
                time.sleep(0.2)
        assert client.info["hwid"] == HWID
        assert client.send("47", tone_ms=40, gap_ms=40, request_id="mp-r1").played == 2
        assert client.send("47", tone_ms=40, gap_ms=40, request_id="mp-r1").played == 2
    finally:
        client.close()
        log = board.stop()
    keys = [w[2] for w in board.lines("STEP") if w[2] != "-"]
    assert keys == ["4", "7"], log

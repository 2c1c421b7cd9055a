"""A Wi-Fi board over TLS (docs/fleet.md, "Wi-Fi boards"): Mosquitto's listener speaks TLS
only (a CA and a broker certificate made here with openssl, as test_tls.py does); a simulated
Pico W runs the firmware unchanged, umqtt.simple 1.3.4 with "mqtt": {"ssl": true, "ca": ...}
on its flash, its TLS MicroPython's ssl API over CPython's ssl (tonebridge.sim.netstack_tls);
the host link reaches it with mqtts://...?ca=. A send plays and its line recording decodes;
a broker certificate from another CA keeps the board off the broker, saying why."""

from __future__ import annotations

import subprocess
import time

import pytest
from fleethelpers import need_mosquitto, need_tools
from test_tls import make_certs
from test_wifi import HWID, heard
from tonebridge.fleet.broker import Mosquitto
from tonebridge.link import BoardClient
from tonebridge.sim import SimBoard, VirtualClock
from tonebridge.sim.mplib import install_umqtt


def der(pem, out):
    subprocess.run(["openssl", "x509", "-in", str(pem), "-outform", "der", "-out", str(out)],
                   check=True, capture_output=True)  # fmt: skip
    return out


@pytest.fixture
def tls_broker(tmp_path):
    need_mosquitto()
    need_tools("openssl", "multimon-ng")
    certs = make_certs(tmp_path / "certs")
    broker = Mosquitto(tmp_path / "broker", tls=certs).start()
    boards = []
    yield broker, certs[0], boards
    for b in boards:
        b.close()
    broker.stop()


def tls_board(broker, ca_pem, boards, fs, **mqtt) -> SimBoard:
    fs.mkdir()
    install_umqtt(fs)
    der(ca_pem, fs / "ca.der")  # the CA, DER, on the board's flash (mpremote cp)
    cfg = {"wifi": {"ssid": "door-lan", "password": "s3cret"},
           "mqtt": {"host": "127.0.0.1", "port": broker.port, "ssl": True, "ca": "/ca.der",
                    **mqtt}}  # fmt: skip
    board = SimBoard("picow", VirtualClock(), paced=True, config=cfg, fs_root=fs, hwid=HWID,
                     access_points={"door-lan": "s3cret"})  # fmt: skip
    boards.append(board)
    return board


def test_a_wifi_board_sends_over_a_tls_only_listener(tls_broker, tmp_path):
    broker, ca, boards = tls_broker
    assert broker.url.startswith("mqtts://")
    board = tls_board(broker, ca, boards, tmp_path / "fs")
    link = BoardClient(f"mqtts://127.0.0.1:{broker.port}/{HWID}?ca={ca}")
    link.open()
    try:
        assert link.info["hwid"] == HWID
        assert link.send("159#", tone_ms=60, gap_ms=60, request_id="tls-r1").played == 4
    finally:
        link.close()
    time.sleep(0.3)
    assert heard(board) == "159#"
    app = board.app
    assert app.link.up and app.link.connects == 1, app.link.last_error


def test_a_broker_certificate_from_another_ca_is_refused(tls_broker, tmp_path):
    broker, _, boards = tls_broker
    other_ca = make_certs(tmp_path / "other")[0]  # the board trusts another CA
    board = tls_board(broker, other_ca, boards, tmp_path / "fs")
    deadline = time.monotonic() + 15
    while not (board.app is not None and board.app.link.last_error):
        assert time.monotonic() < deadline and board.crash is None, board.crash
        time.sleep(0.05)
    app = board.app
    assert not app.link.up and app.link.connects == 0
    assert "-9984" in app.link.last_error and "VERIFY_FAILED" in app.link.last_error, (
        app.link.last_error
    )

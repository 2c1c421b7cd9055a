"""A Wi-Fi board in the fleet (docs/fleet.md, "Wi-Fi boards"): a simulated Pico W runs the
firmware unchanged with micropython-lib's umqtt.simple on its flash, joins the simulated
Wi-Fi and reaches the real Mosquitto on loopback through the simulated socket module; the
host reaches it with an `mqtt://HOST:PORT/HWID` link URL (in-process, or as an agent's --port
behind a front end). What the board plays is its own line recording, decoded by multimon-ng."""

from __future__ import annotations

import threading
import time

import pytest
from fleethelpers import (
    USER,
    Observer,
    cat_url,
    http,
    need_tools,
    wait_digits_sent,
    wait_line_ready,
)
from tonebridge.analysis import decode_multimon
from tonebridge.link import BoardClient
from tonebridge.sim import SimBoard, VirtualClock
from tonebridge.sim.mplib import install_umqtt

HWID = "e6614103e73f4a2b"
RATE = 22050


def wifi_board(fleet, tmp_path, **mqtt) -> SimBoard:
    fs = tmp_path / "picow-fs"
    fs.mkdir()
    install_umqtt(fs)  # as `mpremote mip install umqtt.simple` would
    cfg = {
        "wifi": {"ssid": "door-lan", "password": "s3cret"},
        "mqtt": {"host": "127.0.0.1", "port": fleet.broker.port, **mqtt},
    }
    board = SimBoard("picow", VirtualClock(), paced=True, config=cfg, fs_root=fs, hwid=HWID,
                     access_points={"door-lan": "s3cret"})  # fmt: skip
    fleet.boards = getattr(fleet, "boards", []) + [board]
    return board


def heard(board: SimBoard) -> str:
    with board.runtime.lock:
        x = board.recorder.samples(RATE)
    return decode_multimon(x, RATE)


@pytest.fixture
def wfleet(fleet):
    yield fleet
    for b in getattr(fleet, "boards", []):
        b.close()


def test_wifi_board_joins_the_broker_and_announces_itself(wfleet, tmp_path):
    obs = Observer(wfleet.broker, [f"tonebridge/v1/board/{HWID}/#"])
    try:
        board = wifi_board(wfleet, tmp_path)
        status = obs.wait(lambda t, p, r: t.endswith("/status") and p == b"1")
        boot = obs.wait(lambda t, p, r: t.endswith("/tx") and b" BOOT " in p)
    finally:
        obs.close()
    assert status and boot and f"hwid={HWID}".encode() in boot[1]
    assert board.crash is None and board.net.ssid == "door-lan"


@pytest.mark.slow
def test_wrong_wifi_password_keeps_retrying_and_never_reaches_the_broker(wfleet, tmp_path):
    obs = Observer(wfleet.broker, [f"tonebridge/v1/board/{HWID}/#"])
    fs = tmp_path / "fs"
    fs.mkdir()
    install_umqtt(fs)
    cfg = {"wifi": {"ssid": "door-lan", "password": "wrong", "wait_ms": 300},
           "mqtt": {"host": "127.0.0.1", "port": wfleet.broker.port}}  # fmt: skip
    board = SimBoard("picow", VirtualClock(), paced=True, config=cfg, fs_root=fs, hwid=HWID,
                     access_points={"door-lan": "s3cret"})  # fmt: skip
    wfleet.boards = [board]
    try:
        assert obs.wait(lambda t, p, r: True, timeout=2.5) is None  # nothing on the broker
    finally:
        obs.close()
    app = board.app  # the main loop runs (it did not crash at boot) and keeps trying
    assert board.crash is None and app is not None
    assert not app.link.up and "door-lan" in app.link.last_error
    assert board.net.status == -3  # STAT_WRONG_PASSWORD


@pytest.mark.slow
def test_same_request_id_over_mqtt_plays_once(wfleet, tmp_path):
    need_tools("multimon-ng")
    board = wifi_board(wfleet, tmp_path)
    url = f"mqtt://127.0.0.1:{wfleet.broker.port}/{HWID}"
    first = BoardClient(url)
    first.open()
    try:
        assert first.info["hwid"] == HWID and first.info["board"] == "picow"
        assert first.send("159#", tone_ms=60, gap_ms=60, request_id="wifi-r1").played == 4
    finally:
        first.close()
    # another host process (no memory of the first) repeats the command: the board's own
    # exactly-once window answers it from its record, nothing plays again
    again = BoardClient(url)
    again.open()
    try:
        assert again.send("159#", tone_ms=60, gap_ms=60, request_id="wifi-r1").played == 4
    finally:
        again.close()
    time.sleep(0.3)
    assert heard(board) == "159#"  # once, not "159#159#"


@pytest.mark.slow
def test_send_through_a_front_end_plays_on_the_wifi_board(wfleet, tmp_path):
    need_tools("multimon-ng")
    board = wifi_board(wfleet, tmp_path)
    url = f"mqtt://127.0.0.1:{wfleet.broker.port}/{HWID}"
    wfleet.agent("door", sims=0, extra=("--port", url))
    _, fe = wfleet.frontend("f1")
    line = wait_line_ready(fe, "c-door-1")
    assert line["lineHardwareId"] == HWID
    with http() as h:
        r = h.post(cat_url(fe, "c-door-1") + "/dtmf", json={"dtmfOut": "2580*"},
                   headers={"Idempotency-Key": "door-1"})  # fmt: skip
        assert r.status_code == 200, r.text
        ids = {c["id"] for c in h.get(f"{fe}/v1/users/{USER}/calls").json()}
    assert "c-door-1" in ids
    assert wait_digits_sent(fe, "c-door-1", 5)["dtmfDigitsSent"] == 5
    time.sleep(0.3)
    assert heard(board) == "2580*"


def test_wifi_board_comes_back_after_the_broker_restarts(wfleet, tmp_path):
    need_tools("multimon-ng")
    board = wifi_board(wfleet, tmp_path)
    client = BoardClient(f"mqtt://127.0.0.1:{wfleet.broker.port}/{HWID}")
    client.open()
    try:
        assert client.send("3", tone_ms=60, gap_ms=60, request_id="before").played == 1
        wfleet.broker.restart()  # same port; both the board and the host link reconnect
        deadline = time.monotonic() + 20
        while True:
            try:
                assert client.send("6", tone_ms=60, gap_ms=60, request_id="after").played == 1
                break
            except Exception:
                assert time.monotonic() < deadline, board.app.link.last_error
                time.sleep(0.3)
        assert board.app.link.connects >= 2
    finally:
        client.close()
    time.sleep(0.3)
    assert heard(board) == "36"


def test_the_link_reader_waits_on_the_mqtt_port_itself(wfleet):
    """The link layer's reader blocks in wait_readable until the board's bytes arrive (before:
    an mqtt:// port had nothing to wait on, so the reader polled every 50 ms and each
    request-answer exchange took 50 ms instead of under a millisecond)."""
    import serial
    from tonebridge.link.liveness import wait_readable
    from tonebridge.link.mqtt_url import board_topics

    port = serial.serial_for_url(f"mqtt://127.0.0.1:{wfleet.broker.port}/{HWID}", timeout=1)
    pub = Observer(wfleet.broker, ["unused/#"])
    try:
        rx, tx, _ = board_topics(HWID)
        timer = threading.Timer(0.3, lambda: pub.client.publish(tx, b"!- BOOT\n", qos=1))
        timer.start()
        assert wait_readable(port, 3.0)  # woken by the arrival, not a 50 ms poll giving up
        assert port.read(port.in_waiting) == b"!- BOOT\n"
        timer.join()
    finally:
        pub.close()
        port.close()


def test_board_frames_lost_with_the_broker_are_recovered_by_the_link(wfleet, tmp_path):
    """The board publishes its frames with QoS 0 (docs/fleet.md): the broker stopped while the
    board plays a sequence loses its progress frames and its DONE. The host's link layer
    recovers them: when the link is back it asks the board about the request id, the board's
    exactly-once window answers from its record, and the send reports all 9 digits played;
    the line heard each digit once."""
    need_tools("multimon-ng")
    board = wifi_board(wfleet, tmp_path)
    obs = Observer(wfleet.broker, [f"tonebridge/v1/board/{HWID}/tx"])
    client = BoardClient(f"mqtt://127.0.0.1:{wfleet.broker.port}/{HWID}")
    client.open()
    result = {}

    def send():
        try:
            result["ok"] = client.send("123456789", tone_ms=60, gap_ms=60, request_id="lost-1")
        except Exception as exc:  # noqa: BLE001 - the test reports it
            result["error"] = exc

    t = threading.Thread(target=send)
    try:
        t.start()
        # the board is playing (its first digit reported): the broker goes away for 0.6 s,
        # longer than the rest of the first half of the sequence
        assert obs.wait(lambda tp, p, r: p.startswith(b"!") and b"lost-1" in p, 10)
        obs.close()
        wfleet.broker.stop()
        time.sleep(0.6)
        lost_at = board.app.link.connects
        wfleet.broker.start()
        t.join(30)
        assert not t.is_alive()
    finally:
        client.close()
    assert lost_at == 1 and board.app.link.connects >= 2  # the board's frames had nowhere to go
    assert "error" not in result, result.get("error")
    assert result["ok"].played == 9
    time.sleep(0.3)
    assert heard(board) == "123456789"

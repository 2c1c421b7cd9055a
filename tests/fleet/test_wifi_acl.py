"""A Wi-Fi board's broker user may use only its own tonebridge/v1/board/{hwid}/... topics
(docs/fleet.md, "Authentication, ACLs, TLS"): with Mosquitto's password and ACL files as
`acl_text(..., wifi=...)` writes them, a board that has another board's hardware id but its
own credentials (a copied tonebridge.json, a board swapped without updating the broker) is not
heard on the other board's topics, and its user cannot publish a line's state or events, an
agent's status or another board's frames. The firmware (mqttlink.py with umqtt.simple) runs
unchanged on simulated Pico Ws; the broker is a real Mosquitto on loopback."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from fleethelpers import Observer, need_mosquitto
from test_acl import publish_as
from tonebridge.fleet.broker import Mosquitto, acl_text, board_user, write_auth
from tonebridge.sim import SimBoard, VirtualClock
from tonebridge.sim.mplib import install_umqtt

OWN = "e6614103e73f4a2b"  # the board the credentials belong to
OTHER = "0123456789abcdef"  # another Wi-Fi board of the site (fronted by the same agent)
USERS = {board_user(OWN): "own-pw", board_user(OTHER): "other-pw", "door": "door-pw",
         "admin": "admin-pw"}  # fmt: skip


@pytest.fixture
def broker(tmp_path):
    need_mosquitto()
    acl = acl_text([], {"door": ["door-1", "door-2"]}, wifi={OWN: "door", OTHER: "door"})
    acl += "\nuser admin\ntopic read tonebridge/#\n"
    passwd, aclfile = write_auth(tmp_path / "auth", USERS, acl)
    b = Mosquitto(tmp_path / "broker", passwd=passwd, acl=aclfile).start()
    boards = []
    yield b, boards
    for board in boards:
        board.close()
    b.stop()


def start_board(broker, boards, tmp_path, hwid: str, user: str) -> SimBoard:
    fs = tmp_path / f"fs-{hwid}"
    fs.mkdir()
    install_umqtt(fs)
    cfg = {"wifi": {"ssid": "door-lan", "password": "s3cret"},
           "mqtt": {"host": "127.0.0.1", "port": broker.port, "user": user,
                    "password": USERS[user]}}  # fmt: skip
    board = SimBoard("picow", VirtualClock(), paced=True, config=cfg, fs_root=fs, hwid=hwid,
                     access_points={"door-lan": "s3cret"})  # fmt: skip
    boards.append(board)
    return board


def test_a_board_with_another_boards_id_is_not_heard_on_its_topics(broker, tmp_path):
    b, boards = broker
    obs = Observer(b, ["tonebridge/#"], user="admin", password=USERS["admin"])
    try:
        # the control: a board with its own id and its own credentials is heard
        start_board(b, boards, tmp_path, OWN, board_user(OWN))
        mine = obs.wait(lambda t, p, r: t.endswith(f"{OWN}/tx") and b" BOOT " in p, 15)
        assert mine is not None, "the board with its own credentials was not heard: no control"
        # OTHER's hardware but OWN's credentials: it connects (the password is right), but
        # the broker drops what it publishes on OTHER's topics (status and frames)
        impostor = start_board(b, boards, tmp_path, OTHER, board_user(OWN))
        deadline = time.monotonic() + 15
        while not (impostor.app is not None and impostor.app.link.connects):
            assert time.monotonic() < deadline and impostor.crash is None, impostor.crash
            time.sleep(0.05)
        app = impostor.app
        assert app.link.up and app.link.tx_topic.endswith(f"{OTHER}/tx")
        heard = obs.wait(lambda t, p, r: f"/board/{OTHER}/" in t, 2.0)
    finally:
        obs.close()
    assert heard is None, f"the broker passed {heard[0]} {heard[1][:60]!r}"


def test_a_boards_user_cannot_publish_outside_its_own_board_topics(broker, tmp_path):
    b, _ = broker
    obs = Observer(b, ["tonebridge/#"], user="admin", password=USERS["admin"])
    p = "tonebridge/v1"
    publish_as(SimpleNamespace(broker=b), board_user(OWN), USERS[board_user(OWN)], [
        (f"{p}/board/{OTHER}/tx", b"\x00OK 1 as-another-board\n"),
        (f"{p}/board/{OTHER}/status", b"1"),
        (f"{p}/board/{OWN}/rx", b"\x00SEND as-the-host\n"),  # its own rx: only the host writes
        (f"{p}/line/door-1/state", b'{"v":1,"agent":"door","online":true}'),
        (f"{p}/line/door-1/event", b'{"v":1,"kind":"dtmf_sent","call":"c-door-1"}'),
        (f"{p}/agent/door/status", b'{"v":1,"online":true}'),
        (f"{p}/frontend/fe/reply", b'{"v":1,"id":"x","ok":true}'),
        (f"{p}/board/{OWN}/tx", b"probe"),  # allowed: the control
    ])  # fmt: skip
    seen = []
    probe = obs.wait(lambda t, pl, r: seen.append(t) or pl == b"probe", 10)
    time.sleep(0.3)
    while not obs.messages.empty():
        seen.append(obs.messages.get()[0])
    obs.close()
    assert probe is not None, "the allowed publish never arrived: the control failed"
    assert seen == [f"{p}/board/{OWN}/tx"], seen

"""Requests that were under way when serve stopped (their SEND written or not; the state file
says `sending`) are settled by asking the board when serve starts again: the one the board
has is followed and its retry gets 200 without sending again; the one the board never got
played nothing, so its retry is sent (once)."""

from __future__ import annotations

import time

import httpx
import pytest
from tonebridge.analysis import decode_multimon, segments
from tonebridge.api.idempotency import Idempotency
from tonebridge.link import BoardClient
from tonebridge.link.pty import PtyBridge
from tonebridge.store import Store

USER, PW = "ops", "ops-pw"
CALL = "c-rec"
DEVICE = "dev-1"
RATE = 22050


def heard(bridge):
    with bridge.port.lock:
        x = bridge.board.line.samples(RATE, start_us=0, end_us=bridge.board.now_us())
    return decode_multimon(x, RATE)


@pytest.mark.slow
def test_requests_under_way_at_a_crash_are_settled_by_the_board(start_server, tmp_path):
    path = str(tmp_path / "ttyACM0")
    board = PtyBridge("sim://pico", link_path=path)
    board.start()
    state = str(tmp_path / "state.db")
    cat_path = f"/v1/users/{USER}/calls/{CALL}/dtmf"
    rid_got = Idempotency.board_request_id(USER, cat_path, "got-it")
    rid_lost = Idempotency.board_request_id(USER, cat_path, "lost-it")
    # a request with its own timing in the tonebridge dialect (a held key, the line's pause):
    # the state file keeps what its SEND carried, and reconciling compiles it as sent
    rid_timed = Idempotency.board_request_id(USER, cat_path, "timed")
    timed = b'{"dtmfOut": "7(300),8", "dialect": "tonebridge", "toneDuration": 250}'
    try:
        # what the crashed serve left: two keyed requests, both written down as `sending`;
        # the first SEND reached the board (it plays), the second never left the host
        with BoardClient(path, background=False) as c:
            boot, hwid = c.boot_id, c.hwid
            c.submit("123", request_id=rid_got)
            c.submit("7(300),8", "tonebridge", 250, None, rid_timed, pause_ms=400)
        store = Store(state)
        for key, rid, text in (("got-it", rid_got, "123"), ("lost-it", rid_lost, "45")):
            store.idem_begin((USER, "POST", cat_path, key), _fingerprint(text), rid)
            store.seq_new(rid, CALL, DEVICE, text, "catapult", None, None, len(text), 1, boot, hwid)
        store.idem_begin((USER, "POST", cat_path, "timed"), _sha256(timed), rid_timed)
        store.seq_new(
            rid_timed, CALL, DEVICE, "7(300),8", "tonebridge", 250, None, 2, 2, boot, hwid,
            pause_ms=400,
        )  # fmt: skip
        store.close()

        def tweak(cfg):
            cfg.lines[0].call_id = CALL
            cfg.lines[0].device_id = DEVICE

        srv = start_server(ports=[path], auth=[f"{USER}:{PW}"], tweak=tweak, state=state)
        srv.wait_boards()
        line = srv.bridge.board.lines[0]
        deadline = time.monotonic() + 20
        while srv.bridge.store.seq_open(DEVICE):
            assert time.monotonic() < deadline, srv.bridge.store.seq_open(DEVICE)
            time.sleep(0.1)
        assert srv.bridge.store.seq_get(rid_got)["state"] == "done"
        assert srv.bridge.store.seq_get(rid_lost)["state"] == "failed"
        assert srv.bridge.store.seq_get(rid_timed)["state"] == "done"
        with httpx.Client(base_url=srv.base, auth=(USER, PW), timeout=30) as http:
            r = http.post(cat_path, content=_body("123"), headers=_headers("got-it"))
            assert r.status_code == 200 and r.headers["Idempotent-Replayed"] == "true"
            r = http.post(cat_path, content=timed, headers=_headers("timed"))
            assert r.status_code == 200 and r.headers["Idempotent-Replayed"] == "true"
            r = http.post(cat_path, content=_body("45"), headers=_headers("lost-it"))
            assert r.status_code == 200 and "Idempotent-Replayed" not in r.headers
            deadline = time.monotonic() + 20
            while heard(board) != "1237845":
                assert time.monotonic() < deadline, heard(board)
                time.sleep(0.1)
            time.sleep(0.3)
            assert heard(board) == "1237845"  # each once
            assert http.get(f"/v1/users/{USER}/calls/{CALL}").json()["dtmfDigitsSent"] == 7
            # the timed sequence played as its SEND said: 7 held 300 ms, the 400 ms pause, 8
            # at the request's 250 ms
            segs = line_segments(board)
            tones = [round((e - s) * 1000, 1) for s, e in segs]
            assert tones[3:5] == [300.0, 250.0], tones
            assert round((segs[4][0] - segs[3][1]) * 1000, 1) == 400.0, segs
        assert line.fault is None
    finally:
        board.stop()


def _body(text) -> bytes:
    return b'{"dtmfOut": "' + text.encode() + b'"}'


def _headers(key):
    return {"Idempotency-Key": key, "Content-Type": "application/json"}


def _fingerprint(text):
    return _sha256(_body(text))


def _sha256(body: bytes) -> str:
    import hashlib

    return hashlib.sha256(body).hexdigest()


def line_segments(bridge):
    with bridge.port.lock:
        x = bridge.board.line.samples(RATE, start_us=0, end_us=bridge.board.now_us())
    return segments(x, RATE)

"""`tonebridge serve --port sbc://rpi-mt8880`: the HTTP bridge in front of the in-process SBC
board (fake RPi.GPIO injected), a Catapult DTMF request ends up as decodable audio."""

import socket
import threading
import time

import httpx
import uvicorn
from tonebridge.analysis import decode_multimon
from tonebridge.api import build_config, create_app
from tonebridge_fw.keypad import MT8880_CODE


def test_catapult_dtmf_through_the_bridge_to_the_sbc_board(rrig):
    cfg = build_config(ports=["sbc://rpi-mt8880"], auth=["pi:pw"])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    cfg.listen_host, cfg.listen_port = sock.getsockname()
    app = create_app(cfg)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
    t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        line = app.state.bridge.board.lines[0]
        while line.client is None and line.open_error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert line.open_error is None, line.open_error
        with httpx.Client(base_url=cfg.base_url, auth=("pi", "pw"), timeout=30) as http:
            r = http.post(f"/v1/users/pi/calls/{cfg.lines[0].call_id}/dtmf", json={"dtmfOut": "47"})
            assert r.status_code == 200, r.text
        want = [MT8880_CODE["4"], MT8880_CODE["7"]]
        while len(rrig.chip.segments) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rrig.tx_codes() == want
    finally:
        server.should_exit = True
        t.join(15)
    assert decode_multimon(rrig.samples(48000), 48000) == "47"

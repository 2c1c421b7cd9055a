"""Helpers for the API bridge tests: a real uvicorn server on a free loopback port,
in front of real BoardClients on simulated boards (sim://), recording line audio."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from tonebridge.api import create_app
from tonebridge.api.httpserver import listen_socket, uvicorn_config
from tonebridge.api.recording import NoLock, board_of, sim_of

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
NODE_MODULES = ROOT / "node_modules"


class SpyFactory:
    """Makes real BoardClients and notes every send the bridge hands them (a spy, not a
    fake: the real client and the simulated board do the work)."""

    def __init__(self, **client_kw):
        self.client_kw = client_kw
        self.sends: list[tuple[str, str]] = []
        self.clients = {}

    def __call__(self, url, on_event, **link_kw):
        from tonebridge.link.client import BoardClient

        client = BoardClient(url, on_event=on_event, **{**link_kw, **self.client_kw})
        real_submit = client.submit

        def submit(text, *args, **kw):
            self.sends.append((url, text))
            return real_submit(text, *args, **kw)

        client.submit = submit  # send() goes through submit() too
        self.clients[url] = client
        return client


class Server:
    def __init__(self, cfg, factory):
        self.cfg = cfg
        self.factory = factory
        sock = listen_socket("127.0.0.1", 0)
        cfg.listen_host, cfg.listen_port = sock.getsockname()
        self.app = create_app(cfg, client_factory=factory)
        self.bridge = self.app.state.bridge
        self.base = cfg.base_url
        self.server = uvicorn.Server(
            uvicorn_config(self.app, cfg, log_level="warning", timeout_graceful_shutdown=1)
        )
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)

    def client(self, user, secret, **kw) -> httpx.Client:
        return httpx.Client(base_url=self.base, auth=(user, secret), timeout=30, **kw)

    def wait_boards(self, timeout=30):
        """Wait until every line's BoardClient is open and its first hook job ran."""
        deadline = time.monotonic() + timeout
        for line in self.bridge.board.lines:
            if not line.ready.wait(max(0.0, deadline - time.monotonic())):
                raise RuntimeError(f"board {line.url} did not open")

    def sim(self, index=0):
        return board_of(self.bridge.board.lines[index].client)

    def line_samples(self, index=0, rate=22050):
        """The whole line signal of board `index` so far (volts), read under the sim lock."""
        board, lock = sim_of(self.bridge.board.lines[index].client)
        assert board is not None, "no simulated board behind the line"
        with lock if lock is not None else NoLock():
            return board.line.samples(rate, start_us=0.0, end_us=board.clock.now_us())

    def stop(self):
        self.server.should_exit = True
        self.thread.join(15)


def wait_for_file(path: Path, timeout=30.0) -> Path:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} was not written")
        time.sleep(0.05)
    return path


def need_tools(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing tools: {' '.join(missing)} (make sysdeps)")


def need_node_modules(*names):
    missing = [n for n in names if not (NODE_MODULES / n).exists()]
    if missing:
        pytest.fail(f"missing npm packages {missing}: run npm ci")


def env_with_node_path():
    env = dict(os.environ)
    env["NODE_PATH"] = str(NODE_MODULES)
    return env

"""Fixtures for the API bridge tests (helpers in apihelpers.py)."""

from __future__ import annotations

import pytest
from apihelpers import Server, SpyFactory
from tonebridge.api import build_config


@pytest.fixture
def start_server(tmp_path):
    """start_server(**build_config kwargs, factory=None, tweak=fn(cfg)) -> Server."""
    servers = []

    def start(factory=None, tweak=None, **kw):
        kw.setdefault("record", str(tmp_path / "rec"))
        kw.setdefault("listen", "127.0.0.1:0")
        kw.setdefault("state", str(tmp_path / f"state-{len(servers)}.db"))
        cfg = build_config(**kw)
        if tweak:
            tweak(cfg)
        srv = Server(cfg, factory or SpyFactory())
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()

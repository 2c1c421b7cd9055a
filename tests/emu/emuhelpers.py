"""Helpers for the emulated-board tests."""

from __future__ import annotations

import re
import time

from tonebridge_fw import codec


def wait_for(read, pattern: bytes, timeout: float) -> re.Match:
    """Read (read() -> bytes) until the regex `pattern` matches what was read; the match."""
    got = b""
    deadline = time.monotonic() + timeout
    while True:
        m = re.search(pattern, got)
        if m:
            return m
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {pattern!r} within {timeout} s; got {got[-400:]!r}")
        chunk = read()
        if chunk:
            got += chunk
        else:
            time.sleep(0.02)


def wait_hello(board, timeout: float = 90.0) -> None:
    """Wait for the firmware's main loop: HELLO until answered."""
    deadline = time.monotonic() + timeout
    got = b""
    while time.monotonic() < deadline:
        board.write(codec.encode(">", "h", "HELLO"))
        t = time.monotonic() + 2.0
        while time.monotonic() < t:
            got += board.read()
            if b"<h OK proto=" in got:
                return
            time.sleep(0.05)
    raise TimeoutError(f"no HELLO answer; got {got[-300:]!r}")

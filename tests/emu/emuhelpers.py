"""Helpers for the emulated-board tests."""

from __future__ import annotations

import re
import time


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

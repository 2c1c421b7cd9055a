"""PtyBridge's pump never touches a file descriptor after an unplug closed it.

The kernel gives a closed fd's number to the next open() in the process. A pump that kept
the bare number across an unplug read from (or wrote to) whatever file got it: in the suite
it once swallowed hw/filter.json while another simulated board was being built.
"""

from __future__ import annotations

import os
import select as select_mod
import threading
import time

from tonebridge.link import pty as pty_mod
from tonebridge.link.pty import PtyBridge


def test_an_unplug_during_the_pumps_select_never_reads_the_fds_next_owner(tmp_path, monkeypatch):
    secret = tmp_path / "next-owner.txt"
    secret.write_bytes(b"0123456789" * 10)
    bridge = PtyBridge("sim://pico")
    real_select = select_mod.select
    armed = threading.Event()
    fired = threading.Event()
    taken = {}

    def unplug_and_reuse(m):
        bridge.unplug()  # the fd goes; a file takes its very number
        fd = os.open(secret, os.O_RDONLY)
        if fd != m:
            os.dup2(fd, m)
            os.close(fd)
        taken["fd"] = m
        fired.set()

    def racing_select(r, w, x, timeout=None):
        if armed.is_set() and threading.current_thread() is bridge._thread:
            armed.clear()
            threading.Thread(target=unplug_and_reuse, args=(r[0],), daemon=True).start()
            fired.wait(0.2)  # the unplug lands while the pump is in (or entering) select
        return real_select(r, w, x, timeout)

    monkeypatch.setattr(pty_mod.select, "select", racing_select)
    bridge.start()
    try:
        # the board has booted (its BOOT event reached the pump) before the race is staged: a
        # board still importing its firmware opens files, and one that got the fd's number
        # between the unplug and the dup2 below would be closed by the dup2 and later close
        # the test's file (EBADF here: a race of the test's own making, ~1 run in 20)
        deadline = time.monotonic() + 10
        while bridge.to_host == 0:
            assert time.monotonic() < deadline, "the simulated board never booted"
            time.sleep(0.01)
        time.sleep(0.05)
        to_board = bridge.to_board
        armed.set()
        bridge._wake()  # the pump blocks in select() until woken: make it go round once
        assert fired.wait(5), "the pump never reached select"
        time.sleep(0.1)  # many pump passes
        fd = taken["fd"]
        try:
            assert os.read(fd, 1000) == secret.read_bytes()  # nothing stolen from the file
        finally:
            os.close(fd)
        assert bridge.to_board == to_board  # and nothing of it went to the board
    finally:
        monkeypatch.setattr(pty_mod.select, "select", real_select)
        bridge.stop()

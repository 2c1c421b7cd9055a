"""Line (device) state notifications: GWS clients get a DeviceStateChangeMessage on
/v2/me/devices when a line's state changes, once per change, not once per link event."""

from __future__ import annotations

import threading
import time


def wait_until(pred, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_line_event_is_published_once_per_change_of_state(start_server):
    srv = start_server(sims=["sim://pico"], auth=["u:pw"])
    srv.wait_boards()
    board = srv.bridge.board
    line = board.lines[0]
    seen = []
    board.listeners.append(lambda kind, call, info: kind == "line" and seen.append(info))
    wait_until(
        lambda: line.published is not None and line.published.get("hardwareId"),
        what="the line's publication with its board's id",
    )
    time.sleep(0.2)  # the start-up's own line events (link up, bound) have been delivered
    seen.clear()

    # link events that change nothing (a re-bind, a keep-alive): nothing new for clients
    done = threading.Event()

    def again():
        board.line_changed(line)
        board.line_changed(line)
        done.set()

    board.loop.call_soon_threadsafe(again)
    assert done.wait(5)
    assert seen == [], seen

    # a real change (the state differs from what was published): published once
    line.published = dict(line.published, stale=True)
    done.clear()
    board.loop.call_soon_threadsafe(again)
    assert done.wait(5)
    assert len(seen) == 1, seen
    assert line.published == line.state_json()

"""Hook flash on the emulated Pico (issue 12 item 5): the real MicroPython image with this
firmware, its hook relay pin watched on the emulated chip's GPIO (``EdgeLine`` drives the same
``LineSwitches`` as the simulator). A FLASH request and a '!' in a tonebridge dial string
each break the line for the requested time, to within 1 ms."""

from __future__ import annotations

import time

import pytest
from emuhelpers import wait_for
from tonebridge_fw import codec

pytestmark = pytest.mark.emu


def breaks(hook_log):
    return [
        (t0, t1 - t0)
        for (t0, off0), (t1, off1) in zip(hook_log, hook_log[1:], strict=False)
        if off0 is False and off1 is True
    ]


def request(board, rid, body, pattern, timeout=30.0):
    board.write(codec.encode(codec.REQUEST, rid, body))
    return wait_for(board.read, pattern, timeout)


def test_flash_on_the_emulated_pico(emu_board, provisioned):
    board = emu_board(flash=provisioned())
    wait_for(board.read, rb"BOOT boot=", 30)
    request(board, "1", "HOOK off", rb"<1 OK hook=off")
    request(board, "2", "FLASH 250", rb"<2 OK flash=250")
    time.sleep(1.0)
    m = request(board, "3", "SEND dialect=tonebridge flash=300 1^2", rb"!3 DONE (\d+)", 60)
    assert m.group(1) == b"3"
    sw = board.edge_line.switches
    with board.line_lock:
        got = breaks(list(sw.hook_log))
    print("emulated pico flashes:", [round(b[1] / 1000, 3) for b in got], "ms")
    assert len(got) == 2, sw.hook_log
    assert abs(got[0][1] - 250_000) <= 1000, got
    assert abs(got[1][1] - 300_000) <= 1000, got

"""A burst of requests while a tone plays, on the real MicroPython image on the emulated RP2040:
the chip pays the frame path's real CPU cost (about 20 ms for a SEND, 16.8 ms per DMA chunk),
and the main loop must keep refilling the DMA buffers between frames (app.py). Before it did,
nine frames arriving together left the line silent-but-for-the-held-duty for tens of ms in the
middle of the held tone, and the recording split it in two (tests/sim/test_player_first.py
shows the same on the simulated board with the chip's costs put back). Since the board verifies
its sends (an ADC ring and a DTMF receiver serviced by the main loop), the receiver's work is
budgeted the same way: run between frames in bounded pieces, the player serviced between them
(before, it caught up in one go after the burst and the held tone underran once, 1502.8-1507.2
ms, and the ring lost a lap so the three digits ended "ABORT 1 not-heard")."""

from __future__ import annotations

import time

import pytest
from emuhelpers import wait_for, wait_hello
from tonebridge.analysis import decode_multimon, segments
from tonebridge_fw import codec

pytestmark = pytest.mark.emu
RATE = 48_000


def test_a_burst_of_requests_while_a_tone_plays_leaves_no_gap(emu_board, provisioned):
    board = emu_board(flash=provisioned())
    wait_hello(board)
    t0 = board.now_us()
    board.write(codec.encode(">", "a", "SEND tone=1500 gap=100 5"))
    seen = b""

    def read():
        nonlocal seen
        b = board.read()
        seen += b
        return seen

    wait_for(read, rb"!a START 0 5", 60)
    time.sleep(0.3)  # well inside the held tone (the emulator is paced to the wall clock)
    burst = b""
    for i in range(3):
        burst += codec.encode(">", f"s{i}", f"SEND tone=40 gap=40 {i + 1}")
        burst += codec.encode(">", f"q{i}", "STATUS")
        burst += codec.encode(">", f"p{i}", "PING")
    board.write(burst)
    # verified sends: the receive path runs between the frames too, in bounded pieces (app.py
    # _hear), so its ring never overflows and its work never starves the DMA
    wait_for(read, rb"!s2 (DONE|ABORT) 1", 60)
    board.write(codec.encode(">", "z", "STATUS"))
    m = wait_for(read, rb"<z OK ([^*]*)\*", 30)
    st = dict(kv.split("=", 1) for kv in m.group(1).decode().split())
    time.sleep(0.3)  # the last gap and the analog chain's tail reach the recording
    with board.line_lock:
        x = board.line.samples(RATE, start_us=t0)
    tones = [(e - s) * 1000 for s, e in segments(x, RATE)]
    print("emulated pico, tones on the line (ms):", [round(v, 3) for v in tones], st)
    assert decode_multimon(x, RATE) == "5123"
    assert len(tones) == 4 and abs(tones[0] - 1500) <= 0.1, tones
    assert st["underruns"] == "0", st
    text = seen.decode(errors="replace")
    assert "!a DONE 1 verified=1 " in text, text[-1500:]
    for i in range(3):
        assert f"!s{i} DONE 1 verified=1 " in text, text[-1500:]

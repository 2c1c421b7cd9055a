"""Hardware-in-the-loop: a real tonebridge board on a serial port.

Run with a board plugged in and flashed (see docs/deploy.md):

    make hil PORT=/dev/ttyACM0 BOARD=pico

Without --port these tests are reported as skipped with that instruction (tests/conftest.py).
The board must be on a test line or a dummy load: these tests take it off-hook and play
digits. The same tests pass against `--port sim://pico` (a simulated board in real time),
which is how they are kept working without hardware.
"""

import threading
import time

import pytest
from tonebridge.link import BoardClient, DialStringError, SendError

pytestmark = pytest.mark.hil


@pytest.fixture
def board(request):
    client = BoardClient(request.config.getoption("--port"))
    client.open()
    try:
        yield client
    finally:
        try:
            client.hook(False)
        finally:
            client.close()


def test_handshake_reports_firmware_and_capabilities(board):
    info = board.hello()
    for key in ("fw", "boot", "backend"):
        assert key in info, info


def test_the_board_is_the_profile_named(board, request):
    # `make hil PORT=... BOARD=...` passes --board: a board flashed for another profile (other
    # pins, another tone backend) is reported before its audio is trusted
    want = request.config.getoption("--board")
    info = board.hello()
    if want is not None:
        assert info.get("board") == want, info


def test_send_plays_every_digit_once_with_progress(board):
    board.hook(True)
    events = []
    result = board.send("123#", on_progress=events.append)
    assert (result.played, result.total) == (4, 4)
    finished = [e for e in events if e.get("event") == "finished"]
    assert len(finished) == 4, events


def test_retried_request_id_is_not_played_twice(board):
    board.hook(True)
    rid = f"hil-{int(time.time())}"
    first = board.send("5", request_id=rid)
    assert first.played == 1
    started = []
    again = board.send("5", request_id=rid, on_progress=started.append)
    assert again.played == 1
    assert not [e for e in started if e.get("event") == "started"], "replayed a retried id"


def test_invalid_string_never_reaches_the_board(board):
    before = board.status()["frames"]  # frames the board has received
    with pytest.raises(DialStringError):
        board.send("12x4")
    # the board received exactly one frame since: the STATUS asking this
    assert board.status()["frames"] == before + 1


def test_cancel_mid_sequence_reports_digits_played(board):
    board.hook(True)
    # cancel once the first digit has finished (not after a fixed wall-clock delay: a board
    # that is slow to start, e.g. the emulated one on a busy host, must still be mid-sequence)
    fired = threading.Event()

    def on_progress(ev):
        if ev.get("event") == "finished" and not fired.is_set():
            fired.set()
            threading.Thread(target=board.cancel, daemon=True).start()

    with pytest.raises(SendError) as err:
        board.send("1234567890", tone_ms=200, gap_ms=200, on_progress=on_progress)
    assert fired.is_set()
    assert 0 < err.value.played < 10

"""Line recordings of simulated boards (`serve --record DIR`): each send's line signal as
DIR/<callId>-<n>.wav, read from the SimBoard behind a sim:// BoardClient."""

from __future__ import annotations

import logging
import os

log = logging.getLogger("tonebridge.api")

RECORD_TAIL_MS = 150  # recorded after the board reports the last tone finished
RECORD_RATE = 22050
RECORD_KEEP_S = 30  # simulated line signal kept for recordings
FULL_SCALE_V = 2.0  # line volts written as WAV full scale (as LineRecorder.write_wav)


class NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def sim_of(client):
    """(SimBoard, lock) behind a sim:// BoardClient, or (None, None).

    The lock is the one the sim:// port's driver thread holds while it advances the
    board, so a segment is rendered from a consistent state."""
    if client is None:
        return None, None
    port = getattr(client, "serial", None)
    board = getattr(client, "board", None) or getattr(port, "board", None)
    if board is None or not hasattr(board, "line") or not hasattr(board, "clock"):
        return None, None
    return board, getattr(port, "lock", None)


def board_of(client):
    return sim_of(client)[0]


def now_us(board) -> float | None:
    clock = getattr(board, "clock", None)
    return None if clock is None else clock.now_us()


def write_recording(sim, start_us, end_us, path: str) -> bool:
    """Write the line signal from `start_us` to `end_us` (board time: when the board reported
    the last tone over) as 16-bit WAV, followed by RECORD_TAIL_MS of silence (so a decoder
    sees the last tone end; the next sequence, which may follow `gap` ms later, is never in
    it). Written to a temporary name and renamed, so a reader never sees half a file."""
    import numpy as np

    from tonebridge.analysis.wavio import write_wav

    board, lock = sim
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with lock if lock is not None else NoLock():
            end = board.clock.now_us() if end_us is None else end_us
            x = board.line.samples(RECORD_RATE, start_us=start_us or 0.0, end_us=end)
        tail = np.zeros(int(RECORD_RATE * RECORD_TAIL_MS / 1000))
        tmp = f"{path}.tmp{os.getpid()}.wav"
        write_wav(tmp, np.concatenate([x / FULL_SCALE_V, tail]), RECORD_RATE)
        os.replace(tmp, path)
        return True
    except Exception:
        log.exception("recording %s failed", path)
        return False


def trim(client) -> None:
    """Let a simulated board forget line signal older than RECORD_KEEP_S (a long-running
    serve would grow otherwise)."""
    board, lock = sim_of(client)
    discard = getattr(getattr(board, "line", None), "discard_before", None)
    if discard is None:
        return
    try:
        with lock if lock is not None else NoLock():
            discard(board.clock.now_us() - RECORD_KEEP_S * 1_000_000)
    except Exception:
        log.exception("trimming the simulated line signal failed")

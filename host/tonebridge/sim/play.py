"""Playing a dial string on a simulated board the way a host does: a SEND frame over the
board's serial link to its own main loop, in virtual time (the audio tests, ``tonebridge
render --board``, ``make bench``). Nothing here stands in for a firmware step."""

from __future__ import annotations

from .board import SimBoard
from .clock import VirtualClock


def event_tuple(rid: str, body: str):
    """A board event frame as a tuple: ("started", rid, i, key), ("finished", rid, i, key),
    ("done", rid, n) or ("aborted", rid, n, reason); None for other events."""
    w = body.split()
    if w[0] == "START":
        return ("started", rid, int(w[1]), w[2].replace("^", "!"))  # '^': a flash on the wire
    if w[0] == "END":
        return ("finished", rid, int(w[1]), w[2].replace("^", "!"))
    if w[0] == "DONE":
        return ("done", rid, int(w[1]))
    if w[0] == "ABORT":
        return ("aborted", rid, int(w[1]), w[2] if len(w) > 2 else "")
    return None


def play_on_board(
    sb: SimBoard,
    text: str,
    dialect: str = "catapult",
    tone_ms: int = 100,
    gap_ms: int = 100,
    *,
    lead_ms: int = 50,
    tail_ms: int = 50,
    rid: str = "1",
    pause_ms: int | None = None,
    flash_ms: int | None = None,
) -> dict:
    """Play ``text`` on a simulated board running its own ``main.py`` (``run_main=True``), in
    virtual time: after ``lead_ms`` a SEND request goes in over the board's serial link and the
    firmware's main loop (``App``: transport, engine, player, line, backend) does the rest. The
    board's frames are collected, each at the virtual time the firmware wrote it, until the
    sequence's DONE or ABORT; then ``tail_ms`` more run.

    Returns a dict: plan, events [(t_us, event)] (tuples as ``event_tuple``), frames
    [(t_us, mark, rid, body)], reply (the SEND's reply body), start_us (the SEND written),
    end_us, and app/backend/line/player: the running firmware's objects, for inspection.
    Raises RuntimeError if the board refuses the request or the sequence never finishes
    (the firmware's stall guard aborted it, or no end came at all)."""
    if not sb.run_main:
        raise ValueError("play_on_board needs a board running its main.py (run_main=True)")
    codec = sb.load("tonebridge_fw.codec")
    fw_dial = sb.load("tonebridge_fw.dialstring")
    pause = fw_dial.DEFAULT_PAUSE_MS if pause_ms is None else pause_ms
    flash = fw_dial.DEFAULT_FLASH_MS if flash_ms is None else flash_ms
    plan = fw_dial.compile_plan(text, dialect, tone_ms, gap_ms, pause, flash_ms=flash)
    decoder = codec.Decoder(accept=codec.REPLY + codec.EVENT)
    frames: list = []

    done = []

    def heard():
        data = sb.link.host_read(-1)
        if data:
            t = sb.now_us()
            for f in decoder.feed(data):
                frames.append((t, f[0], f[1], f[2]))
                if f[0] == codec.EVENT and f[1] == rid and f[2].split()[0] in ("DONE", "ABORT"):
                    done.append(t)

    # stamp frames with the board time at which the firmware wrote them
    sb.link.host_listeners.append(heard)
    try:
        sb.run_for(lead_ms)
        del frames[:], done[:]  # the boot banner
        t_start = sb.now_us()
        opts = f"dialect={dialect} tone={tone_ms} gap={gap_ms}"
        if pause_ms is not None:
            opts += f" pause={pause_ms}"
        if flash_ms is not None:
            opts += f" flash={flash_ms}"
        body = f"SEND {opts} {codec.dial_to_wire(text)}"
        sb.write(codec.encode(codec.REQUEST, rid, body))

        def ended():
            return bool(done)

        budget_ms = fw_dial.plan_ms(plan) + 3 * 2000 + 1000
        ok = sb.run_until(ended, timeout_ms=budget_ms, step_ms=5)
        replies = [f[3] for f in frames if f[1] == codec.REPLY and f[2] == rid]
        if not replies or not replies[0].startswith("OK"):
            raise RuntimeError(f"sim: the board refused {body!r}: {replies}")
        if not ok:
            raise RuntimeError(f"sim: the sequence never finished (frames: {frames})")
        t_end = [f[0] for f in frames if f[2] == rid and f[1] == codec.EVENT][-1]
        sb.run_until_us(max(sb.now_us(), t_end + tail_ms * 1000))
    finally:
        sb.link.host_listeners.remove(heard)
    events = []
    for t, mark, r, b in frames:
        ev = event_tuple(r, b) if mark == codec.EVENT and r == rid else None
        if ev is not None:
            events.append((t, ev))
    if events and events[-1][1][0] == "aborted" and events[-1][1][3] == "stalled":
        raise RuntimeError(f"sim: the sequence never finished: the firmware aborted it {events}")
    app = sb.app
    return {
        "plan": plan,
        "events": events,
        "frames": frames,
        "reply": replies[0],
        "start_us": t_start,
        "end_us": sb.now_us(),
        "app": app,
        "backend": app.backend if app is not None else None,
        "line": app.line if app is not None else None,
        "player": app.player if app is not None else None,
    }


def render_on_board(
    board: str,
    text: str,
    dialect: str = "catapult",
    tone_ms: int = 100,
    gap_ms: int = 100,
    out=None,
    *,
    rate: int = 22050,
    lead_ms: int = 50,
    tail_ms: int = 50,
    config: dict | None = None,
    pause_ms: int | None = None,
    flash_ms: int | None = None,
) -> dict:
    """Play ``text`` on a fresh simulated ``board`` running its firmware in virtual time (see
    ``play_on_board``) and write the recorded line signal, from ``lead_ms`` before the SEND to
    ``tail_ms`` after the sequence ended, as 16-bit WAV to ``out`` (if given). Returns the
    ``play_on_board`` dict plus samples (numpy, volts, at ``rate``), rate and board."""
    sb = SimBoard(board, VirtualClock(), config=config)
    try:
        res = play_on_board(
            sb,
            text,
            dialect,
            tone_ms,
            gap_ms,
            lead_ms=lead_ms,
            tail_ms=tail_ms,
            pause_ms=pause_ms,
            flash_ms=flash_ms,
        )
        t0 = res["start_us"] - lead_ms * 1000
        res["samples"] = sb.recorder.samples(rate, start_us=t0, end_us=res["end_us"])
        if out is not None:
            sb.recorder.write_wav(out, rate, start_us=t0, end_us=res["end_us"])
        res["rate"] = rate
        res["board"] = sb
        return res
    finally:
        sb.close()

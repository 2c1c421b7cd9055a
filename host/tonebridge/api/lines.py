"""Board lines and the calls on them.

Each board line carries at most one live call. A `Line` owns one `BoardClient` and
one worker thread that runs the line's jobs (sends, hook changes, dials) strictly in
arrival order from a FIFO queue: sends on one call never interleave and are never
dropped; different lines run concurrently in their own threads.

The asyncio side (`Switchboard`) submits jobs and awaits two futures per send:
`accepted` (the board accepted the whole sequence; Catapult answers 200 then) and
`done` (the board reported it played, or failed with a count of digits played).
State changes and results are reported to listeners on the event loop
(`Switchboard.listeners`: fn(kind, call, info)), which is how CometD `DtmfSent` goes
out when the board reports the digits played, not when the request arrived.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import secrets
import threading
import time
from dataclasses import dataclass, field

from .config import LineConfig

log = logging.getLogger("tonebridge.api")

LIVE = ("Dialing", "Established", "Held")
RECORD_TAIL_MS = 150  # recorded after the board reports the last tone finished
RECORD_RATE = 22050
RECORD_KEEP_S = 30  # simulated line signal kept for recordings
TRIM_EVERY_S = 5.0


class SendFailed(Exception):
    """A sequence did not (completely) play. `accepted` says whether the board had
    accepted it (then some digits may have gone out: `played`)."""

    def __init__(self, message: str, played: int = 0, total: int = 0, accepted: bool = False):
        super().__init__(message)
        self.message = message
        self.played = played
        self.total = total
        self.accepted = accepted


class CallReleased(Exception):
    """The call was hung up before this job's turn came; nothing was sent."""


@dataclass
class Call:
    id: str
    line: Line
    owner: str
    direction: str  # "in" or "out" (Catapult); GWS callType is "Outbound"/"Inbound"
    local: str
    remote: str
    state: str = "Established"
    created: float = field(default_factory=time.time)
    active_time: float | None = None
    end_time: float | None = None
    conn_id: str = field(default_factory=lambda: secrets.token_hex(8))
    sends: int = 0  # sends submitted (numbering of recordings)
    digits_sent: int = 0  # digits the board reported played on this call
    failure: dict | None = None  # last send failure after acceptance
    failure_reported: bool = True

    @property
    def live(self) -> bool:
        return self.state in LIVE


@dataclass(eq=False)
class Job:
    kind: str  # "send", "hook", "dial"
    call: Call | None
    text: str = ""
    dialect: str = "catapult"
    tone_ms: int | None = None
    gap_ms: int | None = None
    request_id: object = None
    number: int = 0  # recording number
    total: int = 0  # digits in the sequence
    off_hook: bool = True
    accepted: asyncio.Future | None = None
    done: asyncio.Future | None = None


def _sim_of(client):
    """(SimBoard, lock) behind a sim:// BoardClient, or (None, None) (for recordings).

    The lock is the one the sim:// port's driver thread holds while it advances the
    board, so a segment is rendered from a consistent state."""
    if client is None:
        return None, None
    port = getattr(client, "serial", None) or getattr(client, "_port", None)
    board = getattr(client, "board", None) or getattr(port, "board", None)
    if board is None or not hasattr(board, "line") or not hasattr(board, "clock"):
        return None, None
    lock = getattr(port, "lock", None)
    return board, lock


def _board_of(client):
    return _sim_of(client)[0]


class Line:
    def __init__(self, cfg: LineConfig, board, client_factory):
        self.cfg = cfg
        self.board = board  # the Switchboard
        self.url = cfg.url
        self.device_id = cfg.device_id
        self.owner = cfg.owner
        self.number = cfg.number
        self._client_factory = client_factory
        self.client = None
        self.open_error: str | None = None
        self.call: Call | None = None
        self._queue: queue.Queue = queue.Queue()
        self._current: Job | None = None
        self._wake = threading.Event()  # interrupts the dial wait on hangup
        self._commanded_off_hook = False  # last hook state the worker told the board
        self._last_trim = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"line-{cfg.device_id}", daemon=True)

    # ------------------------------------------------------------ thread side
    def start(self):
        self._thread.start()

    def stop(self, timeout=5.0):
        if self._current is not None:
            self.cancel_current()
        self._queue.put(None)
        self._wake.set()
        self._thread.join(timeout)

    def _post(self, fn, *args):
        try:
            self.board.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # loop closed during shutdown
            pass

    def _ensure_open(self):
        if self.client is not None:
            return self.client
        client = self._client_factory(self.url, self._on_board_event)
        try:
            client.open()
        except Exception as exc:
            self.open_error = f"cannot open board {self.url}: {exc}"
            raise SendFailed(self.open_error) from exc
        self.client = client
        self.open_error = None
        return client

    def _on_board_event(self, event):
        """Unsolicited board events (link thread): the board hung up by itself, restarted."""
        if not isinstance(event, dict):
            return
        if event.get("event") == "hook" and event.get("off_hook") is False:
            # Our own HOOK on produces the same event; the check job runs after any hook
            # command queued before it and tells a spontaneous hang-up from ours.
            reason = event.get("reason") or "board"
            self._queue.put(Job(kind="check_hook", call=self.call, text=reason))
        elif event.get("event") == "fault":
            log.warning("line %s: board fault %s", self.url, event)

    def _run(self):
        try:
            self._ensure_open()
            if self.call is not None and self.call.state == "Established":
                self._hook(True)
        except Exception as exc:
            log.error("line %s: %s", self.url, exc)
        while True:
            try:
                job = self._queue.get(timeout=TRIM_EVERY_S)
            except queue.Empty:
                self._trim()
                continue
            if job is None:
                break
            self._current = job
            try:
                if job.kind == "send":
                    self._do_send(job)
                elif job.kind == "hook":
                    try:
                        self._hook(job.off_hook)
                    except SendFailed as exc:
                        log.warning("line %s: hook(%s): %s", self.url, job.off_hook, exc)
                    self._post(_resolve, job.done, None)
                elif job.kind == "dial":
                    self._do_dial(job)
                elif job.kind == "check_hook":
                    self._check_hook(job)
            except Exception as exc:  # never let the worker die
                log.exception("line %s: job failed", self.url)
                failure = SendFailed(f"internal error: {exc}", 0, job.total)
                self._post(_fail, job.accepted, failure)
                self._post(_fail, job.done, failure)
            finally:
                self._current = None
            if time.monotonic() - self._last_trim > TRIM_EVERY_S:
                self._trim()
        if self.client is not None:
            try:
                self.client.close()
            except Exception:
                log.exception("line %s: close failed", self.url)

    def _trim(self):
        """Let a simulated board forget line signal older than RECORD_KEEP_S (between jobs,
        so no recording in progress needs it); a long-running serve would grow otherwise."""
        self._last_trim = time.monotonic()
        board, lock = _sim_of(self.client) if self.client is not None else (None, None)
        discard = getattr(getattr(board, "line", None), "discard_before", None)
        if discard is None:
            return
        try:
            with lock if lock is not None else _NoLock():
                discard(board.clock.now_us() - RECORD_KEEP_S * 1_000_000)
        except Exception:
            log.exception("line %s: trimming the simulated line signal failed", self.url)

    def _check_hook(self, job: Job):
        """The board reported on-hook: if we last told it off-hook, it hung up by itself."""
        if not self._commanded_off_hook:
            return
        try:
            status = self._ensure_open().status()
        except Exception as exc:
            log.warning("line %s: status after a hook event failed: %s", self.url, exc)
            return
        if str(status.get("hook", "")).lower() == "on":
            self._commanded_off_hook = False
            self._post(self.board._board_on_hook, self, job.call, job.text)

    def _hook(self, off_hook: bool):
        self._commanded_off_hook = off_hook
        try:
            self._ensure_open().hook(off_hook)
        except SendFailed:
            raise
        except Exception as exc:
            log.warning("line %s: hook(%s) failed: %s", self.url, off_hook, exc)

    def _play(self, job: Job, text: str):
        """Send `text` on the board; returns (played, total). Raises SendFailed."""
        client = self._ensure_open()
        from tonebridge.link.client import SendError

        state = {"accepted": False, "finished": 0}

        def on_accepted():
            if not state["accepted"]:
                state["accepted"] = True
                self._post(_resolve, job.accepted, None)

        def on_progress(event):
            kind = event[0] if isinstance(event, tuple | list) and event else None
            if isinstance(event, dict):
                kind = event.get("event") or event.get("type") or event.get("kind")
            if kind == "finished":
                state["finished"] += 1

        kwargs = {"dialect": job.dialect, "on_accepted": on_accepted, "on_progress": on_progress}
        if job.tone_ms is not None:
            kwargs["tone_ms"] = job.tone_ms
        if job.gap_ms is not None:
            kwargs["gap_ms"] = job.gap_ms
        if job.request_id is not None:
            kwargs["request_id"] = job.request_id
        try:
            result = client.send(text, **kwargs)
        except SendError as exc:
            message = str(getattr(exc, "message", None) or exc)
            at_most = getattr(exc, "at_most", exc.played)
            if getattr(exc, "uncertain", False) and at_most > exc.played:
                message += f" (outcome uncertain: at most {at_most} digits may have played)"
            raise SendFailed(
                message, exc.played, exc.total, state["accepted"] or at_most > 0
            ) from exc
        except Exception as exc:
            raise SendFailed(
                f"board link error: {exc}", state["finished"], 0, state["accepted"]
            ) from exc
        if not state["accepted"]:
            on_accepted()
        return result.played, result.total

    def _do_send(self, job: Job):
        call = job.call
        if call is None or not call.live or call.state == "Held" or self.call is not call:
            self._post(_fail, job.accepted, CallReleased())
            self._post(_fail, job.done, CallReleased())
            return
        try:
            sim = _sim_of(self._ensure_open())
        except SendFailed:
            sim = (None, None)  # _play reports the failure
        t0 = _now_us(sim[0])
        try:
            played, total = self._play(job, job.text)
            outcome = None
        except SendFailed as exc:
            exc.total = exc.total or job.total
            played, total, outcome = exc.played, exc.total, exc
            if not exc.accepted:
                self._post(_fail, job.accepted, exc)
        if self.board.record_dir and sim[0] is not None:
            self._record(sim, t0, f"{call.id}-{job.number}.wav")
        if outcome is None:
            self._post(self.board._send_done, job, played, total)
        else:
            self._post(self.board._send_failed, job, outcome)

    def _do_dial(self, job: Job):
        call = job.call
        try:
            self._hook(True)
            self._wake.clear()
            if self.cfg.dial_wait_ms:
                self._wake.wait(self.cfg.dial_wait_ms / 1000.0)
            if not call.live or self.call is not call:
                raise CallReleased()
            sim = _sim_of(self.client)
            t0 = _now_us(sim[0])
            try:
                self._play(job, job.text)
            finally:
                if self.board.record_dir and sim[0] is not None:
                    self._record(sim, t0, f"{call.id}-{job.number}.wav")
            self._post(self.board._dial_done, job, None)
        except (SendFailed, CallReleased) as exc:
            self._post(self.board._dial_done, job, exc)

    def _record(self, sim, t0_us, name):
        """Write the line signal from t0 to just after the last tone as DIR/name."""
        board, lock = sim
        try:
            # let the board run past the last tone's release
            time.sleep(RECORD_TAIL_MS / 1000.0)
            os.makedirs(self.board.record_dir, exist_ok=True)
            path = os.path.join(self.board.record_dir, name)
            with lock if lock is not None else _NoLock():
                end = board.clock.now_us()
                board.line.write_wav(path, RECORD_RATE, start_us=t0_us or 0.0, end_us=end)
        except Exception:
            log.exception("line %s: recording %s failed", self.url, name)

    # ------------------------------------------------------------ loop side
    def submit(self, job: Job):
        self._queue.put(job)

    def busy_with(self, call: Call) -> bool:
        job = self._current
        return job is not None and job.call is call

    def cancel_current(self):
        """Abort what the board is playing now (used on hangup); runs in a thread."""
        client = self.client
        if client is not None:
            try:
                client.cancel()
            except Exception as exc:
                log.warning("line %s: cancel failed: %s", self.url, exc)
        self._wake.set()


def _now_us(sim):
    if sim is None:
        return None
    clock = getattr(sim, "clock", None)
    if clock is None:
        return None
    return clock.now_us()


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _resolve(fut, value):
    if fut is not None and not fut.done():
        fut.set_result(value)


def _fail(fut, exc):
    if fut is not None and not fut.done():
        fut.set_exception(exc)
        fut.exception()  # mark retrieved: a caller may have stopped waiting


class Switchboard:
    """All lines and calls; the asyncio-facing side of the board workers."""

    def __init__(self, line_configs, client_factory=None, record_dir=None):
        if client_factory is None:

            def client_factory(url, on_event):
                from tonebridge.link.client import BoardClient

                return BoardClient(url, on_event=on_event)

        self.record_dir = record_dir
        self.loop: asyncio.AbstractEventLoop | None = None
        self.lines = [Line(cfg, self, client_factory) for cfg in line_configs]
        self.calls: dict[str, Call] = {}
        self.listeners = []
        for line in self.lines:
            if line.cfg.state == "established":
                call = Call(
                    id=line.cfg.call_id,
                    line=line,
                    owner=line.owner,
                    direction="out",
                    local=line.number,
                    remote=line.cfg.peer,
                )
                call.active_time = call.created
                line.call = call
                self.calls[call.id] = call

    def start(self, loop):
        self.loop = loop
        for line in self.lines:
            line.start()

    def stop(self):
        for line in self.lines:
            line.stop()

    # ------------------------------------------------------------ queries
    def calls_of(self, user: str):
        return [c for c in self.calls.values() if c.owner == user]

    def call_of(self, user: str, call_id: str) -> Call | None:
        call = self.calls.get(call_id)
        if call is None or call.owner != user:
            return None
        return call

    def line_by_device(self, user: str, device_id: str) -> Line | None:
        for line in self.lines:
            if line.device_id == device_id and line.owner == user:
                return line
        return None

    def free_line(self, user: str) -> Line | None:
        for line in self.lines:
            if line.owner == user and (line.call is None or not line.call.live):
                return line
        return None

    def _emit(self, kind, call, **info):
        for fn in list(self.listeners):
            try:
                fn(kind, call, info)
            except Exception:
                log.exception("listener failed")

    # ------------------------------------------------------------ operations
    def send(self, call: Call, text: str, dialect: str, request_id=None) -> Job:
        """Queue a send; returns the job whose futures the caller awaits."""
        from tonebridge_fw.dialstring import compile_plan, digits_in

        total = digits_in(compile_plan(text, dialect))
        call.sends += 1
        line = call.line
        job = Job(
            kind="send",
            total=total,
            call=call,
            text=text,
            dialect=dialect,
            tone_ms=line.cfg.tone_ms,
            gap_ms=line.cfg.gap_ms,
            request_id=request_id,
            number=call.sends,
            accepted=self.loop.create_future(),
            done=self.loop.create_future(),
        )
        line.submit(job)
        return job

    def _send_done(self, job: Job, played: int, total: int):
        job.call.digits_sent += played
        _resolve(job.done, (played, total))
        self._emit("dtmf_sent", job.call, digits=job.text, played=played)

    def _send_failed(self, job: Job, exc: SendFailed):
        call = job.call
        call.digits_sent += exc.played
        if exc.accepted:
            call.failure = {
                "digits": job.text,
                "played": exc.played,
                "total": exc.total,
                "message": exc.message,
                "time": time.time(),
            }
            call.failure_reported = False
        _fail(job.done, exc)
        if exc.accepted:  # a failure before acceptance was the request's own answer
            self._emit("send_failed", call, failure=exc)

    def hangup(self, call: Call):
        line = call.line
        call.state = "Released"
        call.end_time = time.time()
        if line.busy_with(call):
            threading.Thread(target=line.cancel_current, daemon=True).start()
        else:
            line._wake.set()
        job = Job(kind="hook", call=call, off_hook=False, done=self.loop.create_future())
        line.submit(job)
        self._emit("state", call)

    def _board_on_hook(self, line: Line, call: Call | None, reason: str):
        """The board went on-hook by itself (e.g. its off-hook time limit): call ends."""
        if call is not None and call is line.call and call.live:
            log.warning(
                "line %s: board went on-hook (%s); call %s released", line.url, reason, call.id
            )
            call.state = "Released"
            call.end_time = time.time()
            self._emit("state", call)

    def set_state(self, call: Call, state: str):
        call.state = state
        self._emit("state", call)

    def dial(self, line: Line, owner: str, destination: str, dialect: str) -> Call:
        call = Call(
            id=f"c-{secrets.token_hex(8)}",
            line=line,
            owner=owner,
            direction="out",
            local=line.number,
            remote=destination,
            state="Dialing",
        )
        line.call = call
        self.calls[call.id] = call
        call.sends += 1
        job = Job(
            kind="dial",
            call=call,
            text=destination,
            dialect=dialect,
            tone_ms=line.cfg.tone_ms,
            gap_ms=line.cfg.gap_ms,
            number=call.sends,
            accepted=self.loop.create_future(),
            done=self.loop.create_future(),
        )
        job.accepted.add_done_callback(lambda f: f.cancelled() or f.exception())
        line.submit(job)
        self._emit("state", call)
        return call

    def _dial_done(self, job: Job, exc):
        call = job.call
        if exc is None:
            call.digits_sent += len(job.text)
            if call.state == "Dialing":
                call.state = "Established"
                call.active_time = time.time()
                self._emit("state", call)
            _resolve(job.done, None)
        else:
            if call.live:
                call.state = "Released"
                call.end_time = time.time()
                if isinstance(exc, SendFailed):
                    call.failure = {
                        "digits": job.text,
                        "played": exc.played,
                        "total": exc.total,
                        "message": exc.message,
                        "time": time.time(),
                    }
                self._emit("state", call)
                call.line.submit(Job(kind="hook", call=call, off_hook=False))
            _fail(job.done, exc)

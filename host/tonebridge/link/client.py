"""BoardClient: the host's link to one tonebridge board over pyserial.

Frames are built and parsed by the firmware's own codec (`tonebridge_fw.codec`); dial
strings are checked by the firmware's own compiler before anything is sent.

Exactly-once, as seen from the host (docs/protocol.md, "Exactly once"):

* every request carries an id; a retry after a timeout resends the *same* frame, and the
  board answers a repeated id from its window instead of executing it again;
* SEND carries the board's boot id; a board that restarted refuses it (`ERR boot`), so a
  retry can never start a sequence a second time on a fresh board;
* when the board restarted (new boot id in a BOOT event, a HELLO after reconnecting or an
  `ERR boot`), the host does not resend: it raises SendError with the digits it saw
  finish (certainly played) and an upper bound from the elapsed time.

I/O model: there is no reader thread that owns the port.  Whoever waits for something
holds the I/O lock for one short read at a time and dispatches every frame it reads to
whoever it belongs to, so several threads can use one client (a send in one, status or
cancel in another) and tests can drive the client in virtual time through a port object
whose `read` advances a simulated clock.  An optional background thread reads while no
call is active so unsolicited events (hook, fault, boot) reach `on_event` promptly.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import serial
from tonebridge_fw import codec, dialstring
from tonebridge_fw.dialstring import DialStringError

__all__ = [
    "BoardClient",
    "BoardError",
    "DialStringError",
    "LinkError",
    "SendError",
    "SendResult",
]

DEFAULT_BAUD = 115200
MAX_SEND_CHARS = 150  # engine.MAX_SEND_CHARS; the board's HELLO says `chars`


class LinkError(IOError):
    """The board did not answer (unplugged, wrong port, not running tonebridge)."""


class BoardError(Exception):
    """The board refused a request: `code` is the protocol error code."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class SendResult:
    """Outcome of a completed send: every digit was played."""

    def __init__(self, played: int, total: int, request_id: str = ""):
        self.played = played
        self.total = total
        self.request_id = request_id

    def __repr__(self):
        return f"SendResult(played={self.played}, total={self.total})"

    def __eq__(self, other):
        return isinstance(other, SendResult) and (self.played, self.total) == (
            other.played,
            other.total,
        )


class SendError(Exception):
    """A send that did not play every digit.

    `played` digits are certainly played (the board reported them finished); when the
    outcome is uncertain (board restart, link lost) `uncertain` is True and `at_most` is
    an upper bound of digits that may have been played; otherwise `at_most == played`.
    """

    def __init__(
        self,
        played: int,
        total: int,
        message: str,
        *,
        at_most: int | None = None,
        uncertain: bool = False,
        code: str = "",
        request_id: str = "",
    ):
        super().__init__(message)
        self.played = played
        self.total = total
        self.message = message
        self.at_most = played if at_most is None else at_most
        self.uncertain = uncertain
        self.code = code
        self.request_id = request_id


def parse_kv_body(body: str) -> dict:
    """'OK a=1 b=x' -> {'a': 1, 'b': 'x'} (ints and floats converted)."""
    _verb, words = codec.split_body(body)
    kv, rest = codec.parse_kv(words)
    out = {}
    for k, v in kv.items():
        out[k] = v if k in _STR_KEYS else _num(v)
    if rest:
        out["_rest"] = " ".join(rest)
    return out


_STR_KEYS = frozenset(
    (
        "boot",
        "rid",
        "fw",
        "keys",
        "dialects",
        "board",
        "backend",
        "dialect",
        "state",
        "reason",
        "hook",
        "cancelled",
    )
)


def _num(v: str):
    try:
        return int(v)
    except ValueError:
        pass
    try:
        return float(v)
    except ValueError:
        return v


class _Job:
    def __init__(self, rid: str, total: int, plan: list):
        self.rid = rid
        self.total = total
        self.plan = plan
        self.events: list[tuple[str, list[str]]] = []
        self.reset = False  # board restarted while this job was in flight


class _Waiter:
    def __init__(self):
        self.reply: str | None = None


class BoardClient:
    """Link to one board.  See the module docstring and docs/architecture.md."""

    def __init__(
        self,
        url: str,
        timeout: float = 1.0,
        *,
        baudrate: int = DEFAULT_BAUD,
        retries: int = 4,
        reconnect_timeout: float = 10.0,
        open_timeout: float = 2.0,
        on_event: Callable[[dict], None] | None = None,
        port_factory: Callable[[], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        background: bool = True,
    ):
        self.url = url
        self.timeout = timeout
        self.baudrate = baudrate
        self.retries = retries
        self.reconnect_timeout = reconnect_timeout
        self.open_timeout = open_timeout
        self.on_event = on_event
        self._port_factory = port_factory or self._open_serial
        self._clock = clock
        self._sleep = sleep
        self._background = background
        self._port = None
        self._decoder = codec.Decoder(accept=codec.REPLY + codec.EVENT)
        self._io = threading.RLock()  # held for one read/write at a time
        self._state = threading.RLock()  # protects the tables below
        self._send_lock = threading.Lock()  # one sequence at a time
        self._waiters: dict[str, _Waiter] = {}
        self._jobs: dict[str, _Job] = {}
        self._pending_events: list[dict] = []
        self._session = os.urandom(3).hex()
        self._counter = 0
        self.boot_id: str | None = None
        self.info: dict = {}
        self.board_config: dict = {}
        self.reconnects = 0
        self._reconnected = False
        self._closed = True
        self._thread: threading.Thread | None = None

    @property
    def serial(self):
        """The open pyserial port (None while disconnected)."""
        return self._port

    @property
    def board(self):
        """The SimBoard behind a sim:// URL (None for real boards)."""
        return getattr(self._port, "board", None)

    # ---- lifecycle -----------------------------------------------------------------------

    def _open_serial(self):
        return serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0.05)

    def open(self) -> BoardClient:
        self._closed = False
        try:
            self._connect(self._clock() + self.open_timeout)
            self.hello()
        except BaseException:
            self.close()
            raise
        if self._background and self._thread is None:
            self._thread = threading.Thread(
                target=self._idle_reader, name=f"tonebridge-link {self.url}", daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        self._closed = True
        t = self._thread
        self._thread = None
        if t is not None and t is not threading.current_thread():
            t.join(timeout=2)
        with self._io:
            self._drop_port()

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    def _connect(self, deadline: float) -> None:
        """Open the port, retrying until `deadline` (unplugged boards come back)."""
        last: Exception | None = None
        while True:
            try:
                self._port = self._port_factory()
                self._decoder.reset()
                return
            except (serial.SerialException, OSError) as e:
                last = e
            if self._clock() >= deadline:
                raise LinkError(f"cannot open {self.url}: {last}")
            self._sleep(0.2)

    def _drop_port(self) -> None:
        p = self._port
        self._port = None
        if p is not None:
            try:
                p.close()
            except Exception:
                pass

    def _idle_reader(self) -> None:
        """Reads while no call is active, so unsolicited events arrive; after an unplug it
        tries to reopen the port once a second (the next call then re-learns the boot id)."""
        next_try = 0.0
        while not self._closed:
            got = self._io.acquire(timeout=0.05)
            if not got:
                continue
            idle = True
            try:
                if self._port is not None:
                    try:
                        waiting = self._port.in_waiting
                    except (serial.SerialException, OSError):
                        waiting = 1  # let the pump notice the unplug
                    if waiting:
                        idle = False
                        self._pump_once()
                elif time.monotonic() >= next_try:
                    next_try = time.monotonic() + 1.0
                    try:
                        self._port = self._port_factory()
                        self._decoder.reset()
                        self.reconnects += 1
                        self._reconnected = True
                    except (serial.SerialException, OSError):
                        pass
            except LinkError:
                pass
            finally:
                self._io.release()
            self._deliver_events()
            # never sit on the I/O lock while nothing arrives: callers get it at once
            time.sleep(0.05 if self._port is None else (0.005 if idle else 0))

    # ---- I/O pump ------------------------------------------------------------------------

    def _pump_once(self) -> None:
        """Read what the board sent (one short read) and dispatch it.  Holds the I/O lock."""
        if self._port is None:
            if self._closed:
                raise LinkError(f"{self.url}: the client is closed")
            self._connect(self._clock() + self.reconnect_timeout)
            self.reconnects += 1
            self._reconnected = True
        try:
            data = self._port.read(max(1, self._port.in_waiting or 1))
        except (serial.SerialException, OSError, TypeError, AttributeError):
            # unplugged: drop the port; the next pump reconnects
            self._drop_port()
            return
        if data:
            for mark, rid, body in self._decoder.feed(data):
                self._dispatch(mark, rid, body)

    def _write(self, frame: bytes) -> None:
        with self._io:
            if self._port is None:
                if self._closed:
                    raise LinkError(f"{self.url}: the client is closed")
                self._connect(self._clock() + self.reconnect_timeout)
                self.reconnects += 1
                self._reconnected = True
            try:
                self._port.write(frame)
                flush = getattr(self._port, "flush", None)
                if flush is not None:
                    flush()
            except (serial.SerialException, OSError):
                self._drop_port()

    def _dispatch(self, mark: str, rid: str, body: str) -> None:
        with self._state:
            if mark == codec.REPLY:
                w = self._waiters.get(rid)
                if w is not None and w.reply is None:
                    w.reply = body
                return
            verb, args = codec.split_body(body)
            if rid != codec.NO_ID:
                job = self._jobs.get(rid)
                if job is not None:
                    job.events.append((verb, args))
                return
            if verb == "BOOT":
                kv, _ = codec.parse_kv(args)
                boot = kv.get("boot")
                if boot and self.boot_id is not None and boot != self.boot_id:
                    self._board_restarted(boot)
                ev = {"event": "boot", "boot": boot}
            elif verb == "HOOK":
                ev = {"event": "hook", "off_hook": bool(args) and args[0] == "off"}
                if len(args) > 1:
                    ev["reason"] = args[1]
            elif verb == "FAULT":
                ev = {
                    "event": "fault",
                    "code": args[0] if args else "",
                    "message": " ".join(args[1:]),
                }
            else:
                ev = {"event": verb.lower(), "args": args}
            self._pending_events.append(ev)

    def _board_restarted(self, new_boot: str) -> None:
        with self._state:
            self.boot_id = new_boot
            for job in self._jobs.values():
                job.reset = True

    def _deliver_events(self) -> None:
        with self._state:
            evs = self._pending_events
            self._pending_events = []
        cb = self.on_event
        if cb is not None:
            for ev in evs:
                try:
                    cb(ev)
                except Exception:
                    pass

    # ---- requests ------------------------------------------------------------------------

    def new_id(self) -> str:
        with self._state:
            self._counter += 1
            return f"{self._session}.{self._counter}"

    def _request(
        self, body: str, rid: str | None = None, timeout: float | None = None, tries=None
    ) -> str:
        """Send a request frame and return the reply body; retransmit the same frame (same
        id) on timeout.  Raises LinkError when the board never answers.  `tries`, a list,
        gets the number of transmissions appended."""
        rid = rid or self.new_id()
        frame = codec.encode(codec.REQUEST, rid, body)
        timeout = self.timeout if timeout is None else timeout
        w = _Waiter()
        with self._state:
            self._waiters[rid] = w
        try:
            for attempt in range(self.retries + 1):
                if tries is not None:
                    tries.append(attempt + 1)
                self._write(frame)
                deadline = self._clock() + timeout
                while w.reply is None and self._clock() < deadline:
                    with self._io:
                        if w.reply is None:
                            self._pump_once()
                    self._deliver_events()
                if w.reply is not None:
                    return w.reply
        finally:
            with self._state:
                self._waiters.pop(rid, None)
        raise LinkError(f"no answer from the board on {self.url} to {body.split(' ')[0]}")

    def _call(self, body: str) -> dict:
        reply = self._request(body)
        return self._ok(reply)

    @staticmethod
    def _ok(reply: str) -> dict:
        if reply.startswith("ERR"):
            words = reply.split(" ", 2)
            code = words[1] if len(words) > 1 else "error"
            raise BoardError(code, words[2] if len(words) > 2 else "")
        return parse_kv_body(reply)

    # ---- public API ----------------------------------------------------------------------

    def hello(self) -> dict:
        """Handshake: firmware version, boot id, backend, character set, limits."""
        info = self._call("HELLO")
        if info.get("proto") != codec.PROTOCOL_VERSION:
            raise BoardError(
                "proto",
                f"the board speaks protocol {info.get('proto')!r}; "
                f"this host speaks {codec.PROTOCOL_VERSION} (update one of them)",
            )
        boot = str(info.get("boot", ""))
        with self._state:
            if self.boot_id is not None and boot != self.boot_id:
                self._board_restarted(boot)
            self.boot_id = boot
            self.info = info
            self._reconnected = False
        try:
            self.board_config = self.config_get()
        except (BoardError, LinkError):
            pass
        return dict(info)

    def status(self) -> dict:
        return self._call("STATUS")

    def ping(self) -> dict:
        return self._call("PING")

    def hook(self, off_hook: bool) -> dict:
        return self._call("HOOK off" if off_hook else "HOOK on")

    def cancel(self, request_id: str | None = None) -> dict:
        return self._call("CANCEL" + (" " + request_id if request_id else ""))

    def config_get(self) -> dict:
        cfg = self._call("CONFIG")
        self.board_config = cfg
        return cfg

    _CONFIG_NAMES = {
        "tone_ms": "tone",
        "gap_ms": "gap",
        "twist_db": "twist",
        "level_dbm": "level",
        "tone": "tone",
        "gap": "gap",
        "twist": "twist",
        "level": "level",
        "dialect": "dialect",
    }

    def config_set(self, **settings) -> dict:
        words = []
        for k, v in settings.items():
            if v is None:
                continue
            name = self._CONFIG_NAMES.get(k)
            if name is None:
                raise ValueError(f"unknown setting {k}")
            words.append(f"{name}={v}")
        cfg = self._call("CONFIG " + " ".join(words)) if words else self._call("CONFIG")
        self.board_config = cfg
        return cfg

    def result(self, request_id: str) -> dict:
        return self._call("RESULT " + request_id)

    def send(
        self,
        text: str,
        dialect: str = "catapult",
        tone_ms: int | None = None,
        gap_ms: int | None = None,
        request_id: str | None = None,
        on_accepted: Callable[[], None] | None = None,
        on_progress: Callable[[dict], None] | None = None,
    ) -> SendResult:
        """Play `text` on the line; block until the board reports the sequence done.

        Raises DialStringError (before anything is sent) for an invalid string,
        SendError(played, total, message) when not every digit was played.
        """
        cfg_tone = int(self.board_config.get("tone", 100))
        cfg_gap = int(self.board_config.get("gap", 100))
        plan = dialstring.compile_plan(
            text,
            dialect,
            cfg_tone if tone_ms is None else tone_ms,
            cfg_gap if gap_ms is None else gap_ms,
        )
        total = dialstring.digits_in(plan)
        rid = request_id or self.new_id()
        if not codec.valid_id(rid):
            raise ValueError(f"request id {rid!r} is not 1-40 characters of [0-9A-Za-z_.:-]")
        limit = int(self.info.get("chars", MAX_SEND_CHARS))
        if len(text) > limit:
            raise SendError(
                0,
                total,
                f"dial string of {len(text)} characters is longer than the board takes ({limit})",
                code="too-long",
                request_id=rid,
            )
        with self._send_lock:
            return self._send_locked(
                rid, text, dialect, tone_ms, gap_ms, plan, total, on_accepted, on_progress
            )

    def _send_locked(self, rid, text, dialect, tone_ms, gap_ms, plan, total, on_acc, on_prog):
        if self.boot_id is None or self._reconnected:
            try:
                self.hello()
            except LinkError as e:
                raise SendError(
                    0, total, f"{e}; nothing was sent", code="link", request_id=rid
                ) from e
        opts = [f"dialect={dialect}"]
        if tone_ms is not None:
            opts.append(f"tone={int(tone_ms)}")
        if gap_ms is not None:
            opts.append(f"gap={int(gap_ms)}")
        job = _Job(rid, total, plan)
        with self._state:
            self._jobs[rid] = job
        t0 = self._clock()
        progress = _Progress(job, on_prog)
        try:
            for _round in range(3):
                body = " ".join(["SEND", f"boot={self.boot_id}", *opts, text])
                tries: list[int] = []
                try:
                    reply = self._request(body, rid=rid, tries=tries)
                except LinkError as e:
                    self._settle_unknown(job, progress, t0, "no answer from the board")
                    raise AssertionError("unreachable") from e  # _settle_unknown raises
                if not reply.startswith("ERR boot"):
                    break
                # refused because the board restarted since our HELLO
                self._board_restarted(self._boot_from(reply) or self.boot_id or "")
                if len(tries) > 1 or _round > 0:
                    # an earlier copy of this frame may have started on the old board
                    self._settle_unknown(job, progress, t0, "the board restarted")
                # the only copy was refused: nothing ran anywhere; ask again on the new boot
                job.reset = False
            if reply.startswith("ERR"):
                words = reply.split(" ")
                code = words[1] if len(words) > 1 else "error"
                msg = " ".join(w for w in words[2:] if not w.startswith("pos="))
                raise SendError(
                    0, total, f"board refused the sequence: {msg}", code=code, request_id=rid
                )
            state = parse_kv_body(reply)
            if on_acc is not None:
                on_acc()
            return self._wait_job(job, progress, state, t0)
        finally:
            with self._state:
                self._jobs.pop(rid, None)

    @staticmethod
    def _boot_from(msg: str) -> str | None:
        # "board restarted: boot is 1a2b3c4d not 00000000"
        words = msg.split()
        if "is" in words:
            i = words.index("is")
            if i + 1 < len(words):
                return words[i + 1]
        return None

    def _wait_job(self, job: _Job, progress: _Progress, state: dict, t0: float) -> SendResult:
        total = job.total
        outcome = self._outcome_from_state(job, progress, state)
        if outcome is not None:
            return outcome
        plan_s = dialstring.plan_ms(job.plan) / 1000.0
        ahead_s = 0.0
        if state.get("state") == "queued":
            ahead_s = float(state.get("ahead", 0)) * 30.0  # generous; polls keep it honest
        last_news = self._clock()
        quiet_limit = max(self.timeout * 2, 0.5)
        hard_deadline = t0 + plan_s + ahead_s + 30.0
        polls_failed = 0
        while True:
            try:
                with self._io:
                    if not job.events and not job.reset:
                        self._pump_once()
            except LinkError:
                self._settle_unknown(job, progress, t0, "lost the connection to the board")
            self._deliver_events()
            with self._state:
                events = job.events
                job.events = []
            for verb, args in events:
                last_news = self._clock()
                done = progress.event(verb, args)
                if done is not None:
                    return done
            if job.reset or self._reconnected:
                if self._reconnected:
                    try:
                        self.hello()  # learns the boot id; marks the job reset if it changed
                    except LinkError:
                        pass
                if job.reset:
                    self._settle_unknown(job, progress, t0, "the board restarted")
            now = self._clock()
            if now - last_news > quiet_limit:
                # nothing heard for a while: ask the board (a fresh id; RESULT is a query)
                try:
                    st = self.result(job.rid)
                    polls_failed = 0
                except LinkError:
                    polls_failed += 1
                    if polls_failed > 2:
                        self._settle_unknown(job, progress, t0, "lost contact with the board")
                    st = {}
                except BoardError:
                    st = {}
                last_news = self._clock()
                if st:
                    if st.get("state") == "unknown":
                        # board has no record: it restarted (boot tells) or never got it
                        boot = str(st.get("boot", ""))
                        if boot and boot != self.boot_id:
                            self._board_restarted(boot)
                        self._settle_unknown(job, progress, t0, "the board has no record of it")
                    outcome = self._outcome_from_state(job, progress, st)
                    if outcome is not None:
                        return outcome
            if now > hard_deadline:
                try:
                    self.cancel(job.rid)
                except (LinkError, BoardError):
                    pass
                raise SendError(
                    progress.played,
                    total,
                    f"timed out waiting for the board; {progress.played} of {total} digits played",
                    code="timeout",
                    request_id=job.rid,
                )

    def _outcome_from_state(self, job: _Job, progress: _Progress, st: dict):
        s = st.get("state")
        if s == "done":
            progress.played = max(progress.played, int(st.get("played", 0)))
            return SendResult(progress.played, job.total, job.rid)
        if s == "aborted":
            played = max(progress.played, int(st.get("played", 0)))
            raise SendError(
                played,
                job.total,
                f"sequence aborted ({st.get('reason', 'aborted')}); {played} of {job.total} digits played",
                code=str(st.get("reason", "aborted")),
                request_id=job.rid,
            )
        if s in ("playing", "queued"):
            progress.played = max(progress.played, int(st.get("played", 0)))
        return None

    def _settle_unknown(self, job: _Job, progress: _Progress, t0: float, why: str):
        """Raise SendError for a sequence whose outcome the board can no longer report."""
        elapsed_ms = (self._clock() - t0) * 1000.0
        at_most = max(progress.played, _digits_started_by(job.plan, elapsed_ms))
        at_most = min(at_most, job.total)
        played = progress.played
        raise SendError(
            played,
            job.total,
            f"{why}; outcome unknown: {played} of {job.total} digits confirmed played, "
            f"at most {at_most} may have been played; not resent",
            at_most=at_most,
            uncertain=True,
            code="unknown",
            request_id=job.rid,
        )


class _Progress:
    """Turns a job's events into on_progress callbacks (each digit event once)."""

    def __init__(self, job: _Job, cb):
        self.job = job
        self.cb = cb
        self.played = 0
        self.seen: set[tuple[str, int]] = set()

    def event(self, verb: str, args: list[str]):
        job = self.job
        if verb in ("START", "END") and len(args) >= 2:
            try:
                idx = int(args[0])
            except ValueError:
                return None
            kind = "started" if verb == "START" else "finished"
            if kind == "finished":
                self.played = max(self.played, idx + 1)
            if (kind, idx) in self.seen:
                return None
            self.seen.add((kind, idx))
            if self.cb is not None:
                self.cb(
                    {
                        "event": kind,
                        "index": idx,
                        "key": args[1],
                        "digits": job.total,
                        "request_id": job.rid,
                    }
                )
            return None
        if verb == "DONE":
            n = _int0(args)
            self.played = max(self.played, n)
            return SendResult(self.played, job.total, job.rid)
        if verb == "ABORT":
            n = max(self.played, _int0(args))
            reason = args[1] if len(args) > 1 else "aborted"
            raise SendError(
                n,
                job.total,
                f"sequence aborted ({reason}); {n} of {job.total} digits played",
                code=reason,
                request_id=job.rid,
            )
        return None


def _int0(args):
    try:
        return int(args[0])
    except (IndexError, ValueError):
        return 0


def _digits_started_by(plan, elapsed_ms: float) -> int:
    """Number of tone steps whose start lies before `elapsed_ms` into the plan."""
    t = 0.0
    n = 0
    for key, ms in plan:
        if t > elapsed_ms:
            break
        if key is not None:
            n += 1
        t += ms
    return n

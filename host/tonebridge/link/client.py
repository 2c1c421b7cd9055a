"""BoardClient: the host's link to one tonebridge board over pyserial.

Frames are built and parsed by the firmware's own codec (`tonebridge_fw.codec`); dial
strings are checked by the firmware's own compiler before anything is sent.

    with BoardClient("/dev/ttyACM0") as c:       # HELLO: protocol, boot id, hardware id
        c.send("1WWW,59#")                        # blocks until played (SendResult)
        t = c.submit("123")                       # returns once the board accepted it ...
        t.wait()                                  # ... and this once it played

Exactly-once, as seen from the host (docs/protocol.md, "Exactly once"):

* every request carries an id; a retry after a timeout resends the *same* frame, and the
  board answers a repeated id from its window instead of executing it again;
* SEND carries the board's boot id; a board that restarted refuses it (`ERR boot`), so a
  retry can never start a sequence a second time on a fresh board;
* when the board restarted (new boot id in a BOOT event, a HELLO after reconnecting or an
  `ERR boot`), the host does not resend: it raises SendError with the digits it saw
  finish (certainly played) and an upper bound from the elapsed time;
* every port is checked by HELLO before anything else is written to it: a board with
  another hardware id is refused (WrongBoardError), so a swapped board never plays.

The port, the reader thread, liveness and identity are in link/core.py; following a
sequence to its end in link/sequence.py.
"""

from __future__ import annotations

from collections.abc import Callable

from tonebridge_fw import codec, dialstring
from tonebridge_fw.dialstring import DialStringError

from tonebridge.link.core import DEFAULT_BAUD, LinkCore, normalize_hwid
from tonebridge.link.errors import (
    BoardError,
    LinkError,
    SendError,
    SendResult,
    WrongBoardError,
    ok_reply,
    parse_kv_body,
)
from tonebridge.link.sequence import Job, Progress, Ticket, settle_unknown

__all__ = [
    "DEFAULT_BAUD",
    "BoardClient",
    "BoardError",
    "DialStringError",
    "LinkError",
    "SendError",
    "SendResult",
    "Ticket",
    "WrongBoardError",
    "normalize_hwid",
    "parse_kv_body",
]

MAX_SEND_CHARS = 112  # engine.MAX_SEND_CHARS; the board's HELLO says `chars`


class BoardClient(LinkCore):
    """Link to one board.  See the module docstring, link/core.py and docs/architecture.md.

    BoardClient(url, timeout=1.0, *, retries=4, reconnect_timeout=10.0, open_timeout=2.0,
    on_event=None, port_factory=None, clock=time.monotonic, sleep=time.sleep,
    background=True, hwid=None, locate=None, keepalive=0.5)
    """

    def __init__(self, url: str, timeout: float = 1.0, **kw):
        import threading

        super().__init__(url, timeout, **kw)
        self._send_lock = threading.Lock()  # one SEND being submitted at a time

    def now(self) -> float:
        """The link's clock (time.monotonic(), or the injected one): deadlines are on it."""
        return self._clock()

    # ---- plain requests --------------------------------------------------------------------

    def _call(self, body: str) -> dict:
        return ok_reply(self._request(body))

    def hello(self) -> dict:
        """Handshake: firmware version, boot id, hardware id, backend, character set, limits.
        Raises WrongBoardError (and drops the port) if the board is not this link's board."""
        info = self._call("HELLO")
        try:
            self._accept_hello(info, self.url)
        except WrongBoardError as e:
            self._link_lost(str(e))
            raise
        try:
            self.board_config = self.config_get()
        except (BoardError, LinkError):
            pass
        return dict(info)

    def status(self) -> dict:
        return self._call("STATUS")

    def ping(self) -> dict:
        return self._call("PING")

    @property
    def hears(self) -> bool:
        """The board hears the line (call progress: PROGRESS events, SEND dialtone=)."""
        return str(self.info.get("progress", "0")) == "1"

    def hook(self, off_hook: bool) -> dict:
        return self._call("HOOK off" if off_hook else "HOOK on")

    def flash(self, ms: int | None = None) -> dict:
        """Hook flash: release the held line for `ms` (None: the board's CONFIG flash).
        BoardError "on-hook" when the line is not held, "busy" while a sequence plays."""
        if ms is not None:
            dialstring.check_flash(ms)
        return self._call("FLASH" if ms is None else f"FLASH {int(ms)}")

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
        "pause_ms": "pause",
        "pause": "pause",
        "flash_ms": "flash",
        "flash": "flash",
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

    # ---- sequences -------------------------------------------------------------------------

    def send(
        self,
        text: str,
        dialect: str = "catapult",
        tone_ms: int | None = None,
        gap_ms: int | None = None,
        request_id: str | None = None,
        on_accepted: Callable[[], None] | None = None,
        on_progress: Callable[[dict], None] | None = None,
        pause_ms: int | None = None,
        flash_ms: int | None = None,
    ) -> SendResult:
        """Play `text` on the line; block until the board reports the sequence done.

        Raises DialStringError (before anything is sent) for an invalid string,
        SendError(played, total, message) when not every digit was played.
        """
        ticket = self.submit(
            text,
            dialect,
            tone_ms,
            gap_ms,
            request_id,
            on_progress=on_progress,
            pause_ms=pause_ms,
            flash_ms=flash_ms,
        )
        if on_accepted is not None:
            on_accepted()
        return ticket.wait()

    def _plan(self, text, dialect, tone_ms, gap_ms, pause_ms=None, board_holds=True, flash_ms=None):
        """The plan the board will play: None takes the board's CONFIG value; held keys are
        checked against the board's HELLO `hold_max` (0 on a board that cannot hold keys;
        not for a sequence the board has already taken: `board_holds` False)."""
        cfg = self.board_config
        hold_max = dialstring.HOLD_MAX_MS
        if board_holds:
            hold_max = int(self.info.get("hold_max", hold_max))
        return dialstring.compile_plan(
            text,
            dialect,
            int(cfg.get("tone", dialstring.DEFAULT_TONE_MS)) if tone_ms is None else tone_ms,
            int(cfg.get("gap", dialstring.DEFAULT_GAP_MS)) if gap_ms is None else gap_ms,
            int(cfg.get("pause", dialstring.DEFAULT_PAUSE_MS)) if pause_ms is None else pause_ms,
            hold_max,
            int(cfg.get("flash", dialstring.DEFAULT_FLASH_MS)) if flash_ms is None else flash_ms,
        )

    def submit(
        self,
        text: str,
        dialect: str = "catapult",
        tone_ms: int | None = None,
        gap_ms: int | None = None,
        request_id: str | None = None,
        *,
        on_progress: Callable[[dict], None] | None = None,
        deadline: float | None = None,
        pause_ms: int | None = None,
        flash_ms: int | None = None,
        dialtone_ms: int | None = None,
    ) -> Ticket:
        """Send `text` and return once the board accepted it (a Ticket to wait() on).

        Raises DialStringError before anything is sent; SendError when the board refused it
        (`code` busy, boot, dial, ...; nothing plays), when the link is down (`code` "link",
        `sent` False: nothing was written), or when a SEND was written but never confirmed
        by `deadline` (clock time; `uncertain`, `sent` True: it may play)."""
        plan = self._plan(text, dialect, tone_ms, gap_ms, pause_ms, flash_ms=flash_ms)
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
                sent=False,
            )
        opts = [f"dialect={dialect}"]
        if tone_ms is not None:
            opts.append(f"tone={int(tone_ms)}")
        if gap_ms is not None:
            opts.append(f"gap={int(gap_ms)}")
        if pause_ms is not None:
            opts.append(f"pause={int(pause_ms)}")
        if flash_ms is not None:
            opts.append(f"flash={int(flash_ms)}")
        if dialtone_ms:
            # the board holds the line and plays nothing until it hears dial tone; without it
            # the sequence ends "ABORT 0 no-dial-tone" (a board whose HELLO has no progress=1
            # cannot hear the line and refuses the option)
            opts.append(f"dialtone={int(dialtone_ms)}")
        with self._send_lock:
            return self._submit_locked(
                rid, text, opts, plan, total, on_progress, deadline, (dialtone_ms or 0) / 1000
            )

    def selftest(self, on_progress: Callable[[dict], None] | None = None) -> SendResult:
        """SELFTEST: the board plays all 16 keys on hook through its loop relay and judges
        each from what its receiver measured. Blocks until done; returns the SendResult
        (verified = keys heard); per-key results come to `on_progress` as "heard" (with
        "pass") and "unheard" events. SendError when the board refuses (no receive path:
        code bad-arg; line in use: busy) or the test could not finish."""
        from tonebridge_fw import selftest as fw_selftest

        plan = fw_selftest.plan()
        rid = self.new_id()
        with self._send_lock:
            ticket = self._submit_locked(
                rid, "", [], plan, dialstring.digits_in(plan), on_progress, None, verb="SELFTEST"
            )
        return ticket.wait()

    def _submit_locked(
        self, rid, text, opts, plan, total, on_progress, deadline, wait_s=0.0, verb="SEND"
    ):
        if deadline is None:
            deadline = self._clock() + self.reconnect_timeout + self._hello_budget()
        try:
            self._ensure_link(deadline)
        except LinkError as e:
            raise SendError(
                0, total, f"{e}; nothing was sent", code="link", request_id=rid, sent=False
            ) from e
        job = Job(rid, total, plan)
        job.wait_s = wait_s
        with self._cond:
            self._jobs[rid] = job
        progress = Progress(job, on_progress)
        t0 = self._clock()
        try:
            for _round in range(3):
                # '!' (a flash) is '^' in a frame body, where '!' marks an event
                words = [verb, f"boot={self.boot_id}", *opts, codec.dial_to_wire(text)]
                body = " ".join(w for w in words if w)
                tries: list[int] = []
                try:
                    reply = self._request(body, rid=rid, tries=tries, deadline=deadline)
                except LinkError as e:
                    if not tries and _round == 0:
                        raise SendError(
                            0,
                            total,
                            f"{e}; nothing was sent",
                            code="link",
                            request_id=rid,
                            sent=False,
                        ) from e
                    settle_unknown(self, job, progress, t0, f"the board did not confirm it ({e})")
                if not reply.startswith("ERR boot"):
                    break
                # refused because the board restarted since our HELLO
                self._board_restarted(_boot_from(reply) or self.boot_id or "")
                if len(tries) > 1 or _round > 0:
                    # an earlier copy of this frame may have started on the old board
                    settle_unknown(self, job, progress, t0, "the board restarted")
                # the only copy was refused: nothing ran anywhere; ask again on the new boot
                job.reset = False
            if reply.startswith("ERR"):
                words = reply.split(" ")
                code = words[1] if len(words) > 1 else "error"
                msg = " ".join(w for w in words[2:] if not w.startswith("pos="))
                raise SendError(
                    0,
                    total,
                    f"board refused the sequence: {msg}",
                    code=code,
                    request_id=rid,
                    sent=False,
                )
            return Ticket(self, job, progress, parse_kv_body(reply), t0)
        except BaseException:
            self._forget_job(rid)
            raise

    def follow(
        self,
        request_id: str,
        text: str,
        dialect: str = "catapult",
        tone_ms: int | None = None,
        gap_ms: int | None = None,
        *,
        played: int = 0,
        on_progress: Callable[[dict], None] | None = None,
        pause_ms: int | None = None,
    ) -> tuple[dict, Ticket | None]:
        """Pick up a sequence sent earlier (by this or an earlier process): asks the board
        (RESULT) and returns (its answer, a Ticket to wait() on while it is queued or
        playing, else None). Raises LinkError/BoardError."""
        plan = self._plan(text, dialect, tone_ms, gap_ms, pause_ms, board_holds=False)
        job = Job(request_id, dialstring.digits_in(plan), plan)
        with self._cond:
            self._jobs[request_id] = job
        try:
            st = self.result(request_id)
        except BaseException:
            self._forget_job(request_id)
            raise
        if st.get("state") not in ("queued", "playing"):
            self._forget_job(request_id)
            return st, None
        progress = Progress(job, on_progress)
        progress.played = max(played, int(st.get("played", 0)))
        return st, Ticket(self, job, progress, st, None)

    def _forget_job(self, rid: str) -> None:
        with self._cond:
            self._jobs.pop(rid, None)


def _boot_from(msg: str) -> str | None:
    # "board restarted: boot is 1a2b3c4d not 00000000"
    words = msg.split()
    if "is" in words:
        i = words.index("is")
        if i + 1 < len(words):
            return words[i + 1]
    return None

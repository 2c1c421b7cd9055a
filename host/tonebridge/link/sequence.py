"""Following one SEND on the board until it ends: progress events, lost events, restarts.

A `Ticket` is what `BoardClient.submit` returns once the board accepted a sequence;
`ticket.wait()` blocks until the board reports it done (`SendResult`) or not
(`SendError` with the digits certainly played). When the board restarted or the link was
lost for longer than the client's reconnect timeout, the outcome is reported as unknown
(`uncertain=True`) with an upper bound from the plan's timing, and nothing is resent
(docs/protocol.md, "Exactly once").
"""

from __future__ import annotations

from tonebridge_fw import dialstring

from tonebridge.link.errors import BoardError, LinkError, SendError, SendResult


class Job:
    """A sequence the link follows: the board's events for its id collect in `events`."""

    def __init__(self, rid: str, total: int, plan: list):
        self.rid = rid
        self.total = total
        self.plan = plan
        self.events: list[tuple[str, list[str]]] = []
        self.reset = False  # the board restarted while this job was in flight
        self.wait_s = 0.0  # the board may wait this long for dial tone before it plays


class Progress:
    """Turns a job's events into on_progress callbacks (each digit event once)."""

    def __init__(self, job: Job, cb):
        self.job = job
        self.cb = cb
        self.played = 0
        self.verified: int | None = None  # digits heard on the line (boards that verify)
        self.heard: dict[int, dict] = {}  # index -> what the board's receiver measured
        self.fault = ""  # the board's FAULT line text while this job played (not heard)
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
                        "key": args[1].replace("^", "!"),  # '^': a flash on the wire
                        "digits": job.total,
                        "request_id": job.rid,
                    }
                )
            return None
        if verb == "FAULT":
            self.fault = " ".join(args[1:])
            return None
        if verb == "UNHEARD" and len(args) >= 2:
            if self.cb is not None:
                self.cb(
                    {
                        "event": "unheard",
                        "index": _int0(args),
                        "key": args[1],
                        "digits": job.total,
                        "request_id": job.rid,
                        "pass": False,
                    }
                )
            return None
        if verb == "HEARD" and len(args) >= 2:
            try:
                idx = int(args[0])
            except ValueError:
                return None
            if idx in self.heard:
                return None
            info = heard_info(args[2:])
            self.heard[idx] = info
            self.verified = max(self.verified or 0, len(self.heard))
            if self.cb is not None:
                ev = {
                    "event": "heard",
                    "index": idx,
                    "key": args[1],
                    "digits": job.total,
                    "request_id": job.rid,
                }
                ev.update(info)
                self.cb(ev)
            return None
        if verb == "DONE":
            self.played = max(self.played, _int0(args))
            self._verified_from(args)
            return SendResult(self.played, job.total, job.rid, verified=self.verified)
        if verb == "ABORT":
            n = max(self.played, _int0(args))
            reason = args[1] if len(args) > 1 else "aborted"
            self._verified_from(args)
            msg = f"sequence aborted ({reason}); {n} of {job.total} digits played"
            if self.verified is not None:
                msg += f", {self.verified} heard on the line"
            if reason == "not-heard" and self.fault:
                msg += f" ({self.fault})"
            raise SendError(
                n,
                job.total,
                msg,
                code=reason,
                request_id=job.rid,
                verified=self.verified,
                fault=self.fault,
            )
        return None

    def _verified_from(self, args):
        for a in args:
            if a.startswith("verified="):
                try:
                    self.verified = max(self.verified or 0, int(a[9:]))
                except ValueError:
                    pass


class Ticket:
    """An accepted sequence: `wait()` for its outcome (once)."""

    def __init__(self, client, job: Job, progress: Progress, state: dict, t0: float | None):
        self.client = client
        self.job = job
        self.progress = progress
        self.state = state  # the board's answer to SEND (or RESULT): state, played, ahead, ms
        self.t0 = t0  # clock when the SEND was first written (None: unknown)

    @property
    def request_id(self) -> str:
        return self.job.rid

    @property
    def total(self) -> int:
        return self.job.total

    @property
    def played(self) -> int:
        return self.progress.played

    def wait(self) -> SendResult:
        try:
            return self._wait()
        finally:
            self.client._forget_job(self.job.rid)

    def _wait(self) -> SendResult:
        c, job, progress = self.client, self.job, self.progress
        outcome = outcome_from_state(job, progress, self.state)
        if outcome is not None:
            return outcome
        t0 = c._clock() if self.t0 is None else self.t0
        plan_s = dialstring.plan_ms(job.plan) / 1000.0
        ahead_s = 0.0
        if self.state.get("state") == "queued":
            ahead_s = float(self.state.get("ahead", 0)) * 30.0  # generous; polls keep it honest
        hard_deadline = t0 + plan_s + ahead_s + job.wait_s + 30.0
        quiet = max(c.timeout * 2, 0.5)
        last_news = c._clock()
        gen = c.link_gen
        while True:
            c._wait(_news(c, job, gen), min(last_news + quiet, hard_deadline))
            with c._cond:
                events = job.events
                job.events = []
            for verb, args in events:
                last_news = c._clock()
                done = progress.event(verb, args)
                if done is not None:
                    return done
            if job.reset:
                settle_unknown(c, job, progress, self.t0, "the board restarted")
            poll = False
            if not c.link_up:
                try:
                    c._ensure_link(min(hard_deadline, c._clock() + c.reconnect_timeout))
                except LinkError as e:
                    settle_unknown(
                        c, job, progress, self.t0, f"lost the connection to the board ({e})"
                    )
                if job.reset:
                    settle_unknown(c, job, progress, self.t0, "the board restarted")
            if c.link_gen != gen:
                gen = c.link_gen  # reconnected to the same board: ask where it is
                poll = True
            now = c._clock()
            if poll or now >= last_news + quiet:
                # nothing heard for a while: ask the board (a fresh id; RESULT is a query)
                try:
                    st = c.result(job.rid)
                except LinkError:
                    if not c.link_up:
                        continue  # the loop waits for the link
                    settle_unknown(c, job, progress, self.t0, "lost contact with the board")
                except BoardError:
                    st = {}
                last_news = c._clock()
                if st:
                    if st.get("state") == "unknown":
                        # the board has no record: it restarted (boot tells) or never got it
                        boot = str(st.get("boot", ""))
                        if boot and boot != c.boot_id:
                            c._board_restarted(boot)
                        settle_unknown(c, job, progress, self.t0, "the board has no record of it")
                    outcome = outcome_from_state(job, progress, st)
                    if outcome is not None:
                        return outcome
            if c._clock() > hard_deadline:
                try:
                    c.cancel(job.rid)
                except (LinkError, BoardError):
                    pass
                raise SendError(
                    progress.played,
                    job.total,
                    f"timed out waiting for the board; {progress.played} of {job.total} digits played",
                    code="timeout",
                    request_id=job.rid,
                )


def _news(c, job: Job, gen: int):
    """Something for a waiting sequence to look at: its events, a restart, the link."""
    return lambda: bool(job.events) or job.reset or not c.link_up or c.link_gen != gen


def outcome_from_state(job: Job, progress: Progress, st: dict):
    """SendResult for a done state, SendError for an aborted one, else None."""
    s = st.get("state")
    if "verified" in st:
        progress.verified = max(progress.verified or 0, int(st.get("verified", 0)))
    if s == "done":
        progress.played = max(progress.played, int(st.get("played", 0)))
        return SendResult(progress.played, job.total, job.rid, verified=progress.verified)
    if s == "aborted":
        played = max(progress.played, int(st.get("played", 0)))
        raise SendError(
            played,
            job.total,
            f"sequence aborted ({st.get('reason', 'aborted')}); {played} of {job.total} digits played",
            code=str(st.get("reason", "aborted")),
            request_id=job.rid,
            verified=progress.verified,
            fault=progress.fault,
        )
    if s in ("playing", "queued"):
        progress.played = max(progress.played, int(st.get("played", 0)))
    return None


def settle_unknown(client, job: Job, progress: Progress, t0: float | None, why: str):
    """Raise SendError for a sequence whose outcome the board can no longer report."""
    if t0 is None:
        at_most = job.total
    else:
        elapsed_ms = (client._clock() - t0) * 1000.0
        at_most = max(progress.played, digits_started_by(job.plan, elapsed_ms))
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


def heard_info(words) -> dict:
    """HEARD's measurement words -> {"ms": 98, "level_dbm": [-11.0, -9.0], "twist_db": 2.0,
    "freq_hz": [697.1, 1209.3]} (what the board measured; missing words are left out)."""
    out: dict = {}
    names = {"ms": "ms", "lvl": "level_dbm", "twist": "twist_db", "hz": "freq_hz"}
    for w in words:
        k, _, v = w.partition("=")
        if k == "pass":  # SELFTEST: the board's verdict against its limits
            out["pass"] = v == "1"
            continue
        if k not in names:
            continue
        try:
            vals = [float(x) for x in v.split(",")]
        except ValueError:
            continue
        if k == "ms":
            out["ms"] = int(vals[0])
        elif len(vals) == 1:
            out[names[k]] = vals[0]
        else:
            out[names[k]] = vals
    return out


def _int0(args):
    try:
        return int(args[0])
    except (IndexError, ValueError):
        return 0


def digits_started_by(plan, elapsed_ms: float) -> int:
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

"""All lines and calls: the asyncio-facing side of the line workers.

The API handlers call `send`, `hangup`, `dial` on the event loop; the line threads post
outcomes back (`_send_failed`, `_sequence_ended`, `reconciled`, ...). State changes go to
`listeners` (fn(kind, call, info)): that is how CometD `DtmfSent` goes out when the board
reports the digits played, not when the request arrived. Calls, counters and unreported
failures are kept in the durable store (tonebridge.store) and restored at start.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time

from tonebridge.api.calls import (
    Call,
    EarlierFailure,
    Failure,
    Job,
    SendFailed,
    fail,
    resolve,
)
from tonebridge.api.line import Line
from tonebridge.store import Store

log = logging.getLogger("tonebridge.api")


def default_client_factory(url, on_event, **kw):
    from tonebridge.link.client import BoardClient

    return BoardClient(url, on_event=on_event, **kw)


class Switchboard:
    def __init__(
        self, line_configs, client_factory=None, record_dir=None, store=None, accept_timeout=3.0
    ):
        self.record_dir = record_dir
        self.store = store if store is not None else Store(None)
        self.accept_timeout = float(accept_timeout)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.lines = [
            Line(cfg, self, client_factory or default_client_factory) for cfg in line_configs
        ]
        self.calls: dict[str, Call] = {}
        self.listeners = []  # fn(kind, call, info)
        self.settled = []  # fn(request_id, outcome, error): a request's answer became known
        self._restore()

    # ------------------------------------------------------------ state at start
    def _restore(self):
        stored = {r["id"]: r for r in self.store.load_calls()}
        by_device = {line.device_id: line for line in self.lines}
        for line in self.lines:
            if line.cfg.state != "established":
                continue
            call = Call(
                id=line.cfg.call_id, line=line, owner=line.owner, direction="out",
                local=line.number, remote=line.cfg.peer,
            )  # fmt: skip
            call.active_time = call.created
            old = stored.pop(call.id, None)
            if old is not None and old["device"] == line.device_id:
                call.sends, call.digits_sent = old["sends"], old["digits_sent"]
                call.conn_id, call.created = old["conn_id"], old["created"]
                call.active_time = old["active_time"] or call.created
                call.progress = old["progress"]
            line.call = call
            self.calls[call.id] = call
            self.save(call)
        for row in stored.values():
            line = by_device.get(row["device"])
            if line is None:
                continue
            call = Call(
                id=row["id"], line=line, owner=row["owner"], direction=row["direction"],
                local=row["local"], remote=row["remote"], state=row["state"],
                created=row["created"], active_time=row["active_time"], end_time=row["end_time"],
                conn_id=row["conn_id"], sends=row["sends"], digits_sent=row["digits_sent"],
                progress=row["progress"],
            )  # fmt: skip
            if call.live:  # a dialed call when serve stopped: the line was reset since
                call.state, call.end_time = "Released", time.time()
                self.save(call)
            self.calls[call.id] = call
        for call in self.calls.values():
            self._count_verified(call)
            for f in self.store.failures_of(call.id, unreported_only=False):
                failure = Failure(
                    f["digits"], f["played"], f["total"], f["message"], f["time"],
                    f["at_most"], f["rid"], f["id"], f["verified"],
                )  # fmt: skip
                call.last_failure = failure
                if not f["reported"]:
                    call.failures.append(failure)

    def save(self, call: Call):
        self.store.save_call(call.record())

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

    def lines_of(self, user: str) -> list[Line]:
        return [line for line in self.lines if line.owner == user]

    def _emit(self, kind, call, **info):
        for fn in list(self.listeners):
            try:
                fn(kind, call, info)
            except Exception:
                log.exception("listener failed")

    # ------------------------------------------------------------ sends
    def send(
        self,
        call: Call,
        text: str,
        dialect: str,
        request_id=None,
        tone_ms=None,
        gap_ms=None,
        report_failures=False,
    ) -> Job:
        """Queue a send; returns the job whose futures the caller awaits. `tone_ms`/`gap_ms`
        (the request's own) win over the line's (its profile's); None: the line's.
        `report_failures` (Catapult): an earlier accepted sequence's unreported failure fails
        this job with EarlierFailure instead (marked reported; nothing is sent)."""
        from tonebridge_fw.dialstring import compile_plan, digits_in

        total = digits_in(compile_plan(text, dialect))
        if report_failures:
            failure, remaining = self.take_failure(call)
            if failure is not None:
                job = Job(kind="send", total=total, call=call, text=text, dialect=dialect)
                job.accepted = self.loop.create_future()
                job.done = self.loop.create_future()
                fail(job.accepted, EarlierFailure(failure, remaining))
                fail(job.done, EarlierFailure(failure, remaining))
                return job
        call.sends += 1
        self.save(call)
        line = call.line
        job = Job(
            kind="send",
            total=total,
            call=call,
            text=text,
            dialect=dialect,
            tone_ms=line.cfg.tone_ms if tone_ms is None else tone_ms,
            gap_ms=line.cfg.gap_ms if gap_ms is None else gap_ms,
            pause_ms=line.cfg.pause_ms,
            flash_ms=line.cfg.flash_ms,
            request_id=request_id or secrets.token_hex(8),
            number=call.sends,
            accepted=self.loop.create_future(),
            done=self.loop.create_future(),
            deadline=time.monotonic() + max(0.0, self.accept_timeout - 0.1),
        )
        line.submit(job)
        return job

    def send_failed(self, job: Job, exc: SendFailed, abandoned: bool):
        """A send that failed before the board accepted it: the request's own answer."""
        fail(job.accepted, exc)  # (when abandoned its answer went out already: a no-op for it)
        fail(job.done, exc)
        self._emit("send_failed", job.call, failure=exc)
        self.settle_request(job.request_id, "sent" if exc.sent else "not_sent", exc)

    def sequence_ended(self, job: Job, played, total, outcome, abandoned):
        call = job.call
        if call is not None:
            self._count(call, self.store.seq_count(job.request_id, played))
            self._count_verified(call)
        self._emit("sequence_ended", call, rid=job.request_id, played=played, total=total,
                   outcome=outcome)  # fmt: skip
        if outcome is None:
            resolve(job.done, (played, total))
            if not abandoned and call is not None:
                self._emit("dtmf_sent", call, digits=job.text, played=played)
            return
        if call is not None and outcome.accepted:
            self._add_failure(call, job.text, outcome, job.request_id)
        fail(job.done, outcome)
        if call is not None:
            self._emit("send_failed", call, failure=outcome)

    def _count_verified(self, call: Call):
        """The call's verified count, from its sequences as the store records them (each
        sequence counted once, whichever path learnt its outcome; kept across restarts)."""
        call.digits_verified = self.store.call_verified(call.id)

    def _count(self, call: Call, delta: int, save: bool = True):
        """`delta` more digits of the call were played (each digit counted once)."""
        if delta:
            call.digits_sent += delta
            if save:
                self.save(call)
            self._emit("digits_counted", call, digits=delta)

    def digit_progress(self, line: Line, rid: str, event: dict):
        """A digit of sequence `rid` started or finished playing (the board's own report)."""
        seq = self.store.seq_get(rid) or {}
        call = self.calls.get(seq.get("call_id"))
        self._emit("digit", call, line=line, rid=rid, text=seq.get("text", ""), event=event)

    def hook_changed(self, line: Line):
        """The bridge set the line's hook (line.off_hook)."""
        self._emit("hook", line.call, line=line)

    def recorded(self, line: Line, call: Call, number: int):
        """Sequence `number` of `call` was written to the record directory."""
        self._emit("recorded", call, line=line, number=number)

    def board_fault(self, line: Line, event: dict):
        self._emit("board_fault", line.call, line=line, event=event)

    def _add_failure(self, call: Call, digits: str, exc: SendFailed, rid=None):
        failure = Failure(digits, exc.played, exc.total, exc.message, at_most=exc.at_most, rid=rid)
        failure.verified = getattr(exc, "verified", None)
        failure.id = self.store.failure_add(
            call.id, rid, digits, exc.played, exc.total, exc.message, exc.at_most, failure.verified
        )
        call.failures.append(failure)
        call.last_failure = failure

    def take_failure(self, call: Call) -> tuple[Failure | None, int]:
        """The oldest failure not yet reported (marked reported now) and how many remain."""
        if not call.failures:
            return None, 0
        failure = call.failures.popleft()
        if failure.id is not None:
            self.store.failure_reported(failure.id)
        return failure, len(call.failures)

    def reconciled(self, seq: dict, state: str, played: int, message: str, at_most):
        """A sequence from before (a restart, a lost link) got its real outcome."""
        call = self.calls.get(seq["call_id"])
        rid = seq["rid"]
        if call is not None:
            self._count(call, self.store.seq_count(rid, played))
            self._count_verified(call)
            known = [
                f for f in (*call.failures, call.last_failure) if f is not None and f.rid == rid
            ]
            if known:  # reported or queued already: it now says what the board says
                if state == "done":
                    message = (
                        f"the board finished it after all: {played} of {seq['total']} digits played"
                    )
                for f in {id(f): f for f in known}.values():
                    f.played, f.message, f.at_most = played, message, at_most
                    if f.id is not None:
                        self.store.failure_update(f.id, played, message, at_most)
            elif seq["state"] == "uncertain" and played:
                # its request was answered with a failure, yet digits went out: say so
                exc = SendFailed(
                    f"its request was answered with a failure, but the board played "
                    f"{played} of {seq['total']} digits before it could be stopped ({state})",
                    played,
                    seq["total"],
                    True,
                    at_most=at_most,
                )
                self._add_failure(call, seq["text"], exc, rid)
            elif state in ("aborted", "unknown") and seq["state"] != "uncertain":
                exc = SendFailed(message, played, seq["total"], True, at_most=at_most)
                self._add_failure(call, seq["text"], exc, rid)
            if state == "done" and call.live:
                self._emit("dtmf_sent", call, digits=seq["text"], played=played)
        if seq["state"] == "sending":
            outcome = "accepted" if state in ("done", "aborted") else state
            exc = None if outcome == "accepted" else SendFailed(message, played, seq["total"])
            self.settle_request(rid, "not_sent" if state == "failed" else outcome, exc)

    def played_after_failure(self, seq: dict):
        """Sequence `seq` (a store record) played, but its request had been answered with a
        failure (a fleet front end's bound ran out first): the call reports it."""
        call = self.calls.get(seq["call_id"])
        if call is None:
            return
        exc = SendFailed(
            f"its request was answered with a failure, but the board played {seq['played']} "
            f"of {seq['total']} digits",
            seq["played"],
            seq["total"],
            True,
        )
        self._add_failure(call, seq["text"], exc, seq["rid"])
        self._emit("send_failed", call, failure=exc)

    def settle_request(self, rid, outcome, exc):
        for fn in list(self.settled):
            try:
                fn(rid, outcome, exc)
            except Exception:
                log.exception("settle listener failed")

    def line_changed(self, line: Line):
        state = line.state_json()
        if state != line.published:
            line.published = state
            self._emit("line", None, line=line)

    # ------------------------------------------------------------ calls
    def hangup(self, call: Call):
        line = call.line
        call.state = "Released"
        call.end_time = time.time()
        self.save(call)
        if line.busy_with(call):
            threading.Thread(target=line.cancel_current, daemon=True).start()
        else:
            line.wake.set()
        job = Job(kind="hook", call=call, off_hook=False, done=self.loop.create_future())
        line.submit(job)
        self._emit("state", call)

    def board_on_hook(self, line: Line, call: Call | None, reason: str):
        """The board went on-hook by itself (e.g. its off-hook time limit): call ends."""
        if call is not None and call is line.call and call.live:
            log.warning(
                "line %s: board went on-hook (%s); call %s released", line.url, reason, call.id
            )
            call.state = "Released"
            call.end_time = time.time()
            self.save(call)
            self._emit("state", call)

    def set_state(self, call: Call, state: str):
        call.state = state
        self.save(call)
        self._emit("state", call)

    def dial(self, line: Line, owner: str, destination: str, dialect: str) -> Call:
        from tonebridge_fw.dialstring import compile_plan, digits_in

        call = Call(
            id=f"c-{secrets.token_hex(8)}", line=line, owner=owner, direction="out",
            local=line.number, remote=destination, state="Dialing",
        )  # fmt: skip
        line.call = call
        self.calls[call.id] = call
        call.sends += 1
        self.save(call)
        job = Job(
            kind="dial",
            call=call,
            text=destination,
            dialect=dialect,
            tone_ms=line.cfg.tone_ms,
            gap_ms=line.cfg.gap_ms,
            pause_ms=line.cfg.pause_ms,
            flash_ms=line.cfg.flash_ms,
            request_id=f"{call.id}.dial",
            total=digits_in(compile_plan(destination, dialect)),
            number=call.sends,
            accepted=self.loop.create_future(),
            done=self.loop.create_future(),
        )
        job.accepted.add_done_callback(lambda f: f.cancelled() or f.exception())
        line.submit(job)
        self._emit("state", call)
        return call

    def line_progress(self, line: Line, call: Call | None, name: str):
        """Call progress the board heard (PROGRESS events): a dialled call follows what the
        line did. Answered (a voice after the ringback) -> Established; busy or reorder ->
        Released, and the line hangs up. Before the dial string has gone out the states are
        the board's business (it waits for dial tone itself)."""
        if call is None or call is not line.call or not call.live:
            return
        if call.progress != name:
            call.progress = name
            self.save(call)  # kept across a restart of serve
        if not call.awaiting_answer:
            return
        if name == "voice":
            call.awaiting_answer = False
            call.state = "Established"
            call.active_time = time.time()
            self.save(call)
            self._emit("state", call)
        elif name in ("busy", "reorder"):
            call.awaiting_answer = False
            what = "busy" if name == "busy" else "reorder (congestion)"
            call.last_failure = Failure(call.remote, 0, 0, f"the line is {what}")
            self.hangup(call)

    def dial_done(self, job: Job, exc):
        call = job.call
        self._count_verified(call)
        if exc is None and job.dialtone_ms and call.state == "Dialing":
            # the board hears the line: the call is answered when the line says so
            call.digits_sent += self.store.seq_count(job.request_id, job.total)
            call.awaiting_answer = True
            call.progress = None  # what the line says from now on (not our own digits)
            self.save(call)
            resolve(job.done, None)
            return
        if exc is None:
            self._count(call, self.store.seq_count(job.request_id, job.total), save=False)
            if call.state == "Dialing":
                call.state = "Established"
                call.active_time = time.time()
                self._emit("state", call)
            self.save(call)
            resolve(job.done, None)
            return
        if call.live:
            call.state = "Released"
            call.end_time = time.time()
            if isinstance(exc, SendFailed):
                call.last_failure = Failure(job.text, exc.played, exc.total, exc.message)
                self._count(call, self.store.seq_count(job.request_id, exc.played), save=False)
            self.save(call)
            self._emit("state", call)
            call.line.submit(Job(kind="hook", call=call, off_hook=False))
        fail(job.done, exc)

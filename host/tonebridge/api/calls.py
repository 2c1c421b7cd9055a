"""Calls, the jobs a line runs for them, and what a failed sequence reports."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field

LIVE = ("Dialing", "Established", "Held")


class SendFailed(Exception):
    """A sequence did not (completely) play. `accepted`: the board had accepted it (then some
    digits may have gone out: `played`, at most `at_most`). `sent`: False when the SEND
    certainly never reached a board (a retry may send it again). `refused`: the board (or
    the host's check against what the board said it can play) refused the dial string
    itself, e.g. a held key on a board whose tones have a fixed length: bad input, nothing
    played."""

    def __init__(
        self,
        message: str,
        played: int = 0,
        total: int = 0,
        accepted: bool = False,
        *,
        at_most: int | None = None,
        sent: bool = True,
        refused: bool = False,
        verified: int | None = None,
    ):
        super().__init__(message)
        self.verified = verified  # digits the board heard on the line (None: not verifying)
        self.refused = refused
        self.message = message
        self.played = played
        self.total = total
        self.accepted = accepted
        self.at_most = played if at_most is None else at_most
        self.sent = sent


class EarlierFailure(Exception):
    """A send asked to report failures first (Catapult) found one: an earlier, accepted
    sequence failed and was not reported yet. This send was not sent."""

    def __init__(self, failure, remaining: int):
        super().__init__(failure.message)
        self.failure = failure
        self.remaining = remaining


class CallReleased(Exception):
    """The call was hung up before this job's turn came; nothing was sent."""


@dataclass
class Failure:
    """One sequence failure after acceptance, queued on its call until reported."""

    digits: str
    played: int
    total: int
    message: str
    time: float = field(default_factory=time.time)
    at_most: int | None = None
    rid: str | None = None
    id: int | None = None  # row in the store
    verified: int | None = None  # digits heard on the line (boards that verify)


@dataclass
class Call:
    id: str
    line: object  # Line
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
    # of those, heard on the line by the board: the sum over the call's sequences in the store
    # (None: not available, the board does not verify its sends)
    digits_verified: int | None = None
    failures: deque = field(default_factory=deque)  # Failures not yet reported, oldest first
    last_failure: Failure | None = None
    progress: str | None = None  # what the line did after dialling (a board that hears it)
    awaiting_answer: bool = False  # dialled on a board that hears: Established when answered

    @property
    def live(self) -> bool:
        return self.state in LIVE

    def record(self) -> dict:
        """The call as the store keeps it."""
        return {
            "id": self.id,
            "device": self.line.device_id,
            "owner": self.owner,
            "direction": self.direction,
            "local": self.local,
            "remote": self.remote,
            "state": self.state,
            "created": self.created,
            "active_time": self.active_time,
            "end_time": self.end_time,
            "conn_id": self.conn_id,
            "sends": self.sends,
            "digits_sent": self.digits_sent,
            "progress": self.progress,
        }


@dataclass(eq=False)
class Job:
    """Work for a line's worker: "send", "hook", "dial", "check_hook", "reconcile"."""

    kind: str
    call: Call | None
    text: str = ""
    dialect: str = "catapult"
    tone_ms: int | None = None  # None: the board's own (CONFIG) value
    gap_ms: int | None = None
    pause_ms: int | None = None
    flash_ms: int | None = None  # None: the board's own (CONFIG flash)
    dialtone_ms: int = 0  # Dial on a board that hears: wait for dial tone up to this long
    request_id: str | None = None
    number: int = 0  # recording number
    total: int = 0  # digits in the sequence
    off_hook: bool = True
    accepted: asyncio.Future | None = None
    done: asyncio.Future | None = None
    deadline: float | None = None  # time.monotonic() by which the board must accept it
    # queued -> submitting -> accepted | failed; queued -> expired (never sent);
    # submitting + abandoned: the answer went out (timed out) while the SEND was under way
    state: str = "queued"
    abandoned: bool = False
    verified: int | None = None  # digits the board heard on the line (set when it ends)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def expire(self) -> str:
        """The request's answer deadline passed: a job not yet started never will be
        ("expired"); one being submitted is "abandoned" (the line cancels it if the board
        accepts it after all). Returns the state it was in."""
        with self.lock:
            was = self.state
            if was == "queued":
                self.state = "expired"
            elif was == "submitting":
                self.abandoned = True
            return was

    def start(self) -> bool:
        """The worker takes the job: False if it expired first."""
        with self.lock:
            if self.state != "queued":
                return False
            self.state = "submitting"
            return True

    def finish_submit(self, state: str) -> bool:
        """Submission ended ("accepted" / "failed"); True if the answer was abandoned."""
        with self.lock:
            self.state = state
            return self.abandoned


def resolve(fut, value):
    if fut is not None and not fut.done():
        fut.set_result(value)


def fail(fut, exc):
    if fut is not None and not fut.done():
        fut.set_exception(exc)
        fut.exception()  # mark retrieved: a caller may have stopped waiting

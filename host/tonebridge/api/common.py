"""Helpers both APIs (catapult.py, gws.py) use: checking a dial string, waiting (within the
bound) for the board to accept a send, and turning failures into ApiErrors."""

from __future__ import annotations

import asyncio

from tonebridge.api.calls import CallReleased, EarlierFailure, SendFailed
from tonebridge.api.errors import ApiError


def compile_dial(text: str, dialect: str, field: str):
    """The plan for `text`, or ApiError("validation") naming the field, character and position."""
    from tonebridge_fw.dialstring import DialStringError, compile_plan

    try:
        return compile_plan(text, dialect=dialect)
    except DialStringError as exc:
        err = ApiError("validation", f"{field}: {exc}")
        err.position = exc.position  # the character it points to (the dashboard marks it)
        raise err from None
    except ValueError as exc:
        raise ApiError("validation", f"{field}: {exc}") from None


def counts(played: int, total: int, at_most: int | None = None) -> str:
    text = f"{played} of {total} digits played"
    if at_most is not None and at_most > played:
        text += f", at most {at_most}"
    return text


async def await_accepted(job, call, timeout: float, field: str = "digits"):
    """Wait until the board accepted the sequence, at most `timeout` s; map every failure
    (released call, board refusal, unreachable board, timeout) to an ApiError. A dial string
    the board refused as such (it cannot play it: bad input) is a validation error naming
    `field`."""
    try:
        await asyncio.wait_for(asyncio.shield(job.accepted), timeout)
    except EarlierFailure as exc:
        raise failure_error(call, exc.failure, exc.remaining) from None
    except CallReleased:
        raise ApiError(
            "invalid_state",
            f"call {call.id} was released before this sequence started; no digits were sent",
        ) from None
    except SendFailed as exc:
        if exc.refused and not exc.sent:
            raise ApiError(
                "validation",
                f"{field}: {exc.message}",
                details=[{"name": field, "value": job.text}],
            ) from None
        raise ApiError(
            "send_failed",
            f"DTMF digits could not be sent for call {call.id}: {exc.message} "
            f"({counts(exc.played, exc.total, exc.at_most)})",
            details=[
                {"name": "digitsPlayed", "value": str(exc.played)},
                {"name": "digitsTotal", "value": str(exc.total)},
            ],
            forget=not exc.sent,
        ) from None
    except TimeoutError:
        was = job.expire()
        if was == "accepted":  # accepted in the very same instant
            return
        fault = call.line.fault
        why = f"the board did not accept the sequence within {timeout:g} s"
        if fault:
            why += f" ({fault})"
        if was == "queued":
            tail = "nothing was sent"
        else:
            tail = "if it reached the board it is cancelled; what played is reported"
        raise ApiError(
            "send_failed",
            f"DTMF digits could not be sent for call {call.id}: {why}; {tail} "
            f"({counts(0, job.total)})",
            details=[
                {"name": "digitsPlayed", "value": "0"},
                {"name": "digitsTotal", "value": str(job.total)},
            ],
            forget=was == "queued",
        ) from None


def replayed(job, response):
    """The answer to a send a fleet agent answered from its idempotency record (the same key
    came through another front end, or before the agent restarted): marked as replayed, as
    the single-process mode marks its own replays."""
    if getattr(job, "replayed", False):
        response.headers["Idempotent-Replayed"] = "true"
    return response


def failure_error(call, failure, remaining: int) -> ApiError:
    """The Catapult 503 that reports one failure of an earlier, accepted sequence."""
    more = f" {remaining} more unreported failure(s) follow." if remaining else ""
    return ApiError(
        "send_failed",
        f"DTMF digits {failure.digits} could not be sent for call {call.id}: "
        f"{failure.message} ({counts(failure.played, failure.total, failure.at_most)}). "
        f"This request was not sent; send it again to continue.{more}",
        details=[
            {"name": "digitsPlayed", "value": str(failure.played)},
            {"name": "digitsTotal", "value": str(failure.total)},
            {"name": "dtmfOut", "value": failure.digits},
        ],
    )

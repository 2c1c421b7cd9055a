"""Bandwidth Catapult v1 voice API subset: calls and dtmf."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from .app import read_json
from .errors import ApiError
from .gws import _accepted, _compile
from .lines import Call

router = APIRouter(tags=["Catapult v1"])

MAX_DTMF = 92

DTMF_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["dtmfOut"],
                "properties": {"dtmfOut": {"type": "string", "pattern": "^[A-D0-9#*,wW]{1,92}$"}},
            },
            "example": {"dtmfOut": "1WWW,59#"},
        }
    },
}
CREATE_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["from", "to"],
                "properties": {
                    "from": {"type": "string", "maxLength": 32},
                    "to": {"type": "string", "pattern": "^\\+?[0-9*#A-D]{1,32}$"},
                },
            }
        }
    },
}
UPDATE_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["state"],
                "properties": {"state": {"type": "string", "enum": ["completed", "active"]}},
            }
        }
    },
}
ERROR_RESPONSES = {
    400: {"description": "validation-error"},
    401: {"description": "user-access-denied (credentials)"},
    403: {"description": "call-invalid-state, or another user's path"},
    404: {"description": "call-not-found"},
    429: {"description": "too-many-requests (X-RateLimit-Reset)"},
    503: {"description": "send-dtmf-failure (with the count of digits played)"},
}

STATE = {"Dialing": "started", "Established": "active", "Held": "active", "Released": "completed"}


def authenticate(request: Request, user_id: str) -> str:
    bridge = request.app.state.bridge
    user = bridge.auth.check_basic(request.headers.get("authorization"))
    if user is None:
        raise ApiError(
            "unauthenticated",
            "Access denied: valid API token and secret required (HTTP Basic)",
            headers={"WWW-Authenticate": 'Basic realm="tonebridge"'},
        )
    if user != user_id:
        raise ApiError("forbidden", "these credentials do not give access to that user")
    bridge.limiter.take(user)
    return user


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    text = datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def call_json(call: Call, base: str) -> dict:
    end = call.end_time or time.time()
    data = {
        "id": call.id,
        "direction": call.direction,
        "from": call.local,
        "to": call.remote,
        "state": STATE.get(call.state, "completed"),
        "startTime": _iso(call.created),
        "callbackUrl": None,
        "events": f"{base}/v1/users/{call.owner}/calls/{call.id}/events",
        "dtmfDigitsSent": call.digits_sent,
    }
    if call.active_time is not None:
        data["activeTime"] = _iso(call.active_time)
        data["chargeableDuration"] = max(0, int(end - call.active_time + 59) // 60 * 60)
    if call.end_time is not None:
        data["endTime"] = _iso(call.end_time)
    if call.failure is not None:
        data["lastDtmfFailure"] = {
            "dtmfOut": call.failure["digits"],
            "digitsPlayed": call.failure["played"],
            "digitsTotal": call.failure["total"],
            "message": call.failure["message"],
            "time": _iso(call.failure["time"]),
        }
    return data


def _call(request, user, call_id) -> Call:
    call = request.app.state.bridge.board.call_of(user, call_id)
    if call is None:
        raise ApiError("not_found", f"call {call_id} not found")
    return call


@router.get("/v1/users/{user_id}/calls", summary="List the user's calls", responses=ERROR_RESPONSES)
async def list_calls(request: Request, user_id: str):
    user = authenticate(request, user_id)
    bridge = request.app.state.bridge
    base = bridge.cfg.base_url
    return JSONResponse([call_json(c, base) for c in bridge.board.calls_of(user)])


@router.get("/v1/users/{user_id}/calls/{call_id}", summary="Get a call", responses=ERROR_RESPONSES)
async def get_call(request: Request, user_id: str, call_id: str):
    user = authenticate(request, user_id)
    call = _call(request, user, call_id)
    return JSONResponse(call_json(call, request.app.state.bridge.cfg.base_url))


@router.post(
    "/v1/users/{user_id}/calls/{call_id}/dtmf",
    summary="Send DTMF on an active call; 200 once the board accepted the sequence",
    openapi_extra={"requestBody": DTMF_BODY},
    responses=ERROR_RESPONSES,
)
async def send_dtmf(request: Request, user_id: str, call_id: str):
    user = authenticate(request, user_id)
    bridge = request.app.state.bridge
    body, raw = await read_json(request, bridge.cfg.body_bytes)
    if not isinstance(body, dict):
        raise ApiError("validation", "request body must be a JSON object")
    if "dtmfOut" not in body or body["dtmfOut"] is None:
        raise ApiError(
            "missing_parameter",
            "dtmfOut is required",
            details=[{"name": "dtmfOut", "value": ""}],
        )
    dtmf = body["dtmfOut"]
    if not isinstance(dtmf, str):
        raise ApiError("validation", "dtmfOut must be a string")
    if len(dtmf) > MAX_DTMF:
        raise ApiError(
            "validation",
            f"dtmfOut is {len(dtmf)} characters long; at most {MAX_DTMF} are allowed",
            details=[{"name": "dtmfOut", "value": dtmf[:MAX_DTMF] + "..."}],
        )
    try:
        _compile(dtmf, "catapult", "dtmfOut")
    except ApiError as exc:
        exc.details = [{"name": "dtmfOut", "value": dtmf}]
        raise
    call = _call(request, user, call_id)

    async def handler(request_id):
        if call.state != "Established":
            raise ApiError(
                "invalid_state",
                f"call {call.id} is {STATE.get(call.state, 'completed')}; "
                "DTMF can only be sent on an active call",
            )
        if call.failure is not None and not call.failure_reported:
            failure = call.failure
            call.failure_reported = True
            raise ApiError(
                "send_failed",
                f"DTMF digits {failure['digits']} could not be sent for call {call.id}: "
                f"{failure['message']} ({failure['played']} of {failure['total']} digits played). "
                "This request was not sent; send it again to continue.",
                details=[
                    {"name": "digitsPlayed", "value": str(failure["played"])},
                    {"name": "digitsTotal", "value": str(failure["total"])},
                    {"name": "dtmfOut", "value": failure["digits"]},
                ],
            )
        job = bridge.board.send(call, dtmf, "catapult", request_id)
        await _accepted(job, call)
        return Response(status_code=200)

    return await bridge.idempotency.run(request, user, raw, handler)


@router.post(
    "/v1/users/{user_id}/calls/{call_id}",
    summary='Update a call: {"state": "completed"} hangs up',
    openapi_extra={"requestBody": UPDATE_BODY},
    responses=ERROR_RESPONSES,
)
async def update_call(request: Request, user_id: str, call_id: str):
    user = authenticate(request, user_id)
    bridge = request.app.state.bridge
    body, raw = await read_json(request, bridge.cfg.body_bytes)
    if not isinstance(body, dict):
        raise ApiError("validation", "request body must be a JSON object")
    state = body.get("state")
    if state is None:
        raise ApiError("missing_parameter", "state is required")
    if state not in ("completed", "active"):
        raise ApiError("validation", 'state must be "completed" (hang up) or "active"')
    call = _call(request, user, call_id)

    async def handler(request_id):
        if state == "completed":
            if not call.live:
                raise ApiError("invalid_state", f"call {call.id} is already completed")
            bridge.board.hangup(call)
        elif call.state != "Established":
            raise ApiError("invalid_state", f"call {call.id} is {STATE.get(call.state)}")
        return Response(status_code=200)

    return await bridge.idempotency.run(request, user, raw, handler)


@router.post(
    "/v1/users/{user_id}/calls",
    summary="Place a call on a free line: off-hook, wait, dial `to` as DTMF",
    status_code=201,
    openapi_extra={"requestBody": CREATE_BODY},
    responses=ERROR_RESPONSES,
)
async def create_call(request: Request, user_id: str):
    user = authenticate(request, user_id)
    bridge = request.app.state.bridge
    body, raw = await read_json(request, bridge.cfg.body_bytes)
    if not isinstance(body, dict):
        raise ApiError("validation", "request body must be a JSON object")
    for name in ("from", "to"):
        if body.get(name) is None:
            raise ApiError("missing_parameter", f"{name} is required")
        if not isinstance(body[name], str) or not 0 < len(body[name]) <= 32:
            raise ApiError("validation", f"{name} must be a string of 1-32 characters")
    to = body["to"]
    digits = to[1:] if to.startswith("+") else to
    _compile(digits, "gws", "to")

    async def handler(request_id):
        line = bridge.board.free_line(user)
        if line is None:
            raise ApiError("in_use", "no free line: every line of this user has an active call")
        call = bridge.board.dial(line, user, digits, "gws")
        call.local = body["from"]
        call.remote = to
        location = f"{bridge.cfg.base_url}/v1/users/{user}/calls/{call.id}"
        return Response(status_code=201, headers={"Location": location})

    return await bridge.idempotency.run(request, user, raw, handler)

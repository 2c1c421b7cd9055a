"""Bandwidth Catapult v1 voice API subset: calls and dtmf."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from starlette.responses import Response

from tonebridge.api import timing
from tonebridge.api.body import read_json
from tonebridge.api.calls import Call
from tonebridge.api.common import await_accepted, compile_dial, replayed
from tonebridge.api.errors import ApiError, JsonResponse

router = APIRouter(tags=["Catapult v1"])

MAX_DTMF = 92

# Catapult's own dtmfOut, or with "dialect": "tonebridge" the tonebridge dialect
_DTMF_OUT = timing.dial_string_schema(
    "dtmfOut",
    "^[A-D0-9#*,wW]{1,92}$",
    "Catapult's characters (pattern: see else); with dialect tonebridge also held keys such "
    "as 5(2000), hook flashes (!) and the pause p (pattern: see then; docs/dialstrings.md)",
)
DTMF_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["dtmfOut"],
                "properties": {
                    "dtmfOut": _DTMF_OUT[0],
                    **timing.request_schema("catapult"),
                },
                **_DTMF_OUT[1],
            },
            "examples": {
                "seed": {"summary": "Catapult's own", "value": {"dtmfOut": "1WWW,59#"}},
                "timing": {
                    "summary": "tone 250 ms, 400 ms between digits (tonebridge extension)",
                    "value": {"dtmfOut": "1234#", "toneDuration": 250, "toneInterval": 400},
                },
                "held": {
                    "summary": "hold 5 for 2 s (tonebridge dialect)",
                    "value": {"dtmfOut": "15(2000)#", "dialect": "tonebridge"},
                },
            },
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
        # digits the board heard on the line (boards that verify their sends)
        "dtmfDigitsVerified": call.digits_verified,
        # what the line did after dialling, as the board heard it (docs/callprogress.md)
        "lineProgress": call.progress,
    }
    if call.active_time is not None:
        data["activeTime"] = _iso(call.active_time)
        data["chargeableDuration"] = max(0, int(end - call.active_time + 59) // 60 * 60)
    if call.end_time is not None:
        data["endTime"] = _iso(call.end_time)
    if call.last_failure is not None:
        data["lastDtmfFailure"] = _failure_json(call.last_failure)
    if call.failures:
        data["unreportedDtmfFailures"] = [_failure_json(f) for f in call.failures]
    line = call.line
    data["lineHardwareId"] = line.hwid
    fault = line.fault
    if fault:
        data["lineFault"] = fault
    return data


def _failure_json(f) -> dict:
    out = {
        "dtmfOut": f.digits,
        "digitsPlayed": f.played,
        "digitsTotal": f.total,
        "message": f.message,
        "time": _iso(f.time),
    }
    if f.at_most is not None and f.at_most > f.played:
        out["digitsPlayedAtMost"] = f.at_most
    if f.verified is not None:
        out["digitsVerified"] = f.verified
    return out


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
    return JsonResponse([call_json(c, base) for c in bridge.board.calls_of(user)])


@router.get("/v1/users/{user_id}/calls/{call_id}", summary="Get a call", responses=ERROR_RESPONSES)
async def get_call(request: Request, user_id: str, call_id: str):
    user = authenticate(request, user_id)
    call = _call(request, user, call_id)
    return JsonResponse(call_json(call, request.app.state.bridge.cfg.base_url))


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
    dialect = timing.request_dialect(body, "catapult")
    ms = timing.request_timing(body)
    try:
        compile_dial(dtmf, dialect, "dtmfOut")
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
        # an unreported failure of an earlier sequence is this request's answer (503)
        job = bridge.board.send(call, dtmf, dialect, request_id, report_failures=True, **ms)
        await await_accepted(job, call, bridge.accept_timeout, "dtmfOut")
        return replayed(job, Response(status_code=200))

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
    compile_dial(digits, "gws", "to")

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

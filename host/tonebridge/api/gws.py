"""Genesys Web Services (GWS) v2 voice API subset, plus the CometD endpoint."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from starlette.responses import Response

from tonebridge.api import timing
from tonebridge.api.auth import CSRF_HEADER_NAME, SESSION_COOKIE, Session
from tonebridge.api.body import parse_json, read_body, read_json
from tonebridge.api.common import await_accepted, compile_dial, replayed
from tonebridge.api.errors import ApiError, JsonResponse
from tonebridge.api.gws_json import call_json, device_json, install_listener

__all__ = ["call_json", "device_json", "install_listener", "router"]

router = APIRouter(tags=["GWS v2"])


# GWS's own digits, or with "dialect": "tonebridge" the tonebridge dialect
_DIGITS = timing.dial_string_schema(
    "digits",
    "^[0-9*#A-D]{1,92}$",
    "DTMF keys (pattern: see else); with dialect tonebridge also pauses (, w W p), hook "
    "flashes (!) and held keys such as 5(2000) (pattern: see then; docs/dialstrings.md)",
)
SEND_DTMF_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["operationName"],
                "properties": {
                    "operationName": {
                        "type": "string",
                        "enum": ["SendDtmf", "Hangup", "Answer", "Hold", "Retrieve"],
                    },
                    "digits": _DIGITS[0],
                    **timing.request_schema("gws"),
                },
                **_DIGITS[1],
            },
            "examples": {
                "seed": {
                    "summary": "GWS's own",
                    "value": {"operationName": "SendDtmf", "digits": "5"},
                },
                "timing": {
                    "summary": "tone 250 ms, 400 ms between digits (tonebridge extension)",
                    "value": {
                        "operationName": "SendDtmf",
                        "digits": "1234",
                        "toneDuration": 250,
                        "toneInterval": 400,
                    },
                },
            },
        }
    },
}
DIAL_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["operationName", "destination"],
                "properties": {
                    "operationName": {"type": "string", "enum": ["Dial"]},
                    "destination": {
                        "type": "object",
                        "required": ["phoneNumber"],
                        "properties": {"phoneNumber": {"type": "string"}},
                    },
                },
            },
            "example": {"operationName": "Dial", "destination": {"phoneNumber": "5001"}},
        }
    },
}
STATUS_RESPONSES = {
    200: {"description": "statusCode 0 on success"},
    400: {"description": "GWS error envelope: statusCode 1, 2, 3 or 10"},
    401: {"description": "statusCode 20 Access denied"},
    403: {"description": "Missing or invalid Csrf token (when CSRF protection is on)"},
    503: {"description": "statusCode 4: the board did not take the digits (with the count played)"},
    404: {"description": "statusCode 6 not found"},
}


@dataclass
class Ctx:
    user: str
    session: Session
    new: bool

    def headers(self) -> dict:
        return {"X-CSRF-HEADER": CSRF_HEADER_NAME, CSRF_HEADER_NAME: self.session.csrf}

    def decorate(self, response: Response) -> Response:
        for name, value in self.headers().items():
            response.headers[name] = value
        if self.new:
            response.set_cookie(
                SESSION_COOKIE, self.session.sid, path="/", httponly=True, samesite="lax"
            )
        return response


def _bridge(request: Request):
    return request.app.state.bridge


def authenticate(request: Request, *, post: bool, limit=True) -> Ctx:
    bridge = _bridge(request)
    auth = bridge.auth
    header = request.headers.get("authorization")
    cookie_session = auth.session(request.cookies.get(SESSION_COOKIE))
    if header:
        user = auth.check_basic(header)
        if user is None:
            raise ApiError(
                "unauthenticated",
                "Access denied",
                headers={"WWW-Authenticate": 'Basic realm="tonebridge"'},
            )
        if cookie_session is not None and cookie_session.user == user:
            ctx = Ctx(user, cookie_session, False)
        else:
            ctx = Ctx(user, auth.new_session(user), True)
    elif cookie_session is not None:
        ctx = Ctx(cookie_session.user, cookie_session, False)
    else:
        raise ApiError(
            "unauthenticated",
            "Access denied",
            headers={"WWW-Authenticate": 'Basic realm="tonebridge"'},
        )
    if limit:
        bridge.limiter.take(ctx.user)
    if post and bridge.cfg.csrf:
        token = request.headers.get(CSRF_HEADER_NAME)
        if ctx.new or not auth.csrf_ok(ctx.session, token):
            headers = ctx.headers()
            if ctx.new:
                headers["Set-Cookie"] = (
                    f"{SESSION_COOKIE}={ctx.session.sid}; Path=/; HttpOnly; SameSite=lax"
                )
            raise ApiError("csrf", "Missing or invalid Csrf token", headers=headers)
    return ctx


def ok(ctx: Ctx, extra: dict | None = None) -> Response:
    body = {"statusCode": 0}
    if extra:
        body.update(extra)
    return ctx.decorate(JsonResponse(body))


# --------------------------------------------------------------------- routes
@router.get("/api/v2/me", summary="The signed-in user (starts a session, gives the CSRF token)")
async def get_me(request: Request):
    ctx = authenticate(request, post=False)
    bridge = _bridge(request)
    lines = [line for line in bridge.board.lines if line.owner == ctx.user]
    return ok(
        ctx,
        {
            "user": {
                "userName": ctx.user,
                "id": ctx.user,
                "agentLogin": ctx.user,
                "phoneNumber": lines[0].number if lines else "",
                "roles": ["ROLE_AGENT"],
            }
        },
    )


@router.get("/api/v2/me/devices", summary="The user's devices (one per board line)")
async def get_devices(request: Request):
    ctx = authenticate(request, post=False)
    bridge = _bridge(request)
    devices = [device_json(line) for line in bridge.board.lines if line.owner == ctx.user]
    return ok(ctx, {"devices": devices})


@router.get("/api/v2/me/calls", summary="The user's calls", responses=STATUS_RESPONSES)
async def list_calls(request: Request):
    ctx = authenticate(request, post=False)
    bridge = _bridge(request)
    base = bridge.cfg.base_url
    calls = [call_json(c, base) for c in bridge.board.calls_of(ctx.user) if c.live]
    return ok(ctx, {"calls": calls})


@router.get("/api/v2/me/calls/{call_id}", summary="One call", responses=STATUS_RESPONSES)
async def get_call(request: Request, call_id: str):
    ctx = authenticate(request, post=False)
    bridge = _bridge(request)
    call = bridge.board.call_of(ctx.user, call_id)
    if call is None:
        raise ApiError("not_found", f"Call {call_id} not found")
    return ok(ctx, {"data": {"call": call_json(call, bridge.cfg.base_url)}})


async def _read_operation(request: Request, bridge):
    """The JSON object body of a GWS operation request and its operationName."""
    body, raw = await read_json(request, bridge.cfg.body_bytes)
    if not isinstance(body, dict):
        raise ApiError("validation", "request body must be a JSON object")
    op = body.get("operationName")
    if op is None:
        raise ApiError("missing_parameter", "operationName is required")
    if not isinstance(op, str):
        raise ApiError("validation", "operationName must be a string")
    return body, raw, op


@router.post(
    "/api/v2/me/calls/{call_id}",
    summary="Call operation: SendDtmf, Hangup, Answer, Hold, Retrieve",
    openapi_extra={"requestBody": SEND_DTMF_BODY},
    responses=STATUS_RESPONSES,
)
async def call_operation(request: Request, call_id: str):
    ctx = authenticate(request, post=True)
    bridge = _bridge(request)
    body, raw, op = await _read_operation(request, bridge)
    call = bridge.board.call_of(ctx.user, call_id)
    if call is None:
        raise ApiError("not_found", f"Call {call_id} not found")

    if op == "SendDtmf":
        digits = body.get("digits")
        if digits is None:
            raise ApiError("missing_parameter", "digits is required")
        if not isinstance(digits, str):
            raise ApiError("validation", "digits must be a string")
        dialect = timing.request_dialect(body, "gws")
        ms = timing.request_timing(body)
        compile_dial(digits, dialect, "digits")

        async def handler(request_id):
            if call.state != "Established":
                raise ApiError(
                    "invalid_state", f"SendDtmf is not valid for a call in state {call.state}"
                )
            job = bridge.board.send(call, digits, dialect, request_id, **ms)
            await await_accepted(job, call, bridge.accept_timeout, "digits")
            return replayed(job, ok(ctx))

        return await bridge.idempotency.run(request, ctx.user, raw, handler)

    if op == "Hangup":
        if not call.live:
            raise ApiError("invalid_state", f"Hangup is not valid for a call in state {call.state}")
        bridge.board.hangup(call)
        return ok(ctx)
    if op == "Answer":
        raise ApiError(
            "invalid_state",
            f"Answer is not valid for a call in state {call.state} (the line has no ringing call)",
        )
    if op in ("Hold", "Retrieve"):
        raise ApiError(
            "unsupported",
            f"{op} is not possible on a tonebridge line: the board has no hold function",
        )
    raise ApiError("validation", f"unsupported operationName {op[:40]!r}")


@router.post(
    "/api/v2/me/devices/{device_id}/calls",
    summary="Dial: take the line off-hook and dial the destination as DTMF",
    openapi_extra={"requestBody": DIAL_BODY},
    responses=STATUS_RESPONSES,
)
async def dial(request: Request, device_id: str):
    ctx = authenticate(request, post=True)
    bridge = _bridge(request)
    body, raw, op = await _read_operation(request, bridge)
    if op != "Dial":
        raise ApiError("validation", "operationName must be Dial")
    dest = body.get("destination")
    if dest is None:
        raise ApiError("missing_parameter", "destination is required")
    number = dest.get("phoneNumber") if isinstance(dest, dict) else None
    if number is None:
        raise ApiError("missing_parameter", "destination.phoneNumber is required")
    if not isinstance(number, str):
        raise ApiError("validation", "destination.phoneNumber must be a string")
    digits = number[1:] if number.startswith("+") else number
    compile_dial(digits, "gws", "destination.phoneNumber")
    line = bridge.board.line_by_device(ctx.user, device_id)
    if line is None:
        raise ApiError("not_found", f"Device {device_id} not found")

    async def handler(request_id):
        if line.call is not None and line.call.live:
            raise ApiError("in_use", f"Device {device_id} is in use by call {line.call.id}")
        call = bridge.board.dial(line, ctx.user, digits, "gws")
        call.remote = number
        return ok(ctx, {"id": call.id})

    return await bridge.idempotency.run(request, ctx.user, raw, handler)


@router.post("/api/v2/notifications", summary="CometD (Bayeux 1.0 long-polling)")
@router.post("/api/v2/notifications/{rest:path}", include_in_schema=False)
async def notifications(request: Request, rest: str = ""):
    """Every answer is HTTP 200 with a Bayeux array, refusals included (`successful:false`
    with an `error` such as "403::csrf token missing"): that is what CometD clients read."""
    bridge = _bridge(request)
    refusal = None
    extra_headers = {}
    try:
        ctx = authenticate(request, post=True, limit=False)
        user = ctx.user
    except ApiError as exc:
        ctx, user = None, None
        if exc.kind == "csrf":
            missing = not request.headers.get(CSRF_HEADER_NAME)
            refusal = "403::csrf token " + ("missing" if missing else "invalid")
            extra_headers = exc.headers  # the session and its token, to retry with
    raw = await read_body(request, bridge.cfg.body_bytes)  # 413/408 are HTTP's business
    try:
        messages = parse_json(raw)
    except ApiError:
        messages = None  # answered "400::Bad message" in Bayeux
    replies = await bridge.bayeux.handle(messages, user, refusal=refusal)
    response = JsonResponse(replies, headers=extra_headers)
    return ctx.decorate(response) if ctx else response

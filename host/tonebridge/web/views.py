"""The dashboard's routes (docs/dashboard.md).

Pages: ``/`` (the user's lines, live progress, a send form per call), ``/login``,
``/logout``, ``/ui/calls/{callId}`` (a call's history: sequences, outcomes, recordings
with spectrogram and analysis). Data: ``POST /ui/calls/{callId}/send`` (the send form;
answers like the APIs, with the bad character's position), ``/ui/events`` (server-sent
events), ``/ui/recordings/{callId}-{n}.wav|.png``. ``/metrics``: Prometheus text format.

Every route but /login and /static needs the APIs' credentials: HTTP Basic or the login
form's session; a user sees only their own lines and calls (another's call: 404)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.templating import Jinja2Templates

from tonebridge.api import timing
from tonebridge.api.common import await_accepted, compile_dial
from tonebridge.api.errors import KINDS, OUTCOME, ApiError
from tonebridge.api.metrics import CONTENT_TYPE
from tonebridge.web import events, recordings, session

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(include_in_schema=False)

DIALECTS = {"catapult": "dtmfOut", "gws": "digits", "tonebridge": "dtmfOut"}
FORM_BYTES = 4096


def _when(t) -> str:
    if t is None:
        return ""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


templates.env.filters["when"] = _when


def _bridge(request: Request):
    return request.app.state.bridge


def _unauthorized_page(request: Request) -> Response:
    if request.headers.get("authorization"):
        return PlainTextResponse(
            "valid credentials required",
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="tonebridge"'},
        )
    return RedirectResponse("/login", status_code=303)


def _unauthorized_data() -> Response:
    _note("unauthenticated")
    return JSONResponse(
        {"kind": "unauthenticated", "message": "valid credentials required"},
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="tonebridge"'},
    )


def _note(kind: str) -> None:
    box = OUTCOME.get()
    if box is not None:
        box["kind"] = kind


def _error(exc: ApiError, field: str | None = None) -> JSONResponse:
    _note(exc.kind)
    status = KINDS[exc.kind][2]
    body = {"kind": exc.kind, "message": exc.message, "field": field, "position": exc.position}
    return JSONResponse(body, status_code=status, headers=exc.headers)


def line_view(line) -> dict:
    info = line.board_info
    call = line.call
    return {
        **events.line_state(line),
        "board": info.get("board") or "",
        "backend": info.get("backend") or "",
        "fw": info.get("fw") or "",
        "call": call,
        "live": call is not None and call.state == "Established",
        "tone_ms": line.cfg.tone_ms,
        "gap_ms": line.cfg.gap_ms,
    }


# ------------------------------------------------------------------ pages
@router.get("/", response_class=HTMLResponse)
async def dashboard(request: Request):
    user, sess = session.current(request)
    if user is None:
        return _unauthorized_page(request)
    board = _bridge(request).board
    lines = [line_view(line) for line in board.lines_of(user)]
    calls = sorted(board.calls_of(user), key=lambda c: c.created, reverse=True)
    page = templates.TemplateResponse(
        request,
        "dashboard.html",
        {"user": user, "csrf": sess.csrf, "lines": lines, "calls": calls, "title": "lines"},
    )
    return session.finish(request, page)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request):
    return templates.TemplateResponse(request, "login.html", {"title": "log in", "error": None})


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request):
    body = await request.body()
    form = parse_qs(body[:FORM_BYTES].decode("utf-8", "replace"))
    user = (form.get("user") or [""])[0]
    secret = (form.get("password") or [""])[0]
    bridge = _bridge(request)
    try:  # per known user; unknown names share one bucket (no growth from made-up names)
        bridge.limiter.take(f"login:{user}" if user in bridge.auth.users else "login:?")
    except ApiError as exc:
        _note(exc.kind)
        return templates.TemplateResponse(
            request, "login.html", {"title": "log in", "error": exc.message}, status_code=429
        )
    if bridge.auth.check_credentials(user, secret) is None:
        _note("unauthenticated")
        return templates.TemplateResponse(
            request,
            "login.html",
            {"title": "log in", "error": "wrong user or password"},
            status_code=401,
        )
    sess = bridge.auth.new_session(user)
    resp = RedirectResponse("/", status_code=303)
    session.set_cookie(resp, sess.sid)
    return resp


@router.post("/logout")
async def logout(request: Request):
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(session.COOKIE, path="/")
    return resp


@router.get("/ui/calls/{call_id}", response_class=HTMLResponse)
async def call_page(request: Request, call_id: str):
    user, sess = session.current(request)
    if user is None:
        return _unauthorized_page(request)
    bridge = _bridge(request)
    call = bridge.board.call_of(user, call_id)
    if call is None:
        _note("not_found")
        return PlainTextResponse(f"call {call_id} not found", status_code=404)
    record_dir = bridge.board.record_dir
    seqs = []
    for seq in bridge.store.sequences_of(call.id):
        path = recordings.path_of(record_dir, call.id, seq["number"])
        found = None
        if path is not None:
            found = await asyncio.to_thread(recordings.analysis, path)
        seqs.append({**seq, "recording": found, "name": f"{call.id}-{seq['number']}"})
    page = templates.TemplateResponse(
        request,
        "call.html",
        {
            "user": user,
            "csrf": sess.csrf,
            "call": call,
            "line": line_view(call.line),
            "sequences": seqs,
            "recorded": bool(record_dir),
            "title": f"call {call.id}",
        },
    )
    return session.finish(request, page)


# ------------------------------------------------------------------ data
@router.post("/ui/calls/{call_id}/send")
async def send(request: Request, call_id: str):
    """The send form: validated exactly as the APIs validate (their messages), then sent
    like a Catapult/GWS request; 200 {"requestId", "total"} once the board accepted it."""
    user, sess = session.current(request)
    if user is None:
        return _unauthorized_data()
    if not session.csrf_ok(request, sess):
        return _error(ApiError("csrf", "missing or wrong X-CSRF-TOKEN (reload the page)"))
    bridge = _bridge(request)
    try:
        bridge.limiter.take(user)
        raw = await request.body()
        if len(raw) > FORM_BYTES:
            raise ApiError("too_large", f"request body over {FORM_BYTES} bytes")
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            raise ApiError("malformed", "request body is not JSON") from None
        if not isinstance(body, dict):
            raise ApiError("validation", "request body must be a JSON object")
        dialect = body.get("dialect") or "catapult"
        if dialect not in DIALECTS:
            raise ApiError(
                "validation", f"dialect must be one of {', '.join(DIALECTS)}, got {dialect!r}"
            )
        field = DIALECTS[dialect]
        text = body.get("digits")
        if not isinstance(text, str) or not text:
            raise ApiError("missing_parameter", f"{field} is required")
        ms = timing.request_timing(body)
        try:
            compile_dial(text, dialect, field)
        except ApiError as exc:
            return _error(exc, field)
        call = bridge.board.call_of(user, call_id)
        if call is None:
            raise ApiError("not_found", f"call {call_id} not found")
        if call.state != "Established":
            raise ApiError(
                "invalid_state",
                f"call {call.id} is {call.state}; DTMF can only be sent on an active call",
            )
        job = bridge.board.send(call, text, dialect, None, **ms)
        await await_accepted(job, call, bridge.accept_timeout, field)
    except ApiError as exc:
        return _error(exc, None)
    return JSONResponse({"requestId": job.request_id, "total": job.total, "number": job.number})


@router.get("/ui/events")
async def event_stream(request: Request):
    user, _ = session.current(request, make=False)
    if user is None:
        return _unauthorized_data()
    broker = request.app.state.events
    q = broker.subscribe(user)
    return StreamingResponse(
        events.stream(broker, q, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/ui/recordings/{name}")
async def recording(request: Request, name: str):
    user, _ = session.current(request, make=False)
    if user is None:
        return _unauthorized_data()
    stem, dot, ext = name.rpartition(".")
    parsed = recordings.parse_name(stem) if dot and ext in ("wav", "png") else None
    bridge = _bridge(request)
    call = bridge.board.call_of(user, parsed[0]) if parsed else None
    path = recordings.path_of(bridge.board.record_dir, *parsed) if call is not None else None
    if path is None:
        _note("not_found")
        return PlainTextResponse(f"no recording {name}", status_code=404)
    if ext == "wav":
        data = await asyncio.to_thread(Path(path).read_bytes)
        return Response(data, media_type="audio/wav", headers={"Cache-Control": "no-cache"})
    png = await asyncio.to_thread(recordings.spectrogram, path, f"{stem}: {call.remote}")
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-cache"})


@router.get("/metrics")
async def metrics(request: Request):
    """Prometheus text format; any user's credentials (HTTP Basic, as Prometheus'
    basic_auth) or a dashboard session."""
    user, _ = session.current(request, make=False)
    if user is None:
        return _unauthorized_data()
    return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE)

"""Who is asking the dashboard: HTTP Basic credentials (the APIs' own) or the login form's
session cookie. Sessions are the API's own (api.auth.Authenticator: the GWS sessions, with
their CSRF token), under a cookie of their own; every state-changing request must carry the
session's CSRF token (X-CSRF-TOKEN header or a `csrf` form field)."""

from __future__ import annotations

from starlette.requests import Request

from tonebridge.api.auth import Authenticator, Session

COOKIE = "tonebridge_session"


def authenticator(request: Request) -> Authenticator:
    return request.app.state.bridge.auth


def current(request: Request, make: bool = True) -> tuple[str | None, Session | None]:
    """(user, session): from the session cookie, else from HTTP Basic (then, for a page
    (`make`), a session is made for its CSRF token and `finish` sets its cookie; data
    requests such as a Prometheus scrape make none)."""
    auth = authenticator(request)
    session = auth.session(request.cookies.get(COOKIE))
    if session is not None:
        return session.user, session
    user = auth.check_basic(request.headers.get("authorization"))
    if user is None:
        return None, None
    if not make:
        return user, None
    session = auth.new_session(user)
    request.state.new_cookie = session.sid
    return user, session


def csrf_ok(request: Request, session: Session | None, token: str | None = None) -> bool:
    if session is None:
        return False
    return Authenticator.csrf_ok(session, token or request.headers.get("x-csrf-token"))


def set_cookie(response, sid: str) -> None:
    response.set_cookie(COOKIE, sid, httponly=True, samesite="strict", path="/")


def finish(request: Request, response):
    """Set the session cookie a Basic-authenticated request got (see `current`)."""
    sid = getattr(request.state, "new_cookie", None)
    if sid:
        set_cookie(response, sid)
    return response

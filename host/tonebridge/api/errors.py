"""API errors: one exception type, rendered by each API in its own envelope.

GWS answers `{"statusCode": N, "statusMessage": "..."}`; Catapult answers
`{"category", "code", "message", "details"}` with the matching HTTP status.
The HTTP status that accompanies a GWS error is not documented publicly; the table
below is our choice (docs/api.md).
"""

from __future__ import annotations

import json
from contextvars import ContextVar

from starlette.responses import JSONResponse

# The current request's outcome box (a dict the metrics middleware puts here for each
# request; a mutable box, so an answer made in a task the request started still lands in
# it): response_for() notes the error kind in it, the middleware counts it.
OUTCOME: ContextVar[dict | None] = ContextVar("tonebridge_outcome", default=None)


class JsonResponse(JSONResponse):
    """JSON with every non-ASCII character escaped: text taken from a request (a lone
    surrogate, invalid in UTF-8) can be echoed without failing to encode."""

    def render(self, content) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


# kind -> (GWS statusCode, GWS HTTP status, Catapult HTTP status, Catapult category, Catapult code)
KINDS = {
    "missing_parameter": (1, 400, 400, "bad-request", "validation-error"),
    "validation": (10, 400, 400, "bad-request", "validation-error"),
    "malformed": (10, 400, 400, "bad-request", "invalid-json"),
    "media_type": (10, 415, 415, "bad-request", "unsupported-media-type"),
    "too_large": (10, 413, 413, "bad-request", "request-too-large"),
    "timeout": (10, 408, 408, "bad-request", "request-timeout"),
    "invalid_state": (2, 400, 403, "forbidden", "call-invalid-state"),
    "not_found": (6, 404, 404, "not-found", "call-not-found"),
    "no_route": (6, 404, 404, "not-found", "resource-not-found"),
    "unauthenticated": (20, 401, 401, "unauthorized", "user-access-denied"),
    "forbidden": (5, 403, 403, "forbidden", "user-access-denied"),
    "csrf": (3, 403, 403, "forbidden", "csrf-token-invalid"),
    "unsupported": (3, 400, 400, "bad-request", "unsupported-operation"),
    "conflict": (18, 409, 409, "conflict", "call-update-conflict"),
    "in_use": (19, 409, 409, "conflict", "no-free-line"),
    "rate_limited": (4, 429, 429, "too-many-requests", "too-many-requests"),
    "send_failed": (4, 503, 503, "unavailable", "send-dtmf-failure"),
    "internal": (4, 500, 500, "internal-server-error", "internal-error"),
}


class ApiError(Exception):
    """A request we refuse. `kind` selects the envelope fields in both APIs."""

    def __init__(self, kind: str, message: str, *, details=None, headers=None, forget=True):
        if kind not in KINDS:
            raise ValueError(f"unknown error kind {kind}")
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.details = details or []
        self.headers = dict(headers or {})
        # a 5xx/429 answer that may be forgotten by the idempotency store (nothing was sent,
        # a retry may run); False: the answer is the recorded outcome (it may have played)
        self.forget = forget
        self.position = None  # a dial-string error: the 0-based index of the bad character

    def gws_response(self) -> JSONResponse:
        code, http, *_ = KINDS[self.kind]
        return JsonResponse(
            {"statusCode": code, "statusMessage": self.message},
            status_code=http,
            headers=self.headers,
        )

    def catapult_response(self) -> JSONResponse:
        _, _, http, category, code = KINDS[self.kind]
        return JsonResponse(
            {"category": category, "code": code, "message": self.message, "details": self.details},
            status_code=http,
            headers=self.headers,
        )

    def response_for(self, path: str) -> JSONResponse:
        box = OUTCOME.get()
        if box is not None:
            box["kind"] = self.kind
        resp = self.catapult_response() if path.startswith("/v1/") else self.gws_response()
        resp.forget = self.forget
        return resp

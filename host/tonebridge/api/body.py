"""Reading request bodies: size limit, content type, and JSON that can never crash a handler.

Every malformed body is an ApiError (4xx in the API's own dialect): bytes that are not
UTF-8/16/32 JSON, numbers too long to convert, nesting deeper than `MAX_DEPTH`, lone
surrogates (they are kept and escaped in any echo). A body that does not arrive within the
server's body timeout raises ApiError("timeout") from the ASGI receive (httpserver.py).
"""

from __future__ import annotations

import json

from starlette.requests import Request

from tonebridge.api.errors import ApiError

MAX_DEPTH = 32  # no request of these APIs nests deeper than 3


async def read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isascii() or not length.strip().isdigit():
            raise ApiError("malformed", "bad Content-Length")
        if int(length) > limit:
            raise ApiError("too_large", f"request body larger than {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError("too_large", f"request body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes):
    """The JSON value in `body`, or ApiError("malformed")."""
    if not body.strip():
        raise ApiError("malformed", "request body is empty; a JSON object is required")
    if _depth_over(body, MAX_DEPTH):
        raise ApiError("malformed", f"malformed JSON: nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, ...
        reason = str(exc).encode("ascii", "backslashreplace").decode()[:200]
        raise ApiError("malformed", f"malformed JSON: {reason}") from None


async def read_json(request: Request, limit: int, *, require_type=True):
    """The request body as parsed JSON (and the raw bytes), enforcing the size limit and
    the content type."""
    body = await read_body(request, limit)
    ctype = request.headers.get("content-type", "")
    mime = ctype.split(";", 1)[0].strip().lower()
    if require_type and mime != "application/json" and not mime.endswith("+json"):
        shown = mime.encode("ascii", "backslashreplace").decode()[:80]
        raise ApiError(
            "media_type", f"Content-Type must be application/json, got {shown or 'none'}"
        )
    return parse_json(body), body


def _depth_over(body: bytes, limit: int) -> bool:
    """Does the JSON text nest brackets deeper than `limit` (outside strings)? A cheap scan
    before parsing, so no input can make the parser recurse deeply."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    in_str = False
    esc = False
    for b in body:
        if in_str:
            if esc:
                esc = False
            elif b == 0x5C:  # backslash
                esc = True
            elif b == 0x22:
                in_str = False
        elif b == 0x22:
            in_str = True
        elif b in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif b in (0x5D, 0x7D):
            depth -= 1
    return False

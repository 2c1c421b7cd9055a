"""Credentials, GWS sessions (JSESSIONID + CSRF token) and per-user rate limits."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from .errors import ApiError

SESSION_COOKIE = "JSESSIONID"
CSRF_HEADER_NAME = "X-CSRF-TOKEN"
MAX_SESSIONS = 4096
SESSION_IDLE_S = 30 * 60


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


@dataclass
class Session:
    sid: str
    user: str
    csrf: str
    last_used: float = field(default_factory=time.monotonic)


class Authenticator:
    """Checks HTTP Basic credentials in constant time and keeps GWS sessions."""

    def __init__(self, users: dict[str, str]):
        # Compare fixed-size digests so neither the secret's length nor its content
        # shows in the comparison time.
        self._users = {u: _digest(s) for u, s in users.items()}
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._dummy = _digest(secrets.token_hex(16))

    @property
    def users(self):
        return list(self._users)

    def check_basic(self, header: str | None) -> str | None:
        """Return the user for a valid `Authorization: Basic ...` header, else None."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value:
            return None
        try:
            raw = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        user, sep, secret = raw.partition(":")
        if not sep:
            return None
        return self.check_credentials(user, secret)

    def check_credentials(self, user: str, secret: str) -> str | None:
        """Return `user` if `secret` is theirs (constant time), else None (the dashboard's
        login form; HTTP Basic goes through here too)."""
        expected = self._users.get(user)
        ok_user = expected is not None
        # Always run one comparison, against a dummy when the user is unknown.
        ok_secret = hmac.compare_digest(_digest(secret), expected or self._dummy)
        return user if ok_user and ok_secret else None

    # --- sessions -------------------------------------------------------------------
    def new_session(self, user: str) -> Session:
        self._expire()
        session = Session(secrets.token_urlsafe(24), user, secrets.token_urlsafe(24))
        self._sessions[session.sid] = session
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return session

    def session(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        self._expire()
        found = None
        # Constant-time lookup is unnecessary for a 192-bit random key, but do not
        # let a dict miss and a hit differ by more than the hashing itself.
        candidate = self._sessions.get(sid)
        if candidate is not None and hmac.compare_digest(candidate.sid, sid):
            found = candidate
            found.last_used = time.monotonic()
            self._sessions.move_to_end(sid)
        return found

    def _expire(self):
        cutoff = time.monotonic() - SESSION_IDLE_S
        while self._sessions:
            sid, oldest = next(iter(self._sessions.items()))
            if oldest.last_used >= cutoff:
                break
            del self._sessions[sid]

    @staticmethod
    def csrf_ok(session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(session.csrf, token)


class RateLimiter:
    """Token bucket per user: `rate` requests/s, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic):
        self.rate = float(rate)
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, user: str) -> None:
        now = self.clock()
        tokens, last = self._buckets.get(user, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            wait = (1.0 - tokens) / self.rate
            reset_ms = int((time.time() + wait) * 1000)
            self._buckets[user] = (tokens, now)
            raise ApiError(
                "rate_limited",
                f"too many requests; retry in {wait:.1f} s",
                headers={"X-RateLimit-Reset": str(reset_ms), "Retry-After": str(int(wait) + 1)},
            )
        self._buckets[user] = (tokens - 1.0, now)

"""What a board link reports: errors, send outcomes, and reply parsing."""

from __future__ import annotations

from tonebridge_fw import codec


class LinkError(IOError):
    """The board did not answer (unplugged, wrong port, not running tonebridge)."""


class WrongBoardError(LinkError):
    """A board answered, but it is not the board this link is bound to (another hardware id
    on the same path): nothing is sent to it."""

    def __init__(self, message: str, *, path: str = "", expected: str = "", found: str = ""):
        super().__init__(message)
        self.path = path
        self.expected = expected
        self.found = found


class BoardError(Exception):
    """The board refused a request: `code` is the protocol error code."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class SendResult:
    """Outcome of a completed send: every digit was played (and, on a board that hears the
    line, `verified` of them were heard on it: every one, or the send would have failed;
    None on a board without a receive path)."""

    def __init__(self, played: int, total: int, request_id: str = "", verified: int | None = None):
        self.played = played
        self.total = total
        self.request_id = request_id
        self.verified = verified

    def __repr__(self):
        v = "" if self.verified is None else f", verified={self.verified}"
        return f"SendResult(played={self.played}, total={self.total}{v})"

    def __eq__(self, other):
        return isinstance(other, SendResult) and (self.played, self.total) == (
            other.played,
            other.total,
        )


class SendError(Exception):
    """A send that did not play every digit.

    `played` digits are certainly played (the board reported them finished); when the
    outcome is uncertain (board restart, link lost) `uncertain` is True and `at_most` is
    an upper bound of digits that may have been played; otherwise `at_most == played`.
    `sent` is False only when the SEND certainly never reached a board (nothing can play).
    `verified`: digits the board heard on the line (None: the board does not verify or did
    not say); code "not-heard" when a played digit was not heard (`fault` then names it).
    """

    def __init__(
        self,
        played: int,
        total: int,
        message: str,
        *,
        at_most: int | None = None,
        uncertain: bool = False,
        code: str = "",
        request_id: str = "",
        sent: bool = True,
        verified: int | None = None,
        fault: str = "",
    ):
        super().__init__(message)
        self.verified = verified
        self.fault = fault
        self.played = played
        self.total = total
        self.message = message
        self.at_most = played if at_most is None else at_most
        self.uncertain = uncertain
        self.code = code
        self.request_id = request_id
        self.sent = sent


_STR_KEYS = frozenset(
    (
        "boot",
        "rid",
        "fw",
        "keys",
        "dialects",
        "board",
        "backend",
        "dialect",
        "state",
        "reason",
        "hook",
        "cancelled",
        "hwid",
    )
)


def parse_kv_body(body: str) -> dict:
    """'OK a=1 b=x' -> {'a': 1, 'b': 'x'} (ints and floats converted)."""
    _verb, words = codec.split_body(body)
    kv, rest = codec.parse_kv(words)
    out = {}
    for k, v in kv.items():
        out[k] = v if k in _STR_KEYS else _num(v)
    if rest:
        out["_rest"] = " ".join(rest)
    return out


def _num(v: str):
    try:
        return int(v)
    except ValueError:
        pass
    try:
        return float(v)
    except ValueError:
        return v


def ok_reply(reply: str) -> dict:
    """Parse an OK reply, or raise BoardError for an ERR reply."""
    if reply.startswith("ERR"):
        words = reply.split(" ", 2)
        code = words[1] if len(words) > 1 else "error"
        raise BoardError(code, words[2] if len(words) > 2 else "")
    return parse_kv_body(reply)

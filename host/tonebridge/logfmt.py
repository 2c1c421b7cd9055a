"""Log output for `tonebridge serve`: plain text (default) or one JSON object per line
(`--log-format json`), for log shippers. uvicorn's own loggers (server and access log) go
through the same handler.

A JSON line holds ``ts`` (ISO 8601 UTC, ms), ``level``, ``logger``, ``message``, plus
``exc`` (the formatted traceback) when there is one, and any ``extra=`` fields given."""

from __future__ import annotations

import json
import logging
import time

TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
_STANDARD = set(vars(logging.LogRecord("x", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        t = time.gmtime(record.created)
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value if isinstance(value, int | float | str | bool) else str(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def setup(fmt: str = "text", level: int = logging.INFO) -> None:
    """Route the root logger (and uvicorn's, which then propagate) to stderr in `fmt`."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True

"""Configuration of `tonebridge serve`: a TOML file and/or command-line options.

TOML (every key optional)::

    listen = "127.0.0.1:8080"
    record = "recordings"            # directory for <callId>-<n>.wav
    auth = ["agent:s3cret"]          # USER:SECRET, repeatable
    public_url = "http://127.0.0.1:8080"   # used in call "uri" fields

    [limits]
    body_bytes = 16384               # request body limit
    rate = 5.0                       # requests per second per user (token bucket)
    burst = 20                       # bucket size
    connect_timeout_ms = 30000       # CometD long-poll hold time
    csrf = true                      # GWS CSRF header pair required on POST

    [[lines]]
    url = "sim://pico"               # or a serial port: "/dev/ttyACM0", "socket://host:port"
    call_id = "c-line1"              # fixed call id of the line's first call
    device_id = "dev-line1"          # GWS device id (Dial target)
    owner = "agent"                  # user who sees this line's calls (default: first user)
    number = "15000"                 # the line's own number (GWS phoneNumber / Catapult from)
    peer = "15001"                   # the far end of the first call (participants / Catapult to)
    state = "established"            # first call state: "established" or "idle" (no call)
    tone_ms = 100                    # per-line timing overrides (40-5000)
    gap_ms = 100
    dial_wait_ms = 1000              # after going off-hook, wait this long before dialing

Command-line options add lines and users to what the file gives and override scalars.
"""

from __future__ import annotations

import secrets
import tomllib
from dataclasses import dataclass, field

DEFAULT_LISTEN = "127.0.0.1:8080"
DEMO_USER = "demo"
DEMO_SECRET = "tonebridge-demo"
DEMO_CALL_ID = "c-demo-1"


class ConfigError(ValueError):
    """The configuration cannot be used; the message says why."""


@dataclass
class LineConfig:
    url: str
    call_id: str | None = None
    device_id: str | None = None
    owner: str | None = None
    number: str = "15000"
    peer: str = "15001"
    state: str = "established"
    tone_ms: int | None = None
    gap_ms: int | None = None
    dial_wait_ms: int = 1000


@dataclass
class ServeConfig:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    lines: list[LineConfig] = field(default_factory=list)
    users: dict[str, str] = field(default_factory=dict)
    record_dir: str | None = None
    public_url: str | None = None
    body_bytes: int = 16384
    rate: float = 5.0
    burst: int = 20
    connect_timeout_ms: int = 30000
    csrf: bool = True
    demo: bool = False

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.listen_host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.listen_port}"


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"--listen wants HOST:PORT, got {text!r}")
    host = host.strip("[]")
    try:
        number = int(port)
    except ValueError:
        raise ConfigError(f"--listen port must be a number, got {port!r}") from None
    if not 0 <= number <= 65535:
        raise ConfigError(f"--listen port out of range: {number}")
    return host, number


def parse_auth(text: str) -> tuple[str, str]:
    user, sep, secret = text.partition(":")
    if not sep or not user or not secret:
        raise ConfigError("--auth wants USER:SECRET (both non-empty)")
    if "/" in user or len(user) > 128 or not user.isprintable():
        raise ConfigError(f"bad user name {user!r}: no '/', printable, at most 128 characters")
    return user, secret


def _timing(value, name):
    if value is None:
        return None
    if not isinstance(value, int) or not 40 <= value <= 5000:
        raise ConfigError(f"{name} must be an integer from 40 to 5000 ms, got {value!r}")
    return value


def line_from_dict(data: dict) -> LineConfig:
    known = set(LineConfig.__dataclass_fields__)
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown line setting(s): {', '.join(sorted(unknown))}")
    if not isinstance(data.get("url"), str) or not data["url"]:
        raise ConfigError('every [[lines]] entry needs url = "..."')
    line = LineConfig(**data)
    if line.state not in ("established", "idle"):
        raise ConfigError(f"line state must be 'established' or 'idle', got {line.state!r}")
    line.tone_ms = _timing(line.tone_ms, "tone_ms")
    line.gap_ms = _timing(line.gap_ms, "gap_ms")
    if not isinstance(line.dial_wait_ms, int) or not 0 <= line.dial_wait_ms <= 30000:
        raise ConfigError("dial_wait_ms must be an integer from 0 to 30000")
    for name in ("call_id", "device_id"):
        value = getattr(line, name)
        if value is not None and not _safe_id(value):
            raise ConfigError(f"{name} {value!r}: use 1-64 characters of A-Z a-z 0-9 - _ .")
    return line


def _safe_id(text: str) -> bool:
    return (
        isinstance(text, str)
        and 0 < len(text) <= 64
        and all(c.isascii() and (c.isalnum() or c in "-_.") for c in text)
        and text not in (".", "..")
    )


def load_toml(path: str) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path}: {exc}") from None


def build_config(
    *,
    config_file: str | None = None,
    ports=(),
    sims=(),
    listen: str | None = None,
    record: str | None = None,
    auth=(),
    demo: bool = False,
) -> ServeConfig:
    cfg = ServeConfig()
    data = load_toml(config_file) if config_file else {}
    top_known = {"listen", "record", "auth", "public_url", "limits", "lines"}
    unknown = set(data) - top_known
    if unknown:
        raise ConfigError(f"unknown config key(s): {', '.join(sorted(unknown))}")
    if "listen" in data:
        cfg.listen_host, cfg.listen_port = parse_listen(data["listen"])
    cfg.record_dir = data.get("record")
    cfg.public_url = data.get("public_url")
    for item in data.get("auth", []):
        user, secret = parse_auth(item)
        cfg.users[user] = secret
    limits = data.get("limits", {})
    for key in ("body_bytes", "rate", "burst", "connect_timeout_ms", "csrf"):
        if key in limits:
            setattr(cfg, key, limits[key])
    unknown = set(limits) - {"body_bytes", "rate", "burst", "connect_timeout_ms", "csrf"}
    if unknown:
        raise ConfigError(f"unknown [limits] key(s): {', '.join(sorted(unknown))}")
    for item in data.get("lines", []):
        cfg.lines.append(line_from_dict(dict(item)))

    if listen:
        cfg.listen_host, cfg.listen_port = parse_listen(listen)
    if record:
        cfg.record_dir = record
    for item in auth:
        user, secret = parse_auth(item)
        cfg.users[user] = secret
    for port in ports:
        cfg.lines.append(LineConfig(url=port))
    for board in sims:
        url = board if board.startswith("sim://") else f"sim://{board}"
        cfg.lines.append(LineConfig(url=url))

    if demo:
        cfg.demo = True
        if not cfg.users:
            cfg.users[DEMO_USER] = DEMO_SECRET
        if not cfg.lines:
            cfg.lines.append(LineConfig(url="sim://pico", call_id=DEMO_CALL_ID))
        if cfg.record_dir is None:
            cfg.record_dir = "recordings"

    if not cfg.users:
        raise ConfigError("no credentials: give --auth USER:SECRET (or auth = [...] in the config)")
    if not cfg.lines:
        raise ConfigError("no lines: give --port PORT or --sim BOARD (or [[lines]] in the config)")
    first_user = next(iter(cfg.users))
    seen_calls, seen_devices = set(), set()
    for index, line in enumerate(cfg.lines, start=1):
        if line.owner is None:
            line.owner = first_user
        if line.owner not in cfg.users:
            raise ConfigError(f"line {line.url}: owner {line.owner!r} has no credentials")
        if line.call_id is None:
            line.call_id = f"c-{secrets.token_hex(8)}"
        if line.device_id is None:
            line.device_id = f"dev-{index}"
        if line.call_id in seen_calls:
            raise ConfigError(f"call id {line.call_id!r} used twice")
        if line.device_id in seen_devices:
            raise ConfigError(f"device id {line.device_id!r} used twice")
        seen_calls.add(line.call_id)
        seen_devices.add(line.device_id)
    if not isinstance(cfg.body_bytes, int) or cfg.body_bytes < 256:
        raise ConfigError("limits.body_bytes must be an integer >= 256")
    if not isinstance(cfg.rate, int | float) or cfg.rate <= 0:
        raise ConfigError("limits.rate must be > 0")
    if not isinstance(cfg.burst, int) or cfg.burst < 1:
        raise ConfigError("limits.burst must be an integer >= 1")
    return cfg

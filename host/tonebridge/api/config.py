"""Configuration of `tonebridge serve`: a TOML file and/or command-line options.

TOML (every key optional)::

    listen = "127.0.0.1:8080"
    record = "recordings"            # directory for <callId>-<n>.wav
    auth = ["agent:s3cret"]          # USER:SECRET, repeatable
    public_url = "http://127.0.0.1:8080"   # used in call "uri" fields
    state = "/var/lib/tonebridge/state.db"  # durable state (default: XDG state dir)

    [limits]
    body_bytes = 16384               # request body limit
    rate = 5.0                       # requests per second per user (token bucket)
    burst = 20                       # bucket size
    connect_timeout_ms = 30000       # CometD long-poll hold time
    csrf = false                     # GWS CSRF header pair required on POST (CometD too)
    accept_timeout_ms = 3000         # a send not accepted by the board by then: 503
    idempotency_ttl_s = 86400        # idempotency keys are kept this long (per user)
    header_timeout_s = 10            # a request's line and headers must arrive within this
    body_timeout_s = 10              # ... and its body within this
    keepalive_s = 5                  # idle kept-alive connections are closed after this
    keepalive_requests = 1000        # requests on one connection before it is closed
    max_connections = 512            # open HTTP connections (more: 503 at once)

    [[lines]]
    url = "sim://pico"               # or a serial port: "/dev/ttyACM0", "socket://host:port"
    call_id = "c-line1"              # fixed call id of the line's first call
    device_id = "dev-line1"          # GWS device id (Dial target)
    owner = "agent"                  # user who sees this line's calls (default: first user)
    number = "15000"                 # the line's own number (GWS phoneNumber / Catapult from)
    peer = "15001"                   # the far end of the first call (participants / Catapult to)
    state = "established"            # first call state: "established" or "idle" (no call)
    profile = "slow-ivr"             # timing profile (built in: default, minimum, slow-ivr)
    tone_ms = 100                    # per-line timing overrides (40-5000), win over the profile
    gap_ms = 100
    pause_ms = 500                   # the tonebridge dialect's ',' and 'p' pause
    flash_ms = 100                   # hook flash (FLASH, the tonebridge dialect's '!'), 50-1500;
                                     # unset: the board's own (its profile's flash_ms)
    dial_wait_ms = 1000              # after going off-hook, wait this long before dialing
    dial_tone_ms = 5000              # on a board that hears the line (HELLO progress=1): wait
                                     # up to this long for dial tone instead ("no dial tone"
                                     # fails the Dial), then follow ringing/busy/answer
    hwid = "e6614103e73f4a2b"        # the board's hardware id (default: the first one seen)
    search = ["/dev/serial/by-id/*"] # where else to look for it after an unplug (globs)

    [profiles.intercom]              # a timing profile of your own (api/timing.py)
    tone_ms = 300                    # any of tone_ms, gap_ms, pause_ms; the rest from "default"
    gap_ms = 300

Command-line options add lines and users to what the file gives and override scalars.
"""

from __future__ import annotations

import secrets
import tomllib
from dataclasses import dataclass, field

from tonebridge.api import timing

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
    tone_ms: int | None = None  # None: the profile's, else the board's own (CONFIG)
    gap_ms: int | None = None
    pause_ms: int | None = None
    flash_ms: int | None = None  # None: the board's own (CONFIG flash, its profile's flash_ms)
    profile: str | None = None  # timing profile name (api/timing.py)
    dial_wait_ms: int = 1000
    dial_tone_ms: int = 5000  # a board that hears the line waits for dial tone up to this
    hwid: str | None = None
    search: list[str] = field(default_factory=list)


LIMITS = {
    # key: (type, minimum) of the [limits] settings
    "body_bytes": (int, 256),
    "rate": (float, 1e-9),
    "burst": (int, 1),
    "connect_timeout_ms": (int, 0),
    "csrf": (bool, None),
    "accept_timeout_ms": (int, 100),
    "idempotency_ttl_s": (int, 1),
    "header_timeout_s": (float, 0.1),
    "body_timeout_s": (float, 0.1),
    "keepalive_s": (float, 0.1),
    "keepalive_requests": (int, 1),
    "max_connections": (int, 1),
}


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
    csrf: bool = False
    accept_timeout_ms: int = 3000
    idempotency_ttl_s: int = 86400
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    keepalive_s: float = 5.0
    keepalive_requests: int = 1000
    max_connections: int = 512
    state_file: str | None = None  # None: in memory (nothing survives a restart)
    demo: bool = False
    profiles: dict = field(default_factory=lambda: dict(timing.BUILTIN))
    broker: object = None  # a fleet front end: tonebridge.fleet.topics.Broker (docs/fleet.md)
    frontend_name: str = "fe"

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
    try:
        return timing.check_ms(value, name)
    except timing.ProfileError as exc:
        raise ConfigError(str(exc)) from None


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
    for name in timing.FIELDS:
        setattr(line, name, _timing(getattr(line, name), name))
    if line.profile is not None and not isinstance(line.profile, str):
        raise ConfigError(f"profile must be the name of a timing profile, got {line.profile!r}")
    if line.flash_ms is not None:
        from tonebridge_fw.dialstring import DialStringError, check_flash

        try:
            check_flash(line.flash_ms)
        except DialStringError as exc:
            raise ConfigError(str(exc)) from None
    if not isinstance(line.dial_wait_ms, int) or not 0 <= line.dial_wait_ms <= 30000:
        raise ConfigError("dial_wait_ms must be an integer from 0 to 30000")
    if not isinstance(line.dial_tone_ms, int) or not 0 <= line.dial_tone_ms <= 60000:
        raise ConfigError("dial_tone_ms must be an integer from 0 to 60000 (0: do not listen)")
    for name in ("call_id", "device_id"):
        value = getattr(line, name)
        if value is not None and not _safe_id(value):
            raise ConfigError(f"{name} {value!r}: use 1-64 characters of A-Z a-z 0-9 - _ .")
    if line.hwid is not None:
        from tonebridge.link.identity import normalize_hwid

        hw = normalize_hwid(line.hwid) if isinstance(line.hwid, str) else None
        if hw is None or not all(c.isascii() and c.isalnum() for c in hw) or len(hw) > 40:
            raise ConfigError(f"hwid {line.hwid!r}: give the board's hardware id as hex digits")
        line.hwid = hw
    if not isinstance(line.search, list) or not all(isinstance(p, str) for p in line.search):
        raise ConfigError('search must be a list of path patterns, e.g. ["/dev/ttyACM*"]')
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
    state: str | None = None,
    profile: str | None = None,
    fleet: bool = False,
) -> ServeConfig:
    """`fleet`: a front end of the fleet, whose lines come from the broker (none needed)."""
    cfg = ServeConfig()
    data = load_toml(config_file) if config_file else {}
    top_known = {"listen", "record", "auth", "public_url", "limits", "lines", "state", "profiles"}
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
    cfg.state_file = data.get("state")
    limits = data.get("limits", {})
    unknown = set(limits) - set(LIMITS)
    if unknown:
        raise ConfigError(f"unknown [limits] key(s): {', '.join(sorted(unknown))}")
    for key, value in limits.items():
        setattr(cfg, key, value)
    try:
        cfg.profiles = timing.parse_profiles(data.get("profiles"))
    except timing.ProfileError as exc:
        raise ConfigError(str(exc)) from None
    for item in data.get("lines", []):
        cfg.lines.append(line_from_dict(dict(item)))

    if state:
        cfg.state_file = state
    if not cfg.state_file:
        from tonebridge.store import default_path

        cfg.state_file = default_path()
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
    if profile is not None:  # --profile: every line that does not name its own
        for line in cfg.lines:
            if line.profile is None:
                line.profile = profile

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
    if not cfg.lines and not fleet:
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
        try:
            timing.apply_profile(line, cfg.profiles)
        except timing.ProfileError as exc:
            raise ConfigError(str(exc)) from None
    check_limits(cfg)
    return cfg


def check_limits(cfg: ServeConfig) -> None:
    for key, (kind, low) in LIMITS.items():
        value = getattr(cfg, key)
        if kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"limits.{key} must be true or false")
            continue
        ok_type = int if kind is int else (int, float)
        if isinstance(value, bool) or not isinstance(value, ok_type) or value < low:
            what = "an integer" if kind is int else "a number"
            raise ConfigError(f"limits.{key} must be {what} >= {low:g}")

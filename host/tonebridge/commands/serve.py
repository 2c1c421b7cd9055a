"""`tonebridge serve`: GWS- and Catapult-compatible HTTP APIs in front of the boards."""

from __future__ import annotations

import argparse
import shlex
import sys


def register(subparsers):
    p = subparsers.add_parser(
        "serve",
        help="serve Genesys GWS / Bandwidth Catapult compatible HTTP APIs for the boards",
        description=(
            "Serve GWS v2 and Catapult v1 compatible HTTP APIs. Each board line is one call. "
            "Binds 127.0.0.1 unless told otherwise; every request needs HTTP Basic credentials."
        ),
    )
    p.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="PORT",
        help="a board's serial port or pyserial URL (repeatable)",
    )
    p.add_argument(
        "--sim",
        action="append",
        default=[],
        metavar="BOARD",
        help="a simulated board, e.g. pico, pico-mt8880, esp32-i2s (repeatable)",
    )
    p.add_argument(
        "--listen", metavar="HOST:PORT", help="address to listen on (default 127.0.0.1:8080)"
    )
    p.add_argument(
        "--record",
        metavar="DIR",
        help="write each send's line signal as DIR/<callId>-<n>.wav (simulated boards)",
    )
    p.add_argument(
        "--auth",
        action="append",
        default=[],
        metavar="USER:SECRET",
        help="credentials (repeatable): GWS user name / Catapult API token and userId",
    )
    p.add_argument("--config", metavar="FILE", help="TOML configuration (see docs/api.md)")
    p.add_argument(
        "--profile",
        metavar="NAME",
        help="timing profile of every line that names none (built in: default 100/100 ms, "
        "minimum 40/40, slow-ivr 250/250; more in the config's [profiles.NAME])",
    )
    p.add_argument(
        "--state",
        metavar="FILE",
        help="durable state (SQLite): calls, idempotency keys, sequences in flight "
        "(default: $XDG_STATE_HOME/tonebridge/state.db, i.e. ~/.local/state/tonebridge/state.db)",
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help="one simulated Pico, default credentials, recordings under ./recordings/",
    )
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="log lines as text (default) or one JSON object per line (docs/dashboard.md)",
    )
    add_broker_options(p, "front end")
    p.set_defaults(func=run)


def add_broker_options(p, role: str):
    """--broker and friends, shared by `serve` (a fleet front end) and `agent`."""
    p.add_argument(
        "--broker",
        metavar="URL",
        help="the fleet's MQTT broker, mqtt://HOST[:PORT] or mqtts://... (docs/fleet.md)"
        + (
            "; serve as a fleet front end: the lines come from the agents"
            if role == "front end"
            else ""
        ),
    )
    p.add_argument(
        "--broker-user",
        metavar="USER",
        help="broker user name; its password from $TONEBRIDGE_BROKER_PASSWORD",
    )
    p.add_argument("--broker-ca", metavar="FILE", help="CA certificate for mqtts:// (TLS)")
    p.add_argument(
        "--name",
        metavar="NAME",
        help=f"this {role}'s name in topics and client ids (default: the host name)",
    )


def broker_of(args):
    """(Broker, name) from the options; ConfigError-like ValueError when they do not parse."""
    import socket

    from tonebridge.fleet.topics import parse_broker, safe_name

    broker = parse_broker(args.broker, args.broker_user, None, args.broker_ca)
    name = (
        args.name
        or "".join(
            c if c.isascii() and (c.isalnum() or c in "-_.") else "-" for c in socket.gethostname()
        )[:64]
    )
    if not safe_name(name):
        raise ValueError(f"--name {name!r}: use 1-64 of A-Z a-z 0-9 _ . -")
    return broker, name


def timing_note(line) -> str:
    """ ", timing slow-ivr 250/250 ms, pause 500 ms"; ", timing: the board's own" for a line
    with no profile and no timing of its own (the board's CONFIG, 100/100 ms by default)."""
    if line.tone_ms is None and line.gap_ms is None and line.pause_ms is None:
        return ", timing: the board's own"
    name = f" {line.profile}" if line.profile else ""
    tone = "board" if line.tone_ms is None else line.tone_ms
    gap = "board" if line.gap_ms is None else line.gap_ms
    pause = f", pause {line.pause_ms} ms" if line.pause_ms is not None else ""
    return f", timing{name} {tone}/{gap} ms{pause}"


def banner(cfg) -> str:
    base = cfg.base_url
    lines = [
        f"dashboard: {base}/  (log in with the credentials below; metrics: {base}/metrics)",
        "tonebridge API bridge listening on " + base,
    ]
    for user, secret in cfg.users.items():
        shown = secret if cfg.demo else "*" * 8
        lines.append(f"  credentials: {user}:{shown}")
    for line in cfg.lines:
        hw = f", board {line.hwid}" if line.hwid else ""
        lines.append(
            f"  line {line.url}: call id {line.call_id}, device {line.device_id}, "
            f"owner {line.owner}{hw}{timing_note(line)}"
        )
    lines.append(f"  state: {cfg.state_file or 'in memory (the agents keep the lines state)'}")
    if cfg.record_dir:
        lines.append(f"  recordings: {cfg.record_dir}/<callId>-<n>.wav")
    if cfg.broker is not None:
        lines.append(
            f"  fleet front end {cfg.frontend_name!r}: lines from the agents on {cfg.broker}"
        )
        lines.append("Try (Catapult): GET " + base + "/v1/users/USER/calls lists the fleet's calls")
        return "\n".join(lines)
    first = cfg.lines[0]
    user = first.owner
    secret = cfg.users[user] if cfg.demo else "SECRET"
    url = f"{base}/v1/users/{user}/calls/{first.call_id}/dtmf"
    lines.append("Try (Catapult):")
    lines.append(
        f"  curl -v -X POST {url} -u {shlex.quote(user + ':' + secret)} "
        '-H "Content-type: application/json" -d \'{"dtmfOut": "1WWW,59#"}\''
    )
    lines.append(
        "GWS: GET /api/v2/me (session cookie + X-CSRF-TOKEN), then POST "
        f"/api/v2/me/calls/{first.call_id} "
        '{"operationName":"SendDtmf","digits":"5"}; CometD at /api/v2/notifications'
    )
    lines.append("OpenAPI: " + base + "/openapi.json   docs: " + base + "/docs")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from tonebridge.api import ConfigError, build_config, create_app
    from tonebridge.api.httpserver import listen_socket, uvicorn_config
    from tonebridge.store import Store, StoreError

    try:
        cfg = build_config(
            config_file=args.config,
            ports=args.port,
            sims=args.sim,
            listen=args.listen,
            record=args.record,
            auth=args.auth,
            demo=args.demo,
            state=args.state,
            profile=args.profile,
            fleet=args.broker is not None,
        )
        if args.broker is not None:
            cfg.broker, cfg.frontend_name = broker_of(args)
            if cfg.lines:
                raise ConfigError("a fleet front end has no lines of its own: give them to agents")
            cfg.state_file = None  # nothing durable lives in a front end
    except (ConfigError, ValueError) as exc:
        print(f"tonebridge serve: {exc}", file=sys.stderr)
        return 2
    try:
        store = Store(cfg.state_file)  # None (a fleet front end): in memory
    except (StoreError, OSError) as exc:
        print(f"tonebridge serve: {exc}", file=sys.stderr)
        return 2
    try:
        sock = listen_socket(cfg.listen_host, cfg.listen_port)
    except OSError as exc:
        store.close()
        print(
            f"tonebridge serve: cannot listen on {cfg.listen_host}:{cfg.listen_port}: {exc.strerror}",
            file=sys.stderr,
        )
        return 2
    if cfg.listen_port == 0:
        cfg.listen_port = sock.getsockname()[1]
    from tonebridge import logfmt

    logfmt.setup(getattr(args, "log_format", "text"))
    app = create_app(cfg, store=store)
    print(banner(cfg), flush=True)
    # log_config=None: uvicorn leaves logging as set up above (its loggers propagate to it)
    server = uvicorn.Server(uvicorn_config(app, cfg, log_level="info", log_config=None))
    try:
        server.run(sockets=[sock])
    finally:
        store.close()
    return 0

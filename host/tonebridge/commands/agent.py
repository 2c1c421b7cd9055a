"""`tonebridge agent`: own this host's lines and serve them to the fleet over MQTT."""

from __future__ import annotations

import argparse
import sys

from tonebridge.commands.serve import add_broker_options, broker_of


def register(subparsers):
    p = subparsers.add_parser(
        "agent",
        help="own this host's board lines and serve them to the fleet over an MQTT broker",
        description=(
            "Run this host's lines (the same link layer, durable state and exactly-once "
            "records as serve) and serve them to the fleet's front ends "
            "(tonebridge serve --broker) over an MQTT broker. docs/fleet.md."
        ),
    )
    p.add_argument("--port", action="append", default=[], metavar="PORT",
                   help="a board's serial port or pyserial URL, e.g. sim://pico (repeatable)")  # fmt: skip
    p.add_argument("--sim", action="append", default=[], metavar="BOARD",
                   help="a simulated board, e.g. pico (repeatable)")  # fmt: skip
    p.add_argument("--config", metavar="FILE",
                   help="TOML with [[lines]] (and [profiles], [limits]) as for serve")  # fmt: skip
    p.add_argument("--owner", default="demo", metavar="USER",
                   help="the API user who sees the lines given by --port/--sim (default demo)")  # fmt: skip
    p.add_argument(
        "--record", metavar="DIR", help="write each send's line signal as DIR/<callId>-<n>.wav"
    )
    p.add_argument("--profile", metavar="NAME", help="timing profile of every line that names none")
    p.add_argument("--state", metavar="FILE", help="durable state (SQLite), as for serve")
    add_broker_options(p, "agent")
    p.set_defaults(func=run)


def build(args):
    """(cfg, broker, name) from the options; ValueError/ConfigError with the reason."""
    from tonebridge.api import build_config
    from tonebridge.api.config import load_toml

    if not args.broker:
        raise ValueError("--broker mqtt://HOST[:PORT] is required")
    broker, name = broker_of(args)
    cfg = build_config(
        config_file=args.config, ports=args.port, sims=args.sim, record=args.record,
        auth=[f"{args.owner}:-"], state=args.state, profile=args.profile,
    )  # fmt: skip
    first_cli = len(load_toml(args.config).get("lines", [])) if args.config else 0
    for index, line in enumerate(cfg.lines[first_cli:], start=1):
        line.device_id = f"{name}-{index}"  # fleet-wide unique, stable across restarts
        line.call_id = f"c-{name}-{index}"
    return cfg, broker, name


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal

    from tonebridge.api import ConfigError
    from tonebridge.fleet.agent import Agent
    from tonebridge.fleet.mqtt import BrokerError
    from tonebridge.store import Store, StoreError

    try:
        cfg, broker, name = build(args)
        store = Store(cfg.state_file)
    except (ConfigError, ValueError, StoreError, OSError) as exc:
        print(f"tonebridge agent: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    agent = Agent(name, broker, cfg, store)

    async def main():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, agent.stop)
        await agent.run(on_started=lambda: print(banner(agent, broker), flush=True))

    try:
        asyncio.run(main())
    except BrokerError as exc:
        print(f"tonebridge agent: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


def banner(agent, broker) -> str:
    out = [f"tonebridge agent {agent.name} serving {len(agent.lines)} line(s) on {broker}"]
    for line in agent.board.lines:
        out.append(
            f"  line {line.url}: device {line.device_id}, call id {line.cfg.call_id}, "
            f"owner {line.owner}"
        )
    return "\n".join(out)

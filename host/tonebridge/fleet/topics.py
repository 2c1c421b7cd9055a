"""Topic names, payload encoding and broker URLs of protocol version 1 (docs/fleet.md)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

VERSION = 1
PREFIX = f"tonebridge/v{VERSION}"


def agent_status(agent: str) -> str:
    return f"{PREFIX}/agent/{agent}/status"


def line_state(device: str) -> str:
    return f"{PREFIX}/line/{device}/state"


def line_cmd(device: str) -> str:
    return f"{PREFIX}/line/{device}/cmd"


def line_event(device: str) -> str:
    return f"{PREFIX}/line/{device}/event"


def frontend_reply(fe: str) -> str:
    return f"{PREFIX}/frontend/{fe}/reply"


ALL_STATUS = f"{PREFIX}/agent/+/status"
ALL_STATE = f"{PREFIX}/line/+/state"
ALL_EVENTS = f"{PREFIX}/line/+/event"


def parts(topic: str) -> list[str]:
    """['line', device, 'state'] for a v1 topic, [] for anything else."""
    if not topic.startswith(PREFIX + "/"):
        return []
    return topic[len(PREFIX) + 1 :].split("/")


def safe_name(text: str) -> bool:
    """Agent, device and front-end names: 1-64 of A-Z a-z 0-9 _ . - (no MQTT wildcards)."""
    return (
        isinstance(text, str)
        and 0 < len(text) <= 64
        and all(c.isascii() and (c.isalnum() or c in "-_.") for c in text)
    )


def encode(payload: dict) -> bytes:
    return json.dumps({"v": VERSION, **payload}, separators=(",", ":")).encode()


def decode(raw: bytes) -> dict | None:
    """The JSON object of a message, or None (not JSON, not an object, another version)."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get("v") != VERSION:
        return None
    return data


class BrokerUrlError(ValueError):
    pass


@dataclass
class Broker:
    host: str
    port: int
    tls: bool = False
    user: str | None = None
    password: str | None = None
    ca: str | None = None  # CA file for TLS (None: the system's)

    def __str__(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        who = f"{self.user}@" if self.user else ""
        return f"{scheme}://{who}{self.host}:{self.port}"


def parse_broker(url: str, user=None, password=None, ca=None) -> Broker:
    """mqtt://[USER[:PASSWORD]@]HOST[:PORT] (1883) or mqtts://... (8883). The password may
    also come from $TONEBRIDGE_BROKER_PASSWORD."""
    parts_ = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts_.scheme not in ("mqtt", "mqtts"):
        raise BrokerUrlError(f"broker URL must be mqtt://HOST[:PORT] or mqtts://..., got {url!r}")
    if not parts_.hostname:
        raise BrokerUrlError(f"broker URL has no host: {url!r}")
    tls = parts_.scheme == "mqtts"
    try:
        port = parts_.port or (8883 if tls else 1883)
    except ValueError:
        raise BrokerUrlError(f"bad port in broker URL {url!r}") from None
    user = user or (unquote(parts_.username) if parts_.username else None)
    if password is None and parts_.password:
        password = unquote(parts_.password)
    if password is None and user:
        password = os.environ.get("TONEBRIDGE_BROKER_PASSWORD")
    return Broker(parts_.hostname, port, tls, user, password, ca)

"""Timing under the caller's control: timing profiles per line and per-request timing.

A timing profile is a named set of tone, gap and pause lengths (ms). Built in:

    default    100 / 100 ms, pause 500 ms  the board's own default
    minimum     40 /  40 ms, pause 500 ms  the shortest tones and gaps receivers must detect
                                           (dtmf-facts.md §2: >= 40 ms on, >= 40-50 ms off)
    slow-ivr   250 / 250 ms, pause 500 ms  for slow IVRs, old intercoms and PBXs

More are defined in the serve config (``[profiles.NAME]``, any of ``tone_ms``, ``gap_ms``,
``pause_ms``; the rest from ``default``) and chosen per line (``profile = "slow-ivr"``). A
line's own ``tone_ms``/``gap_ms``/``pause_ms`` win over its profile, and a request's own
values (Catapult/GWS ``toneDuration``, ``toneInterval``) win over both.

What a profile may change is what the dial-string documents leave open: the tone length and
the gap between digits (Catapult's "marginal delay"; GWS says nothing), and ``pause_ms``, the
length of the tonebridge dialect's ``,``. Catapult's own pauses (``,`` and ``w`` 0.5 s,
``W`` 1 s) are defined by its document, so a Catapult request always gets exactly those.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tonebridge_fw.dialstring import HOLD_MAX_MS, MAX_LENGTH, TIMING_MAX_MS, TIMING_MIN_MS

from tonebridge.api.errors import ApiError

FIELDS = ("tone_ms", "gap_ms", "pause_ms")


@dataclass(frozen=True)
class Profile:
    name: str
    tone_ms: int
    gap_ms: int
    pause_ms: int


BUILTIN = {
    "default": Profile("default", 100, 100, 500),
    "minimum": Profile("minimum", 40, 40, 500),
    "slow-ivr": Profile("slow-ivr", 250, 250, 500),
}


class ProfileError(ValueError):
    """A [profiles] table or a line's profile/timing the config cannot use."""


def check_ms(value, name: str) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or not TIMING_MIN_MS <= value <= TIMING_MAX_MS:
        raise ProfileError(
            f"{name} must be an integer from {TIMING_MIN_MS} to {TIMING_MAX_MS} ms, got {value!r}"
        )
    return value


def parse_profiles(data) -> dict[str, Profile]:
    """The built-in profiles plus the config's ``[profiles.NAME]`` tables."""
    profiles = dict(BUILTIN)
    if data is None:
        return profiles
    if not isinstance(data, dict):
        raise ProfileError("[profiles] must hold tables: [profiles.NAME] with tone_ms, ...")
    base = BUILTIN["default"]
    for name, table in data.items():
        if name in BUILTIN:
            raise ProfileError(
                f"timing profile {name!r} is built in ({_builtin_list()}); choose another name"
            )
        if not isinstance(table, dict):
            raise ProfileError(f"[profiles.{name}] must be a table of tone_ms, gap_ms, pause_ms")
        unknown = set(table) - set(FIELDS)
        if unknown:
            raise ProfileError(
                f"[profiles.{name}]: unknown key(s) {', '.join(sorted(unknown))} "
                f"(known: {', '.join(FIELDS)})"
            )
        values = {f: check_ms(table[f], f"profiles.{name}.{f}") for f in table}
        profiles[name] = Profile(
            name,
            values.get("tone_ms", base.tone_ms),
            values.get("gap_ms", base.gap_ms),
            values.get("pause_ms", base.pause_ms),
        )
    return profiles


def _builtin_list() -> str:
    return ", ".join(BUILTIN)


def apply_profile(line, profiles: dict[str, Profile]) -> None:
    """Fill a line's unset tone_ms/gap_ms/pause_ms from its profile (if it names one)."""
    if line.profile is None:
        return
    profile = profiles.get(line.profile) if isinstance(line.profile, str) else None
    if profile is None:
        raise ProfileError(
            f"line {line.url}: unknown timing profile {line.profile!r} "
            f"(known: {', '.join(sorted(profiles))})"
        )
    for f in FIELDS:
        if getattr(line, f) is None:
            setattr(line, f, getattr(profile, f))


# ---- per request ---------------------------------------------------------------------------

# the request fields: Bandwidth's names (its newer API and BXML <SendDtmf>), in both APIs
REQUEST_FIELDS = (("toneDuration", "tone_ms"), ("toneInterval", "gap_ms"))


def request_timing(body: dict) -> dict:
    """{"tone_ms": n, "gap_ms": n} for the timing fields the request gives (absent or null:
    not given); ApiError("validation") naming the field for anything else."""
    out = {}
    for field, name in REQUEST_FIELDS:
        value = body.get(field)
        if value is None:
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ApiError(
                "validation",
                f"{field} must be a whole number of milliseconds from {TIMING_MIN_MS} to "
                f"{TIMING_MAX_MS}, got {_shown(value)}",
                details=[{"name": field, "value": _shown(value)}],
            )
        if not TIMING_MIN_MS <= value <= TIMING_MAX_MS:
            raise ApiError(
                "validation",
                f"{field} {_shown(value)} is outside {TIMING_MIN_MS}-{TIMING_MAX_MS} ms",
                details=[{"name": field, "value": _shown(value)}],
            )
        out[name] = value
    return out


def request_schema(default_dialect: str) -> dict:
    """OpenAPI properties of the optional request fields (tonebridge extensions)."""
    ms = {"type": "integer", "minimum": TIMING_MIN_MS, "maximum": TIMING_MAX_MS}
    return {
        "toneDuration": {
            **ms,
            "description": "tonebridge extension: how long each tone lasts, ms (default: "
            "the line's timing profile, else 100)",
        },
        "toneInterval": {
            **ms,
            "description": "tonebridge extension: silence between two digits, ms (default: "
            "the line's timing profile, else 100); pauses replace it",
        },
        "dialect": {
            "type": "string",
            "enum": [default_dialect, "tonebridge"],
            "description": 'tonebridge extension: "tonebridge" allows held keys, e.g. '
            "5(2000), '!' (a hook flash) and 'p', and makes ',' the line's pause "
            "(docs/dialstrings.md)",
        },
    }


# The tonebridge dialect as a regular expression, for the OpenAPI document (the grammar itself
# is tonebridge_fw.dialstring; tests/api/test_openapi_fuzz.py checks that the two agree): a
# key, optionally held for 40-10000 ms (leading zeros allowed, as the compiler reads them), a
# pause character, or a hook flash.
TONEBRIDGE_PATTERN = r"^(?:[0-9A-D#*](?:\(0*(?:[4-9][0-9]|[1-9][0-9]{2,3}|10000)\))?|[,wWp!])+$"
assert (TIMING_MIN_MS, HOLD_MAX_MS) == (40, 10000)  # what TONEBRIDGE_PATTERN spells out


def dial_string_schema(field: str, own_pattern: str, description: str) -> tuple[dict, dict]:
    """OpenAPI (3.1: JSON Schema 2020-12) of a request's dial-string field: (its property, the
    body schema's if/then/else). The API's own pattern applies unless the request says
    ``"dialect": "tonebridge"``; then the tonebridge dialect's does, so a schema-checking
    client accepts exactly the strings tonebridge does (as far as a schema can tell: what the
    line's board cannot play, e.g. a held key on a burst-mode MT8880, is the server's to say)."""
    prop = {"type": "string", "minLength": 1, "maxLength": MAX_LENGTH, "description": description}
    conditional = {
        "if": {"properties": {"dialect": {"const": "tonebridge"}}, "required": ["dialect"]},
        "then": {"properties": {field: {"pattern": TONEBRIDGE_PATTERN}}},
        "else": {"properties": {field: {"pattern": own_pattern}}},
    }
    return prop, conditional


def request_dialect(body: dict, default: str) -> str:
    """The dial-string dialect a request asks for: its API's own (`default`) or, with
    ``"dialect": "tonebridge"``, the tonebridge dialect (held keys, the line's pause)."""
    value = body.get("dialect")
    if value is None or value == default:
        return default
    if value == "tonebridge":
        return value
    raise ApiError(
        "validation",
        f'dialect must be "{default}" or "tonebridge", got {_shown(value)}',
        details=[{"name": "dialect", "value": _shown(value)}],
    )


def _shown(value) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 40 else text[:37] + "..."

"""What an agent publishes about a line (retained) and what a front end makes of it."""

from __future__ import annotations

from tonebridge.api.calls import Call, Failure


def failure_json(f: Failure) -> dict:
    return {
        "digits": f.digits,
        "played": f.played,
        "total": f.total,
        "message": f.message,
        "time": f.time,
        "at_most": f.at_most,
        "rid": f.rid,
        "verified": f.verified,
    }


def failure_from(d: dict) -> Failure:
    return Failure(
        str(d.get("digits", "")),
        int(d.get("played", 0)),
        int(d.get("total", 0)),
        str(d.get("message", "")),
        float(d.get("time", 0.0)),
        d.get("at_most"),
        d.get("rid"),
        verified=d.get("verified"),
    )


def call_json(call: Call) -> dict:
    data = call.record()
    data.pop("device", None)
    # what the store does not keep but the APIs report: the verified count (the agent sums
    # it from its store) and what the line did after dialling
    data["digits_verified"] = call.digits_verified
    data["progress"] = call.progress
    data["failures"] = [failure_json(f) for f in call.failures]
    data["last_failure"] = failure_json(call.last_failure) if call.last_failure else None
    return data


def line_json(agent: str, line, online: bool = True) -> dict:
    """The retained state of a local line (tonebridge.api.line.Line)."""
    call = line.call
    return {
        "agent": agent,
        "device": line.device_id,
        "online": online,
        "owner": line.owner,
        "number": line.number,
        "hwid": line.hwid,
        "port": line.path,
        "fault": line.fault,
        "call": call_json(call) if call is not None else None,
        # what the dashboard and /metrics show of a line
        "link_up": line.link_up,
        "off_hook": line.off_hook,
        "board_info": line.board_info,
        "queue_depth": line.queue_depth,
        "reconnects": line.reconnects,
        "tone_ms": line.cfg.tone_ms,
        "gap_ms": line.cfg.gap_ms,
    }


CALL_FIELDS = (
    "owner",
    "direction",
    "local",
    "remote",
    "state",
    "created",
    "active_time",
    "end_time",
    "conn_id",
    "sends",
    "digits_sent",
    "digits_verified",
    "progress",
)


def update_call(call: Call, data: dict) -> None:
    """Bring a front end's mirror of a call up to date with the agent's state (in place:
    request handlers may hold it)."""
    for name in CALL_FIELDS:
        if name in data:
            setattr(call, name, data[name])
    call.failures.clear()
    for f in data.get("failures") or ():
        call.failures.append(failure_from(f))
    last = data.get("last_failure")
    call.last_failure = failure_from(last) if last else None

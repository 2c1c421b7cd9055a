"""GWS representations (call, device) and the CometD notifications they go out in."""

from __future__ import annotations

import time

from tonebridge.api.calls import Call

CAPABILITIES = {
    "Dialing": ["Hangup"],
    "Established": ["SendDtmf", "Hangup"],
    "Held": ["Hangup"],
    "Released": [],
}


def call_json(call: Call, base: str) -> dict:
    line = call.line
    active = call.active_time or call.created
    end = call.end_time or time.time()
    return {
        "id": call.id,
        "state": call.state,
        "callUuid": call.id,
        "connId": call.conn_id,
        "deviceUri": f"{base}/api/v2/devices/{line.device_id}",
        "participants": [
            {
                "e164Number": "",
                "formattedPhoneNumber": call.remote,
                "phoneNumber": call.remote,
                "digits": call.remote,
            }
        ],
        "dnis": call.local,
        "callType": "Outbound" if call.direction == "out" else "Inbound",
        "capabilities": list(CAPABILITIES.get(call.state, [])),
        "userData": {},
        "duration": str(max(0, int(end - active))),
        "mute": "Off",
        "supervisorListeningIn": False,
        "monitoredUserMuted": False,
        "monitoring": False,
        "uri": f"{base}/api/v2/me/calls/{call.id}",
        "path": f"/calls/{call.id}",
        # tonebridge additions (not in GWS): digits the board reported played on this call,
        # and of those the ones it heard on the line (boards that verify their sends)
        "dtmfDigitsSent": call.digits_sent,
        "dtmfDigitsVerified": call.digits_verified,
        # what the line did after dialling (a board that hears call progress): ringing, busy,
        # reorder, voice (answered), ... (docs/callprogress.md); null: not heard
        "lineProgress": call.progress,
    }


def device_json(line) -> dict:
    state = line.state_json()
    data = {
        "id": line.device_id,
        "deviceState": "Active" if state["fault"] is None else "Inactive",
        "userState": {"state": "Ready"},
        "phoneNumber": line.number,
        "e164Number": "",
        "telephonyNetwork": "Private",
        "capabilities": ["Dial"] if line.call is None or not line.call.live else [],
        # tonebridge additions: the board's hardware id, its port, and why it cannot play
        "hardwareId": state["hardwareId"],
        "port": state["port"],
    }
    if state["fault"]:
        data["fault"] = state["fault"]
    return data


def notification(call: Call, base: str, kind: str) -> dict:
    return {
        "notificationType": kind,
        "call": call_json(call, base),
        "phoneNumber": call.line.number,
        "extensions": {"BusinessCall": 0},
        "messageType": "CallStateChangeMessage",
    }


def install_listener(bridge):
    """Publish call events on /v2/me/calls to the owning user's CometD clients."""

    def listener(kind, call, info):
        base = bridge.cfg.base_url
        if kind == "dtmf_sent":
            bridge.bayeux.publish(call.owner, "/v2/me/calls", notification(call, base, "DtmfSent"))
        elif kind == "state":
            bridge.bayeux.publish(
                call.owner, "/v2/me/calls", notification(call, base, "StatusChange")
            )
        elif kind == "line":
            line = info["line"]
            bridge.bayeux.publish(
                line.owner,
                "/v2/me/devices",
                {
                    "messageType": "DeviceStateChangeMessage",
                    "notificationType": "StateChange",
                    "devices": [device_json(line)],
                },
            )
        elif kind == "send_failed":
            exc = info["failure"]
            bridge.bayeux.publish(
                call.owner,
                "/v2/me/calls",
                {
                    "messageType": "ErrorMessage",
                    "notificationType": "DtmfSendFailed",
                    "requestedOperation": "SendDtmf",
                    "errorMessage": exc.message,
                    "digitsPlayed": exc.played,
                    "digitsVerified": exc.verified,
                    "digitsTotal": exc.total,
                    "accepted": exc.accepted,
                    "call": call_json(call, base),
                    "phoneNumber": call.line.number,
                },
            )

    bridge.board.listeners.append(listener)

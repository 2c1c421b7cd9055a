"""Dialling through the HTTP APIs on a line whose far side is a scripted exchange
(tonebridge.sim.exchange.Exchange on the simulated Pico's line sense; the board hears call
progress with the US tones, `sim://pico?country=us`). GWS `Dial` (POST
/api/v2/me/devices/{id}/calls) and Catapult `POST /v1/users/{user}/calls`: no dial tone is a
clear failure after the line's dial_tone_ms; a busy line ends the call (state Released /
completed, lineProgress busy); ringback then a voice answers it (Dialing / started while it
rings, then Established / active). The exchange reacts to the line as a real one would: its
next step is scripted when the board's last digit has gone out (the switchboard's own digit
events). Real time (sim:// is paced): a few seconds each."""

from __future__ import annotations

import threading
import time

import pytest
from tonebridge.api.recording import sim_of
from tonebridge.sim.exchange import Exchange

USER, PW = "dialer", "dial-pw"
NUMBER = "5001"
DIALTONE_MS = 2000

pytestmark = pytest.mark.slow


def _tweak(cfg):
    line = cfg.lines[0]
    line.state = "idle"  # a free line: the calls are placed by the test
    line.device_id = "desk-1"
    line.dial_tone_ms = DIALTONE_MS
    line.tone_ms, line.gap_ms = 80, 80
    cfg.rate, cfg.burst = 100.0, 100  # this test polls


class Rig:
    def __init__(self, start_server, state=None):
        self.srv = start_server(
            ports=["sim://pico?country=us"], auth=[f"{USER}:{PW}"], tweak=_tweak, state=state
        )
        self.srv.wait_boards()
        self.board, self.lock = sim_of(self.srv.bridge.board.lines[0].client)
        self.exchange = Exchange("us")
        with self.lock:
            self.board.sense.far_end = self.exchange
        self.dialled = threading.Event()
        self.states: list[str] = []  # the call's states as the switchboard announced them
        self.srv.bridge.board.listeners.append(self._on)

    def _on(self, kind, call, info):
        ev = info.get("event") if kind == "digit" else None
        if ev and ev.get("event") == "finished" and ev.get("index") == len(NUMBER) - 1:
            self.dialled.set()
        if kind == "state" and call is not None:
            self.states.append(call.state)

    def script(self, what, after_s=0.0):
        """The exchange sends `what` from `after_s` s from now (board time) on."""
        with self.lock:
            self.exchange.at(self.board.now_us() / 1e6 + after_s, what)

    def dial_through(self, http, api):
        """Dial tone, then the call dialled through `api`; returns its id once every digit of
        the number went out."""
        self.script("dial")
        call_id = self.dial(http, api)
        assert self.dialled.wait(DIALTONE_MS / 1000 + 8), "the number was never dialled"
        return call_id

    def dial(self, http, api):
        if api == "gws":
            token = http.get("/api/v2/me").headers["X-CSRF-TOKEN"]
            body = {"operationName": "Dial", "destination": {"phoneNumber": NUMBER}}
            r = http.post(
                "/api/v2/me/devices/desk-1/calls", json=body, headers={"X-CSRF-TOKEN": token}
            )
            assert r.status_code == 200 and r.json()["statusCode"] == 0, r.text
            return r.json()["id"]
        r = http.post(f"/v1/users/{USER}/calls", json={"from": "+15000", "to": "+" + NUMBER})
        assert r.status_code == 201, r.text
        return r.headers["Location"].rsplit("/", 1)[1]


def _call(http, api, call_id):
    if api == "gws":
        return http.get(f"/api/v2/me/calls/{call_id}").json()["data"]["call"]
    return http.get(f"/v1/users/{USER}/calls/{call_id}").json()


ENDED = {"gws": "Released", "catapult": "completed"}
RINGING = {"gws": "Dialing", "catapult": "started"}
ANSWERED = {"gws": "Established", "catapult": "active"}


def _wait_state(http, api, call_id, state, timeout_s):
    deadline = time.monotonic() + timeout_s
    while True:
        call = _call(http, api, call_id)
        if call["state"] == state:
            return call
        assert time.monotonic() < deadline, f"waiting for {state}: {call}"
        time.sleep(0.1)


@pytest.mark.parametrize("api", ["gws", "catapult"])
def test_no_dial_tone_fails_the_call_after_the_timeout(start_server, api):
    rig = Rig(start_server)  # the exchange sends nothing: a dead line
    with rig.srv.client(USER, PW) as http:
        t0 = time.monotonic()
        call_id = rig.dial(http, api)
        assert _call(http, api, call_id)["state"] == RINGING[api]
        call = _wait_state(http, api, call_id, ENDED[api], DIALTONE_MS / 1000 + 8)
        took = time.monotonic() - t0
        assert took >= DIALTONE_MS / 1000, took
        assert not rig.dialled.is_set()  # no digit went out
        assert rig.states == ["Dialing", "Released"]
        if api == "catapult":
            f = call["lastDtmfFailure"]
            assert f["dtmfOut"] == NUMBER and f["digitsPlayed"] == 0
            assert "no-dial-tone" in f["message"], f
        assert call["dtmfDigitsSent"] == 0
    assert rig.board.line_if.hook_log[-1][1] is False  # the line was released


@pytest.mark.parametrize("api", ["gws", "catapult"])
def test_a_busy_line_ends_the_call_and_says_busy(start_server, api):
    rig = Rig(start_server)
    with rig.srv.client(USER, PW) as http:
        call_id = rig.dial_through(http, api)
        rig.script("busy", 0.3)
        call = _wait_state(http, api, call_id, ENDED[api], 10)
        assert call["lineProgress"] == "busy"
        assert call["dtmfDigitsSent"] == len(NUMBER)
        assert call["dtmfDigitsVerified"] == len(NUMBER)
        assert rig.states == ["Dialing", "Released"]  # never answered
        if api == "catapult":
            assert call["lastDtmfFailure"]["message"] == "the line is busy"
    assert rig.board.line_if.hook_log[-1][1] is False  # hung up


def test_the_line_progress_survives_a_restart_of_serve(start_server, tmp_path):
    """What the line said (lineProgress) is kept in the state file with the call: after a
    restart of serve the ended call still says busy in both APIs."""
    state = str(tmp_path / "progress-state.db")
    rig = Rig(start_server, state)
    with rig.srv.client(USER, PW) as http:
        call_id = rig.dial_through(http, "catapult")
        rig.script("busy", 0.3)
        assert _wait_state(http, "catapult", call_id, "completed", 10)["lineProgress"] == "busy"
    rig.srv.stop()
    srv = start_server(ports=["sim://pico?country=us"], auth=[f"{USER}:{PW}"], tweak=_tweak,
                       state=state)  # fmt: skip
    with srv.client(USER, PW) as http:
        for api in ("catapult", "gws"):
            call = _call(http, api, call_id)
            assert call["lineProgress"] == "busy" and call["state"] == ENDED[api], call


@pytest.mark.parametrize("api", ["gws", "catapult"])
def test_ringback_then_answer_the_call_follows_the_line(start_server, api):
    rig = Rig(start_server)
    with rig.srv.client(USER, PW) as http:
        call_id = rig.dial_through(http, api)
        rig.script("ringing", 0.3)
        rig.script("voice", 6.3)  # answered after a ring and a half (2 s on, 4 s off)
        deadline = time.monotonic() + 5.5
        while _call(http, api, call_id)["lineProgress"] != "ringing":
            assert time.monotonic() < deadline, _call(http, api, call_id)
            time.sleep(0.1)
        # ringing is not answered: the call waits
        assert _call(http, api, call_id)["state"] == RINGING[api]
        call = _wait_state(http, api, call_id, ANSWERED[api], 10)
        assert call["lineProgress"] == "voice"
        assert rig.states == ["Dialing", "Established"]
        if api == "catapult":
            assert "activeTime" in call and "lastDtmfFailure" not in call
        assert rig.board.line_if.off_hook  # the line stays up

"""Real client libraries nobody here wrote: node-bandwidth (Catapult SDK) and the CometD
JavaScript client (GWS notifications), against the bridge in front of simulated boards."""

from __future__ import annotations

import json
import subprocess

import pytest
from apihelpers import HERE, env_with_node_path, need_node_modules, need_tools, wait_for_file
from tonebridge.analysis import decode_multimon, read_wav, segments

JS = HERE / "js"

# the call object's fields in the GWS SendDTMF seed's CometD sample
SEED_CALL_KEYS = {
    "id",
    "state",
    "callUuid",
    "connId",
    "deviceUri",
    "participants",
    "dnis",
    "callType",
    "capabilities",
    "duration",
    "mute",
    "supervisorListeningIn",
    "monitoredUserMuted",
    "monitoring",
    "uri",
    "path",
}


def node_bandwidth(base, user, secret, call_id, dtmf):
    proc = subprocess.run(
        ["node", str(JS / "bandwidth_send.js"), base, user, user, secret, call_id, dtmf],
        capture_output=True,
        text=True,
        timeout=60,
        env=env_with_node_path(),
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_node_bandwidth_send_dtmf_and_error_message(start_server, tmp_path):
    need_tools("node", "multimon-ng")
    need_node_modules("node-bandwidth")
    srv = start_server(sims=["pico"], auth=["acct-1:tok-secret"])
    srv.wait_boards()
    call_id = srv.cfg.lines[0].call_id

    assert node_bandwidth(srv.base, "acct-1", "tok-secret", call_id, "9193334444") == {"ok": True}
    wav = wait_for_file(tmp_path / "rec" / f"{call_id}-1.wav")
    x, rate = read_wav(wav)
    assert decode_multimon(x, rate) == "9193334444"
    # unchanged, it plays the default timing: 100 ms tones, 100 ms apart
    tones, gaps = lengths_ms(x, rate)
    assert len(tones) == 10 and all(abs(t - 100) <= 0.1 for t in tones), tones
    assert all(abs(g - 100) <= 0.1 for g in gaps), gaps

    bad = node_bandwidth(srv.base, "acct-1", "tok-secret", call_id, "12x4")
    assert bad["ok"] is False and bad["statusCode"] == 400
    assert bad["message"] == "dtmfOut: invalid character 'x' at position 2"
    wrong = node_bandwidth(srv.base, "acct-1", "wrong", call_id, "1")
    assert wrong["statusCode"] == 401 and "Access denied" in wrong["message"]
    missing = node_bandwidth(srv.base, "acct-1", "tok-secret", "c-nope", "1")
    assert missing["statusCode"] == 404 and missing["message"] == "call c-nope not found"
    # only the good string reached the board
    assert [t for _, t in srv.factory.sends] == ["9193334444"]


@pytest.mark.slow
def test_node_bandwidth_send_dtmf_unchanged_plays_the_lines_timing_profile(start_server, tmp_path):
    """A line with profile slow-ivr: the SDK's unchanged sendDtmf gets 250/250 ms."""
    need_tools("node", "multimon-ng")
    need_node_modules("node-bandwidth")
    srv = start_server(sims=["pico"], auth=["acct-1:tok-secret"], profile="slow-ivr")
    srv.wait_boards()
    call_id = srv.cfg.lines[0].call_id
    assert node_bandwidth(srv.base, "acct-1", "tok-secret", call_id, "1Ww2") == {"ok": True}
    x, rate = read_wav(wait_for_file(tmp_path / "rec" / f"{call_id}-1.wav"))
    assert decode_multimon(x, rate) == "12"
    tones, gaps = lengths_ms(x, rate)
    assert all(abs(t - 250) <= 0.1 for t in tones) and len(tones) == 2, tones
    assert abs(gaps[0] - 1500) <= 0.1, gaps  # Catapult's pauses are its document's


def lengths_ms(x, rate):
    segs = segments(x, rate)
    tones = [(e - s) * 1000 for s, e in segs]
    gaps = [(b[0] - a[1]) * 1000 for a, b in zip(segs, segs[1:], strict=False)]
    return tones, gaps


@pytest.mark.slow
def test_cometd_js_client_receives_dtmf_sent(start_server, tmp_path):
    need_tools("node")
    need_node_modules("cometd", "cometd-nodejs-client")
    srv = start_server(sims=["pico"], auth=["agent7:pw7"])
    srv.wait_boards()
    call_id = srv.cfg.lines[0].call_id
    listener = subprocess.Popen(
        ["node", str(JS / "cometd_listen.mjs"), srv.base, "agent7", "pw7", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_with_node_path(),
    )
    try:
        assert listener.stdout.readline().strip() == "READY"
        with srv.client("agent7", "pw7") as http:
            token = http.get("/api/v2/me").headers["X-CSRF-TOKEN"]
            r = http.post(
                f"/api/v2/me/calls/{call_id}",
                json={"operationName": "SendDtmf", "digits": "5"},
                headers={"X-CSRF-TOKEN": token},
            )
            assert r.status_code == 200 and r.json() == {"statusCode": 0}
        out, err = listener.communicate(timeout=60)
    finally:
        listener.kill()
    assert listener.returncode == 0, err
    message = json.loads(out.strip().splitlines()[-1])
    assert message["channel"] == "/v2/me/calls"
    data = message["data"]
    assert data["notificationType"] == "DtmfSent"
    assert data["messageType"] == "CallStateChangeMessage"
    assert data["call"]["id"] == call_id and data["call"]["state"] == "Established"
    assert "SendDtmf" in data["call"]["capabilities"]
    assert data["phoneNumber"] == srv.cfg.lines[0].number
    assert data["extensions"] == {"BusinessCall": 0}
    assert set(data) == {"notificationType", "call", "phoneNumber", "extensions", "messageType"}
    assert SEED_CALL_KEYS <= set(data["call"])  # every field of the seed's sample call
    assert set(data["call"]["participants"][0]) == {
        "e164Number",
        "formattedPhoneNumber",
        "phoneNumber",
        "digits",
    }
    wav = wait_for_file(tmp_path / "rec" / f"{call_id}-1.wav")
    x, rate = read_wav(wav)
    assert decode_multimon(x, rate) == "5"


def stock_cometd(srv, user, pw, count="1"):
    return subprocess.Popen(
        ["node", str(JS / "cometd_listen.mjs"), srv.base, user, pw, count, "stock"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_with_node_path(),
    )


@pytest.mark.slow
def test_stock_cometd_client_works_with_the_default_configuration(start_server, tmp_path):
    """Out of the box (Basic credentials, no CSRF token): handshake, subscribe, DtmfSent."""
    need_tools("node")
    need_node_modules("cometd", "cometd-nodejs-client")
    srv = start_server(sims=["pico"], auth=["agent8:pw8"])
    srv.wait_boards()
    call_id = srv.cfg.lines[0].call_id
    listener = stock_cometd(srv, "agent8", "pw8")
    try:
        assert listener.stdout.readline().strip() == "READY"
        with srv.client("agent8", "pw8") as http:
            r = http.post(f"/v1/users/agent8/calls/{call_id}/dtmf", json={"dtmfOut": "7"})
            assert r.status_code == 200
        out, err = listener.communicate(timeout=60)
    finally:
        listener.kill()
    assert listener.returncode == 0, err
    message = json.loads(out.strip().splitlines()[-1])
    assert message["data"]["notificationType"] == "DtmfSent"
    assert message["data"]["call"]["id"] == call_id


def test_stock_cometd_client_is_refused_readably_where_csrf_is_on(start_server, tmp_path):
    need_tools("node")
    need_node_modules("cometd", "cometd-nodejs-client")
    srv = start_server(
        ports=[str(tmp_path / "absent")],
        auth=["agent9:pw9"],
        tweak=lambda cfg: setattr(cfg, "csrf", True),
    )
    listener = stock_cometd(srv, "agent9", "pw9")
    try:
        out, err = listener.communicate(timeout=60)
    finally:
        listener.kill()
    assert listener.returncode == 2, (out, err)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["error"] == "handshake failed"
    reply = result["reply"]
    assert reply["successful"] is False and reply["error"] == "403::csrf token missing"
    assert not srv.bridge.bayeux.clients  # no client was made

"""Broker authentication and ACLs with Mosquitto's password and ACL files
(tonebridge.fleet.broker writes them): an agent whose user is not allowed a line cannot
publish its state or its events, so no front end ever sees that line; a wrong password
is refused with a clear message."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import paho.mqtt.client as paho
import pytest
from fleethelpers import (
    Fleet,
    Observer,
    cat_url,
    http,
    need_mosquitto,
    wait_digits_sent,
    wait_line_ready,
)
from tonebridge.fleet.broker import Mosquitto, acl_text, env_password, write_auth

USERS = {"fe": "fe-pw", "a1": "a1-pw", "admin": "admin-pw"}


@pytest.fixture
def secured(tmp_path):
    need_mosquitto()
    acl = acl_text(["fe"], {"a1": ["a1-1"]}) + "\nuser admin\ntopic read tonebridge/#\n"
    passwd, aclfile = write_auth(tmp_path / "auth", USERS, acl)
    fleet = Fleet(tmp_path, Mosquitto(tmp_path / "broker", passwd=passwd, acl=aclfile).start())
    yield fleet
    fleet.close()


def publish_as(fleet, user, password, messages):
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"raw-{user}")
    c.username_pw_set(user, password)
    c.connect("127.0.0.1", fleet.broker.port, 5)
    c.loop_start()
    try:
        for topic, payload in messages:
            c.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        c.disconnect()
        c.loop_stop()


@pytest.mark.slow
def test_an_agent_cannot_publish_a_line_its_user_is_not_allowed(secured):
    fleet = secured
    obs = Observer(fleet.broker, ["tonebridge/#"], user="admin", password=USERS["admin"])
    # a1 is allowed line a1-1 only, but runs two boards (a1-1 and a1-2)
    fleet.agent("a1", sims=2, env=env_password(USERS["a1"]), extra=["--broker-user", "a1"])
    _, fe = fleet.frontend("fe", env=env_password(USERS["fe"]), extra=["--broker-user", "fe"])
    wait_line_ready(fe, "c-a1-1")
    with http() as h:
        assert h.post(cat_url(fe, "c-a1-1") + "/dtmf", json={"dtmfOut": "5"}).status_code == 200
        wait_digits_sent(fe, "c-a1-1", 1)
        time.sleep(0.5)
        assert h.get(cat_url(fe, "c-a1-1") + "2").status_code == 404
        assert h.get(cat_url(fe, "c-a1-2")).status_code == 404  # never announced
        listed = {c["id"] for c in h.get(f"{fe}/v1/users/ops/calls").json()}
        assert listed == {"c-a1-1"}
    # the agent's own user, by hand: another line's state and events, another agent's status
    publish_as(fleet, "a1", USERS["a1"], [
        ("tonebridge/v1/line/a1-2/event", b'{"v":1,"kind":"dtmf_sent","call":"c-a1-2"}'),
        ("tonebridge/v1/line/b-1/state", b'{"v":1,"agent":"a1","online":true}'),
        ("tonebridge/v1/agent/b/status", b'{"v":1,"online":true}'),
        ("tonebridge/v1/line/a1-1/event", b'{"v":1,"kind":"probe"}'),  # allowed: the control
    ])  # fmt: skip
    seen = []
    probe = obs.wait(lambda t, p, r: seen.append(t) or json.loads(p).get("kind") == "probe", 10)
    time.sleep(0.3)
    while not obs.messages.empty():
        seen.append(obs.messages.get()[0])
    obs.close()
    assert probe is not None, "the allowed publish never arrived: the control failed"
    forbidden = [t for t in seen if "/a1-2/" in t or "/b-1/" in t or "/agent/b/" in t]
    assert forbidden == [], forbidden
    assert "tonebridge/v1/line/a1-1/state" in seen


@pytest.mark.slow
def test_a_wrong_password_is_refused_clearly(secured):
    fleet = secured
    proc = subprocess.run(
        [sys.executable, "-m", "tonebridge.cli", "agent", "--broker", fleet.broker.url,
         "--broker-user", "a1", "--name", "a1", "--sim", "pico",
         "--state", str(fleet.tmp / "x.db")],
        env=env_password("wrong"), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "cannot connect to the broker" in proc.stderr and "Not authorized" in proc.stderr, (
        proc.stderr[-1500:]
    )

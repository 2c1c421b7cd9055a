"""The served OpenAPI description, and a bounded schema-based fuzz run (schemathesis)
against the live server in front of a simulated board: no request gets a 5xx."""

from __future__ import annotations

import base64

import httpx
import pytest
import requests
import schemathesis
from apihelpers import Server, SpyFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from tonebridge.api import build_config

USER, PW = "fuzz", "fuzz-pw"
CALL = "c-fuzz"


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    cfg = build_config(
        sims=["pico"],
        auth=[f"{USER}:{PW}"],
        listen="127.0.0.1:0",
        record=str(tmp_path_factory.mktemp("rec")),
    )
    cfg.lines[0].call_id = CALL
    cfg.rate, cfg.burst = 1000.0, 1000
    cfg.connect_timeout_ms = 300
    srv = Server(cfg, SpyFactory())
    srv.wait_boards()
    with httpx.Client(base_url=srv.base, auth=(USER, PW)) as http:
        # hang the call up first, so fuzzed digit strings are checked but cannot queue
        # minutes of real-time tones; at most one fuzzed Dial plays (then no line is free)
        assert (
            http.post(f"/v1/users/{USER}/calls/{CALL}", json={"state": "completed"}).status_code
            == 200
        )
    yield srv
    srv.stop()


def test_openapi_describes_both_apis(fuzz_server):
    doc = httpx.get(fuzz_server.base + "/openapi.json").json()
    paths = doc["paths"]
    assert "/v1/users/{user_id}/calls/{call_id}/dtmf" in paths
    assert "/api/v2/me/calls/{call_id}" in paths
    assert "/api/v2/notifications" in paths
    dtmf = paths["/v1/users/{user_id}/calls/{call_id}/dtmf"]["post"]
    body = dtmf["requestBody"]["content"]["application/json"]["schema"]
    # Catapult's own pattern, unless the request asks for the tonebridge dialect
    assert body["else"]["properties"]["dtmfOut"]["pattern"] == "^[A-D0-9#*,wW]{1,92}$"
    assert body["if"]["properties"]["dialect"] == {"const": "tonebridge"}
    # the optional timing fields (issue 15), in both APIs, with their limits
    gws = paths["/api/v2/me/calls/{call_id}"]["post"]["requestBody"]["content"]
    for props in (body["properties"], gws["application/json"]["schema"]["properties"]):
        for field in ("toneDuration", "toneInterval"):
            assert props[field]["type"] == "integer"
            assert (props[field]["minimum"], props[field]["maximum"]) == (40, 5000)
        assert "tonebridge" in props["dialect"]["enum"]
    assert "toneDuration" not in body.get("required", [])


# what the served schema says of a dial string must be what the firmware's compiler says of it
_ALPHABET = "0123456789ABCDabcd#*,wW()x "


@settings(max_examples=400, deadline=None, database=None)
@given(
    text=st.one_of(
        st.text(alphabet=_ALPHABET, min_size=0, max_size=100),
        # mostly well-formed held keys, lengths around the limits
        st.lists(
            st.one_of(
                st.sampled_from(list("159#*D,wW")),
                st.builds(
                    lambda k, ms, z: f"{k}({'0' * z}{ms})",
                    st.sampled_from(list("5A#")),
                    st.integers(0, 20000) | st.sampled_from([39, 40, 9999, 10000, 10001]),
                    st.integers(0, 2),
                ),
            ),
            min_size=1,
            max_size=15,
        ).map("".join),
    ),
    dialect=st.sampled_from([None, "tonebridge"]),
)
def test_the_schemas_dial_string_patterns_agree_with_the_compiler(fuzz_server, text, dialect):
    import jsonschema_rs
    from tonebridge_fw.dialstring import DialStringError, compile_plan

    doc = _openapi(fuzz_server)
    apis = (
        ("/v1/users/{user_id}/calls/{call_id}/dtmf", "dtmfOut", "catapult", {}),
        ("/api/v2/me/calls/{call_id}", "digits", "gws", {"operationName": "SendDtmf"}),
    )
    for path, field, own, extra in apis:
        schema = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        body = {**extra, field: text}
        if dialect is not None:
            body["dialect"] = dialect
        by_schema = jsonschema_rs.Draft202012Validator(schema["schema"]).is_valid(body)
        try:
            compile_plan(text, dialect or own)
            by_compiler = True
        except DialStringError:
            by_compiler = False
        assert by_schema == by_compiler, (path, dialect, text, by_schema, by_compiler)


_DOC = {}


def _openapi(srv):
    if srv.base not in _DOC:
        _DOC[srv.base] = httpx.get(srv.base + "/openapi.json").json()
    return _DOC[srv.base]


@pytest.mark.slow
def test_fuzz_no_server_errors(fuzz_server):
    """Every operation, positive and negative generated cases, a bounded count each."""
    base = fuzz_server.base
    schema = schemathesis.openapi.from_url(base + "/openapi.json")
    session = requests.Session()
    token = base64.b64encode(f"{USER}:{PW}".encode()).decode()
    me = session.get(base + "/api/v2/me", headers={"Authorization": "Basic " + token})
    headers = {"Authorization": "Basic " + token, "X-CSRF-TOKEN": me.headers["X-CSRF-TOKEN"]}
    seen = []

    for result in schema.get_all_operations():
        op = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=op.as_strategy(generation_mode=mode))
            @settings(
                max_examples=8,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case):
                if case.path_parameters and "user_id" in case.path_parameters:
                    case.path_parameters["user_id"] = USER  # reach body validation too
                response = case.call(base_url=base, session=session, headers=headers, timeout=30)
                seen.append(response.status_code)
                assert response.status_code < 500, (
                    case.method,
                    case.formatted_path,
                    response.status_code,
                    response.text,
                )

            try:
                run()
            except Unsatisfiable:
                # no negative cases exist for an operation without inputs
                assert mode is GenerationMode.NEGATIVE
    assert len(seen) >= 100
    assert any(code >= 400 for code in seen) and any(code < 300 for code in seen)
    # valid strings on the hung-up call never went out; at most one fuzzed Dial played
    dialed = [t for _, t in fuzz_server.factory.sends]
    assert len(dialed) <= 1

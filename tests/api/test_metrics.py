"""/metrics: Prometheus text format (parsed with prometheus-client's own parser), and its
counters move by exactly what a known sequence of requests did, against a real serve in
front of a simulated board."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

USER, PW = "ops", "ops-pw"
CALL = "c-m"


def scrape(http) -> dict:
    r = http.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m, name, **labels) -> float:
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_until(pred, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def srv(start_server):
    def tweak(cfg):
        cfg.lines[0].call_id = CALL
        cfg.rate, cfg.burst = 100.0, 100

    server = start_server(
        sims=["sim://pico-mt8880?mt8880_mode=burst"], auth=[f"{USER}:{PW}"], tweak=tweak
    )
    server.wait_boards()
    return server


def test_counters_move_by_what_the_requests_did(srv):
    dtmf = f"/v1/users/{USER}/calls/{CALL}/dtmf"
    call = srv.bridge.board.calls[CALL]
    with httpx.Client(base_url=srv.base, auth=(USER, PW), timeout=30) as http:
        assert httpx.get(srv.base + "/metrics").status_code == 401  # credentials needed
        before = scrape(http)
        # 1 sent (4 digits), 1 refused by the API, 1 refused because a burst-mode MT8880 cannot hold
        # a key, 1 with wrong credentials, 1 GET
        assert http.post(dtmf, json={"dtmfOut": "159#"}).status_code == 200
        assert http.post(dtmf, json={"dtmfOut": "15x"}).status_code == 400
        held = http.post(dtmf, json={"dtmfOut": "5(2000)", "dialect": "tonebridge"})
        assert held.status_code == 400, held.text
        assert (
            httpx.post(srv.base + dtmf, json={"dtmfOut": "1"}, auth=(USER, "no")).status_code == 401
        )
        assert http.get(f"/v1/users/{USER}/calls/{CALL}").status_code == 200
        wait_until(lambda: call.digits_sent == 4, what="159# played")
        after = scrape(http)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    total = "tonebridge_api_requests_total"
    assert delta(total, api="catapult", outcome="ok") == 2
    assert delta(total, api="catapult", outcome="validation") == 2
    assert delta(total, api="catapult", outcome="unauthenticated") == 1
    assert delta(total, api="metrics", outcome="ok") == 1  # the first scrape (this one: not yet)
    assert delta(total, api="metrics", outcome="unauthenticated") == 0  # before `before`
    assert delta("tonebridge_digits_sent_total") == 4
    assert delta("tonebridge_send_failures_total", reason="refused") == 1
    # the MT8880 board hears its line with the chip's receiver: every digit verified
    assert value(after, "tonebridge_digits_verified_total") == 4
    hist = "tonebridge_api_request_duration_seconds"
    assert delta(hist + "_count", api="catapult") == 5
    assert delta(hist + "_sum", api="catapult") > 0
    assert value(after, hist + "_bucket", api="catapult", le="+Inf") >= 5
    assert value(after, "tonebridge_line_up", line="dev-1") == 1
    assert ("tonebridge_line_queue_depth", (("line", "dev-1"),)) in after
    assert value(after, "tonebridge_link_reconnects_total", line="dev-1") == 0
    assert value(after, "tonebridge_board_faults_total", line="dev-1", code="stall") == 0


def test_queue_depth_counts_what_waits(srv):
    """Three sequences queued behind each other: the gauge says so while they play, and
    drops back to 0 when they are done."""
    dtmf = f"/v1/users/{USER}/calls/{CALL}/dtmf"
    call = srv.bridge.board.calls[CALL]
    with httpx.Client(base_url=srv.base, auth=(USER, PW), timeout=30) as http:
        for _ in range(3):
            assert http.post(dtmf, json={"dtmfOut": "1234"}).status_code == 200
        depth = value(scrape(http), "tonebridge_line_queue_depth", line="dev-1")
        assert 1 <= depth <= 3
        wait_until(lambda: call.digits_sent == 12, what="12 digits")
        wait_until(
            lambda: value(scrape(http), "tonebridge_line_queue_depth", line="dev-1") == 0,
            what="an empty queue",
        )


def test_link_reconnects_and_line_up_follow_the_link(start_server, tmp_path):
    """The board's USB-UART adapter is pulled and put back (a real pseudo-terminal): the
    line is down meanwhile and one reconnect is counted."""
    from apihelpers import SpyFactory
    from tonebridge.link.pty import PtyBridge

    path = str(tmp_path / "ttyUSB0")
    a = PtyBridge("sim://pico?hwid=e6614103e73f4a2b", link_path=path)
    a.start()
    srv = start_server(
        ports=[path], auth=[f"{USER}:{PW}"], factory=SpyFactory(reconnect_timeout=1.0)
    )
    try:
        srv.wait_boards()
        with httpx.Client(base_url=srv.base, auth=(USER, PW), timeout=30) as http:
            up = lambda: value(scrape(http), "tonebridge_line_up", line="dev-1")  # noqa: E731
            wait_until(lambda: up() == 1, what="the link up")
            assert value(scrape(http), "tonebridge_link_reconnects_total", line="dev-1") == 0
            a.unplug()
            wait_until(lambda: up() == 0, what="the link down")
            a.replug(path)
            wait_until(lambda: up() == 1, what="the link back")
            m = scrape(http)
            assert value(m, "tonebridge_link_reconnects_total", line="dev-1") == 1
    finally:
        srv.stop()
        a.stop()


def test_a_board_fault_and_the_failure_it_causes_are_counted(start_server, monkeypatch):
    """The board's PWM/DMA backend fails when it starts a sequence (a seeded hardware error in
    the simulated Pico: the firmware reports FAULT backend and aborts the sequence)."""

    def tweak(cfg):
        cfg.lines[0].call_id = CALL

    srv = start_server(sims=["pico"], auth=[f"{USER}:{PW}"], tweak=tweak)
    srv.wait_boards()
    mod = srv.sim().loader.modules["tonebridge_fw.backends.pwm_dma_rp2"]

    def broken(self, plan):
        raise OSError(5, "EIO")

    with httpx.Client(base_url=srv.base, auth=(USER, PW), timeout=30) as http:
        before = scrape(http)
        monkeypatch.setattr(mod.PwmDmaBackend, "start", broken)
        assert (
            http.post(f"/v1/users/{USER}/calls/{CALL}/dtmf", json={"dtmfOut": "12"}).status_code
            == 200
        )
        faults = lambda m: value(m, "tonebridge_board_faults_total", line="dev-1", code="backend")  # noqa: E731
        wait_until(lambda: faults(scrape(http)) == 1, what="the fault counted")
        wait_until(
            lambda: value(scrape(http), "tonebridge_send_failures_total", reason="aborted") == 1,
            what="the failure counted",
        )
        after = scrape(http)
    assert faults(before) == 0
    assert value(after, "tonebridge_digits_sent_total") == value(
        before, "tonebridge_digits_sent_total"
    )

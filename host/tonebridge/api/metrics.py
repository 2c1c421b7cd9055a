"""Prometheus metrics at /metrics (prometheus-client, text format 0.0.4).

Each app has its own registry (tests run several apps in one process):

* ``tonebridge_api_requests_total{api, outcome}``: requests answered, by API (catapult, gws,
  cometd, dashboard, metrics, other) and outcome: ``ok`` or the error kind the API answered
  with (``validation``, ``unauthenticated``, ``send_failed``, ... as in errors.KINDS), else
  ``http_<status>`` (e.g. a replayed idempotent answer);
* ``tonebridge_api_request_duration_seconds{api}``: latency histogram (headers in to
  response complete; the dashboard's event stream is not timed: it lasts as long as the page);
* ``tonebridge_digits_sent_total``: digits the boards reported played (each counted once,
  as a call's ``dtmfDigitsSent``);
* ``tonebridge_digits_verified_total``: digits a board confirmed it heard on its own line
  (its ``HEARD`` events, boards with ``verify=1``: docs/protocol.md, "Verified sends");
* ``tonebridge_send_failures_total{reason}``: sequences that did not (completely) play:
  ``refused`` (the board cannot play the string), ``not_sent`` (never reached a board),
  ``unconfirmed`` (may have reached it; reconciled later), ``aborted`` (stopped part-way,
  count known), ``uncertain`` (stopped, count only bounded), ``not_heard`` (a digit played
  but not heard on the line: a line fault);
* ``tonebridge_board_faults_total{line, code}``: FAULT events from boards;
* ``tonebridge_link_reconnects_total{line}``: times a line's link was re-established;
* ``tonebridge_line_queue_depth{line}``: jobs waiting plus sequences accepted and not ended;
* ``tonebridge_line_up{line}``: 1 while the line's board link is up.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from tonebridge.api.errors import OUTCOME

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNTIMED = ("/ui/events",)


def api_of(path: str) -> str:
    if path.startswith("/v1/"):
        return "catapult"
    if path.startswith("/api/v2/notifications"):
        return "cometd"
    if path.startswith("/api/v2"):
        return "gws"
    if path == "/metrics":
        return "metrics"
    if path in ("/", "/login", "/logout") or path.startswith(("/ui/", "/static/")):
        return "dashboard"
    return "other"


def failure_reason(failure) -> str:
    if getattr(failure, "refused", False):
        return "refused"
    if not failure.accepted:
        return "not_sent" if not failure.sent else "unconfirmed"
    if failure.at_most is not None and failure.at_most > failure.played:
        return "uncertain"
    if "not-heard" in (failure.message or ""):
        return "not_heard"  # played, but the board did not hear it on its line
    return "aborted"


class _LineCollector:
    def __init__(self, board):
        self.board = board

    def collect(self):
        depth = GaugeMetricFamily(
            "tonebridge_line_queue_depth",
            "jobs waiting for the line plus sequences accepted and not yet ended",
            labels=["line"],
        )
        up = GaugeMetricFamily(
            "tonebridge_line_up", "1 while the board link is up", labels=["line"]
        )
        reconnects = CounterMetricFamily(
            "tonebridge_link_reconnects", "board link re-established", labels=["line"]
        )
        for line in self.board.lines:
            depth.add_metric([line.device_id], line.queue_depth)
            up.add_metric([line.device_id], 1 if line.link_up else 0)
            reconnects.add_metric([line.device_id], line.reconnects)
        yield depth
        yield up
        yield reconnects


class Metrics:
    def __init__(self, board):
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "tonebridge_api_requests", "requests by API and outcome", ["api", "outcome"], registry=r
        )
        self.latency = Histogram(
            "tonebridge_api_request_duration_seconds",
            "time to answer a request",
            ["api"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.digits_sent = Counter(
            "tonebridge_digits_sent", "digits the boards reported played", registry=r
        )
        # each HEARD a board reports (a "digit" event with state "heard")
        self.digits_verified = Counter(
            "tonebridge_digits_verified", "digits a board verified on its line", registry=r
        )
        self.failures = Counter(
            "tonebridge_send_failures", "sequences that did not fully play", ["reason"], registry=r
        )
        self.faults = Counter(
            "tonebridge_board_faults", "FAULT events from boards", ["line", "code"], registry=r
        )
        r.register(_LineCollector(board))
        board.listeners.append(self.on_event)

    def on_event(self, kind, call, info):
        """Switchboard listener (event loop)."""
        if kind == "digits_counted":
            self.digits_sent.inc(info["digits"])
        elif kind == "digit" and (info.get("event") or {}).get("event") == "heard":
            self.digits_verified.inc()
        elif kind == "send_failed":
            self.failures.labels(failure_reason(info["failure"])).inc()
        elif kind == "board_fault":
            event = info.get("event") or {}
            self.faults.labels(info["line"].device_id, str(event.get("code") or "unknown")).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """ASGI middleware: counts and times every HTTP request (module docstring)."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        box: dict = {}
        token = OUTCOME.set(box)
        start = time.perf_counter()
        status = [500]

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            OUTCOME.reset(token)
            code = status[0]
            api = api_of(path)
            outcome = box.get("kind") or ("ok" if code < 400 else f"http_{code}")
            self.metrics.requests.labels(api, outcome).inc()
            if path not in UNTIMED:
                self.metrics.latency.labels(api).observe(time.perf_counter() - start)

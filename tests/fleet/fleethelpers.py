"""Helpers for the fleet tests: a real Mosquitto on a free loopback port, agents and front
ends as real `tonebridge agent` / `tonebridge serve --broker` processes (so they can be
killed), simulated Picos behind the agents recording each send as a WAV file, and an
observer that watches the broker's topics."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import paho.mqtt.client as paho
import pytest
from tonebridge.fleet.broker import Mosquitto, free_port, mosquitto_path

USER, PW = "ops", "ops-pw"


def need_tools(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing tools: {' '.join(missing)} (make sysdeps)")


def need_mosquitto():
    if mosquitto_path() is None:
        message = "mosquitto is not installed (make sysdeps installs it when root)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


class Proc:
    """A tonebridge subprocess; `wait_for(text)` reads its output until a line has it."""

    def __init__(self, args, log: Path, env=None):
        self.args = args
        self.log = log
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tonebridge.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        with open(self.log, "a") as fh:
            for line in self.proc.stdout:
                fh.write(line)
                with self._seen:
                    self.lines.append(line)
                    self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    def wait_for(self, text: str, timeout=30.0) -> str:
        deadline = time.monotonic() + timeout
        with self._seen:
            while True:
                for line in self.lines:
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(
                        f"{self.args[0]} never said {text!r}:\n{''.join(self.lines)[-2000:]}"
                    )
                self._seen.wait(min(left, 0.5))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Fleet:
    """A broker, agents and front ends in tmp; everything stopped by close()."""

    def __init__(self, tmp: Path, broker: Mosquitto | None = None):
        self.tmp = tmp
        self.broker = broker or Mosquitto(tmp / "broker").start()
        self.procs: list[Proc] = []
        self.frontends: dict[str, str] = {}  # name -> base URL

    def agent(self, name, sims=1, tone=40, gap=40, env=None, extra=(), board="pico") -> Proc:
        args = ["agent", "--broker", self.broker.url, "--name", name, "--owner", USER,
                "--record", str(self.tmp / "rec" / name), "--state", str(self.tmp / f"{name}.db"),
                *extra]  # fmt: skip
        for _ in range(sims):
            args += ["--sim", board]
        conf = self.tmp / f"{name}.toml"
        conf.write_text(f"[profiles.fleet]\ntone_ms = {tone}\ngap_ms = {gap}\n")
        args += ["--config", str(conf), "--profile", "fleet"]
        proc = Proc(args, self.tmp / f"{name}.log", env)
        self.procs.append(proc)
        proc.wait_for("serving", 60)
        return proc

    def frontend(self, name, env=None, extra=()) -> tuple[Proc, str]:
        port = free_port()
        args = ["serve", "--broker", self.broker.url, "--name", name, "--auth", f"{USER}:{PW}",
                "--listen", f"127.0.0.1:{port}", *extra]  # fmt: skip
        proc = Proc(args, self.tmp / f"fe-{name}.log", env)
        self.procs.append(proc)
        proc.wait_for("Application startup complete", 60)
        base = f"http://127.0.0.1:{port}"
        self.frontends[name] = base
        return proc, base

    def close(self):
        for proc in reversed(self.procs):
            proc.stop()
        self.broker.stop()


def http() -> httpx.Client:
    return httpx.Client(auth=(USER, PW), timeout=30)


def cat_url(base, call):
    return f"{base}/v1/users/{USER}/calls/{call}"


def wait_line_ready(base, call, timeout=60.0) -> dict:
    """Until the call is listed with its board's hardware id and no fault."""
    deadline = time.monotonic() + timeout
    with http() as h:
        while True:
            r = h.get(cat_url(base, call))
            if r.status_code == 200:
                data = r.json()
                if data.get("lineHardwareId") and not data.get("lineFault"):
                    return data
            assert time.monotonic() < deadline, f"line of {call} never ready: {r.text}"
            time.sleep(0.1)


def wait_digits_sent(base, call, n, timeout=30.0) -> dict:
    return wait_field(base, call, "dtmfDigitsSent", n, timeout)


def wait_field(base, call, name, n, timeout=30.0) -> dict:
    """The Catapult call once its count `name` reached n (bounded)."""
    deadline = time.monotonic() + timeout
    with http() as h:
        while True:
            data = h.get(cat_url(base, call)).json()
            if (data.get(name) or 0) >= n:
                return data
            assert time.monotonic() < deadline, data
            time.sleep(0.1)


def decode_dir(directory: Path, call: str = "") -> str:
    """Every recording (of `call`: all when empty), in send order, decoded by multimon-ng."""
    from tonebridge.analysis import decode_multimon, read_wav

    def number(p):
        return int(p.stem.rsplit("-", 1)[1])

    out = ""
    for wav in sorted(directory.glob(f"{call}*.wav"), key=number):
        out += decode_multimon(*read_wav(wav))
    return out


def wait_recordings(directory: Path, n: int, timeout=30.0):
    deadline = time.monotonic() + timeout
    while len(list(directory.glob("*.wav"))) < n:
        assert time.monotonic() < deadline, f"{n} recordings not written in {directory}"
        time.sleep(0.05)
    time.sleep(0.3)  # let the last one be closed


class Observer:
    """A plain MQTT client on the broker: what was published on `topics` (a queue)."""

    def __init__(self, broker: Mosquitto, topics=("tonebridge/#",), user=None, password=None):
        self.messages: queue.Queue = queue.Queue()
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=f"obs-{os.getpid()}-{id(self)}"
        )
        if user:
            self.client.username_pw_set(user, password)
        ready = threading.Event()

        def connected(c, u, flags, reason, props):
            c.subscribe([(t, 1) for t in topics])

        self.client.on_connect = connected
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload, m.retain))
        self.client.connect("127.0.0.1", broker.port, 5)
        self.client.loop_start()
        assert ready.wait(10), "observer did not subscribe"

    def wait(self, pred, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                item = self.messages.get(timeout=left)
            except queue.Empty:
                return None
            if pred(*item):
                return item

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()

"""`tonebridge serve` as a user starts it (`make run` runs `serve --demo`)."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from apihelpers import need_tools, wait_for_file
from tonebridge.analysis import decode_multimon, read_wav
from tonebridge.cli import main

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_refuses_without_credentials_or_lines(capsys):
    assert main(["serve", "--sim", "pico"]) == 2
    assert "no credentials" in capsys.readouterr().err
    assert main(["serve", "--auth", "a:b"]) == 2
    assert "no lines" in capsys.readouterr().err
    assert main(["serve", "--auth", "a:b", "--sim", "pico", "--listen", "x"]) == 2
    assert "HOST:PORT" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_prints_a_working_curl_line_and_records(tmp_path):
    need_tools("curl", "multimon-ng")
    port = free_port()
    exe = Path(sys.executable).with_name("tonebridge")
    proc = subprocess.Popen(
        [str(exe), "serve", "--demo", "--listen", f"127.0.0.1:{port}"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        banner = []
        curl_line = None
        deadline = time.monotonic() + 60
        while curl_line is None:
            assert time.monotonic() < deadline, banner
            line = proc.stdout.readline()
            assert line, "serve exited: " + proc.stderr.read()
            banner.append(line)
            if line.strip().startswith("curl "):
                curl_line = line.strip()
        text = "".join(banner)
        assert f"http://127.0.0.1:{port}" in text
        creds = re.search(r"credentials: (\S+):(\S+)", text)
        assert creds, text
        call_id = re.search(r"call id (\S+),", text).group(1)
        # wait until the line's board is up (sends are answered within 3 s, and a simulated
        # board on a loaded machine can take longer to boot), then run the printed line
        deadline = time.monotonic() + 60
        while True:
            try:
                devices = httpx.get(
                    f"http://127.0.0.1:{port}/api/v2/me/devices", auth=creds.groups(), timeout=5
                ).json()["devices"]
                if all(d["deviceState"] == "Active" for d in devices):
                    break
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            assert time.monotonic() < deadline, "the demo line did not come up"
            time.sleep(0.1)
        result = subprocess.run(shlex.split(curl_line), capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "< HTTP/1.1 200" in result.stderr, result.stderr
        wav = wait_for_file(tmp_path / "recordings" / f"{call_id}-1.wav")
        x, rate = read_wav(wav)
        assert decode_multimon(x, rate) == "159#"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert proc.returncode in (0, -signal.SIGINT, 130)


@pytest.mark.slow
def test_serve_from_a_toml_config(tmp_path):
    port = free_port()
    cfg = tmp_path / "serve.toml"
    cfg.write_text(
        f"""
listen = "127.0.0.1:{port}"
auth = ["ops:pw-1", "other:pw-2"]
[[lines]]
url = "sim://pico"
call_id = "c-from-toml"
device_id = "desk-9"
owner = "ops"
"""
    )
    exe = Path(sys.executable).with_name("tonebridge")
    proc = subprocess.Popen(
        [str(exe), "serve", "--config", str(cfg)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/v1/users/ops/calls", auth=("ops", "pw-1"))
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert [c["id"] for c in r.json()] == ["c-from-toml"]
        r = httpx.get(f"http://127.0.0.1:{port}/v1/users/other/calls", auth=("other", "pw-2"))
        assert r.json() == []
        r = httpx.get(f"http://127.0.0.1:{port}/api/v2/me/devices", auth=("ops", "pw-1"))
        assert [d["id"] for d in r.json()["devices"]] == ["desk-9"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.slow
def test_demo_prints_the_dashboard_first_and_logs_json(tmp_path):
    """The first line serve prints is the dashboard's address (before the curl line); with
    --log-format json every log line on stderr is one JSON object."""
    port = free_port()
    exe = Path(sys.executable).with_name("tonebridge")
    proc = subprocess.Popen(
        [str(exe), "serve", "--demo", "--listen", f"127.0.0.1:{port}", "--log-format", "json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        first = proc.stdout.readline()
        assert first.startswith(f"dashboard: http://127.0.0.1:{port}/"), first
        banner = [first]
        while not banner[-1].strip().startswith("curl "):
            line = proc.stdout.readline()
            assert line, "serve exited: " + proc.stderr.read()
            banner.append(line)
        creds = re.search(r"credentials: (\S+):(\S+)", "".join(banner)).groups()
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/", auth=creds, timeout=5)
                if r.status_code == 200 and "link-up" in r.text:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the dashboard did not show the line up"
            time.sleep(0.2)
        assert "sim://pico" in r.text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    records = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert records, "no log lines"
    assert all({"ts", "level", "logger", "message"} <= set(r) for r in records)
    assert any(
        r["logger"] == "uvicorn.access" and '"GET / HTTP/1.1" 200' in r["message"] for r in records
    )

"""A Mosquitto broker process on loopback, with optional password and ACL files: what the
tests and `make fleet` start (a real site runs its own; docs/fleet.md)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tonebridge.fleet import topics


def mosquitto_path() -> str | None:
    """The mosquitto binary (Debian puts it in /usr/sbin, off a normal user's PATH)."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def board_user(hwid: str) -> str:
    """The broker user of a Wi-Fi board (docs/fleet.md, "Wi-Fi boards")."""
    return f"board-{hwid}"


def acl_text(frontends, agents: dict[str, list[str]], wifi: dict[str, str] | None = None) -> str:
    """Mosquitto ACL lines: each front end reads every line's state and events, sends
    commands and reads its own replies; each agent only its own status and its own lines
    (`agents`: user -> device ids). A front end's broker user and its --name are the same name
    here, and so is an agent's user and its --name. `wifi`: Wi-Fi board hwid -> the agent that
    fronts it: the board (user `board-{hwid}`) reads its rx and writes its tx and status
    topics, that agent the other way round."""
    p = topics.PREFIX
    out = []
    for fe in frontends:
        out += [
            f"user {fe}",
            f"topic read {p}/agent/+/status",
            f"topic read {p}/line/+/state",
            f"topic read {p}/line/+/event",
            f"topic write {p}/line/+/cmd",
            f"topic read {p}/frontend/{fe}/reply",
            "",
        ]
    for agent, devices in agents.items():
        out += [f"user {agent}", f"topic readwrite {p}/agent/{agent}/status"]
        for d in devices:
            out += [
                f"topic readwrite {p}/line/{d}/state",
                f"topic write {p}/line/{d}/event",
                f"topic read {p}/line/{d}/cmd",
            ]
        for hwid, fronting in (wifi or {}).items():
            if fronting == agent:
                out += [
                    f"topic write {p}/board/{hwid}/rx",
                    f"topic read {p}/board/{hwid}/tx",
                    f"topic read {p}/board/{hwid}/status",
                ]
        out += [f"topic write {p}/frontend/+/reply", ""]
    for hwid in wifi or {}:
        out += [
            f"user {board_user(hwid)}",
            f"topic read {p}/board/{hwid}/rx",
            f"topic write {p}/board/{hwid}/tx",
            f"topic readwrite {p}/board/{hwid}/status",
            "",
        ]
    return "\n".join(out)


def write_auth(directory, users: dict[str, str], acl: str) -> tuple[Path, Path]:
    """Mosquitto's password file (hashed by mosquitto_passwd) and ACL file."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    passwd, aclfile = directory / "passwd", directory / "acl"
    passwd.write_text("".join(f"{u}:{pw}\n" for u, pw in users.items()))
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    subprocess.run([tool, "-U", str(passwd)], check=True, capture_output=True)
    aclfile.write_text(acl + "\n")
    return passwd, aclfile


class Mosquitto:
    """mosquitto -c CONF on 127.0.0.1:PORT; start(), stop(), restart() (same port)."""

    def __init__(self, directory, port: int | None = None, passwd=None, acl=None, tls=None):
        """`tls`: (cafile, certfile, keyfile): the listener speaks TLS only (mqtts://)."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        conf = [f"listener {self.port} 127.0.0.1", "persistence false", "log_dest stderr"]
        conf += ["set_tcp_nodelay true"]  # no Nagle delay on small messages (40 ms otherwise)
        if os.geteuid() == 0:  # started as root it would become "mosquitto", which cannot
            conf += ["user root"]  # read the files in our private temporary directories
        if passwd is not None:
            conf += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            conf += ["allow_anonymous true"]
        if acl is not None:
            conf += [f"acl_file {acl}"]
        self.tls = tls is not None
        if tls is not None:
            conf += [f"cafile {tls[0]}", f"certfile {tls[1]}", f"keyfile {tls[2]}"]
        self.conf = self.directory / "mosquitto.conf"
        self.conf.write_text("\n".join(conf) + "\n")
        self.log = self.directory / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> Mosquitto:
        exe = mosquitto_path()
        if exe is None:
            raise FileNotFoundError(
                "mosquitto is not installed (Debian: apt-get install mosquitto)"
            )
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([exe, "-c", str(self.conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"mosquitto did not start: {self.log.read_text()[-800:]}"
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def env_password(password: str) -> dict:
    return {**os.environ, "TONEBRIDGE_BROKER_PASSWORD": password}

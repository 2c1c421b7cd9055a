"""`make fleet`: a demo fleet on this machine (docs/fleet.md). Mosquitto on a free loopback
port with a password and ACL file, two agents each with a simulated Pico (sim://pico), one
simulated Pico W on the broker itself (Wi-Fi, umqtt.simple; run in this process) fronted by a
third agent (--port mqtt://...), one front end on LISTEN; prints the curl lines and runs until
Ctrl-C. The Pico W's line recording is written to DIR/recordings/wifi-line.wav at the end.

    python -m tonebridge.fleet.demo [--listen 127.0.0.1:8080] [--dir build/fleet-demo]
"""

from __future__ import annotations

import argparse
import secrets
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from tonebridge.fleet.broker import (
    Mosquitto,
    acl_text,
    board_user,
    env_password,
    write_auth,
)

USER, SECRET = "demo", "tonebridge-demo"
AGENTS = ("agent-a", "agent-b")
WIFI_AGENT = "agent-w"
WIFI_HWID = "e6614103e7d0f1e5"
FRONTEND = "fe-1"


def start_wifi_board(work: Path, broker: Mosquitto, password: str):
    """A simulated Pico W that joins the demo's Wi-Fi and reaches the broker itself."""
    from tonebridge.sim import SimBoard, VirtualClock
    from tonebridge.sim.mplib import install_umqtt

    fs = work / "picow-flash"
    if fs.exists():
        import shutil

        shutil.rmtree(fs)
    fs.mkdir(parents=True)
    install_umqtt(fs)  # as `mpremote mip install umqtt.simple` does on a real one
    cfg = {
        "wifi": {"ssid": "demo-lan", "password": "demo-wifi"},
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "user": board_user(WIFI_HWID),
                 "password": password},
    }  # fmt: skip
    return SimBoard("picow", VirtualClock(), paced=True, config=cfg, fs_root=fs,
                    hwid=WIFI_HWID, access_points={"demo-lan": "demo-wifi"})  # fmt: skip


def wait_ready(base, calls, timeout=90.0):
    """Until the front end lists every line with its board's hardware id and no fault."""
    import httpx

    deadline = time.monotonic() + timeout
    with httpx.Client(auth=(USER, SECRET), timeout=5) as h:
        for call in calls:
            while True:
                try:
                    data = h.get(f"{base}/v1/users/{USER}/calls/{call}").json()
                    if data.get("lineHardwareId") and not data.get("lineFault"):
                        break
                except (httpx.HTTPError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    print(f"(line of {call} not ready after {timeout:g} s)", flush=True)
                    return
                time.sleep(0.2)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tonebridge.fleet.demo", description=__doc__)
    ap.add_argument("--listen", default="127.0.0.1:8080")
    ap.add_argument("--dir", default="build/fleet-demo", help="broker files, state, recordings")
    args = ap.parse_args(argv)
    work = Path(args.dir).resolve()
    # the front end's broker user is also its --name: the ACL lets it read its own replies
    agents = (*AGENTS, WIFI_AGENT)
    users = {name: secrets.token_hex(8) for name in (FRONTEND, *agents, board_user(WIFI_HWID))}
    acl = acl_text([FRONTEND], {a: [f"{a}-1"] for a in agents}, {WIFI_HWID: WIFI_AGENT})
    passwd, aclfile = write_auth(work / "broker", users, acl)
    broker = Mosquitto(work / "broker", passwd=passwd, acl=aclfile).start()
    procs = []
    tb = [sys.executable, "-m", "tonebridge.cli"]
    wifi = None
    try:
        wifi = start_wifi_board(work, broker, users[board_user(WIFI_HWID)])
        link = f"mqtt://{WIFI_AGENT}@127.0.0.1:{broker.port}/{WIFI_HWID}"
        procs.append(subprocess.Popen(
            [*tb, "agent", "--broker", broker.url, "--broker-user", WIFI_AGENT, "--name",
             WIFI_AGENT, "--port", link, "--owner", USER,
             "--state", str(work / f"{WIFI_AGENT}.db")],
            env=env_password(users[WIFI_AGENT]),
        ))  # fmt: skip
        for name in AGENTS:
            procs.append(subprocess.Popen(
                [*tb, "agent", "--broker", broker.url, "--broker-user", name, "--name", name,
                 "--port", "sim://pico", "--owner", USER, "--record", str(work / "recordings"),
                 "--state", str(work / f"{name}.db")],
                env=env_password(users[name]),
            ))  # fmt: skip
        procs.append(subprocess.Popen(
            [*tb, "serve", "--broker", broker.url, "--broker-user", FRONTEND, "--name", FRONTEND,
             "--auth", f"{USER}:{SECRET}", "--listen", args.listen],
            env=env_password(users[FRONTEND]), stdout=subprocess.DEVNULL,
        ))  # fmt: skip
        base = f"http://{args.listen}"
        wait_ready(base, [f"c-{a}-1" for a in agents])
        cred = shlex.quote(f"{USER}:{SECRET}")
        print(f"\ntonebridge demo fleet: broker {broker.url} (users and ACL in {work}/broker),")
        print(f"agents {', '.join(AGENTS)} with a simulated Pico each, {WIFI_AGENT} fronting a")
        print(
            f"simulated Pico W on Wi-Fi (hwid {WIFI_HWID}, on the broker itself), front end {base}"
        )
        print(
            f"recordings: {work}/recordings/<callId>-<n>.wav, the Pico W's: wifi-line.wav at the end"
        )
        print("Try (Catapult, a line on each agent):")
        for name in agents:
            print(
                f"  curl -X POST {base}/v1/users/{USER}/calls/c-{name}-1/dtmf -u {cred} "
                '-H "Content-type: application/json" -d \'{"dtmfOut": "1234#"}\''
            )
        print(f"  curl -u {cred} {base}/v1/users/{USER}/calls")
        print("Ctrl-C stops the fleet.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if wifi is not None:
            (work / "recordings").mkdir(parents=True, exist_ok=True)
            with wifi.runtime.lock:
                wifi.recorder.write_wav(work / "recordings" / "wifi-line.wav")
            wifi.close()
        broker.stop()
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(main())

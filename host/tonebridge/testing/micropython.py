"""Run code and firmware unit tests under the real MicroPython WebAssembly port.

The runtime is the npm package @micropython/micropython-webassembly-pyscript, driven
by Node through mp_run.mjs (beside this file). Firmware files are copied into the
MicroPython filesystem, so what runs is the firmware source itself, compiled and
executed by MicroPython's own compiler and VM.
"""

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
FIRMWARE_DIR = REPO / "firmware"
RUNNER = Path(__file__).with_name("mp_run.mjs")
RESULT_MARK = "@@tonebridge-result "


class MicroPythonUnavailable(RuntimeError):
    """Node or the MicroPython WebAssembly package is missing."""


@dataclass
class MPRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _check_runtime() -> str:
    node = shutil.which("node")
    if node is None:
        raise MicroPythonUnavailable("node is not installed (run `make setup`)")
    pkg = REPO / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"
    if not pkg.is_dir():
        raise MicroPythonUnavailable(f"{pkg} is missing (run `make setup`, which runs `npm ci`)")
    return node


def run_micropython(code: str, mounts=None, timeout: float = 120.0) -> MPRun:
    """Run `code` under MicroPython. `mounts` maps host directories to MicroPython paths;
    by default firmware/ is mounted at /lib (as on a board) and /lib is on sys.path."""
    node = _check_runtime()
    if mounts is None:
        mounts = {FIRMWARE_DIR: "/lib"}
    argv = [node, str(RUNNER)]
    for host_dir, mp_dir in mounts.items():
        argv += ["--mount", f"{Path(host_dir).resolve()}:{mp_dir}"]
    proc = subprocess.run(
        argv, input=code, capture_output=True, text=True, timeout=timeout, cwd=REPO
    )
    return MPRun(proc.returncode, proc.stdout, proc.stderr)


# Driver run inside MicroPython: imports one test module, runs each test_* function,
# prints one JSON result line per test (traceback captured with sys.print_exception).
_DRIVER = """
import sys, io, json
sys.path.insert(0, {test_dir!r})
sys.path.insert(0, '/lib')
mod = __import__({module!r})
names = [n for n in sorted(dir(mod)) if n.startswith('test_') and callable(getattr(mod, n))]
for name in names:
    buf = io.StringIO()
    ok = True
    try:
        getattr(mod, name)()
    except BaseException as e:
        ok = False
        sys.print_exception(e, buf)
    print({mark!r} + json.dumps({{'name': name, 'ok': ok, 'traceback': buf.getvalue()}}))
"""


def run_test_module(test_file: Path, timeout: float = 300.0):
    """Run every test_* function of a firmware test module under MicroPython.

    Returns (results, run): results maps test name -> (ok, traceback); `run` is the raw
    MPRun (its stderr holds an import-time traceback when the module failed to load)."""
    test_file = Path(test_file).resolve()
    code = _DRIVER.format(test_dir="/tests", module=test_file.stem, mark=RESULT_MARK)
    run = run_micropython(code, {FIRMWARE_DIR: "/lib", test_file.parent: "/tests"}, timeout=timeout)
    results = {}
    for line in run.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            rec = json.loads(line[len(RESULT_MARK) :])
            results[rec["name"]] = (rec["ok"], rec["traceback"])
    return results, run

"""Test support: run a script under MicroPython's unix port (the micropython_unix dev
dependency: a real native emitter for the viper kernels) and return what it printed."""

import subprocess
import sys


def run_script(script) -> str:
    import micropython_unix  # noqa: F401  (the dev dependency; fails loudly if missing)

    proc = subprocess.run(
        [sys.executable, "-m", "micropython_unix", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout

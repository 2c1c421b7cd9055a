"""Packaging for MicroPython users: firmware/package.json (mip) and firmware/manifest.py
(freezing) name exactly the files `tonebridge deploy` installs, and `mpremote mip install`
with that package.json puts them on a board (a simulated Pico behind a pty, whose REPL
answers mpremote as MicroPython's does)."""

import filecmp
import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from tonebridge import deploy

FW = Path(deploy.FIRMWARE_DIR)


def _staged_lib_files(tmp_path) -> list[str]:
    staged = deploy.stage("pico", {}, tmp_path, mpy=False)
    lib = staged / "lib"
    return sorted(p.relative_to(lib).as_posix() for p in lib.rglob("*") if p.is_file())


def test_package_json_lists_exactly_what_deploy_installs(tmp_path):
    pkg = json.loads((FW / "package.json").read_text())
    assert pkg == deploy.package_json(), (
        "firmware/package.json is stale: python -m tonebridge.deploy package-json"
    )
    dests = [d for d, _src in pkg["urls"]]
    assert dests == _staged_lib_files(tmp_path)  # what lands under /lib, either way
    for _dest, src in pkg["urls"]:  # sources relative to package.json, as mip resolves them
        assert not src.startswith(("http:", "https:", "github:", "/")) and (FW / src).is_file()
    import tonebridge_fw.engine

    assert pkg["version"] == tonebridge_fw.engine.FW_VERSION


def test_a_new_firmware_file_makes_package_json_stale(tmp_path):
    # the check above can fail: a module added to the package but not to package.json
    fw = tmp_path / "firmware"
    shutil.copytree(FW, fw)
    before = deploy.package_json(fw)
    (fw / "tonebridge_fw" / "extra.py").write_text("X = 1\n")
    after = deploy.package_json(fw)
    assert ["tonebridge_fw/extra.py", "tonebridge_fw/extra.py"] in after["urls"]
    assert after != before


def test_manifest_freezes_the_same_package(tmp_path):
    """Run manifest.py as MicroPython's manifestfile tool does (exec with its API functions):
    package(path, base_path=".") freezes base_path/path/**/*.py relative to the manifest."""
    calls = []
    api = {
        "include": lambda path, **kw: calls.append(("include", path)),
        "package": lambda path, files=None, base_path=".", opt=None: calls.append(
            ("package", path, base_path, files)
        ),
        "module": lambda *a, **kw: calls.append(("module", a)),
        "require": lambda *a, **kw: calls.append(("require", a)),
        "metadata": lambda **kw: None,
    }
    manifest = FW / "manifest.py"
    exec(compile(manifest.read_text(), str(manifest), "exec"), api)
    assert ("include", "$(PORT_DIR)/boards/manifest.py") in calls  # the port's own modules stay
    pkgs = [c for c in calls if c[0] == "package"]
    assert pkgs == [("package", "tonebridge_fw", ".", None)]
    frozen = sorted(
        p.relative_to(FW).as_posix() for p in (FW / pkgs[0][2] / pkgs[0][1]).rglob("*.py")
    )
    assert frozen == _staged_lib_files(tmp_path)
    assert not [c for c in calls if c[0] in ("module", "require")]  # nothing else frozen


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def _mip(port, source):
    return subprocess.run(
        [sys.executable, "-m", "mpremote", "connect", port, "mip", "install", source],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.slow
def test_mpremote_mip_install_from_a_path_and_from_a_url_onto_a_simulated_board():
    from tonebridge.link.pty import PtyBridge

    bridge = PtyBridge("sim://pico")
    port = bridge.start()
    srv = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(FW))
    )
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/package.json"
    want = deploy.package_files()
    try:
        lib = Path(bridge.board.fs_root) / "lib"
        for source in (str(FW / "package.json"), url):  # a local clone; a web server (as GitHub)
            shutil.rmtree(lib, ignore_errors=True)
            proc = _mip(port, source)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            got = sorted(p.relative_to(lib).as_posix() for p in lib.rglob("*") if p.is_file())
            assert got == want, (source, proc.stdout)
            for f in want:  # byte for byte what the repository holds
                assert filecmp.cmp(lib / f, FW / f, shallow=False), f
    finally:
        srv.shutdown()
        srv.server_close()
        bridge.stop()

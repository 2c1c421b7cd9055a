"""Suite-wide configuration: the real-MicroPython runner and the hardware-in-the-loop option."""

import os
import tempfile

import pytest

pytest_plugins = ["tonebridge.testing.pytest_micropython", "pytester"]


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path, monkeypatch):
    """`tonebridge serve` keeps durable state under $XDG_STATE_HOME by default: every test
    (and every serve it starts) gets its own, never the user's or another test's."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))


def pytest_configure(config):
    """Module- and session-scoped fixtures (a fuzzed server, say) run outside the per-test
    fixture above: the whole session gets a private state directory too, so no test ever
    reads or writes the user's ~/.local/state/tonebridge (a state file written by another
    tonebridge version there once failed the suite)."""
    if not os.environ.get("TONEBRIDGE_TEST_STATE_HOME"):
        path = tempfile.mkdtemp(prefix="tonebridge-test-state-")
        os.environ["TONEBRIDGE_TEST_STATE_HOME"] = path  # inherited by pytester/xdist children
        os.environ["XDG_STATE_HOME"] = path


def pytest_addoption(parser):
    parser.addoption(
        "--port",
        action="store",
        default=None,
        help="serial port (or pyserial URL) of a real tonebridge board for the hil tests",
    )
    parser.addoption(
        "--board",
        action="store",
        default=None,
        help="board profile the hil board should report (e.g. pico); not checked when omitted",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--port"):
        return
    skip = pytest.mark.skip(
        reason="hardware-in-the-loop: no board given (run `make hil PORT=/dev/ttyACM0 BOARD=pico`)"
    )
    for item in items:
        if "hil" in item.keywords:
            item.add_marker(skip)

"""Suite-wide configuration: the real-MicroPython runner and the hardware-in-the-loop option."""

import pytest

pytest_plugins = ["tonebridge.testing.pytest_micropython", "pytester"]


def pytest_addoption(parser):
    parser.addoption(
        "--port",
        action="store",
        default=None,
        help="serial port (or pyserial URL) of a real tonebridge board for the hil tests",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--port"):
        return
    skip = pytest.mark.skip(
        reason="hardware-in-the-loop: no board given (run `make test PYTEST_ARGS='--port /dev/ttyACM0'`)"
    )
    for item in items:
        if "hil" in item.keywords:
            item.add_marker(skip)

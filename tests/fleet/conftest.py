"""Fixtures of the fleet tests (helpers in fleethelpers.py)."""

from __future__ import annotations

import pytest
from fleethelpers import Fleet, need_mosquitto


@pytest.fixture
def fleet(tmp_path):
    need_mosquitto()
    f = Fleet(tmp_path)
    yield f
    f.close()

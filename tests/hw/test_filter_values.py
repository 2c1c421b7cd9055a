"""One description of the rp2 boards' tone output chain: hw/filter.json.

The netlists' values (hw/spice/filter_values.inc) are generated from it, and the firmware's
copy (tonebridge_fw.outchain.PWM_CHAIN, which a board needs because it cannot read hw/) is the
same, value for value, for every component the chain uses; the firmware's transfer function
(written from the circuit) and the simulator's (tonebridge.sim.analog, built from the stages)
agree. None of this needs ngspice, so it runs wherever the suite runs; tests/hw/test_spice.py
checks the circuits themselves."""

import json

import numpy as np
import pytest
from tonebridge import spice
from tonebridge.sim.analog import FILTER_JSON, load_filter_spec, response
from tonebridge_fw import outchain
from tonebridge_fw.keypad import COL_HZ, ROW_HZ

DTMF = list(ROW_HZ) + list(COL_HZ)


def _used(spec):
    used = set()
    for st in spec["stages"]:
        used |= {v for k, v in st.items() if isinstance(v, str) and k not in ("type", "name")}
    return used


def test_netlist_values_are_filter_json():
    assert spice.VALUES_INC.read_text() == spice.values_inc(), (
        "hw/spice/filter_values.inc is stale: run python -m tonebridge.spice"
    )


def test_filter_json_names_every_component_its_stages_use():
    spec = json.loads(FILTER_JSON.read_text())
    assert _used(spec) <= set(spec["components"]), _used(spec) - set(spec["components"])


def test_firmware_copy_of_the_values_is_filter_json():
    spec = load_filter_spec()
    comps = spec["components"]
    # every component of the tone path is in the copy, with the same value
    assert _used(spec) <= set(outchain.PWM_CHAIN), _used(spec) - set(outchain.PWM_CHAIN)
    for name, value in outchain.PWM_CHAIN.items():
        assert comps[name] == value, name


def test_firmware_response_is_the_simulators():
    # two independent derivations of the same circuit (firmware: the compensation; sim: the line)
    h = np.abs(response(load_filter_spec(), DTMF))
    for f, hs in zip(DTMF, h, strict=True):
        assert outchain.gain(f) == pytest.approx(hs, rel=1e-9), f


def test_a_changed_value_shows_in_both_responses():
    # the comparison above can fail: one component changed on one side only moves the response
    v = dict(outchain.PWM_CHAIN, C6=outchain.PWM_CHAIN["C6"] * 1.1)
    h = np.abs(response(load_filter_spec(), DTMF))
    assert max(abs(outchain.gain(f, v) / hs - 1) for f, hs in zip(DTMF, h, strict=True)) > 1e-3

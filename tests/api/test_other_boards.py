"""The bridge is backend-independent: MT8880 and I2S boards behind it play the same way."""

from __future__ import annotations

import pytest
from apihelpers import wait_for_file
from tonebridge.analysis import decode_multimon, read_wav


@pytest.mark.slow
def test_mt8880_and_i2s_boards_behind_the_bridge(start_server, tmp_path):
    srv = start_server(sims=["pico-mt8880", "esp32-i2s"], auth=["multi:pw"])
    srv.wait_boards()
    with srv.client("multi", "pw") as http:
        for line, digits in zip(srv.cfg.lines, ("159#", "*0D"), strict=True):
            r = http.post(f"/v1/users/multi/calls/{line.call_id}/dtmf", json={"dtmfOut": digits})
            assert r.status_code == 200, r.text
        for line, digits in zip(srv.cfg.lines, ("159#", "*0D"), strict=True):
            x, rate = read_wav(wait_for_file(tmp_path / "rec" / f"{line.call_id}-1.wav"))
            assert decode_multimon(x, rate) == digits, line.url

"""Heap use of a full 92-character send, measured under real MicroPython and printed.

The firmware's render path (dial string -> plan -> Renderer filling the backend-sized
buffers) runs in the MicroPython WebAssembly port; gc.mem_alloc() is sampled after every
step, and every fill() runs under micropython.heap_lock(). The budget (24 KB high-water)
is tracked by `make bench` (docs/benchmarks.md); this test prints the figure and fails only
on what would break a board: any allocation in the sample path, or a heap use no RP2040 /
ESP32 MicroPython heap (~100-200 KB free) could hold next to the rest of the firmware.
"""

import pytest
from tonebridge.bench.footprint import TEXT_92, backend_buffers, heap_case


@pytest.mark.parametrize("backend", ["pwm_dma", "i2s"])
def test_heap_of_a_92_character_send_under_micropython(backend, capsys):
    assert len(TEXT_92) == 92
    res = heap_case(*backend_buffers()[backend])
    with capsys.disabled():  # shown in every `make test` run, not only with -s
        print(
            f"\n{backend}: 92-character send under MicroPython: heap high-water "
            f"{res['heap_hw']} B (plan {res['heap_plan']} B, renderer {res['heap_renderer']} B), "
            f"{res['bytes_allocated_in_fills']} B allocated by fill(), "
            f"{res['locked_alloc_errors']} of {res['fills']} fill() calls failed under heap_lock"
        )
    assert res["fills"] > 10 and res["locked_alloc_errors"] == 0
    assert res["bytes_allocated_in_fills"] == 0
    assert 0 < res["heap_hw"] < 64 * 1024

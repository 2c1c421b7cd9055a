"""Test support shared by the suite and the benchmarks (real MicroPython runner)."""

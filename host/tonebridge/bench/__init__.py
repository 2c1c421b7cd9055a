"""`make bench` / `python -m tonebridge.bench`: how good tonebridge's line signal is, how fast
the bridge answers, how far it scales and how small the firmware is, measured in one run on
simulated boards (and optionally a real one) next to reference generators.
See docs/benchmarks.md for how to read the table.
"""

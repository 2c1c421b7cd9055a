"""The switches in series with a simulated board's line (hw/line-interface.md).

``LineSwitches`` turns the board's hook and mute pin levels into the recorder's gates (and the
self-test loop relay, the seeded line faults); ``LineInterface`` feeds it from the simulator's
pin bus (the emulated board, ``tonebridge.emu``, feeds ``LineSwitches`` from the emulated
chip's GPIO).
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np


class LineSwitches:
    """Hook relay and tone mute of a board (hw/line-interface.md) as switches in the line.

    hook_pin high = relay energised = off-hook (line connected); a pull-down keeps the board
    on-hook while the pin floats (reset, crash). mute_pin high = tone path shunted; a pull-up
    keeps it muted while floating. Before the firmware touches them: on-hook and muted.
    Pin levels come in through ``hook_changed`` / ``mute_changed`` (1, 0 or None =
    floating), from the simulator's pin bus (``LineInterface``) or from an emulated chip's
    GPIO (``tonebridge.emu``); the relay closes ``relay_us`` after its pin.
    """

    def __init__(self, recorder, profile: dict, t_us: float, relay_us: int = 0):
        self.recorder = recorder
        self.hook_pin = profile.get("hook_pin")
        self.mute_pin = profile.get("mute_pin")
        self.relay_us = relay_us
        self.off_hook = False
        self.muted = True
        self.hook_log: list[tuple[int, bool]] = []  # (t_us, off_hook)
        self.relay_fails = False
        self.loop_pin = profile.get("loop_pin")
        self.loop_log: list[tuple[float, bool]] = []  # (t_us, closed): self-test loop relay K2
        self._loop_table = None  # loop_at's arrays, for len(loop_log) events
        recorder.keep = self._looped_between
        recorder.set_gate("hook", t_us, False)
        recorder.set_gate("mute", t_us, self.mute_pin is None)
        if self.hook_pin is None:
            recorder.set_gate("hook", t_us, True)

    # ---- seeded faults (tests): what the receive path must catch ----------------------------
    FAULTS = ("relay", "transformer", "attenuation")

    def seed_fault(self, kind: str, t_us: float, value=None) -> None:
        """``relay``: the hook relay no longer closes (contacts burnt, coil open);
        ``transformer``: T1 open (nothing passes to or from the line); ``attenuation``: the
        line loses ``value`` dB between the board and the exchange (and the sense hears the
        same line)."""
        if kind == "relay":
            self.relay_fails = True
            if self.off_hook:
                self.recorder.set_gate("hook", max(t_us, self._last_gate_us()), False)
        elif kind == "transformer":
            self.recorder.set_gate("xfmr", max(t_us, self._last_gate_us("xfmr")), False)
        elif kind == "attenuation":
            self.recorder.gain = 10 ** (-float(value) / 20)
        else:
            raise ValueError(f"unknown line fault {kind!r} (known: {', '.join(self.FAULTS)})")

    def _last_gate_us(self, name: str = "hook") -> float:
        ev = self.recorder.gate_log(name)
        return ev[-1][0] if ev else 0.0

    @property
    def line_gain(self) -> float:
        return self.recorder.gain

    def loop_changed(self, level, t_us) -> None:
        closed = level == 1  # floating -> pull-down -> open
        if closed != (self.loop_log[-1][1] if self.loop_log else False):
            self.loop_log.append((t_us + self.relay_us, closed))

    def _looped_between(self, t0: float, t1: float) -> bool:
        closed = False
        for t, c in self.loop_log:
            if t <= t0:
                closed = c
            elif t <= t1:
                return True
            else:
                break
        return closed

    def loop_at(self, t_us) -> np.ndarray:
        """1.0 where the self-test loop relay K2 is closed."""
        t_us = np.asarray(t_us, dtype=np.float64)
        if not self.loop_log:
            return np.zeros_like(t_us)
        times, vals = self._loop_arrays()
        return vals[np.searchsorted(times, t_us, side="right")]

    def loop_level(self, t0: float, t1: float):
        """``loop_at``'s value if the same from ``t0`` to ``t1``, else None."""
        if not self.loop_log:
            return 0.0
        times, vals = self._loop_arrays()
        i = bisect_right(times, t0)
        return float(vals[i]) if bisect_right(times, t1) == i else None

    def _loop_arrays(self):
        if self._loop_table is None or self._loop_table[0] != len(self.loop_log):
            times = np.array([e[0] for e in self.loop_log], dtype=np.float64)
            vals = np.array([0.0] + [1.0 if e[1] else 0.0 for e in self.loop_log])
            self._loop_table = (len(self.loop_log), times, vals)
        return self._loop_table[1], self._loop_table[2]

    def hook_changed(self, level, t_us) -> None:
        off = level == 1  # floating -> pull-down -> on-hook
        if off != self.off_hook:
            self.off_hook = off
            self.hook_log.append((t_us, off))
            if off and self.relay_fails:
                return  # the coil is driven, the contacts stay open
            self.recorder.set_gate("hook", t_us + self.relay_us, off)

    def mute_changed(self, level, t_us) -> None:
        muted = level != 0  # floating -> pull-up -> muted
        if muted != self.muted:
            self.muted = muted
            self.recorder.set_gate("mute", t_us, not muted)


class LineInterface(LineSwitches):
    """``LineSwitches`` driven by the simulator's pin bus."""

    def __init__(self, bus, recorder, profile: dict, relay_us: int = 0):
        super().__init__(recorder, profile, bus.clock.now_us(), relay_us)
        self.bus = bus
        if self.hook_pin is not None:
            bus.watch(self.hook_pin, self._on_hook_pin)
        if self.mute_pin is not None:
            bus.watch(self.mute_pin, self._on_mute_pin)
        if self.loop_pin is not None:
            bus.watch(self.loop_pin, lambda gpio, level, t_us: self.loop_changed(level, t_us))

    def _on_hook_pin(self, gpio, level, t_us):
        self.hook_changed(level, t_us)

    def _on_mute_pin(self, gpio, level, t_us):
        self.mute_changed(level, t_us)

"""``LineRecorder``: the line signal of one simulated board.

It collects, per source (the PWM chain, an I2S DAC's chain, an MT8880's output),
``(start_us, rate, volts)`` segments and renders one continuous line signal at any output rate,
multiplied by the line switches ("gates": hook relay, mute, a seeded open transformer) at the
times they changed (line_switches.py sets them).
"""

from __future__ import annotations

import os
import wave
from bisect import bisect_right

import numpy as np
from scipy import signal


class LineRecorder:
    """Line signal of one board, assembled from per-source sampled segments."""

    def __init__(self, drop_gated: bool = False):
        """``drop_gated``: do not store segments the line switches cut off entirely (on-hook
        or muted throughout): the rendered line is the same, memory stays bounded for a
        board left running (``samples(gated=False)`` then lacks those stretches)."""
        self._segs: dict[str, list] = {}
        self._starts: dict[str, list] = {}  # each source's segment starts, in the same order
        self._longest: dict[str, float] = {}  # each source's longest segment (us)
        self._gates: dict[str, list] = {}
        self._gate_cache: dict[str, tuple] = {}
        self._flushers: list = []
        self.drop_gated = drop_gated
        self.dropped_samples = 0
        self._end = 0.0
        self.gain = 1.0  # the line's own loss between the board and the exchange (a fault)
        # keep(t0, t1): keep a segment the line switches cut off (the self-test loop relay
        # was closed then: the board's line sense hears it, the exchange does not)
        self.keep = None

    # ---- producers ---------------------------------------------------------------
    def add_segment(self, source: str, start_us: float, rate: float, volts) -> None:
        v = np.asarray(volts, dtype=np.float64)
        if not v.size:
            return
        end = float(start_us) + v.size * 1e6 / rate
        self._end = max(self._end, end)
        if (
            self.drop_gated
            and self._cut_throughout(float(start_us), end)
            and not (self.keep is not None and self.keep(float(start_us), end))
        ):
            self.dropped_samples += v.size
            return
        segs = self._segs.setdefault(source, [])
        starts = self._starts.setdefault(source, [])
        seg = (float(start_us), float(rate), v)
        if end - seg[0] > self._longest.get(source, 0.0):
            self._longest[source] = end - seg[0]
        if not starts or starts[-1] <= seg[0]:
            segs.append(seg)
            starts.append(seg[0])
        else:  # (out of order: kept sorted by start)
            i = bisect_right(starts, seg[0])
            segs.insert(i, seg)
            starts.insert(i, seg[0])

    def _cut_throughout(self, t0: float, t1: float) -> bool:
        """Some switch is open from before ``t0`` to after ``t1`` (a switch that never moved
        before ``t0`` does not count)."""
        for name, ev in self._gates.items():
            times = self._gate_table(name, ev)[0]
            i = bisect_right(times, t0)
            if i and not ev[i - 1][1] and bisect_right(times, t1) == i:
                return True
        return False

    # a producer skips line only this far inside a cut-off stretch, and never its last
    # CUT_MARGIN_US: the anti-aliasing at a run's edge (samples()) then rings out where the
    # switch still cuts the line, so what is rendered is what the full line would give
    CUT_MARGIN_US = 2000.0

    def cut_span(self, t0: float, t1: float):
        """The first stretch ``(a, b)`` of ``[t0, t1]`` that a line switch cuts off throughout
        (``add_segment`` drops what a source plays there), ``CUT_MARGIN_US`` inside the switch's
        moves and before ``t1``; None if there is none (always None unless ``drop_gated``).
        A producer may skip computing that stretch and call ``note_cut`` instead."""
        if not self.drop_gated:
            return None
        m = self.CUT_MARGIN_US
        best = None
        for name, ev in self._gates.items():
            times, vals = self._gate_table(name, ev)
            j = max(bisect_right(times, t0) - 1, 0)
            while j < len(times) and times[j] < t1:
                if vals[j + 1] == 0.0:  # open from event j on
                    a = max(t0, float(times[j]) + m)
                    b = t1 - m if j + 1 == len(times) else min(t1, float(times[j + 1])) - m
                    if b > a:
                        if best is None or a < best[0]:
                            best = (a, b)
                        break
                j += 1
        if best is not None and self.keep is not None and self.keep(*best):
            return None
        return best

    def note_cut(self, start_us: float, end_us: float, samples: int) -> None:
        """A producer skipped ``samples`` the line switches cut off (see ``cut_until``)."""
        self._end = max(self._end, float(end_us))
        self.dropped_samples += int(samples)

    def discard_before(self, t_us: float) -> int:
        """Forget the segments that end before ``t_us`` (a long-running ``serve`` keeps the
        last ``api.recording.RECORD_KEEP_S`` of each simulated line: otherwise a line held
        off-hook grows by ~2 MB a second). Segments reaching past ``t_us`` stay whole; the
        switches' moves stay (a few per call). Returns the number of samples forgotten."""
        gone = 0
        for src, segs in self._segs.items():
            keep = [seg for seg in segs if seg[0] + seg[2].size * 1e6 / seg[1] >= t_us]
            if len(keep) < len(segs):
                gone += sum(seg[2].size for seg in segs) - sum(seg[2].size for seg in keep)
                segs[:] = keep
                self._starts[src][:] = [seg[0] for seg in keep]
        return gone

    add = add_segment

    def add_flusher(self, fn) -> None:
        """``fn()`` is called before rendering so models push what they hold up to now."""
        self._flushers.append(fn)

    def set_gate(self, name: str, t_us: float, closed: bool) -> None:
        """A switch in series with the line (hook relay, mute): closed passes the signal."""
        ev = self._gates.setdefault(name, [])
        if ev and ev[-1][0] > t_us:
            raise ValueError("gate events must come in time order")
        ev.append((float(t_us), bool(closed)))

    def gate_log(self, name: str) -> list:
        return list(self._gates.get(name, []))

    # ---- consumers ---------------------------------------------------------------
    def flush(self) -> None:
        for fn in self._flushers:
            fn()

    def sources(self) -> list:
        return sorted(self._segs)

    def segments(self) -> list:
        """Each source's segments as (start_us, rate, volts), in time order per source (the
        stored lists themselves: read them, do not change them). Call flush() first for what
        the models still hold."""
        return list(self._segs.values())

    def gate_names(self) -> list:
        return list(self._gates)

    def end_us(self) -> float:
        self.flush()
        end = self._end
        for segs in self._segs.values():
            for s, r, v in segs:
                end = max(end, s + v.size * 1e6 / r)
        return end

    def _runs(self, source):
        """Merge contiguous same-rate segments into runs: (start_us, rate, volts)."""
        runs = []
        for s, r, v in sorted(self._segs.get(source, []), key=lambda x: x[0]):
            if runs:
                s0, r0, parts, n0 = runs[-1]
                if r0 == r and abs(s0 + n0 * 1e6 / r0 - s) < 0.5e6 / r:
                    parts.append(v)
                    runs[-1] = (s0, r0, parts, n0 + v.size)
                    continue
            runs.append((s, r, [v], v.size))
        return [(s, r, np.concatenate(p) if len(p) > 1 else p[0]) for s, r, p, _ in runs]

    def samples(
        self,
        rate: float = 22050,
        start_us: float = 0.0,
        end_us: float | None = None,
        sources=None,
        gated: bool = True,
    ) -> np.ndarray:
        """The line voltage sampled at ``rate`` from ``start_us`` to ``end_us`` (default: end
        of the last segment)."""
        self.flush()
        if end_us is None:
            end_us = self.end_us()
        n = max(0, int(np.floor((end_us - start_us) * rate / 1e6)))
        t = start_us + np.arange(n) * (1e6 / rate)
        out = np.zeros(n)
        for src in sources or self.sources():
            for s, r, v in self._runs(src):
                if v.size == 0:
                    continue
                tv_end = s + (v.size - 1) * 1e6 / r
                i0 = np.searchsorted(t, s, side="left")
                i1 = np.searchsorted(t, tv_end, side="right")
                if i1 <= i0:
                    continue
                tv = s + np.arange(v.size) * (1e6 / r)
                if r > 1.1 * rate and v.size > 60:
                    v = self._anti_alias(v, r, rate)
                out[i0:i1] += np.interp(t[i0:i1], tv, v)
        if gated:
            for name in self._gates:
                out *= self.gate_at(name, t)
            out *= self.gain
        return out

    _aa_cache: dict = {}

    @classmethod
    def _anti_alias(cls, v, r, rate):
        """Zero-phase low-pass below the output Nyquist before resampling (as any recorder's
        anti-aliasing filter would): nothing above rate/2 folds back into the band."""
        key = (r, rate)
        sos = cls._aa_cache.get(key)
        if sos is None:
            sos = signal.butter(8, 0.45 * rate, fs=r, output="sos")
            cls._aa_cache[key] = sos
        return signal.sosfiltfilt(sos, v)

    def gate_at(self, name: str, t_us) -> np.ndarray:
        """1.0 where the switch ``name`` is closed at ``t_us``, else 0.0 (open before its first
        event; always closed if it never had one)."""
        ev = self._gates.get(name)
        t_us = np.asarray(t_us, dtype=np.float64)
        if not ev:
            return np.ones_like(t_us)
        times, vals = self._gate_table(name, ev)
        return vals[np.searchsorted(times, t_us, side="right")]

    def _gate_table(self, name: str, ev: list):
        """The event times and the levels (the one before the first event in front), built
        again only when the switch moved (the line sense asks every few ms)."""
        c = self._gate_cache.get(name)
        if c is None or c[0] != len(ev):
            times = np.array([e[0] for e in ev], dtype=np.float64)
            vals = np.array([0.0] + [1.0 if e[1] else 0.0 for e in ev])
            c = (len(ev), times, vals)
            self._gate_cache[name] = c
        return c[1], c[2]

    def gate_level(self, name: str, t0: float, t1: float):
        """The switch's level (1.0 closed, 0.0 open) if it stays the same from ``t0`` to
        ``t1``, else None (``gate_at`` gives it instant by instant)."""
        ev = self._gates.get(name)
        if not ev:
            return 1.0
        times, vals = self._gate_table(name, ev)
        i = bisect_right(times, t0)
        return float(vals[i]) if bisect_right(times, t1) == i else None

    def values_at(self, t_us) -> np.ndarray:
        """The ungated line (the sum of the sources) at the instants ``t_us`` (any order),
        linearly interpolated between each source's samples, across the join of segments
        that follow each other too; 0 where a source has no samples. Call flush() first."""
        t = np.asarray(t_us, dtype=np.float64)
        out = np.zeros(t.size)
        if not t.size:
            return out
        t0, t1 = float(t.min()), float(t.max())
        for src, segs in self._segs.items():
            for s, r, v in _pieces(segs, self._starts[src], self._longest[src], t0, t1):
                last = v.size - 1
                if last == 0:
                    out += np.where(t == s, v[0], 0.0)
                    continue
                pos = (t - s) * (r / 1e6)  # v[k] is at pos k
                if s <= t0 and s + last * 1e6 / r >= t1:  # covers them all (the usual case)
                    inside = None
                else:
                    inside = (pos >= 0.0) & (pos <= last)
                    np.clip(pos, 0.0, last, out=pos)
                k = pos.astype(np.int64)
                np.minimum(k, last - 1, out=k)
                a = v[k]
                pos -= k
                pos *= v[k + 1] - a
                pos += a
                if inside is not None:
                    pos *= inside
                out += pos
        return out

    def write_wav(self, path, rate: int = 22050, full_scale_v: float = 2.0, **kw) -> int:
        """Write the line signal as 16-bit mono WAV (``full_scale_v`` volts = full scale).
        Returns the number of samples written."""
        x = self.samples(rate, **kw)
        pcm = np.clip(np.round(x / full_scale_v * 32767), -32768, 32767).astype("<i2")
        tmp = f"{path}.tmp{os.getpid()}"
        with wave.open(tmp, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(int(rate))
            w.writeframes(pcm.tobytes())
        os.replace(tmp, path)
        return pcm.size


def _pieces(segs: list, starts: list, longest: float, t0: float, t1: float) -> list:
    """The parts of one source's segments (sorted by start, none longer than ``longest`` us)
    that instants in ``[t0, t1]`` need, a sample of margin each side, as (start_us, rate,
    volts); pieces that follow each other without a gap (same rate, the next sample where the
    last one ended) joined."""
    found = []
    for k in range(bisect_right(starts, t1) - 1, -1, -1):
        s, r, v = segs[k]
        if s + longest < t0:
            break  # this one and all before it end before t0
        dt = 1e6 / r
        lo = max(0, int((t0 - s) // dt))
        hi = min(v.size, int(-((s - t1) // dt)) + 1)
        if hi > lo:
            found.append((s + lo * dt, r, v[lo:hi], lo == 0, hi == v.size))
    if len(found) == 1:
        return [found[0][:3]]
    out = []
    for s, r, v, at_start, at_end in reversed(found):
        if out:
            ps, pr, pv, p_end = out[-1]
            if pr == r and p_end and at_start and abs(ps + pv.size * 1e6 / pr - s) < 0.5e6 / r:
                out[-1] = (ps, pr, np.concatenate((pv, v)), at_end)
                continue
        out.append((s, r, v, at_end))
    return [(s, r, v) for s, r, v, _ in out]

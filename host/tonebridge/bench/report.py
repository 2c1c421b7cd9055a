"""Turn the measurements into rows (with goals) and print them as a table."""

from __future__ import annotations

SIGNAL_SUBJECTS = (
    "pico",
    "pico2",
    "esp32-i2s",
    "pico-mt8880",
    "spandsp-ref",
    "square-ref",
    "mt8880-sines-ref",
)
SHORT = {
    "pico": "rp2 PWM",
    "pico2": "RP2350 PWM",
    "spandsp-ref": "ref:spandsp",
    "esp32-i2s": "I2S DAC",
    "pico-mt8880": "MT8880",
    "square-ref": "ref:square",
    "mt8880-sines-ref": "ref:MT8880 sines",
}

# key, group, metric, unit, goal (op, value) or None, format
SIGNAL_ROWS = (
    ("freq_err_pct", "1 accuracy", "worst frequency error, 16 keys", "%", ("<=", 0.02), "{:.4f}"),
    (
        "unwanted_inband_db",
        "2 purity",
        "worst unwanted 300-3400 Hz vs low tone",
        "dB",
        ("<=", -50.0),
        "{:.1f}",
    ),
    ("unwanted_above_db", "2 purity", "worst unwanted > 3400 Hz vs low tone", "dB", None, "{:.1f}"),
    ("twist_db_min", "2 purity", "twist (high - low), min", "dB", (">=", 0.0), "{:.2f}"),
    ("twist_db_max", "2 purity", "twist (high - low), max", "dB", ("<=", 4.0), "{:.2f}"),
    ("tone_err_ms", "3 timing", "worst tone error, 100/100 ms", "ms", ("<=", 0.5), "{:.3f}"),
    ("gap_err_ms", "3 timing", "worst gap error, 100/100 ms", "ms", ("<=", 0.5), "{:.3f}"),
    ("tone_err_min_ms", "3 timing", "worst tone error, 40/40 ms", "ms", ("<=", 0.5), "{:.3f}"),
    ("gap_err_min_ms", "3 timing", "worst gap error, 40/40 ms", "ms", ("<=", 0.5), "{:.3f}"),
    ("pause_w_err_ms", "3 timing", "pause 'w' (500 ms) error", "ms", ("<=", 0.5), "{:.3f}"),
    ("pause_W_err_ms", "3 timing", "pause 'W' (1000 ms) error", "ms", ("<=", 0.5), "{:.3f}"),
    (
        "decoded_default",
        "4 decode",
        "multimon-ng decoded right, 100/100 ms",
        "%",
        (">=", 100.0),
        "{:.1f}",
    ),
    (
        "decoded_min",
        "4 decode",
        "multimon-ng decoded right, 40/40 ms",
        "%",
        (">=", 100.0),
        "{:.1f}",
    ),
)
PERCENT_KEYS = ("decoded_default", "decoded_min")


def _ok(goal, v):
    if goal is None or v is None:
        return None
    op, g = goal
    return v <= g + 1e-12 if op == "<=" else v >= g - 1e-12


def build_rows(results: dict) -> list[dict]:
    rows = []
    sig = results.get("signal")
    if sig:
        for key, group, metric, unit, goal, fmt in SIGNAL_ROWS:
            values = {}
            for subj in SIGNAL_SUBJECTS:
                if subj not in sig:
                    continue
                v = sig[subj]["measures"].get(key)
                if v is not None and key in PERCENT_KEYS:
                    v = 100.0 * v
                values[subj] = None if v is None else float(v)
            rows.append(_row(group, metric, unit, goal, fmt, values))
    lat = results.get("latency")
    if lat:
        s = lat["sim"]
        for part, metric in (
            ("api_to_tone", "API request -> first tone sample (sim, pty)"),
            ("host_part", "  of which host: request -> bytes at the board"),
            ("board_part", "  of which board: bytes read -> first tone sample"),
            ("api_to_started_report", "API request -> 'started' report back at host"),
        ):
            d = s.get(part)
            if not d:
                continue
            goal = ("<=", 10.0) if part == "api_to_tone" else None
            rows.append(
                _row("5 latency", metric + " p50", "ms", None, "{:.2f}", {"pico": d["p50_ms"]})
            )
            rows.append(
                _row("5 latency", metric + " p99", "ms", goal, "{:.2f}", {"pico": d["p99_ms"]})
            )
        if s.get("sim_lag"):
            rows.append(
                _row(
                    "5 latency",
                    "sim board behind wall clock p99 (error bound)",
                    "ms",
                    None,
                    "{:.2f}",
                    {"pico": s["sim_lag"]["p99_ms"]},
                )
            )
        p = lat.get("port")
        if p and p.get("api_to_started_report"):
            d = p["api_to_started_report"]
            rows.append(
                _row(
                    "5 latency",
                    f"real port {p['link']}: request -> 'started' p50",
                    "ms",
                    None,
                    "{:.2f}",
                    {"port": d["p50_ms"]},
                )
            )
            rows.append(
                _row(
                    "5 latency",
                    f"real port {p['link']}: request -> 'started' p99",
                    "ms",
                    None,
                    "{:.2f}",
                    {"port": d["p99_ms"]},
                )
            )
    sc = results.get("scale")
    if sc:
        b = sc["board"]
        n = sc["lines"]
        rows += [
            _row(
                "6 scale",
                f"{n} {b} lines, {sc['duration_s']:g} s at 40/40 ms: digits requested",
                "",
                None,
                "{:.0f}",
                {b: sc["digits_requested"]},
            ),
            _row(
                "6 scale",
                "digits played (board reports) - requested",
                "",
                ("<=", 0),
                "{:.0f}",
                {b: abs(sc["digits_reported_played"] - sc["digits_requested"])},
            ),
            _row(
                "6 scale",
                "digits lost + duplicated (multimon-ng on every line)",
                "",
                ("<=", 0),
                "{:.0f}",
                {b: sc["decoded_lost"] + sc["decoded_extra"]},
            ),
            _row(
                "6 scale",
                "lines whose recording decodes exactly",
                "",
                (">=", n),
                "{:.0f}",
                {b: sc["lines_decoded_exactly"]},
            ),
            _row("6 scale", "failed requests", "", ("<=", 0), "{:.0f}", {b: sc["failed_requests"]}),
            _row(
                "6 scale",
                "requests/s answered (4 digits each)",
                "/s",
                None,
                "{:.1f}",
                {b: sc["requests_per_s"]},
            ),
            _row(
                "6 scale",
                "digits/s played (ideal at 40/40 in brackets)",
                "/s",
                None,
                "{:.0f}",
                {b: sc["digits_per_s"]},
                note=f"({sc['ideal_digits_per_s']:.0f})",
            ),
            _row(
                "6 scale",
                "bridge CPU per request",
                "ms",
                None,
                "{:.2f}",
                {b: sc["bridge_cpu_ms_per_request"]},
            ),
            _row(
                "6 scale",
                "bridge CPU (cores busy)",
                "cores",
                None,
                "{:.2f}",
                {b: sc["bridge_cpu_cores"]},
            ),
            _row(
                "6 scale",
                f"simulated boards' CPU ({sc['board_processes']} processes; cores busy)",
                "cores",
                None,
                "{:.2f}",
                {b: sc["sim_cpu_cores"]},
                note=f"of {sc['cores']}",
            ),
            _row(
                "6 scale",
                "simulated boards behind the wall clock, worst",
                "s",
                None,
                "{:.2f}",
                {b: sc.get("board_lag_s_max")},
            ),
            _row(
                "6 scale",
                "accept latency p99 (request -> 200)",
                "ms",
                None,
                "{:.0f}",
                {b: sc["accept_latency_p99_ms"]},
            ),
        ]
    br = results.get("bridge")
    if br:
        lat = br["latency"]
        for key, label, goal in (
            ("fresh", "GET a call, new connection each", None),
            ("keepalive", "GET a call, kept-alive (http.client)", ("<=", 3.0)),
            ("keepalive_raw", "GET a call, kept-alive (raw socket)", ("<=", 3.0)),
        ):
            d = lat[key]
            rows.append(
                _row("8 bridge", label + " p50", "ms", goal, "{:.2f}", {"serve": d["p50_ms"]})
            )
            rows.append(
                _row("8 bridge", label + " p99", "ms", None, "{:.2f}", {"serve": d["p99_ms"]})
            )
        idle = br["idle"]
        rows.append(
            _row(
                "8 bridge",
                f"serve CPU, {idle['lines']} idle lines (boards connected), {idle['seconds']:.0f} s",
                "s",
                None,
                "{:.3f}",
                {"serve": idle["cpu_s"]},
            )
        )
        rows.append(
            _row(
                "8 bridge",
                "  as cores busy",
                "cores",
                ("<=", 0.01),
                "{:.4f}",
                {"serve": idle["cores"]},
            )
        )
    fp = results.get("footprint")
    if fp:
        for name, label in (("pwm_dma", "rp2 PWM"), ("i2s", "I2S DAC")):
            h = fp["heap"].get(name)
            if not h:
                continue
            rows.append(
                _row(
                    "7 footprint",
                    f"{label}: live heap high-water, 92-char send",
                    "B",
                    ("<=", 24 * 1024),
                    "{:.0f}",
                    {"micropython": h["heap_hw"]},
                )
            )
            rows.append(
                _row(
                    "7 footprint",
                    f"{label}: bytes allocated by fill(), whole send",
                    "B",
                    ("<=", 0),
                    "{:.0f}",
                    {"micropython": h["bytes_allocated_in_fills"]},
                )
            )
            rows.append(
                _row(
                    "7 footprint",
                    f"{label}: fill() calls that raised under heap_lock",
                    "",
                    ("<=", 0),
                    "{:.0f}",
                    {"micropython": h["locked_alloc_errors"]},
                    note=f"of {h['fills']}",
                )
            )
        h = fp["heap"].get("pwm_dma") or {}
        if "import_bytes" in h:
            rows.append(
                _row(
                    "7 footprint",
                    "heap taken by importing dialstring+synth",
                    "B",
                    None,
                    "{:.0f}",
                    {"micropython": h["import_bytes"]},
                )
            )
        rows.append(
            _row(
                "7 footprint",
                f"firmware as .mpy, armv6m ({fp['files']} files)",
                "B",
                None,
                "{:.0f}",
                {"micropython": fp["mpy_armv6m"]},
            )
        )
        rows.append(
            _row(
                "7 footprint",
                "firmware as .mpy, xtensawin",
                "B",
                None,
                "{:.0f}",
                {"micropython": fp["mpy_xtensawin"]},
            )
        )
    rows += _emu_rows(results.get("emu"))
    return rows


def _emu_rows(emu) -> list[dict]:
    """Row 9: the real MicroPython image on an emulated RP2040 (bench/emu.py), per deployment."""
    rows = []
    if not emu or "skipped" in emu:
        return rows
    g = "9 emulated RP2040"
    for mode, m in emu.items():
        f, h = m["fill"], m["heap"]
        tag = f"(.{mode})"
        fast = "viper" if f["fast"] else "portable"

        def add(metric, unit, goal, fmt, v, note=None, tag=tag):
            rows.append(_row(g, f"{metric} {tag}", unit, goal, fmt, {"emu": v}, note))

        add(f"fill() cycles/sample, steady two-tone ({fast})", "cyc", None, "{:.0f}", f["steady"])
        add(f"fill() cycles/sample, silence ({fast})", "cyc", None, "{:.0f}", f["idle"])
        if "direct_steady" in f:
            add(
                f"fill() cycles/sample, unshaped duty ({fast})",
                "cyc",
                None,
                "{:.0f}",
                f["direct_steady"],
            )
        add("fill() cycles/sample, portable loop", "cyc", None, "{:.0f}", f["portable_steady"])
        rx = m.get("rx")
        if rx:
            rfast = "viper" if rx["fast"] else "portable"
            add(f"DTMF receiver cycles/received sample, tone ({rfast})", "cyc", None, "{:.0f}",
                rx["tone"])  # fmt: skip
            add(f"DTMF receiver cycles/received sample, quiet line ({rfast})", "cyc", None,
                "{:.0f}", rx["quiet"])  # fmt: skip
            add("DTMF receiver cycles/received sample, portable loop", "cyc", None, "{:.0f}",
                rx["portable_quiet"])  # fmt: skip
            add("DTMF receiver share of the CPU at 8 kHz (tone)", "%", None, "{:.2f}",
                100 * rx["tone"] * 8000 / 125e6)  # fmt: skip
            add("DTMF receiver heap: one Receiver", "B", None, "{:.0f}", rx["rx_heap"])
            add("DTMF receiver heap: its modules' code", "B", None, "{:.0f}", rx["code_heap"])
        add(
            "renderer share of the CPU at 61035 Hz",
            "%",
            None,
            "{:.1f}",
            100 * m["renderer_cpu_share"],
        )
        add(
            "CPU busy while playing (loop + renderer + USB)",
            "%",
            None,
            "{:.1f}",
            100 * m["playing_cpu_share"],
        )
        add("CPU busy while idle", "%", None, "{:.1f}", 100 * m["idle_cpu_share"])
        if "latency_p50_ms" in m:
            add(
                "SEND frame in -> first duty sample out, p50",
                "ms",
                ("<=", 10.0),
                "{:.2f}",
                m["latency_p50_ms"],
                note=f"max {m['latency_max_ms']:.2f}, n={len(m['latency_ms'])}",
            )
        add("gc.mem_free() with the app ready", "B", None, "{:.0f}", h["free_ready"])
        add("gc.mem_free() lowest during a 92-char send", "B", None, "{:.0f}", h["free_min"])
        add(
            "live heap high-water of a 92-char send", "B", ("<=", 24 * 1024), "{:.0f}", h["live_hw"]
        )
        add(
            "boot to first HELLO answered",
            "s",
            None,
            "{:.1f}",
            m["boot_to_hello_s"],
            note="wall clock, emulator",
        )
    return rows


def _row(group, metric, unit, goal, fmt, values, note=None):
    return {
        "group": group,
        "metric": metric,
        "unit": unit,
        "goal": None if goal is None else f"{goal[0]} {goal[1]:g}",
        "values": values,
        "pass": {k: _ok(goal, v) for k, v in values.items()},
        "format": fmt,
        "note": note,
    }


def _cell(row, key):
    v = row["values"].get(key)
    if v is None:
        return "-" if key in row["values"] else ""
    s = row["format"].format(v)
    ok = row["pass"].get(key)
    if ok is False:
        s += " MISS"
    return s


def format_table(rows: list[dict]) -> str:
    lines = []
    sig = [r for r in rows if r["group"].split()[0] in ("1", "2", "3", "4")]
    other = [r for r in rows if r["group"].split()[0] not in ("1", "2", "3", "4")]
    if sig:
        cols = [s for s in SIGNAL_SUBJECTS if any(s in r["values"] for r in sig)]
        head = ["row", "metric", "unit", "goal"] + [SHORT[c] for c in cols]
        body = [
            [r["group"], r["metric"], r["unit"], r["goal"] or ""] + [_cell(r, c) for c in cols]
            for r in sig
        ]
        lines += _grid(head, body)
        lines.append("")
    if other:
        head = ["row", "metric", "unit", "goal", "measured"]
        body = []
        for r in other:
            (k,) = r["values"].keys()
            cell = _cell(r, k)
            if r.get("note"):
                cell += " " + r["note"]
            body.append([r["group"], r["metric"], r["unit"], r["goal"] or "", cell])
        lines += _grid(head, body)
    return "\n".join(lines)


def _grid(head, body):
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    fmt = "  ".join("{:<" + str(w) + "}" for w in widths)
    out = [fmt.format(*head), fmt.format(*["-" * w for w in widths])]
    out += [fmt.format(*row) for row in body]
    return out


row = _row  # for sections that build their own rows (simcost.py)

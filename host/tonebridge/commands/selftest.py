"""`tonebridge selftest --port PORT`: the board plays all 16 keys on hook through its loop
relay and reports, per key, what its own receiver heard, judged against the Q.23 limits."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "selftest",
        help="play all 16 keys through the board's local loop and check what it hears",
        description=(
            "The board on PORT (a serial device or pyserial URL such as sim://pico) plays the "
            "16 keys with its line on hook, through its loop relay into its own line sense "
            "(no exchange hears them), and reports per key: heard or not, duration, the level "
            "of each tone, twist and frequencies, with pass/fail against its limits (each "
            "tone within 1.8 %% of nominal (ITU-T Q.23), -13 to -7 dBm, twist 0 to 4 dB, "
            "duration within 10 ms). Exits 0 when every key passes, 1 otherwise, 3 when "
            "there is no board (or it cannot self-test)."
        ),
    )
    p.add_argument("--port", required=True, help="serial port or pyserial URL (e.g. sim://pico)")
    p.add_argument("--timeout", type=float, default=1.0, help="reply timeout in s (default 1)")
    p.set_defaults(func=run)


def run(args) -> int:
    from tonebridge.commands.send import describe_heard
    from tonebridge.link import BoardClient, LinkError, SendError

    out = sys.stdout
    results: dict[int, dict] = {}

    def progress(ev):
        if ev["event"] in ("heard", "unheard"):
            results[ev["index"]] = ev
            verdict = "pass" if ev.get("pass") else "FAIL"
            what = describe_heard(ev) if ev["event"] == "heard" else "not heard"
            out.write(f"{ev['index'] + 1:2d}/16 '{ev['key']}' {verdict}  {what}\n")
            out.flush()

    try:
        client = BoardClient(args.port, timeout=args.timeout)
        client.open()
    except (LinkError, OSError) as e:
        print(f"tonebridge selftest: cannot talk to a board on {args.port}: {e}", file=sys.stderr)
        return 3
    try:
        try:
            client.selftest(on_progress=progress)
        except SendError as e:
            print(f"tonebridge selftest: {e.message}", file=sys.stderr)
            return 3 if e.code in ("bad-arg", "busy") else 1
        passed = sum(1 for r in results.values() if r.get("pass"))
        heard = sum(1 for r in results.values() if r["event"] == "heard")
        print(f"selftest: {passed}/16 keys pass, {heard}/16 heard")
        return 0 if passed == 16 else 1
    finally:
        client.close()

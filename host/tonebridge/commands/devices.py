"""`tonebridge devices`: list serial ports that look like tonebridge boards."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "devices",
        help="list connected boards (USB serial ports by VID:PID)",
        description=(
            "List serial ports whose USB VID:PID is a board tonebridge supports: Raspberry Pi "
            "RP2 2E8A (MicroPython 2E8A:0005), Espressif 303A, CP210x 10C4:EA60, CH340 "
            "1A86:7523. A Pico's USB serial number is its hardware id (hwid), the id a "
            "serve line binds to. With --probe, ask each one for its tonebridge HELLO (which "
            "reports the hwid itself)."
        ),
    )
    p.add_argument("--all", action="store_true", help="also list other USB serial ports")
    p.add_argument("--probe", action="store_true", help="open each port and send HELLO")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args, ports=None) -> int:
    from tonebridge.link.discovery import find_boards

    boards = find_boards(ports, include_unknown=args.all)
    for b in boards:
        # MicroPython on rp2 reports machine.unique_id() as the USB serial number
        b["hwid"] = (b.get("serial_number") or "").lower() or None if b["vid"] == 0x2E8A else None
    if args.probe:
        from tonebridge.link import BoardClient, LinkError

        for b in boards:
            try:
                with BoardClient(b["port"], timeout=0.5, background=False, keepalive=None) as c:
                    h = c.info
                    b["tonebridge"] = {
                        k: h.get(k) for k in ("fw", "board", "backend", "boot", "hwid")
                    }
                    if h.get("hwid"):
                        b["hwid"] = str(h["hwid"])
            except (LinkError, OSError) as e:
                b["tonebridge"] = None
                b["probe_error"] = str(e)
    if args.json:
        print(json.dumps(boards, indent=2))
        return 0
    if not boards:
        print("no boards found (use --all to list every USB serial port)")
        return 1
    for b in boards:
        vidpid = f"{b['vid']:04X}:{b['pid']:04X}" if b["vid"] is not None else "-"
        line = f"{b['port']}  {vidpid}  {b['kind']}"
        if b.get("hwid"):
            line += f"  hwid={b['hwid']}"
        elif b.get("serial_number"):
            line += f"  serial={b['serial_number']}"
        if args.probe:
            tb = b.get("tonebridge")
            line += (
                f"  tonebridge fw {tb['fw']} {tb['board']}/{tb['backend']}"
                if tb
                else "  (no tonebridge answer)"
            )
        print(line)
    return 0

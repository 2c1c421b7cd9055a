"""Find tonebridge boards: by USB VID:PID (`tonebridge devices`), and a known board again by
its hardware id after it was unplugged (`locate_candidates`).

MicroPython on rp2 reports the flash unique id (`machine.unique_id()`, the id tonebridge's
HELLO gives as `hwid`) as the USB iSerialNumber, in lowercase hex, so a Pico is found by
`serial_number` without opening any port; the link checks it by HELLO anyway. Boards behind
a USB-UART bridge (ESP32 DevKits: CP210x, CH340) carry the bridge's serial number instead;
give their lines search patterns (globs such as /dev/serial/by-id/usb-Silicon_Labs*).
"""

from __future__ import annotations

import glob

from serial.tools import list_ports

# (vid, pid or None for any) -> what it is
KNOWN = {
    (0x2E8A, 0x0005): "Raspberry Pi RP2 (MicroPython USB-CDC)",
    (0x2E8A, None): "Raspberry Pi RP2",
    (0x303A, None): "Espressif (native USB)",
    (0x10C4, 0xEA60): "CP210x USB-UART (ESP32 DevKit)",
    (0x1A86, 0x7523): "CH340 USB-UART (ESP32 DevKit)",
}


def classify(vid: int | None, pid: int | None) -> str | None:
    if vid is None:
        return None
    return KNOWN.get((vid, pid)) or KNOWN.get((vid, None))


def find_boards(ports=None, include_unknown: bool = False) -> list[dict]:
    """Serial ports that look like tonebridge boards (or all USB ports with include_unknown).

    `ports` defaults to serial.tools.list_ports.comports(); each item needs .device, .vid,
    .pid, .serial_number, .description (ListPortInfo)."""
    if ports is None:
        ports = list_ports.comports()
    out = []
    for p in ports:
        kind = classify(p.vid, p.pid)
        if kind is None and not (include_unknown and p.vid is not None):
            continue
        out.append(
            {
                "port": p.device,
                "vid": p.vid,
                "pid": p.pid,
                "kind": kind or "unknown USB serial",
                "serial_number": p.serial_number,
                "description": p.description,
            }
        )
    out.sort(key=lambda d: d["port"])
    return out


def locate_candidates(hwid: str, search=(), ports=None) -> list[str]:
    """Paths where the board with hardware id `hwid` may be now: USB ports whose serial
    number is that id first, then whatever the glob patterns in `search` match. Nothing is
    opened here; the link verifies each candidate by HELLO."""
    from tonebridge.link.core import normalize_hwid

    want = normalize_hwid(hwid)
    out: list[str] = []
    if ports is None:
        try:
            ports = list_ports.comports()
        except Exception:
            ports = []
    for p in ports:
        if want is not None and normalize_hwid(getattr(p, "serial_number", None)) == want:
            out.append(p.device)
    for pattern in search:
        out.extend(sorted(glob.glob(pattern)))
    return out

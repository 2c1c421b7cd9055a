"""littlefs images of an RP2040 MicroPython filesystem, built on the host (littlefs-python).

MicroPython v1.28's rp2 port mounts ``vfs.VfsLfs2(rp2.Flash(), progsize=256)`` from the flash
behind the firmware: on a 2 MB Pico 352 blocks of 4096 bytes at flash offset 0xa0000, with
littlefs read size 32, prog size 256, lookahead 32, cache 1024, block_cycles 100 (extmod/
vfs_lfsx.c). An image built here with that geometry is what `tonebridge emu --flash FILE` keeps
in FILE, so a board can be provisioned (firmware, tonebridge.json) in milliseconds instead of
minutes of mpremote over the emulated USB.

    write_image("pico.lfs", {"main.py": b"...", "lib/tonebridge_fw/app.py": b"..."})
    files = read_image("pico.lfs")          # {path: bytes}
    provision("pico.lfs", "pico", mpy=True)  # what `tonebridge deploy` would copy
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

BLOCK_SIZE = 4096
BLOCK_COUNT = 352
FS_BYTES = BLOCK_SIZE * BLOCK_COUNT
GEOMETRY = {
    "block_size": BLOCK_SIZE,
    "block_count": BLOCK_COUNT,
    "read_size": 32,
    "prog_size": 256,
    "lookahead_size": 32,
    "cache_size": 1024,
    "block_cycles": 100,
    "disk_version": 0x00020000,  # littlefs 2.0 on-disk format: any lfs2 mounts it
}


def _lfs(mount: bool):
    from littlefs import LittleFS

    return LittleFS(mount=mount, **GEOMETRY)


def write_image(path, files: dict) -> None:
    """A fresh filesystem holding ``files`` ({"dir/name.py": bytes}) written to ``path``."""
    fs = _lfs(mount=False)
    fs.format()
    fs.mount()
    for name in sorted(files):
        parts = name.strip("/").split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            try:
                fs.mkdir(d)
            except FileExistsError:
                pass
        with fs.open("/".join(parts), "wb") as f:
            f.write(files[name])
    fs.unmount()
    data = bytes(fs.context.buffer)
    assert len(data) == FS_BYTES
    tmp = f"{path}.tmp{os.getpid()}"
    Path(tmp).write_bytes(data)
    os.replace(tmp, path)


def read_image(path) -> dict:
    """{path: bytes} of every file in the image at ``path``."""
    from littlefs import LittleFS

    geometry = {k: v for k, v in GEOMETRY.items() if k != "disk_version"}  # any lfs2 version
    fs = LittleFS(mount=False, **geometry)
    fs.context.buffer = bytearray(Path(path).read_bytes())
    fs.mount()
    out = {}
    for root, _dirs, names in fs.walk("/"):
        for n in names:
            p = f"{root.rstrip('/')}/{n}".lstrip("/")
            with fs.open(p, "rb") as f:
                out[p] = f.read()
    return out


def provision(
    path,
    board: str = "pico",
    overrides: dict | None = None,
    *,
    mpy: bool = True,
    extra: dict | None = None,
    replace: dict | None = None,
) -> dict:
    """Write an image holding what `tonebridge deploy` installs (the firmware package as .mpy or
    .py, main.py, tonebridge.json). ``replace`` maps a path in firmware/ (e.g.
    ``"tonebridge_fw/backends/pwm_dma_rp2.py"``) to other source text, staged like the rest
    (seeded faults); ``extra`` adds files as they are. Returns {path: bytes} written."""
    from tonebridge import deploy

    with tempfile.TemporaryDirectory(prefix="tonebridge-fs-") as tmp:
        root = Path(tmp)
        src = root / "src"
        fw_dir = deploy.FIRMWARE_DIR
        if replace:
            shutil.copytree(fw_dir, src / "firmware")
            for rel, text in replace.items():
                (src / "firmware" / rel).write_text(text)
            fw_dir = src / "firmware"
        staged = deploy.stage(board, overrides or {}, root / "out", mpy, firmware_dir=fw_dir)
        files = {
            str(p.relative_to(staged)): p.read_bytes() for p in staged.rglob("*") if p.is_file()
        }
    files.update(extra or {})
    write_image(path, files)
    return files

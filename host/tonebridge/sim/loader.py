"""Per-board import namespace: loads the firmware files unmodified, each board its own copies.

Each firmware module (anything under ``firmware/``: ``main``, ``tonebridge_fw.*``) is compiled from
its source and executed in a fresh module object whose builtins carry a board-specific
``__import__``: ``import machine``/``rp2``/``time``/``sys``/``select``/``micropython``/``gc``/``os``
resolve to that board's simulated modules, firmware imports to that board's fresh copies, and
everything else (``array``, ``struct``, ``math``, ``json``, ...) to the host's standard library.
Nothing is patched in the host's own ``sys.modules``; many boards can live in one process.
"""

from __future__ import annotations

import builtins
import importlib
import os
import types
from pathlib import Path

FIRMWARE_ROOT = Path(__file__).resolve().parents[3] / "firmware"

# MicroPython's u-prefixed aliases and modules that are plain stdlib on the host
_ALIASES = {
    "utime": "time",
    "uselect": "select",
    "uos": "os",
    "usys": "sys",
    "ustruct": "struct",
    "ujson": "json",
    "uarray": "array",
    "ucollections": "collections",
    "ubinascii": "binascii",
    "uerrno": "errno",
    "uio": "io",
    "urandom": "random",
    "uhashlib": "hashlib",
    "ure": "re",
    "usocket": "socket",
    "ussl": "ssl",
}
_HOST_OK = {
    "array",
    "struct",
    "math",
    "json",
    "collections",
    "binascii",
    "errno",
    "io",
    "random",
    "hashlib",
    "re",
    "cmath",
    "heapq",
}


def make_micropython_module(board) -> types.ModuleType:
    mod = types.ModuleType("micropython")

    def const(x):
        return x

    def _ident(f):
        return f

    def heap_lock():
        board.heap_locked += 1
        return board.heap_locked - 1

    def heap_unlock():
        board.heap_locked = max(0, board.heap_locked - 1)
        return board.heap_locked

    def kbd_intr(c):
        board.link.kbd_intr_char = int(c)

    def schedule(fn, arg):
        board.scheduled.append((fn, arg))

    mod.const = const
    mod.native = _ident
    mod.viper = _ident
    mod.heap_lock = heap_lock
    mod.heap_unlock = heap_unlock
    mod.heap_locked = lambda: board.heap_locked
    mod.alloc_emergency_exception_buf = lambda n: None
    mod.kbd_intr = kbd_intr
    mod.schedule = schedule
    mod.mem_info = lambda *a: None
    mod.qstr_info = lambda *a: None
    mod.stack_use = lambda: 0
    mod.opt_level = lambda *a: 0
    return mod


def make_gc_module(board) -> types.ModuleType:
    mod = types.ModuleType("gc")
    mod.collect = lambda: None
    mod.enable = lambda: None
    mod.disable = lambda: None
    mod.isenabled = lambda: True
    mod.mem_free = lambda: 180_000
    mod.mem_alloc = lambda: 20_000
    mod.threshold = lambda *a: -1
    return mod


def make_os_module(board) -> types.ModuleType:
    """The board's flash filesystem, rooted at ``board.fs_root`` on the host."""
    mod = types.ModuleType("os")
    root = Path(board.fs_root)

    def _p(path):
        path = str(path)
        return root / path.lstrip("/")

    mod.sep = "/"
    mod.listdir = lambda path="": sorted(os.listdir(_p(path)))
    mod.remove = lambda path: os.remove(_p(path))
    mod.rename = lambda a, b: os.replace(_p(a), _p(b))
    mod.mkdir = lambda path: os.mkdir(_p(path))
    mod.rmdir = lambda path: os.rmdir(_p(path))
    mod.getcwd = lambda: "/"
    mod.sync = lambda: None
    mod.urandom = os.urandom

    def stat(path):
        st = os.stat(_p(path))
        mode = 0x4000 if os.path.isdir(_p(path)) else 0x8000
        return (
            mode,
            0,
            0,
            0,
            0,
            0,
            st.st_size,
            int(st.st_mtime),
            int(st.st_mtime),
            int(st.st_mtime),
        )

    def ilistdir(path=""):
        for name in sorted(os.listdir(_p(path))):
            full = _p(path) / name
            kind = 0x4000 if full.is_dir() else 0x8000
            yield (name, kind, 0, 0 if full.is_dir() else full.stat().st_size)

    mod.ilistdir = ilistdir

    def uname():
        return types.SimpleNamespace(
            sysname=board.sys_platform,
            nodename=board.sys_platform,
            release="1.24.1",
            version="v1.24.1 (tonebridge sim)",
            machine=board.machine_name,
        )

    def statvfs(path="/"):
        return (4096, 4096, 352, 300, 300, 0, 0, 0, 0, 255)

    def dupterm(*a):
        return None

    mod.stat = stat
    mod.uname = uname
    mod.statvfs = statvfs
    mod.dupterm = dupterm
    return mod


def make_uctypes_module(board) -> types.ModuleType:
    mod = types.ModuleType("uctypes")

    def addressof(obj):
        if board.hw is None:
            raise TypeError("sim: uctypes.addressof needs an rp2 board")
        return board.hw.mem.address_of(obj)

    mod.addressof = addressof
    return mod


class FirmwareLoader:
    """One board's module namespace."""

    def __init__(self, board, sim_modules: dict, root: Path = FIRMWARE_ROOT):
        self.board = board
        self.root = Path(root)
        self.modules: dict[str, types.ModuleType] = {}
        self.sim = dict(sim_modules)
        self.builtins = dict(builtins.__dict__)
        self.builtins["__import__"] = self._import
        self.builtins["open"] = self._open
        self.builtins["print"] = self._print
        self.builtins["input"] = self._input
        self.loaded_files: list[str] = []

    # ---- builtins seen by the firmware --------------------------------------------------------
    def _open(self, path, mode="r", *args, **kw):
        p = Path(self.board.fs_root) / str(path).lstrip("/")
        if any(c in mode for c in "wax"):
            p.parent.mkdir(parents=True, exist_ok=True)
        return builtins.open(p, mode, *args, **kw)

    def _print(self, *args, sep=" ", end="\n", file=None):
        text = sep.join(str(a) for a in args) + end
        if file is None:
            file = self.sim["sys"].stdout
        file.write(text)

    def _input(self, prompt=""):
        raise EOFError("sim: input() is not available to the firmware")

    # ---- import machinery ------------------------------------------------------------------
    def _find_source(self, name: str):
        """The firmware tree first, then the board's own flash: its /lib, where `mpremote mip
        install` puts libraries such as umqtt.simple (MicroPython's sys.path: '', '/lib')."""
        rel = Path(*name.split("."))
        fs = Path(self.board.fs_root)
        for root in (self.root, fs / "lib"):
            pkg = root / rel / "__init__.py"
            if pkg.is_file():
                return pkg, True
            mod = root / rel.with_suffix(".py")
            if mod.is_file():
                return mod, False
            if len(rel.parts) == 1 and (root / rel).is_dir() and root != self.root:
                return root / rel, True  # a namespace package (umqtt/ has no __init__.py)
        return None, False

    def is_firmware(self, name: str) -> bool:
        return self._find_source(name)[0] is not None

    def load(self, name: str) -> types.ModuleType:
        """Import firmware module ``name`` (fresh for this board)."""
        if name in self.modules:
            return self.modules[name]
        if name in self.sim:
            return self.sim[name]
        parent = None
        if "." in name:
            parent = self.load(name.rsplit(".", 1)[0])
        path, is_pkg = self._find_source(name)
        if path is None:
            raise ImportError(f"no module named '{name}'")
        mod = types.ModuleType(name)
        mod.__file__ = str(path)
        mod.__builtins__ = self.builtins
        if path.is_dir():  # a namespace package: nothing to run
            mod.__path__ = [str(path)]
            mod.__package__ = name
            self.modules[name] = mod
            if parent is not None:
                setattr(parent, name.rsplit(".", 1)[1], mod)
            return mod
        if is_pkg:
            mod.__path__ = [str(path.parent)]
            mod.__package__ = name
        else:
            mod.__package__ = name.rpartition(".")[0]
        self.modules[name] = mod
        try:
            code = compile(path.read_text(), str(path), "exec")
            exec(code, mod.__dict__)
        except BaseException:
            self.modules.pop(name, None)
            raise
        self.loaded_files.append(str(path))
        if parent is not None:
            setattr(parent, name.rsplit(".", 1)[1], mod)
        return mod

    def _resolve(self, name, globals, level):
        if level == 0:
            return name
        pkg = (globals or {}).get("__package__") or ""
        parts = pkg.split(".") if pkg else []
        if level - 1 > len(parts):
            raise ImportError("attempted relative import beyond top-level package")
        base = ".".join(parts[: len(parts) - (level - 1)])
        return f"{base}.{name}" if name else base

    def _import(self, name, globals=None, locals=None, fromlist=(), level=0):
        full = self._resolve(name, globals, level)
        top = full.split(".")[0]
        alias = _ALIASES.get(full)
        if alias is not None:
            full = alias
            top = alias
        if full in self.sim:
            return self.sim[full]
        if self.is_firmware(top):
            mod = self.load(full)
            if fromlist:
                for item in fromlist:
                    if item != "*" and not hasattr(mod, item):
                        sub = f"{full}.{item}"
                        if self.is_firmware(sub):
                            self.load(sub)
                return mod
            return self.load(top) if level == 0 else mod
        if top in _HOST_OK:
            return importlib.__import__(full, globals, locals, fromlist, 0)
        raise ImportError(f"no module named '{full}' (on the simulated {self.board.name})")

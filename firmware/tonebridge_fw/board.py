# make_board(profile) -> (backend, line): build the tone backend the profile names and the line
# controller. Backend modules are imported lazily: a board only imports its own backend (an
# ESP32 never imports rp2).

from tonebridge_fw.backends import REGISTRY
from tonebridge_fw.line import Line


def backend_class(name):
    if name not in REGISTRY:
        raise ValueError("unknown backend '%s'" % name)
    modname, clsname = REGISTRY[name]
    mod = __import__(modname, None, None, [clsname])
    return getattr(mod, clsname)


def make_board(profile, ticks_ms=None):
    if ticks_ms is None:
        import time

        ticks_ms = time.ticks_ms
    backend = backend_class(profile["backend"])(profile)
    line = Line(profile, ticks_ms)
    return backend, line

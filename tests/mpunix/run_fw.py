# Runs the firmware under MicroPython's unix port (driven by test_app_unix.py):
#   micropython run_fw.py <firmware dir> <this dir> <mode> [options]
# modes:
#   main       execute firmware/main.py as a board does after boot (profile: ./tonebridge.json)
#   observed   the same App with each main-loop pass logged (STEP_BEGIN / PASS_OK / PASS_RAISED);
#              at Ctrl-C its decoder's counters: DECODER <pending> <frames> <dropped> <overflows>
#   bootid     print new_boot_id() with os as it is, with a recording os, and without urandom
# options: urandom=model (os.urandom returns de ad be ef and is logged), fail_pin=<id>,
#          passes=quiet (observed mode without the per-pass lines)

import sys

FW = sys.argv[1]
HERE = sys.argv[2]
MODE = sys.argv[3]
OPTS = {}
for a in sys.argv[4:]:
    k, v = a.split("=")
    OPTS[k] = v
sys.path.insert(0, FW)
sys.path.insert(0, HERE)
sys.path.append("lib")  # the board's /lib (cwd is its flash): umqtt.simple, as mip installs it

import unix_board  # noqa: E402

sys.modules["machine"] = unix_board.machine
if "fail_pin" in OPTS:
    unix_board.machine.fail_pins.append(int(OPTS["fail_pin"]))


class RecordingOs:
    """os with a urandom that says what it was asked and returns fixed bytes."""

    def urandom(self, n):
        unix_board.log("URANDOM", n)
        return b"\xde\xad\xbe\xef"[:n]


class NoUrandomOs:
    """os of a port built without urandom."""


if OPTS.get("urandom") == "model":
    sys.modules["os"] = RecordingOs()

from tonebridge_fw import backends  # noqa: E402

backends.REGISTRY["recording"] = ("unix_board", "RecordingBackend")

if MODE == "main":
    try:
        exec(open(FW + "/main.py").read(), {"__name__": "__main__"})
    except KeyboardInterrupt:
        unix_board.log("EXIT KeyboardInterrupt")
elif MODE == "observed":
    from tonebridge_fw import boards
    from tonebridge_fw.app import App

    quiet = OPTS.get("passes") == "quiet"

    class ObservedApp(App):
        def step(self):
            if quiet:
                return App.step(self)
            unix_board.log("STEP_BEGIN")
            try:
                r = App.step(self)
            except Exception as e:
                unix_board.log("PASS_RAISED", type(e).__name__)
                raise
            unix_board.log("PASS_OK")
            return r

    app = ObservedApp(boards.load_config())
    try:
        app.run()
    except KeyboardInterrupt:
        d = app.engine.decoder
        unix_board.log("DECODER", d.pending(), d.frames, d.dropped, d.overflows)
        unix_board.log("EXIT KeyboardInterrupt")
elif MODE == "bootid":
    from tonebridge_fw import app

    print("REAL", app.new_boot_id(), app.new_boot_id())
    sys.modules["os"] = RecordingOs()
    print("MODEL", app.new_boot_id())
    sys.modules["os"] = NoUrandomOs()
    import time

    ids = []
    for _ in range(16):
        ids.append(app.new_boot_id())
        time.sleep_us(37)
    print("NOURANDOM", " ".join(ids))

# tonebridge board entry point (copied to the board's root as main.py).
#
# Reads tonebridge.json (board profile + overrides), then runs the protocol main loop on the
# console (or the UART the profile names). Ctrl-C stops the loop, silences the tone output,
# hangs up and leaves you at the MicroPython REPL, so mpremote can still deploy.

from tonebridge_fw import boards
from tonebridge_fw.app import App


def main():
    profile = boards.load_config()
    App(profile).run()


main()

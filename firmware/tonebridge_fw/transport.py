# Serial links for the protocol, on the board.
#
# StdioLink: the USB-CDC console (sys.stdin.buffer / sys.stdout.buffer), polled with
#   select.poll so the main loop never blocks on input.  MicroPython keeps Ctrl-C (0x03) as the
#   keyboard interrupt, so it never reaches us: it raises KeyboardInterrupt in the main loop
#   and the board drops to the REPL (mpremote relies on that).
# UartLink: machine.UART, where the board profile has "uart": {"id", "tx", "rx", "baudrate"}.
# MqttLink (mqttlink.py): Wi-Fi boards whose profile has "mqtt": the frames over a broker.
#
# Both: read() -> bytes-like of what arrived (never blocks), write(data), wait(ms) sleeps
# until input arrives or ms pass.  Buffers are allocated once.

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


MAX_READ = const(512)  # bytes taken per main-loop pass


class StdioLink:
    def __init__(self, max_read=MAX_READ):
        import select
        import sys

        self._in = sys.stdin.buffer
        self._out = sys.stdout.buffer
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._one = bytearray(1)
        self._rx = bytearray(max_read)
        self._mv = memoryview(self._rx)
        self._max = max_read

    def read(self):
        # a byte at a time (stdin reads block until the count asked for has come); every name
        # the loop uses is a local: ~40 us a byte on an RP2040, a frame's bytes add up
        n = 0
        poll = self._poll.poll
        one = self._one
        readinto = self._in.readinto
        rx = self._rx
        most = self._max
        while n < most and poll(0):
            if readinto(one) != 1:
                break
            rx[n] = one[0]
            n += 1
        if n == 0:
            return b""
        return self._mv[:n]

    def write(self, data):
        self._out.write(data)

    def wait(self, ms):
        if ms > 0:
            self._poll.poll(ms)


class UartLink:
    def __init__(self, cfg, max_read=MAX_READ):
        from machine import UART, Pin

        self._uart = UART(
            cfg.get("id", 0),
            baudrate=cfg.get("baudrate", 115200),
            tx=Pin(cfg["tx"]),
            rx=Pin(cfg["rx"]),
            timeout=0,
        )
        self._rx = bytearray(max_read)
        self._mv = memoryview(self._rx)
        self._poll = None
        try:
            import select

            p = select.poll()
            p.register(self._uart, select.POLLIN)
            self._poll = p
        except (ImportError, AttributeError, OSError, TypeError):
            self._poll = None

    def read(self):
        u = self._uart
        if not u.any():
            return b""
        n = u.readinto(self._rx)
        if not n:
            return b""
        return self._mv[:n]

    def write(self, data):
        self._uart.write(data)

    def wait(self, ms):
        if ms <= 0:
            return
        if self._poll is not None:
            self._poll.poll(ms)
        else:
            import time

            time.sleep_ms(ms if ms < 5 else 5)


def open_link(profile, hwid=""):
    """The protocol link the profile asks for: MQTT over Wi-Fi if "mqtt" is set (the board's
    hardware id `hwid` names its topics), a UART if "uart" is set, else the console."""
    if profile.get("mqtt"):
        from tonebridge_fw.mqttlink import MqttLink

        return MqttLink(profile, hwid)
    cfg = profile.get("uart")
    if cfg:
        return UartLink(cfg)
    return StdioLink()

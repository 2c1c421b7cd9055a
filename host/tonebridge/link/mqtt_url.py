"""`mqtt://` URLs for pyserial: a Wi-Fi board reached through an MQTT broker.

    serial.serial_for_url("mqtt://127.0.0.1:1883/e6614103e73f4a2b")        # board hwid
    serial.serial_for_url("mqtts://agent-a:PW@broker.example:8883/e661...?ca=/etc/ca.crt")

A Wi-Fi board (picow, esp32 with "mqtt" in its tonebridge.json; firmware/tonebridge_fw/
mqttlink.py) carries the protocol's bytes over the broker instead of a serial cable: the host
publishes what it writes to `tonebridge/v1/board/{hwid}/rx` and reads what the board publishes
on `tonebridge/v1/board/{hwid}/tx`, both QoS 1 (MQTT keeps each topic's order). To the link
layer (BoardClient, its exactly-once window, keep-alive and reconnection) it is one more serial
port, so `tonebridge agent --port mqtt://...` puts a Wi-Fi board in the fleet like a USB one.
The password may come from $TONEBRIDGE_BROKER_PASSWORD, as for `--broker`.
"""

from __future__ import annotations

import itertools
import threading
import time
import urllib.parse

from serial.serialutil import PortNotOpenError, SerialException

from tonebridge.link.virtual_serial import VirtualSerial

BOARD_PREFIX = "tonebridge/v1/board/"
_ids = itertools.count(1)


def board_topics(hwid: str) -> tuple[str, str, str]:
    """(rx, tx, status): what the host writes, what the board writes, its retained status."""
    base = BOARD_PREFIX + hwid
    return base + "/rx", base + "/tx", base + "/status"


def parse_url(url: str):
    """(Broker, hwid) of mqtt[s]://[USER[:PW]@]HOST[:PORT]/HWID[?ca=FILE]."""
    from tonebridge.fleet.topics import BrokerUrlError, parse_broker

    parts = urllib.parse.urlsplit(url)
    hwid = parts.path.strip("/").lower()
    if not hwid or not all(c in "0123456789abcdef" for c in hwid):
        raise SerialException(f"{url!r}: expected mqtt://HOST[:PORT]/HWID (the board's hex id)")
    ca = dict(urllib.parse.parse_qsl(parts.query)).get("ca")
    try:
        broker = parse_broker(urllib.parse.urlunsplit((parts.scheme, parts.netloc, "", "", "")),
                              ca=ca)  # fmt: skip
    except BrokerUrlError as e:
        raise SerialException(str(e)) from e
    return broker, hwid


class MqttSerial(VirtualSerial):
    """pyserial port whose other end is a Wi-Fi board on an MQTT broker."""

    def open(self):
        if self._port is None:
            raise SerialException("port must be configured before it can be used")
        if self.is_open:
            raise SerialException("port already open")
        from tonebridge.fleet.mqtt import BrokerError, Connection

        self.broker, self.hwid = parse_url(self.portstr)
        self.rx_topic, self.tx_topic, self.status_topic = board_topics(self.hwid)
        self._buf = bytearray()
        self._cond = threading.Condition()
        self.board_online: bool | None = None  # the board's retained status (None: unknown)
        self._conn = Connection(
            self.broker,
            f"tonebridge-link-{self.hwid}-{next(_ids)}-{time.monotonic_ns() % 1_000_000}",
            on_message=self._message,
            on_connect=lambda: self._conn.subscribe(self.tx_topic, self.status_topic),
            clean_session=True,
        )
        try:
            self._conn.start()
        except BrokerError as e:
            raise SerialException(str(e)) from e
        self.is_open = True

    def _message(self, topic: str, payload: bytes) -> None:
        if topic == self.status_topic:
            self.board_online = payload == b"1"
            return
        with self._cond:
            self._buf += payload
            self._cond.notify_all()

    def close(self):
        if self.is_open:
            self.is_open = False
            with self._cond:
                self._cond.notify_all()
            self._conn.stop()

    def _reconfigure_port(self):
        pass

    @property
    def in_waiting(self):
        if not self.is_open:
            raise PortNotOpenError()
        return len(self._buf)

    def wait_data(self, timeout: float) -> bool:
        """Block until bytes arrive or `timeout` passes (the link layer's reader waits here:
        tonebridge.link.liveness.wait_readable); True if there are bytes."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._buf) > 0 or not self.is_open, timeout)

    def read(self, size=1):
        if not self.is_open:
            raise PortNotOpenError()
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        with self._cond:
            while len(self._buf) < size:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._cond.wait(1.0 if left is None else left)
            out = bytes(self._buf[:size])
            del self._buf[:size]
        return out

    def write(self, data):
        if not self.is_open:
            raise PortNotOpenError()
        data = bytes(data)
        if data:
            self._conn.publish(self.rx_topic, data)
        return len(data)

    def reset_input_buffer(self):
        with self._cond:
            self._buf.clear()

    @property
    def cd(self):
        return self.board_online is not False

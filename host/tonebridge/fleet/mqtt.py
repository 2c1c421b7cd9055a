"""A connected paho-mqtt client (MQTT 3.1.1, persistent session, reconnecting by itself)
with the fleet's defaults: QoS 1, a retained last will, user/password, TLS."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading

import paho.mqtt.client as paho

from tonebridge.fleet.topics import Broker

log = logging.getLogger("tonebridge.fleet")

QOS = 1
KEEPALIVE_S = 5


class BrokerError(RuntimeError):
    pass


class Connection:
    """One MQTT connection. `on_message(topic, payload)` runs on paho's network thread;
    `on_connect()` after every (re)connection (subscribe and republish there)."""

    def __init__(
        self,
        broker: Broker,
        client_id: str,
        *,
        will: tuple[str, bytes] | None = None,
        on_message=None,
        on_connect=None,
        on_disconnect=None,
        keepalive: int = KEEPALIVE_S,
        clean_session: bool = False,
    ):
        self.broker = broker
        self.connected = threading.Event()
        self._on_message = on_message
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=paho.MQTTv311,
        )
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=2)
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)
        if broker.user:
            self.client.username_pw_set(broker.user, broker.password)
        if broker.tls:
            self.client.tls_set(ca_certs=broker.ca)
        if will is not None:
            self.client.will_set(will[0], will[1], qos=QOS, retain=True)
        self.client.on_connect = self._connected
        self.client.on_disconnect = self._disconnected
        self.client.on_message = self._message
        self.keepalive = keepalive
        self.refused: str | None = None

    def _connected(self, client, userdata, flags, reason, properties):
        if reason.is_failure:
            self.refused = str(reason)
            log.error("broker %s refused the connection: %s", self.broker, reason)
            return
        self.refused = None
        sock = client.socket()
        if sock is not None:  # small messages go out at once (Nagle: 40 ms with delayed ACKs)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        log.info("connected to broker %s", self.broker)
        if self._on_connect is not None:
            try:
                self._on_connect()
            except Exception:
                log.exception("on_connect failed")
        self.connected.set()

    def _disconnected(self, client, userdata, flags, reason, properties):
        self.connected.clear()
        if reason.is_failure:
            log.warning("lost the broker %s (%s); reconnecting", self.broker, reason)
        if self._on_disconnect is not None:
            try:
                self._on_disconnect()
            except Exception:
                log.exception("on_disconnect failed")

    def _message(self, client, userdata, msg):
        if self._on_message is None:
            return
        try:
            self._on_message(msg.topic, msg.payload)
        except Exception:
            log.exception("handling %s failed", msg.topic)

    def start(self, timeout: float = 10.0) -> None:
        """Connect (and keep reconnecting in paho's thread); BrokerError if the first
        connection is not up within `timeout`."""
        try:  # the first time by hand: its error (refused, TLS, DNS) is the message
            self.client.connect(self.broker.host, self.broker.port, self.keepalive)
        except (OSError, ValueError) as exc:
            raise BrokerError(f"cannot connect to the broker {self.broker}: {exc}") from exc
        self.client.loop_start()
        if not self.connected.wait(timeout):
            why = self.refused or "no answer"
            self.stop()
            raise BrokerError(f"cannot connect to the broker {self.broker} ({why})")

    def subscribe(self, *topics: str) -> None:
        self.client.subscribe([(t, QOS) for t in topics])

    def publish(self, topic: str, payload: bytes, retain: bool = False):
        return self.client.publish(topic, payload, qos=QOS, retain=retain)

    def stop(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()

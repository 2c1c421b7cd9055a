# The protocol link of a Wi-Fi board (picow, esp32): the same frames as on the serial console,
# carried over an MQTT broker with micropython-lib's umqtt.simple, QoS 1.
#
#   tonebridge.json: {"board": "picow",
#                     "wifi": {"ssid": "site-lan", "password": "..."},
#                     "mqtt": {"host": "192.0.2.10", "port": 1883,
#                              "user": "board-e661...", "password": "...", "keepalive": 30}}
#   TLS: "mqtt": {"host": ..., "port": 8883, "ssl": true, "ca": "/ca.der"} (the CA that signed
#   the broker's certificate, DER, on the board's flash: the broker's certificate and its host
#   name are verified). "ssl": true without "ca" encrypts but verifies nothing (MicroPython's
#   own default, CERT_NONE): it does not stop a man in the middle. The port defaults to 8883.
#
# Topics (docs/fleet.md): the host writes frames to tonebridge/v1/board/{hwid}/rx (the board
# subscribes with QoS 1), the board writes its frames to tonebridge/v1/board/{hwid}/tx;
# tonebridge/v1/board/{hwid}/status is retained "1" while the board is connected and "0" by its
# last will (QoS 1). The board publishes its frames with QoS 0 unless "tx_qos": 1: umqtt.simple
# keeps no copy of an unacknowledged message (a QoS 1 publish is never sent again), so QoS 1
# adds no delivery guarantee over the TCP stream, only a wait for the broker's PUBACK inside
# publish(); a wait longer than the tone DMA's two buffers (about 33 ms, easily reached over
# Wi-Fi with power saving) would starve the tone mid-digit. Lost frames (a dropped
# connection) are recovered by the host's link layer as on a serial link: it resends its
# request, and the board's exactly-once window answers a repeated SEND without playing it. On the host an agent
# reaches the board with the link URL mqtt://HOST:PORT/{hwid} (tonebridge.link.mqtt_url).
#
# umqtt.simple is not part of the firmware: install it on the board with
# `mpremote mip install umqtt.simple` (`tonebridge deploy` does that for a profile with "mqtt").
#
# Same interface as transport.StdioLink: read() -> bytes (never blocks), write(data),
# wait(ms). A broker or Wi-Fi that is not there at boot, or is lost later, makes read()
# reconnect (at most once a second; `last_error` says why it is down); frames written
# meanwhile are dropped, as on an unplugged cable (the host's link layer resends).

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


PREFIX = "tonebridge/v1/board/"
WIFI_WAIT_MS = const(20000)  # how long connect() waits for the access point
RETRY_MS = const(1000)  # between reconnection attempts


def topics(hwid):
    """(rx, tx, status) topics of the board with hardware id `hwid`."""
    base = PREFIX + hwid
    return base + "/rx", base + "/tx", base + "/status"


def join_wifi(cfg, ticks_ms, sleep_ms):
    """Bring the station interface up on cfg["ssid"]; OSError if it is not up in time."""
    import network

    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if not wlan.isconnected():
        wlan.connect(cfg["ssid"], cfg.get("password", ""))
        t0 = ticks_ms()
        while not wlan.isconnected():
            if ticks_ms() - t0 > cfg.get("wait_ms", WIFI_WAIT_MS):
                raise OSError("wifi: no connection to " + cfg["ssid"])
            sleep_ms(50)
    return wlan


def tls_client(MQTTClient, args, kw, cfg):
    """An MQTTClient that connects over TLS: umqtt.simple 1.3.x takes ssl=True and ssl_params
    (passed to ssl.wrap_socket); 1.4 and later take an ssl.SSLContext as ssl= (and no
    ssl_params). With "ca" the broker's certificate must verify (CERT_REQUIRED: on the mbedtls
    ports nothing else verifies) and match the host name."""
    import ssl

    ca = None
    if cfg.get("ca"):
        with open(cfg["ca"], "rb") as f:
            ca = f.read()
    params = {"server_hostname": cfg["host"]}
    if ca is not None:
        params["cert_reqs"] = ssl.CERT_REQUIRED
        params["cadata"] = ca
    try:
        return MQTTClient(*args, ssl=True, ssl_params=params, **kw)
    except TypeError:  # umqtt.simple >= 1.4: an SSLContext
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if ca is not None:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cadata=ca)
        return MQTTClient(*args, ssl=ctx, **kw)


class MqttLink:
    def __init__(self, profile, hwid):
        import time

        from umqtt.simple import MQTTClient

        self._ticks = time.ticks_ms
        self._diff = time.ticks_diff
        self._sleep = time.sleep_ms
        self._wifi = profile.get("wifi")
        cfg = profile["mqtt"]
        self.rx_topic, self.tx_topic, self.status_topic = topics(hwid)
        self._rx_b = self.rx_topic.encode()
        self._keep_ms = 1000 * cfg.get("keepalive", 30)
        self._qos = 1 if cfg.get("tx_qos") == 1 else 0
        tls = cfg.get("ssl") is True
        args = ("tonebridge-board-" + hwid, cfg["host"])
        kw = {
            "port": cfg.get("port", 8883 if tls else 1883),
            "user": cfg.get("user"),
            "password": cfg.get("password"),
            "keepalive": cfg.get("keepalive", 30),
        }
        if tls:
            self._client = tls_client(MQTTClient, args, kw, cfg)
        else:
            self._client = MQTTClient(*args, **kw)
        self._client.set_callback(self._message)
        self._client.set_last_will(self.status_topic, b"0", retain=True, qos=1)
        self._in = []
        self._poll = None
        self.up = False
        self.connects = 0
        self.last_error = ""
        self._last_try = 0
        self._last_out = 0
        self._retry(True)

    def _message(self, topic, msg):
        if topic == self._rx_b or topic == self.rx_topic:
            self._in.append(bytes(msg))

    def _connect(self):
        import select

        self._last_try = self._ticks()
        if self._wifi:
            join_wifi(self._wifi, self._ticks, self._sleep)
        c = self._client
        c.connect(clean_session=True)
        c.subscribe(self.rx_topic, qos=1)
        c.publish(self.status_topic, b"1", retain=True, qos=1)
        p = select.poll()
        p.register(c.sock, select.POLLIN)
        self._poll = p
        self._last_out = self._ticks()
        self.up = True
        self.connects += 1

    def _lost(self):
        self.up = False
        self._poll = None
        try:
            if self._client.sock is not None:
                self._client.sock.close()
        except Exception:
            pass

    def _retry(self, now=False):
        if not now and self._diff(self._ticks(), self._last_try) < RETRY_MS:
            return
        try:
            self._connect()
        except Exception as e:
            self.last_error = type(e).__name__ + " " + str(e)
            self._lost()
            self._last_try = self._ticks()

    def read(self):
        if not self.up:
            self._retry()
            return b""
        try:
            while self._poll.poll(0):
                self._client.check_msg()
            if self._diff(self._ticks(), self._last_out) > self._keep_ms // 2:
                self._client.ping()
                self._last_out = self._ticks()
        except Exception:
            self._lost()
        if not self._in:
            return b""
        data = b"".join(self._in)
        self._in = []
        return data

    def write(self, data):
        if not self.up:
            return
        try:
            self._client.publish(self.tx_topic, bytes(data), qos=self._qos)
            self._last_out = self._ticks()
        except Exception:
            self._lost()

    def wait(self, ms):
        if ms <= 0:
            return
        if self._in:
            return
        if self._poll is not None:
            self._poll.poll(ms)
        else:
            self._sleep(ms if ms < RETRY_MS else RETRY_MS)

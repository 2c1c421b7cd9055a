"""A simulated Wi-Fi board's network stack: the ``network`` and ``socket`` (``usocket``)
modules its firmware imports, enough to run micropython-lib's umqtt.simple unchanged.

``network.WLAN(network.STA_IF)``: ``active()``, ``connect(ssid, key)`` (joined 300 ms of board
time later if the SSID is one of the board's ``access_points`` with that key, else the status
says why not), ``isconnected()``, ``status()``, ``ifconfig()``, ``disconnect()``, ``config()``.
``SimBoard(access_points=None)`` means every SSID is in range and accepts any key.

``ssl`` (``ussl``): TLS over these sockets, MicroPython's API over CPython's ssl
(tonebridge.sim.netstack_tls).

``socket``: TCP streams with MicroPython's stream methods (``read``/``readinto``/``readline``/
``write``/``recv``/``send``/``setblocking``/``settimeout``/``close``) and ``getaddrinfo``. Each
is a real host socket, and only to loopback (127.0.0.0/8, ``localhost``): the simulated site's
broker is a real one on this machine. A reader thread moves what arrives into the socket's
buffer and wakes the board (``board.link.cond``), so a blocking read or ``select.poll`` waits in
board time like the serial link does (paced or real clocks; a lockstep board has no wall time
for a network to live in).
"""

from __future__ import annotations

import ipaddress
import socket as _host
import threading
import types

JOIN_US = 300_000

STAT_IDLE, STAT_CONNECTING, STAT_GOT_IP = 0, 1, 3
STAT_CONNECT_FAIL, STAT_NO_AP_FOUND, STAT_WRONG_PASSWORD = -1, -2, -3

EAGAIN, ECONNRESET, ENOTCONN, ETIMEDOUT, ECONNREFUSED, EHOSTUNREACH = 11, 104, 107, 110, 111, 113


def make_network_module(board) -> types.ModuleType:
    mod = types.ModuleType("network")
    mod.STA_IF, mod.AP_IF = 0, 1
    mod.STAT_IDLE, mod.STAT_CONNECTING, mod.STAT_GOT_IP = STAT_IDLE, STAT_CONNECTING, STAT_GOT_IP
    mod.STAT_CONNECT_FAIL, mod.STAT_NO_AP_FOUND = STAT_CONNECT_FAIL, STAT_NO_AP_FOUND
    mod.STAT_WRONG_PASSWORD = STAT_WRONG_PASSWORD
    net = board.net

    class WLAN:
        def __init__(self, interface=0):
            if interface not in (0, 1):
                raise ValueError("invalid interface")
            self._if = interface

        def active(self, state=None):
            if state is None:
                return net.active
            net.active = bool(state)
            if not state:
                net.status, net.ssid = STAT_IDLE, None
            return None

        def connect(self, ssid=None, key=None, *, bssid=None):
            if not net.active:
                raise OSError("STA must be active")
            aps = board.access_points
            now = board.clock.now_us()
            if aps is not None and ssid not in aps:
                net.status, net.ssid = STAT_NO_AP_FOUND, None
            elif aps is not None and aps[ssid] != (key or ""):
                net.status, net.ssid = STAT_WRONG_PASSWORD, None
            else:
                net.status, net.ssid, net.up_at = STAT_CONNECTING, ssid, now + JOIN_US

        def disconnect(self):
            net.status, net.ssid = STAT_IDLE, None

        def status(self, param=None):
            if param == "rssi":
                return -52
            return net.refresh(board.clock.now_us())

        def isconnected(self):
            board.runtime.touch()
            return net.active and self.status() == STAT_GOT_IP

        def ifconfig(self, cfg=None):
            if cfg is not None:
                net.ifconfig = tuple(cfg)
                return None
            if not self.isconnected():
                return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
            return net.ifconfig

        def config(self, *args, **kw):
            if kw:
                return None
            if args == ("mac",):
                return bytes.fromhex(board.hwid.ljust(12, "0")[:12])
            if args == ("ssid",):
                return net.ssid or ""
            if args == ("hostname",):
                return "tonebridge-" + board.hwid[:6]
            raise ValueError("unknown config param")

    mod.WLAN = WLAN
    mod.hostname = lambda name=None: "tonebridge-" + board.hwid[:6] if name is None else None
    mod.country = lambda code=None: "XX" if code is None else None
    return mod


class NetState:
    """The Wi-Fi interface of one board (kept across soft resets, like the radio's state is
    not: a reset takes the interface down)."""

    def __init__(self):
        self.active = False
        self.status = STAT_IDLE
        self.ssid = None
        self.up_at = 0
        self.ifconfig = ("192.168.4.23", "255.255.255.0", "192.168.4.1", "192.168.4.1")
        self.sockets: list = []

    def refresh(self, now_us: int) -> int:
        """The status at board time `now_us` (a join completes JOIN_US after connect())."""
        if self.status == STAT_CONNECTING and now_us >= self.up_at:
            self.status = STAT_GOT_IP
        return self.status

    def reset(self) -> None:
        for s in list(self.sockets):
            s.close()
        self.__init__()


def readinto_by_read(sock, buf, n=None):
    """MicroPython's stream readinto on a socket that has read(): None when nothing is ready
    (non-blocking), else the count copied into buf (shared by the plain and the TLS socket)."""
    n = len(buf) if n is None else n
    data = sock.read(n)
    if data is None:
        return None
    buf[: len(data)] = data
    return len(data)


def _loopback(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise OSError(-2, f"sim: cannot resolve {host!r} (only loopback brokers)") from None
    return str(addr)


def make_socket_module(board) -> types.ModuleType:
    mod = types.ModuleType("socket")
    mod.AF_INET, mod.AF_INET6, mod.SOCK_STREAM, mod.SOCK_DGRAM = 2, 10, 1, 2
    mod.IPPROTO_TCP, mod.IPPROTO_UDP, mod.SOL_SOCKET, mod.SO_REUSEADDR = 6, 17, 1, 2
    mod.TCP_NODELAY = 1
    net = board.net
    link = board.link
    rt = board.runtime

    def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
        ip = _loopback(str(host))
        return [(2, 1, 6, "", (ip, int(port)))]

    class Socket:
        def __init__(self, af=2, type=1, proto=0):
            if type != 1:
                raise OSError(95, "sim: only TCP streams")
            self._s = None
            self._buf = bytearray()
            self._eof = False
            self._timeout = None  # None: blocking; 0: non-blocking; else seconds
            self._closed = False
            net.sockets.append(self)

        # ---- connection -----------------------------------------------------------
        def connect(self, addr):
            if not (net.active and net.refresh(board.clock.now_us()) == STAT_GOT_IP):
                raise OSError(EHOSTUNREACH, "EHOSTUNREACH")
            ip, port = addr[0], int(addr[1])
            if not ipaddress.ip_address(ip).is_loopback:
                raise OSError(EHOSTUNREACH, "sim: only loopback is reachable")
            s = _host.socket(_host.AF_INET, _host.SOCK_STREAM)
            s.settimeout(5.0)
            try:
                s.connect((ip, port))
            except OSError as e:
                s.close()
                raise OSError(ECONNREFUSED, "ECONNREFUSED") from e
            s.settimeout(None)
            s.setsockopt(_host.IPPROTO_TCP, _host.TCP_NODELAY, 1)
            self._s = s
            threading.Thread(target=self._pump, name="sim-net", daemon=True).start()

        def _pump(self):
            s = self._s
            while True:
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                with link.cond:
                    if data:
                        self._buf += data
                    else:
                        self._eof = True
                    link.cond.notify_all()
                if not data:
                    return

        def _ready(self) -> bool:
            return bool(self._buf) or self._eof or self._closed

        def _wait(self, pred) -> bool:
            """Block in board time until pred() (per the socket's timeout); False on timeout."""
            if pred():
                return True
            if self._timeout == 0:
                return False
            ms = None if self._timeout is None else int(self._timeout * 1000)
            return rt.wait_until(pred, ms)

        def _take(self, n) -> bytes:
            with link.cond:
                out = bytes(self._buf[:n])
                del self._buf[:n]
            return out

        # ---- MicroPython stream methods ---------------------------------------------
        def read(self, n=-1):
            self._need()
            if n is None or n < 0:
                self._wait(lambda: self._eof or self._closed)
                return self._take(len(self._buf))
            if self._timeout == 0:
                if not self._buf:
                    return b"" if self._eof else None
                return self._take(n)
            if not self._wait(lambda: len(self._buf) >= n or self._eof or self._closed):
                raise OSError(ETIMEDOUT, "ETIMEDOUT")
            return self._take(n)

        def recv(self, n):
            self._need()
            if not self._wait(self._ready):
                if self._timeout == 0:
                    raise OSError(EAGAIN, "EAGAIN")
                raise OSError(ETIMEDOUT, "ETIMEDOUT")
            return self._take(n)

        def readinto(self, buf, n=None):
            return readinto_by_read(self, buf, n)

        def readline(self):
            self._need()
            self._wait(lambda: b"\n" in self._buf or self._eof or self._closed)
            i = self._buf.find(b"\n")
            return self._take(len(self._buf) if i < 0 else i + 1)

        def write(self, buf, n=None):
            self._need()
            if isinstance(buf, str):  # MicroPython's streams take a str as its UTF-8 bytes
                buf = buf.encode()
            data = bytes(memoryview(buf)[: len(buf) if n is None else n])
            try:
                self._s.sendall(data)
            except OSError as e:
                raise OSError(ECONNRESET, "ECONNRESET") from e
            return len(data)

        send = write

        def sendall(self, buf):
            self.write(buf)

        def _need(self):
            if self._closed:
                raise OSError(9, "EBADF")
            if self._s is None:
                raise OSError(ENOTCONN, "ENOTCONN")

        # ---- options ------------------------------------------------------------------
        def setblocking(self, flag):
            self._timeout = None if flag else 0

        def settimeout(self, t):
            self._timeout = None if t is None else float(t)

        def setsockopt(self, level, opt, value):
            return None

        def makefile(self, mode="rb", buffering=0):
            return self

        def close(self):
            if self._closed:
                return
            self._closed = True
            if self._s is not None:
                try:
                    self._s.shutdown(_host.SHUT_RDWR)
                except OSError:
                    pass
                self._s.close()
            if self in net.sockets:
                net.sockets.remove(self)

        def _sim_readable(self) -> bool:
            return self._ready()

        # ---- for the simulated ssl module (netstack_tls): the raw bytes --------------------
        def sim_timeout(self):
            return self._timeout

        def sim_pull(self, timeout):
            """Everything received so far (waiting in board time up to `timeout` seconds, None:
            forever, 0: not at all); b"" at end of stream, None if nothing came in time."""
            self._need()
            pred = self._ready
            if not pred():
                if timeout == 0:
                    return None
                if not rt.wait_until(pred, None if timeout is None else int(timeout * 1000)):
                    return None
            if self._closed:
                raise OSError(9, "EBADF")
            if not self._buf and self._eof:
                return b""
            return self._take(len(self._buf))

    mod.socket = Socket
    mod.getaddrinfo = getaddrinfo
    return mod

"""The ``ssl`` module (``ussl``) of a simulated Wi-Fi board: MicroPython 1.2x's API over
CPython's ssl, on the board's simulated sockets (tonebridge.sim.netstack).

What a MicroPython 1.2x board has (docs.micropython.org, ``ssl``; the mbedtls ports: rp2 Pico W,
esp32) and what this gives:

- ``ssl.wrap_socket(sock, server_side=False, key=None, cert=None, cert_reqs=CERT_NONE,
  cadata=None, server_hostname=None, do_handshake=True)`` (what micropython-lib's umqtt.simple
  1.3.4 calls, ``ussl.wrap_socket(sock, **ssl_params)``);
- ``ssl.SSLContext(PROTOCOL_TLS_CLIENT)`` with ``verify_mode``, ``load_verify_locations(cafile=
  None, cadata=None)`` and ``wrap_socket(sock, server_side=False, do_handshake_on_connect=True,
  server_hostname=None)`` (what umqtt.simple 1.4 and later take as ``ssl=``);
- mbedtls's rules: only ``CERT_REQUIRED`` verifies the peer (``CERT_NONE`` and
  ``CERT_OPTIONAL`` verify nothing); ``cadata`` is one CA certificate in DER; the host name is
  checked against ``server_hostname`` when one is given; a failed verification is
  ``OSError(-9984)`` (MBEDTLS_ERR_X509_CERT_VERIFY_FAILED), other TLS failures
  ``OSError(-30592)`` (MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE);
- the wrapped socket is a stream: ``read``/``readinto``/``readline``/``write``/``recv``/
  ``send``/``setblocking``/``settimeout``/``close``, and ``select.poll`` works on it (a
  non-blocking read with no whole record yet returns ``None``).

The TLS itself is CPython's (an ``SSLObject`` over memory BIOs, the bytes carried by the
board's simulated socket to the real broker on loopback): a real handshake and real records,
so a broker's TLS-only listener accepts the board or refuses it as it would the real one.
Client side only (a board does not serve TLS)."""

from __future__ import annotations

import ssl as _ssl
import types

from tonebridge.sim.netstack import readinto_by_read

CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED = 0, 1, 2
PROTOCOL_TLS_CLIENT, PROTOCOL_TLS_SERVER = 0, 1
VERIFY_FAILED = -9984  # MBEDTLS_ERR_X509_CERT_VERIFY_FAILED
FATAL_ALERT = -30592  # MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE
EAGAIN, ETIMEDOUT = 11, 110


def _tls_error(exc: _ssl.SSLError) -> OSError:
    if isinstance(exc, _ssl.SSLCertVerificationError):
        return OSError(VERIFY_FAILED, f"MBEDTLS_ERR_X509_CERT_VERIFY_FAILED ({exc.verify_message})")
    return OSError(FATAL_ALERT, f"MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE ({exc.reason})")


class SSLSocket:
    """A TLS client stream over a simulated socket (``raw``: netstack's socket)."""

    def __init__(self, raw, context: _ssl.SSLContext, server_hostname, do_handshake):
        self._raw = raw
        self._in, self._out = _ssl.MemoryBIO(), _ssl.MemoryBIO()
        self._obj = context.wrap_bio(self._in, self._out, server_hostname=server_hostname)
        self._plain = bytearray()
        self._eof = False
        self._timeout = raw.sim_timeout()  # None: blocking; 0: non-blocking; else seconds
        self._shaken = False
        if do_handshake:
            self._handshake()

    # ---- moving records ---------------------------------------------------------------
    def _flush(self):
        data = self._out.read()
        if data:
            self._raw.write(data)

    def _pull(self, timeout) -> bool:
        """Feed what the socket has to the TLS object; False if nothing came in time."""
        data = self._raw.sim_pull(timeout)
        if data is None:
            return False
        if data:
            self._in.write(data)
        else:
            self._in.write_eof()
        return True

    def _handshake(self):
        while True:
            try:
                self._obj.do_handshake()
                self._flush()
                self._shaken = True
                return
            except _ssl.SSLWantReadError:
                self._flush()
                if not self._pull(None if self._timeout == 0 else self._timeout):
                    raise OSError(ETIMEDOUT, "ETIMEDOUT") from None
            except _ssl.SSLError as e:
                self._flush()
                raise _tls_error(e) from None

    def _fill(self, timeout) -> bool:
        """One attempt to decrypt more into the plain buffer (waiting up to `timeout` for the
        socket); False if nothing came."""
        if not self._shaken:
            self._handshake()
        while True:
            try:
                data = self._obj.read(16384)
            except _ssl.SSLWantReadError:
                self._flush()  # TLS 1.3 may answer post-handshake messages
                if self._eof_raw():
                    self._eof = True
                    return True
                if not self._pull(timeout):
                    return False
                continue
            except (_ssl.SSLZeroReturnError, _ssl.SSLEOFError):
                self._eof = True  # closed by the peer (or the connection dropped)
                return True
            except _ssl.SSLError as e:
                raise _tls_error(e) from None
            if not data:
                self._eof = True
            self._plain += data
            return True

    def _eof_raw(self) -> bool:
        return self._in.eof

    def _take(self, n) -> bytes:
        out = bytes(self._plain[:n])
        del self._plain[:n]
        return out

    # ---- MicroPython stream methods ---------------------------------------------------
    def read(self, n=-1):
        if n is None or n < 0:
            while not self._eof:
                self._fill(None)
            return self._take(len(self._plain))
        if self._timeout == 0:
            while len(self._plain) < n and not self._eof and self._fill(0):
                pass
            if not self._plain:
                return b"" if self._eof else None
            return self._take(n)
        while len(self._plain) < n and not self._eof:
            if not self._fill(self._timeout):
                raise OSError(ETIMEDOUT, "ETIMEDOUT")
        return self._take(n)

    def recv(self, n):
        if not self._plain and not self._eof and not self._fill(self._timeout):
            raise (
                OSError(EAGAIN, "EAGAIN") if self._timeout == 0 else OSError(ETIMEDOUT, "ETIMEDOUT")
            )
        return self._take(n)

    def readinto(self, buf, n=None):
        return readinto_by_read(self, buf, n)

    def readline(self):
        while b"\n" not in self._plain and not self._eof:
            if not self._fill(self._timeout):
                break
        i = self._plain.find(b"\n")
        return self._take(len(self._plain) if i < 0 else i + 1)

    def write(self, buf, n=None):
        if isinstance(buf, str):
            buf = buf.encode()
        data = bytes(memoryview(buf)[: len(buf) if n is None else n])
        if not self._shaken:
            self._handshake()
        try:
            self._obj.write(data)
        except _ssl.SSLError as e:
            raise _tls_error(e) from None
        self._flush()
        return len(data)

    send = write

    def sendall(self, buf):
        self.write(buf)

    def setblocking(self, flag):
        self._timeout = None if flag else 0

    def settimeout(self, t):
        self._timeout = None if t is None else float(t)

    def setsockopt(self, *args):
        return None

    def makefile(self, mode="rb", buffering=0):
        return self

    def close(self):
        self._raw.close()

    def _sim_readable(self) -> bool:
        # decrypted bytes waiting, or bytes on the socket (perhaps only part of a record:
        # a non-blocking read then returns None, as MicroPython's does)
        return bool(self._plain) or self._eof or self._raw._sim_readable()


class SSLContext:
    def __init__(self, protocol=PROTOCOL_TLS_CLIENT):
        if protocol != PROTOCOL_TLS_CLIENT:
            raise ValueError("sim: only PROTOCOL_TLS_CLIENT (a board does not serve TLS)")
        self.verify_mode = CERT_NONE  # MicroPython's default
        self._cadata = None

    def load_verify_locations(self, cafile=None, cadata=None):
        if cafile is not None:
            with open(cafile, "rb") as f:
                cadata = f.read()
        if not isinstance(cadata, (bytes, bytearray)):
            raise TypeError("cadata must be bytes (a DER certificate)")
        self._cadata = bytes(cadata)

    def load_cert_chain(self, certfile, keyfile):
        raise OSError(95, "sim: client certificates are not modelled")

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True,
                    server_hostname=None):  # fmt: skip
        if server_side:
            raise OSError(95, "sim: a board does not serve TLS")
        ctx = _ssl.SSLContext(_ssl.PROTOCOL_TLS_CLIENT)
        if self.verify_mode == CERT_REQUIRED:  # mbedtls: only REQUIRED verifies
            if self._cadata is None:
                raise ValueError("CERT_REQUIRED without a CA (load_verify_locations)")
            try:
                ctx.load_verify_locations(cadata=self._cadata)  # bytes: DER, as mbedtls wants
            except _ssl.SSLError as e:
                raise ValueError(f"invalid cert ({e.reason}): cadata must be DER") from None
            ctx.check_hostname = server_hostname is not None
        else:
            ctx.check_hostname = False
            ctx.verify_mode = _ssl.CERT_NONE
        return SSLSocket(sock, ctx, server_hostname, do_handshake_on_connect)


def make_ssl_module(board) -> types.ModuleType:
    mod = types.ModuleType("ssl")
    mod.CERT_NONE, mod.CERT_OPTIONAL, mod.CERT_REQUIRED = CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED
    mod.PROTOCOL_TLS_CLIENT, mod.PROTOCOL_TLS_SERVER = PROTOCOL_TLS_CLIENT, PROTOCOL_TLS_SERVER
    mod.MBEDTLS_VERSION = "Mbed TLS 3.x (simulated over " + _ssl.OPENSSL_VERSION + ")"
    mod.SSLContext = SSLContext

    def wrap_socket(sock, server_side=False, key=None, cert=None, cert_reqs=CERT_NONE,
                    cadata=None, server_hostname=None, do_handshake=True):  # fmt: skip
        ctx = SSLContext(PROTOCOL_TLS_SERVER if server_side else PROTOCOL_TLS_CLIENT)
        if key is not None or cert is not None:
            ctx.load_cert_chain(cert, key)
        if cadata is not None:
            ctx.load_verify_locations(cadata=cadata)
        ctx.verify_mode = cert_reqs
        return ctx.wrap_socket(sock, server_side=server_side,
                               do_handshake_on_connect=do_handshake,
                               server_hostname=server_hostname)  # fmt: skip

    mod.wrap_socket = wrap_socket
    return mod

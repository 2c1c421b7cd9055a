"""Which board is at the other end: hardware ids, the paths a board may have moved to, and
the HELLO check every port passes before anything else is written to it (LinkCore's
identity part; see link/core.py).

After every (re)open the link sends HELLO before anything else. The hardware id the board
reports (``hwid=``) must be the one the link is bound to: ``hwid`` given to the constructor,
or else the first id seen (the link keeps it for its life). Another board on the same path
is refused: WrongBoardError, a ``wrong_board`` event and one log line, and the port is
closed again; the link then looks for its own board under the paths ``locate(hwid)`` names
(USB serial numbers, configured globs: link/discovery.py).
"""

from __future__ import annotations

import logging
import os
import threading
import weakref

import serial
from tonebridge_fw import codec

from tonebridge.link.errors import BoardError, LinkError, WrongBoardError, ok_reply

log = logging.getLogger("tonebridge.link")
READ_TIMEOUT_S = 0.25  # pyserial read timeout (ports without a file descriptor)

# device paths held open by a link in this process (realpath -> (owner, its port)), so that
# looking for a board never opens (and steals bytes from) another line's port. An entry
# whose owner is gone, or no longer has that port open, holds nothing (a client dropped
# without close() must not make a path unusable for the rest of the process).
_HELD: dict[str, tuple] = {}
_HELD_LOCK = threading.Lock()


def normalize_hwid(value) -> str | None:
    """Hardware ids compare as lowercase text without separators ("E6:61" == "e661")."""
    if value is None:
        return None
    text = "".join(ch for ch in str(value).lower() if ch not in ":- ")
    return text or None


def _device_key(url: str) -> str | None:
    if "://" in url:
        return None
    try:
        return os.path.realpath(url)
    except (OSError, ValueError):
        return None


def hold_path(url: str, owner: object, port) -> None:
    key = _device_key(url)
    if key is not None:
        with _HELD_LOCK:
            _HELD[key] = (weakref.ref(owner), port)


def _holder(key: str):
    """The live owner holding `key` open, or None (stale entries are dropped)."""
    entry = _HELD.get(key)
    if entry is None:
        return None
    owner = entry[0]()
    port = entry[1]
    if owner is None or getattr(owner, "serial", None) is not port or not _is_open(port):
        del _HELD[key]
        return None
    return owner


def _is_open(port) -> bool:
    is_open = getattr(port, "is_open", True)
    return bool(is_open)


def release_path(owner: object) -> None:
    """Forget every path `owner` holds (by owner, not by path: the path may be a symlink
    that is gone by now, resolving elsewhere than when it was held)."""
    with _HELD_LOCK:
        for key, entry in list(_HELD.items()):
            if entry[0]() in (owner, None):
                del _HELD[key]


def held_elsewhere(url: str, owner: object) -> bool:
    key = _device_key(url)
    if key is None:
        return False
    with _HELD_LOCK:
        holder = _holder(key)
    return holder is not None and holder is not owner


class IdentityMixin:
    """Opening ports, checking the board by HELLO, binding to its hardware id."""

    # ---- opening and identity --------------------------------------------------------------

    def _open_url(self, url: str):
        if self._opener is not None:
            return self._opener(url)
        if self._port_factory is not None and url == self.configured_url:
            return self._port_factory()
        return serial.serial_for_url(url, baudrate=self.baudrate, timeout=READ_TIMEOUT_S)

    def _candidates(self) -> list[str]:
        out = [self.url, self.configured_url]
        if self.hwid and self._locate is not None:
            try:
                out.extend(self._locate(self.hwid))
            except Exception:  # a failing search must not stop reconnecting
                log.exception("link %s: looking for board %s failed", self.url, self.hwid)
        seen, result = set(), []
        for url in out:
            key = _device_key(url) or url
            if key in seen or held_elsewhere(url, self):
                continue
            seen.add(key)
            result.append(url)
        return result

    def _connect(self, deadline: float, hello_by: float | None = None) -> None:
        """Open a port whose board passes HELLO, trying every candidate path, until
        `deadline` (at least one round). Raises LinkError / WrongBoardError / BoardError."""
        last: Exception | None = None
        while True:
            for url in self._candidates():
                if self._closed:
                    raise LinkError(f"{self.url}: the client is closed")
                try:
                    port = self._open_url(url)
                except (serial.SerialException, OSError, ValueError) as e:
                    last = LinkError(f"cannot open {url}: {e}")
                    continue
                try:
                    self._adopt(port, url, max(hello_by or 0.0, deadline))
                    return
                except LinkError as e:  # WrongBoardError included
                    last = e
            if self._clock() >= deadline or self._closed:
                if isinstance(last, LinkError):
                    raise last
                raise LinkError(f"cannot open {self.url}: {last}")
            self._sleep(0.2)

    def _adopt(self, port, url: str, deadline: float) -> None:
        """Make `port` the link's port if its board passes HELLO (protocol, hardware id)."""
        with self._cond:
            self._drop_port()
            self._port = port
            self.link_up = False
            self.silent = False
            self._decoder.reset()
            self._ping = None
        try:
            reply = self._request(
                "HELLO", deadline=max(deadline, self._clock() + self.timeout), verified=False
            )
            info = ok_reply(reply)
            self._accept_hello(info, url)
        except BaseException:
            with self._cond:
                if self._port is port:
                    self._drop_port()
            raise
        hold_path(url, self, port)
        first = self.link_gen == 0
        moved = url != self.url
        with self._cond:
            self.url = url
            self.link_up = True
            self.link_gen += 1
            if not first:
                self.reconnects += 1
            self.fault = None
            self.down_since = None
            self._last_rx = self._clock()
            self._cond.notify_all()
        try:
            self.board_config = ok_reply(self._request("CONFIG", verified=False))
        except (BoardError, LinkError):
            pass
        if moved:
            log.warning("board %s found again under %s", self.hwid, url)
        elif not first:
            log.info("link %s: board %s is back", url, self.hwid)
        self._emit({"event": "link", "state": "up", "path": url, "hwid": self.hwid, "moved": moved})

    def _accept_hello(self, info: dict, url: str) -> None:
        if info.get("proto") != codec.PROTOCOL_VERSION:
            raise BoardError(
                "proto",
                f"the board speaks protocol {info.get('proto')!r}; "
                f"this host speaks {codec.PROTOCOL_VERSION} (update one of them)",
            )
        found = normalize_hwid(info.get("hwid"))
        if self.hwid is not None and found != self.hwid:
            raise self._wrong_board(url, found)
        boot = str(info.get("boot", ""))
        bound = False
        with self._cond:
            if self.boot_id is not None and boot != self.boot_id:
                self._board_restarted(boot)
            self.boot_id = boot
            self.info = info
            if self.hwid is None and found is not None:
                self.hwid = found
                bound = True
        if bound:
            log.info("link %s: bound to board %s", url, found)
            self._emit({"event": "bound", "hwid": found, "path": url})

    def _wrong_board(self, url: str, found: str | None) -> WrongBoardError:
        msg = (
            f"wrong board on {url}: it reports hardware id {found or '(none)'}, "
            f"not {self.hwid}; nothing is sent to it"
        )
        self.fault = msg
        if (url, found) not in self._wrong_logged:
            self._wrong_logged.add((url, found))
            log.warning("refusing to send: %s", msg)
            self._emit(
                {
                    "event": "wrong_board",
                    "message": msg,
                    "path": url,
                    "expected": self.hwid,
                    "found": found,
                }
            )
        return WrongBoardError(msg, path=url, expected=self.hwid or "", found=found or "")

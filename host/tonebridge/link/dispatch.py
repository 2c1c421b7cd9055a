"""Where each frame from the board goes (LinkCore's dispatch part; see link/core.py):
replies to the request waiting for their id, sequence events to their sequence, everything
else (BOOT, HOOK, FAULT) to `on_event`, delivered outside the locks."""

from __future__ import annotations

import logging

from tonebridge_fw import codec

from tonebridge.link.identity import normalize_hwid

log = logging.getLogger("tonebridge.link")


class DispatchMixin:
    def _dispatch(self, mark: str, rid: str, body: str) -> None:
        with self._cond:
            try:
                if mark == codec.REPLY:
                    w = self._waiters.get(rid)
                    if w is not None and w.reply is None:
                        w.reply = body
                    elif self._ping is not None and rid == self._ping[0]:
                        self._ping = None
                    return
                verb, args = codec.split_body(body)
                if rid != codec.NO_ID:
                    job = self._jobs.get(rid)
                    if job is not None:
                        job.events.append((verb, args))
                    return
                self._dispatch_event(verb, args)
            finally:
                self._cond.notify_all()

    def _dispatch_event(self, verb: str, args: list) -> None:
        if verb == "BOOT":
            kv, _ = codec.parse_kv(args)
            boot = kv.get("boot")
            found = normalize_hwid(kv.get("hwid"))
            if found is not None and self.hwid is not None and found != self.hwid:
                # another board booted on this port: never talk to it
                self._link_lost(f"a board with hardware id {found} booted on this port")
            elif boot and self.boot_id is not None and boot != self.boot_id:
                self._board_restarted(boot)
            ev = {"event": "boot", "boot": boot}
        elif verb == "HOOK":
            ev = {"event": "hook", "off_hook": bool(args) and args[0] == "off"}
            if len(args) > 1:
                ev["reason"] = args[1]
        elif verb == "FAULT":
            ev = {"event": "fault", "code": args[0] if args else "", "message": " ".join(args[1:])}
            if ev["code"] == "line":
                # a digit not heard: the sequences in flight say which in their errors
                for job in self._jobs.values():
                    job.events.append((verb, args))
        else:
            ev = {"event": verb.lower(), "args": args}
        self._pending_events.append(ev)

    def _board_restarted(self, new_boot: str) -> None:
        with self._cond:
            self.boot_id = new_boot
            for job in self._jobs.values():
                job.reset = True
            self._cond.notify_all()

    def _emit(self, ev: dict) -> None:
        with self._cond:
            self._pending_events.append(ev)

    def _deliver_events(self) -> None:
        with self._cond:
            evs = self._pending_events
            self._pending_events = []
        cb = self.on_event
        if cb is not None:
            for ev in evs:
                try:
                    cb(ev)
                except Exception:
                    log.exception("link %s: on_event failed", self.url)

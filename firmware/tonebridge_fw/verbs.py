# The request verbs: what each request kind does to the engine (sans-I/O).
#
#   fn = VERBS.get(verb)          # HELLO PING STATUS RESULT CONFIG HOOK CANCEL SEND FLASH SELFTEST
#   result = fn(eng, rid, args)   # args: the body's words after the verb
#
# A verb returns the reply body ("OK ..."), a Job (SEND, SELFTEST: the engine replies with its
# state), or None when it refused the request itself (eng.err: nothing done, nothing
# remembered); a ValueError is a bad-arg reply. The engine (engine.py) keeps the exactly-once
# window, answering a repeated id without calling the verb again, and remembers the results of
# the verbs in EFFECTFUL. Every dial string is compiled by dialstring.compile_plan before it is
# accepted, so a bad string plays nothing. The protocol is specified in docs/protocol.md.
#
# What a verb uses of the engine: its settings (info, boot_id, config, tunable, hold_max_ms,
# max_plan_ms, queue_depth, window, hears, check, progress, off_hook, fw) and counters, cur (the
# job playing) and queue (those waiting), and err(), event(), act(), job_state(), lookup(),
# drop(), start_next() and uptime().

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


from tonebridge_fw import codec, dialstring
from tonebridge_fw.job import Job

# a 40-char id, every SEND option at its longest (boot, dialect=tonebridge, tone, gap, pause,
# flash, dialtone) and this many characters of dial string still fit MAX_FRAME
# (test_longest_send_fits_one_frame); every dialect's own limit (92) is below it
MAX_SEND_CHARS = const(112)
DIALTONE_MAX_MS = const(60000)  # SEND dialtone=: the longest wait for dial tone
TIMING = ("tone", "gap", "pause")  # SEND options and CONFIG settings, in ms
FLASH = "flash"  # SEND option and CONFIG setting: the hook flash, in ms (50-1500)
# settings a backend may let CONFIG change at run time (Engine(tunable={...}))
TWIST_RANGE = (0.0, 4.0)  # dB, high group above low group (synth.Renderer limits)
LEVEL_RANGE = (0.05, 1.0)  # peak of the two-tone sum as a fraction of full scale


def hello(eng, rid, args):
    info = eng.info
    pairs = [
        ("proto", codec.PROTOCOL_VERSION),
        ("fw", eng.fw),
        ("boot", eng.boot_id),
        ("board", info.get("board", "unknown")),
        ("backend", info.get("backend", "unknown")),
        ("keys", dialstring_keys()),
        ("dialects", ",".join(dialects())),
        ("tone_min", dialstring.TIMING_MIN_MS),
        ("tone_max", dialstring.TIMING_MAX_MS),
        ("hold_max", eng.hold_max_ms),
        ("queue", eng.queue_depth),
        ("window", eng.window),
        ("frame", codec.MAX_FRAME),
        ("chars", MAX_SEND_CHARS),
        ("verify", 1 if eng.check.verify else 0),
    ]
    if eng.hears:
        pairs.append(("progress", 1))
    if info.get("hwid"):
        pairs.append(("hwid", info["hwid"]))
    return "OK " + codec.format_kv(pairs)


def ping(eng, rid, args):
    return "OK pong up=" + str(eng.uptime())


def status(eng, rid, args):
    cur = eng.cur
    pairs = [
        ("boot", eng.boot_id),
        ("state", "playing" if cur is not None else "idle"),
    ]
    if cur is not None:
        pairs.append(("rid", cur.rid))
        pairs.append(("played", cur.played))
        pairs.append(("digits", cur.total))
    pairs.append(("queue", len(eng.queue)))
    pairs.append(("hook", "off" if eng.off_hook else "on"))
    if eng.hears:
        pairs.append(("progress", eng.progress))
    pairs.append(("up", eng.uptime()))
    pairs.append(("frames", eng.decoder.frames))
    pairs.append(("dropped", eng.decoder.dropped))
    pairs.append(("dups", eng.duplicates))
    pairs.append(("underruns", eng.underruns() if eng.underruns else 0))
    return "OK " + codec.format_kv(pairs)


def result(eng, rid, args):
    if len(args) != 1:
        raise ValueError("RESULT takes one request id")
    rec = eng.lookup(args[0])
    if rec is None:
        return "OK state=unknown boot=" + eng.boot_id
    if rec.job is None:
        return "OK state=answered"
    return eng.job_state(rec.job)


def config(eng, rid, args):
    kv, rest = codec.parse_kv(args)
    if rest:
        raise ValueError("CONFIG takes key=value words")
    new = dict(eng.config)
    for k in kv:
        v = kv[k]
        if k == "dialect":
            if v not in dialects():
                raise ValueError("unknown dialect " + v)
            new[k] = v
        elif k in TIMING or k == FLASH:
            new[k] = _int(v, k)
        elif k == "twist" or k == "level":
            if k not in eng.tunable:
                raise ValueError(k + " cannot be changed on this board")
            f = _float(v, k)
            lo, hi = TWIST_RANGE if k == "twist" else LEVEL_RANGE
            if not lo <= f <= hi:
                raise ValueError(k + " must be within " + str(lo) + ".." + str(hi))
            new[k] = f
        else:
            raise ValueError("unknown setting " + k)
    try:
        dialstring.check_timing(new["tone"], new["gap"], new["pause"])
        dialstring.check_flash(new[FLASH])
    except ValueError as e:
        raise ValueError(str(e))
    if kv:
        eng.config = new
        eng.act(("config", dict(new)))
    c = eng.config
    pairs = [("dialect", c["dialect"])]
    for k in TIMING:
        pairs.append((k, c[k]))
    pairs.append((FLASH, c[FLASH]))
    for k in ("twist", "level"):
        if k in c:
            pairs.append((k, c[k]))
    return "OK " + codec.format_kv(pairs)


def hook(eng, rid, args):
    if len(args) != 1 or args[0] not in ("on", "off"):
        raise ValueError("HOOK takes on or off")
    off = args[0] == "off"
    if not off and eng.cur is not None:
        eng.drop(None, "hangup")  # hanging up stops the sequence (and drops the queued ones)
    eng.act(("hook", off))
    if off != eng.off_hook:
        eng.off_hook = off
        eng.event(codec.NO_ID, "HOOK " + args[0])
    return "OK hook=" + args[0]


def flash(eng, rid, args):
    if len(args) > 1:
        raise ValueError("FLASH takes at most one length in ms")
    ms = _int(args[0], "flash") if args else eng.config[FLASH]
    dialstring.check_flash(ms)
    if not eng.off_hook:
        eng.err(rid, "on-hook", "line is on-hook: a flash needs the line held (HOOK off)")
        return None
    if eng.busy():
        eng.err(rid, "busy", "a sequence is playing (put '!' in a tonebridge dial string)")
        return None
    eng.act(("flash", ms))
    return "OK flash=" + str(ms)


def cancel(eng, rid, args):
    if len(args) > 1:
        raise ValueError("CANCEL takes at most one request id")
    cancelled = eng.drop(args[0] if args else None, "cancelled")
    if not cancelled:
        return "OK cancelled=none"
    return "OK cancelled=" + ",".join(cancelled)


def send(eng, rid, args):
    kv, rest = codec.parse_kv(args)
    if not rest:
        eng.err(rid, "bad-arg", "SEND needs a dial string")
        return None
    text = codec.dial_from_wire(" ".join(rest))  # '^' on the wire is the dialect's '!'
    for k in kv:
        if k != "boot" and k != "dialect" and k != FLASH and k != "dialtone" and k not in TIMING:
            eng.err(rid, "bad-arg", "unknown SEND option " + k)
            return None
    boot = kv.get("boot")
    if boot is not None and boot != eng.boot_id:
        eng.err(rid, "boot", "board restarted: boot is " + eng.boot_id + " not " + boot)
        return None
    if len(text) > MAX_SEND_CHARS:
        eng.err(rid, "too-long", "dial string longer than " + str(MAX_SEND_CHARS))
        return None
    cfg = eng.config
    dialect = kv.get("dialect", cfg["dialect"])
    t = {}
    try:
        for k in TIMING:
            t[k] = _int(kv[k], k) if k in kv else cfg[k]
        t[FLASH] = _int(kv[FLASH], FLASH) if FLASH in kv else cfg[FLASH]
        wait = _int(kv["dialtone"], "dialtone") if "dialtone" in kv else 0
    except ValueError as e:
        eng.err(rid, "bad-arg", str(e))
        return None
    gap = t["gap"]
    try:
        plan = dialstring.compile_plan(
            text, dialect, t["tone"], gap, t["pause"], eng.hold_max_ms, t[FLASH]
        )
    except dialstring.DialStringError as e:
        pos = getattr(e, "position", None)
        where = "" if pos is None else " pos=" + str(pos)
        eng.err(rid, "dial" + where, codec.dial_to_wire(str(e)))
        return None
    except ValueError as e:
        eng.err(rid, "bad-arg", str(e))
        return None
    if wait and not eng.hears:
        eng.err(rid, "bad-arg", "dialtone: this board does not hear the line")
        return None
    if wait < 0 or wait > DIALTONE_MAX_MS:
        eng.err(rid, "bad-arg", "dialtone must be 0-" + str(DIALTONE_MAX_MS) + " ms")
        return None
    if len(eng.queue) + (1 if eng.cur is not None else 0) >= eng.queue_depth:
        eng.err(rid, "busy", "queue full (" + str(eng.queue_depth) + " sequences)")
        return None
    ms = dialstring.plan_ms(plan)
    if eng.max_plan_ms and ms > eng.max_plan_ms:
        eng.err(
            rid,
            "dial",
            "sequence lasts %d ms, longer than the line may stay off-hook (%d ms)"
            % (ms, eng.max_plan_ms),
        )
        return None
    job = Job(rid, plan, ms)
    job.gap = gap
    job.dialtone = wait
    eng.queue.append(job)
    eng.start_next()
    return job


def selftest(eng, rid, args):
    busy = eng.off_hook or eng.busy()
    err = eng.check.refuse(args, eng.boot_id, busy)
    if err is not None:
        eng.err(rid, err[0], err[1])
        return None
    plan = eng.check.selftest_plan()
    job = Job(rid, plan, dialstring.plan_ms(plan))
    job.selftest = True
    eng.queue.append(job)
    eng.start_next()
    return job


def _int(v, name):
    try:
        return int(v)
    except ValueError:
        raise ValueError(name + " must be an integer, not " + v)


def _float(v, name):
    try:
        return float(v)
    except ValueError:
        raise ValueError(name + " must be a number, not " + v)


def dialects():
    d = getattr(dialstring, "DIALECTS", None)
    if d is None:
        return ("catapult",)
    # sorted: MicroPython's dict does not keep insertion order (HELLO said gws,catapult on
    # the emulated Pico, catapult,gws in CPython; docs/emulator.md)
    return tuple(sorted(d))


def dialstring_keys():
    try:
        from tonebridge_fw import keypad

        return keypad.KEYS
    except ImportError:
        return "123A456B789C*0#D"


VERBS = {
    "HELLO": hello,
    "PING": ping,
    "STATUS": status,
    "RESULT": result,
    "CONFIG": config,
    "HOOK": hook,
    "CANCEL": cancel,
    "SEND": send,
    "FLASH": flash,
    "SELFTEST": selftest,
}
EFFECTFUL = ("CONFIG", "HOOK", "CANCEL", "FLASH")  # their results are remembered (RESULT, dup=1)

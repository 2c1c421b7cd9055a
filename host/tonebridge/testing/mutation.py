"""Mutation testing of the firmware: `make mutants` (python -m tonebridge.testing.mutation).

Cosmic Ray (a maintained mutation tester) changes one operator, number, comparison or
boolean at a time in a firmware file and runs that module's focused test selection; a test
run that fails (or hangs past the timeout) kills the mutant, a passing one lets it survive.

Why Cosmic Ray: it mutates the file on disk, so everything that reads the firmware sees the
mutant: the host's imports, the simulator's per-board loader (which compiles the firmware
files itself) and the real MicroPython runners. Tools that switch mutants inside the host's
import system (mutmut 3, pytest-gremlins) never reach the simulated boards.

The run happens in a scratch copy of the work tree (build/mutants/tree-<pid>, made afresh for
every run), never in the tree you edit: PYTHONPATH points the test processes at the copy's host/
and firmware/, ahead of the editable install. Results: build/mutants/<module>.sqlite (the
Cosmic Ray session), build/mutants/report.md (scores and every surviving mutant with its
diff) and build/mutants/summary.json.

Operators: Cosmic Ray's core set, less replacements that only repeat a stronger one (an
arithmetic operator turned into a bitwise one or into `**`, `==` turned into `is`); the
exclusions are listed in EXCLUDED_OPERATORS and in docs/testing.md.

Equivalent mutants (no test can tell them from the original) are listed with a one-line
argument in tests/mutation_equivalent.txt; the report counts them apart.

    make mutants                          # every module (about an hour here)
    make mutants MUTANTS="engine player"  # some modules
    python -m tonebridge.testing.mutation --survivors mt8880   # re-run last survivors only
    python -m tonebridge.testing.mutation --since 04daded codec  # lines changed since a run
    python -m tonebridge.testing.mutation --list
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from .mutation_stages import EXCLUDED_OPERATORS, MODULES

REPO = Path(__file__).resolve().parents[3]
BUILD = REPO / "build" / "mutants"
EQUIVALENT_FILE = REPO / "tests" / "mutation_equivalent.txt"

_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "node_modules", "build", "__pycache__", ".pytest_cache", ".hypothesis",
    "*.egg-info", ".ruff_cache", "mutants",
)  # fmt: skip


def copy_tree(dest: Path) -> None:
    """A fresh copy of the work tree (as it is now, edits included) for the mutants."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(REPO, dest, ignore=_IGNORE, symlinks=True)
    nm = REPO / "node_modules"
    if nm.exists():
        (dest / "node_modules").symlink_to(nm)


def test_env(tree: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree / "host"), str(tree / "firmware")])
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # hypothesis/schemathesis plugins: 2 s a run
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("CI", None)
    return env


def _pytest(tests: list[str]) -> str:
    return " ".join(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p",
         "pytest_timeout", "-m", "'not micropython and not hil'", *tests]
    )  # fmt: skip


def test_command(stages: list[list[str]]) -> str:
    """One shell command: the stages in order, each only if the one before passed."""
    return "bash -c " + shlex.quote(" && ".join(_pytest(t) for t in stages))


def files(module: str) -> list[str]:
    """The firmware files a module's session mutates."""
    path = MODULES[module][0]
    return [path] if isinstance(path, str) else list(path)


def write_config(path: Path, module_path, tests: list[list[str]], timeout: float) -> None:
    excl = ",\n    ".join(json.dumps(e) for e in EXCLUDED_OPERATORS)
    path.write_text(
        f"""[cosmic-ray]
module-path = {json.dumps(module_path)}
timeout = {float(timeout)}
excluded-modules = []
test-command = {json.dumps(test_command(tests))}

[cosmic-ray.distributor]
name = "local"

[cosmic-ray.filters.operators-filter]
exclude-operators = [
    {excl}
]
"""
    )


def load_equivalent() -> dict:
    """(module, operator, column, source line) -> one-line argument."""
    out = {}
    if not EQUIVALENT_FILE.exists():
        return out
    for raw in EQUIVALENT_FILE.read_text().splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        module, op, col, src, why = raw.split("\t")
        out[(module, op, int(col), src.strip())] = why
    return out


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def results(tree: Path, module: str, session: Path) -> list[dict]:
    """Every mutant of a session: operator, position, source line, outcome."""
    dump = subprocess.run(
        [_bin("cosmic-ray"), "dump", str(session)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    src = {}
    out = []
    for ln in dump.splitlines():
        item, res = json.loads(ln)
        (mut,) = item["mutations"]
        line, col = mut["start_pos"]
        rel = Path(mut["module_path"]).as_posix()
        if rel not in src:
            src[rel] = (tree / rel).read_text().splitlines()
        out.append(
            {
                "job": item["job_id"],
                "file": rel,
                "operator": mut["operator_name"].split("/", 1)[1],
                "occurrence": mut["occurrence"],
                "line": line,
                "col": col,
                "source": src[rel][line - 1].strip(),
                "outcome": (res or {}).get("test_outcome"),
                "worker": (res or {}).get("worker_outcome"),
                "diff": (res or {}).get("diff") or "",
                "timeout": (res or {}).get("output") == "timeout",
            }
        )
    return out


def summarise(module: str, muts: list[dict], equivalent: dict, seconds: float) -> dict:
    run = [m for m in muts if m["worker"] != "skipped"]
    killed = [m for m in run if m["outcome"] == "killed"]
    incompetent = [m for m in run if m["outcome"] == "incompetent"]
    survived, equiv = [], []
    for m in run:
        if m["outcome"] != "survived":
            continue
        why = equivalent.get((module, m["operator"], m["col"], m["source"]))
        (equiv if why else survived).append(dict(m, why=why or ""))
    scored = len(killed) + len(survived)
    return {
        "module": module,
        "file": ", ".join(files(module)),
        "mutants": len(run),
        "filtered_out": len(muts) - len(run),
        "killed": len(killed),
        "timeouts": sum(1 for m in killed if m["timeout"]),
        "survived": len(survived),
        "equivalent": len(equiv),
        "incompetent": len(incompetent),
        "pending": sum(1 for m in run if m["outcome"] is None),
        "score": round(100.0 * len(killed) / scored, 1) if scored else 100.0,
        "seconds": round(seconds),
        "survivors": survived,
        "equivalents": equiv,
    }


def changed_lines(path: str, since: str, repo: Path = REPO) -> set:
    """Line numbers of the work tree's `path` added or changed since git revision `since`."""
    diff = subprocess.run(
        ["git", "diff", "-U0", since, "--", path],
        cwd=repo, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    lines = set()
    for ln in diff.splitlines():
        if ln.startswith("@@"):
            new = ln.split(" ")[2][1:]  # +start[,count]
            start, _, count = new.partition(",")
            lines.update(range(int(start), int(start) + int(count or 1)))
    return lines


def skip_unchanged(session: Path, path: str, since: str) -> int:
    """Mark the session's mutants on lines unchanged since `since` skipped (Cosmic Ray's own
    "skipped" outcome, as its git filter does; the report leaves them out). Returns how many."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    keep = changed_lines(path, since)
    with use_db(str(session), WorkDB.Mode.open) as db:
        skip = [
            item.job_id
            for item in db.pending_work_items
            if not any(keep & set(range(m.start_pos[0], m.end_pos[0] + 1)) for m in item.mutations)
        ]
        if skip:
            db.set_multiple_results(
                skip,
                WorkResult(output="unchanged since " + since, worker_outcome=WorkerOutcome.SKIPPED),
            )
    return len(skip)


def run_module(tree: Path, module: str, log, since: str | None = None) -> dict:
    path, tests, timeout = MODULES[module]
    missing = [t for stage in tests for t in stage if not (tree / t.split("::")[0]).exists()]
    if missing:
        raise SystemExit(f"{module}: test files missing: {missing}")
    cfg = BUILD / f"{module}.toml"
    session = BUILD / f"{module}.sqlite"
    write_config(cfg, path, tests, timeout)
    if session.exists():
        session.unlink()
    env = test_env(tree)
    t0 = time.monotonic()
    # the unmutated code must pass the selection, or every mutant would look killed
    base = subprocess.run(
        shlex.split(test_command(tests)), capture_output=True, text=True, cwd=tree, env=env
    )
    if base.returncode != 0:
        raise SystemExit(f"{module}: the test selection fails without mutants:\n{base.stdout}")
    base_s = time.monotonic() - t0
    log(f"{module}: baseline {base_s:.1f} s; timeout per mutant {timeout} s")
    for argv in (
        [_bin("cosmic-ray"), "init", str(cfg), str(session)],
        [_bin("cr-filter-operators"), str(session), str(cfg)],
    ):
        subprocess.run(argv, cwd=tree, env=env, check=True, capture_output=True)
    if since:
        log(
            f"{module}: {skip_unchanged(session, path, since)} mutants on lines unchanged since {since} skipped"
        )
    subprocess.run(
        [_bin("cosmic-ray"), "exec", str(cfg), str(session)],
        cwd=tree, env=env, check=True, capture_output=True,
    )  # fmt: skip
    seconds = time.monotonic() - t0
    return summarise(module, results(tree, module, session), load_equivalent(), seconds)


def rerun_survivors(tree: Path, module: str, log) -> dict:
    """Run again, with the tests as they are now, only the mutants of the module's last session
    that survived and are not argued equivalent (after tests were added to kill them). The
    session keeps every other result; the time reported is the last full run's plus this one."""
    path, tests, timeout = MODULES[module]
    cfg = BUILD / f"{module}.toml"
    session = BUILD / f"{module}.sqlite"
    if not session.exists():
        raise SystemExit(f"{module}: no session to re-run ({session}); run it in full first")
    sj = BUILD / "summary.json"
    old = {x["module"]: x for x in json.loads(sj.read_text())} if sj.exists() else {}
    write_config(cfg, path, tests, timeout)
    env = test_env(tree)
    t0 = time.monotonic()
    base = subprocess.run(
        shlex.split(test_command(tests)), capture_output=True, text=True, cwd=tree, env=env
    )
    if base.returncode != 0:
        raise SystemExit(f"{module}: the test selection fails without mutants:\n{base.stdout}")
    equivalent = load_equivalent()
    again = [
        m["job"]
        for m in results(tree, module, session)
        if m["outcome"] == "survived"
        and (module, m["operator"], m["col"], m["source"]) not in equivalent
    ]
    log(f"{module}: re-running {len(again)} surviving mutants")
    with sqlite3.connect(session) as db:
        db.executemany("DELETE FROM work_results WHERE job_id = ?", [(j,) for j in again])
    subprocess.run(
        [_bin("cosmic-ray"), "exec", str(cfg), str(session)],
        cwd=tree, env=env, check=True, capture_output=True,
    )  # fmt: skip
    rerun = round(time.monotonic() - t0)
    seconds = old.get(module, {}).get("seconds", 0) + rerun
    s = summarise(module, results(tree, module, session), equivalent, seconds)
    s["rerun_seconds"] = rerun
    s["rerun"] = len(again)
    return s


def report(summaries: list[dict]) -> str:
    lines = [
        "# Mutation testing report (make mutants)",
        "",
        "| module | mutants | killed | survived | equivalent | score | time |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in summaries:
        lines.append(
            f"| {s['module']} | {s['mutants']} | {s['killed']} | {s['survived']} | "
            f"{s['equivalent']} | {s['score']} % | {s['seconds'] // 60} min {s['seconds'] % 60} s |"
        )
    for s in summaries:
        if not s["survivors"] and not s["equivalents"]:
            continue
        lines += ["", f"## {s['module']} ({s['file']})", ""]
        for m in s["survivors"]:
            lines.append(
                f"- SURVIVED {m['file']} line {m['line']} col {m['col']} {m['operator']}: "
                f"`{m['source']}`"
            )
        for m in s["equivalents"]:
            lines.append(
                f"- equivalent {m['file']} line {m['line']} {m['operator']}: `{m['source']}`: "
                f"{m['why']}"
            )
    return "\n".join(lines) + "\n"


def rebuild_report() -> int:
    """Scores from the sessions already in build/mutants (the equivalents list re-read), with
    the run times of the last runs."""
    sj = BUILD / "summary.json"
    old = {s["module"]: s for s in json.loads(sj.read_text())} if sj.exists() else {}
    out = []
    for m in MODULES:
        session = BUILD / f"{m}.sqlite"
        if not session.exists():
            continue
        seconds = old.get(m, {}).get("seconds", 0)
        out.append(summarise(m, results(REPO, m, session), load_equivalent(), seconds))
    sj.write_text(json.dumps(out, indent=1))
    (BUILD / "report.md").write_text(report(out))
    print(report(out))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help=f"default: all of {', '.join(MODULES)}")
    ap.add_argument("--list", action="store_true", help="list the modules and their tests")
    ap.add_argument(
        "--report",
        action="store_true",
        help="rebuild report.md/summary.json from the sessions in build/mutants (no run)",
    )
    ap.add_argument(
        "--survivors",
        action="store_true",
        help="re-run only the last session's surviving, non-equivalent mutants (after new tests)",
    )
    ap.add_argument(
        "--since",
        metavar="REV",
        help="run only the mutants on lines changed since git revision REV (after a full run "
        "at REV: what changed since; the rest are Cosmic Ray's 'skipped', left out of the scores)",
    )
    args = ap.parse_args(argv)
    if args.report:
        return rebuild_report()
    if args.list:
        for name, (_path, tests, timeout) in MODULES.items():
            stages = " then ".join(" ".join(t) for t in tests)
            print(
                f"{name:12} {' '.join(files(name))}\n{'':12} tests: {stages} (timeout {timeout} s)"
            )
        return 0
    mods = args.modules or list(MODULES)
    unknown = [m for m in mods if m not in MODULES]
    if unknown:
        ap.error(f"unknown module(s) {unknown}; known: {', '.join(MODULES)}")
    BUILD.mkdir(parents=True, exist_ok=True)
    tree = BUILD / f"tree-{os.getpid()}"  # one copy per run: runs may overlap
    copy_tree(tree)

    def log(msg):
        print(msg, flush=True)

    try:
        return _run_all(tree, mods, log, survivors=args.survivors, since=args.since)
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def _run_all(tree: Path, mods: list[str], log, survivors: bool = False, since=None) -> int:
    summaries = []
    sj = BUILD / "summary.json"
    for m in mods:
        s = rerun_survivors(tree, m, log) if survivors else run_module(tree, m, log, since)
        log(
            f"{m}: {s['mutants']} mutants, {s['killed']} killed ({s['timeouts']} by timeout), "
            f"{s['survived']} survived, {s['equivalent']} equivalent, {s['incompetent']} "
            f"incompetent: score {s['score']} % in {s['seconds']} s"
        )
        summaries.append(s)
        # re-read just before writing: another run (another module) may have finished meanwhile
        old = {x["module"]: x for x in json.loads(sj.read_text())} if sj.exists() else {}
        old[m] = s
        sj.write_text(json.dumps(list(old.values()), indent=1))
        (BUILD / "report.md").write_text(report(list(old.values())))
    print(f"report: {BUILD / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The board's analog circuits as SPICE netlists (hw/spice/), simulated with ngspice.

- ``values_inc(spec)``: the ``.param`` lines of ``hw/spice/filter_values.inc`` from
  ``hw/filter.json`` (``python -m tonebridge.spice`` rewrites the file; a test checks it is
  up to date), so the netlists, the simulator (``tonebridge.sim.analog``) and the firmware's
  copy (``tonebridge_fw.outchain``) use one set of component values.
- ``run(deck, outputs)``: runs ngspice in batch mode on a deck (a netlist that ``.include``s
  the circuit files, plus a ``.control`` block that ``wrdata``s vectors) in a scratch
  directory holding copies of hw/spice/, and returns the written columns as numpy arrays.
- ``ac(circuit, source, probe, freqs)``: complex response probe/source of one circuit file.
- ``tran(circuit, pwl, probe, t_stop, t_step)``: a transient with a piecewise-linear source.

ngspice is a Debian package (``ngspice``), installed by ``make setup``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from tonebridge.sim.analog import load_filter_spec

REPO = Path(__file__).resolve().parents[2]
SPICE_DIR = REPO / "hw" / "spice"
VALUES_INC = SPICE_DIR / "filter_values.inc"
NGSPICE = "ngspice"


class SpiceError(RuntimeError):
    pass


def available() -> bool:
    return shutil.which(NGSPICE) is not None


def values_inc(spec: dict | None = None) -> str:
    spec = spec or load_filter_spec()
    lines = [
        "* generated from hw/filter.json by `python -m tonebridge.spice`: do not edit",
    ]
    for name, value in spec["components"].items():
        lines.append(f".param {name}={float(value):.6g}")
    return "\n".join(lines) + "\n"


def run(deck: str, outputs: list[str], timeout: float = 120.0) -> dict:
    """Run ngspice on ``deck``; ``outputs`` name the files its control block writes with
    ``wrdata`` (each: columns x, y pairs). Returns {name: 2-D array}."""
    with tempfile.TemporaryDirectory(prefix="tb-spice-") as tmp:
        d = Path(tmp)
        for f in SPICE_DIR.iterdir():
            if f.is_file():
                shutil.copy(f, d / f.name)
        (d / "deck.cir").write_text(deck)
        proc = subprocess.run(
            [NGSPICE, "-b", "deck.cir"],
            cwd=d,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        out = {}
        for name in outputs:
            f = d / name
            if not f.exists():
                raise SpiceError(
                    f"ngspice wrote no {name} (rc {proc.returncode}):\n"
                    + proc.stdout[-2000:]
                    + proc.stderr[-2000:]
                )
            out[name] = np.loadtxt(f, ndmin=2)
        return out


def ac(circuit: str, drive: str, probe: str, freqs, extra: str = "") -> np.ndarray:
    """Complex V(probe) for a 1 V AC source driving node ``drive`` of ``circuit`` (a file in
    hw/spice/), at ``freqs`` (Hz, a list analysed one .ac point each)."""
    freqs = np.atleast_1d(np.asarray(freqs, dtype=float))
    cmds = "\n".join(
        f"ac lin 1 {f:.9g} {f:.9g}\nwrdata ac{i}.txt real(v({probe})) imag(v({probe}))"
        for i, f in enumerate(freqs)
    )
    deck = f"""* ac
.include {circuit}
VDRIVE {drive} 0 DC 0 AC 1
{extra}
.control
set wr_singlescale
{cmds}
quit
.endc
.end
"""
    res = run(deck, [f"ac{i}.txt" for i in range(len(freqs))])
    h = []
    for i in range(len(freqs)):
        row = res[f"ac{i}.txt"][0]
        h.append(row[1] + 1j * row[2])
    return np.array(h)


def tran(
    circuit: str,
    drive: str,
    t_v,
    probe: str,
    t_stop: float,
    t_step: float,
    extra: str = "",
    max_step: float | None = None,
):
    """(t, V(probe)) of a transient from zero initial state (``uic``), node ``drive`` driven
    by the piecewise-linear source (t_v: (N, 2) array of time, volts)."""
    pts = "\n".join(f"+ {t:.12g} {v:.9g}" for t, v in np.asarray(t_v))
    ms = f" {max_step:.6g}" if max_step else ""
    deck = f"""* tran
.include {circuit}
VDRIVE {drive} 0 PWL(
{pts}
+ )
{extra}
.options method=gear reltol=1e-5 abstol=1e-12 vntol=1e-9
.control
set wr_singlescale
tran {t_step:.6g} {t_stop:.6g} 0{ms} uic
wrdata tran.txt v({probe})
quit
.endc
.end
"""
    res = run(deck, ["tran.txt"], timeout=600)["tran.txt"]
    return res[:, 0], res[:, 1]


if __name__ == "__main__":
    VALUES_INC.write_text(values_inc())
    print(f"wrote {VALUES_INC}")

# The analog output chain of the rp2 PWM boards, as the firmware needs it: its frequency
# response at the eight DTMF tones, so the renderer can give every tone the level asked for
# *on the line* (synth.Renderer(response=...)). Computed once per configuration, never per
# sample.
#
# PWM_CHAIN holds the component values of hw/filter.json (a board cannot read the repository's
# hw/ folder; tests/hw/test_filter_values.py keeps the two equal). The transfer functions are
# written from the circuit (hw/spice/tx_pwm.cir), independently of the simulator's
# tonebridge.sim.analog, which ngspice checks against the same netlist: if the two disagreed,
# the twist measured on the simulated line would show it.
#
#   rc_sallen_key  R5/C5 into the unity-gain Sallen-Key R6, R7, C6 (feedback), C7 (ground),
#                  the RC loaded by the Sallen-Key's input:
#                  H = 1 / (P (1 + s R5 C5 + R5/R6) - (R5/R6)(1 + s R7 C7)),
#                  P = 1 + s C7 (R6 + R7) + s^2 R6 R7 C6 C7
#   line_out       U2B gain (1 + s C8 (R8 + R9)) / (1 + s C8 R9), then R10 + T1_RP + C9 in
#                  series into T1 (magnetising inductance T1_LM across a 1:1 ideal
#                  transformer), T1_RS + the line RLINE on the secondary; the line voltage.
# pwm_gain(f, fs): the linear part of regular-sampled symmetric PWM (1 - sin^2(pi f / fs) / 8,
# synth.py), so the compensation covers the pulses too.

import math

PWM_CHAIN = {
    "R5": 1000,
    "C5": 2.2e-08,
    "R6": 10000,
    "R7": 10000,
    "C6": 8.2e-09,
    "C7": 3.3e-09,
    "R8": 820,
    "R9": 10000,
    "C8": 1e-05,
    "R10": 499,
    "C9": 1e-05,
    "T1_LM": 2.5,
    "T1_RP": 50,
    "T1_RS": 50,
    "RLINE": 600,
}


def _mul(a, b):
    """Product of two polynomials (coefficient lists, highest power first)."""
    out = [0.0] * (len(a) + len(b) - 1)
    for i in range(len(a)):
        for j in range(len(b)):
            out[i + j] += a[i] * b[j]
    return out


def _add(a, b):
    n = max(len(a), len(b))
    a = [0.0] * (n - len(a)) + list(a)
    b = [0.0] * (n - len(b)) + list(b)
    return [a[i] + b[i] for i in range(n)]


def tf(v=PWM_CHAIN):
    """(num, den) of the whole chain in s, from the component values `v`."""
    r5, c5, r6, r7, c6, c7 = v["R5"], v["C5"], v["R6"], v["R7"], v["C6"], v["C7"]
    k = r5 / r6
    p = [r6 * r7 * c6 * c7, c7 * (r6 + r7), 1.0]
    den1 = _add(_mul(p, [r5 * c5, 1.0 + k]), [-k * r7 * c7, -k])
    num1 = [1.0]
    rf, rg, cg = v["R8"], v["R9"], v["C8"]
    num2 = [cg * (rf + rg), 1.0]
    den2 = [cg * rg, 1.0]
    rx = v["R10"] + v["T1_RP"]
    cc, lm, rl = v["C9"], v["T1_LM"], v["RLINE"]
    rl2 = v["T1_RS"] + rl
    num3 = [lm * cc * rl, 0.0, 0.0]  # s^2 Lm C9 Rl' x (RLINE / Rl')
    den3 = [cc * lm * (rx + rl2), cc * rx * rl2 + lm, rl2]
    return _mul(_mul(num1, num2), num3), _mul(_mul(den1, den2), den3)


def _at(poly, w):
    """(re, im) of poly(j w)."""
    re = 0.0
    im = 0.0
    n = len(poly) - 1
    for i in range(len(poly)):
        p = n - i  # power of s; j**p cycles 1, j, -1, -j
        c = poly[i] * math.pow(w, p)
        m = p & 3
        if m == 0:
            re += c
        elif m == 1:
            im += c
        elif m == 2:
            re -= c
        else:
            im -= c
    return re, im


def gain(hz, v=PWM_CHAIN):
    """|H(j 2 pi hz)| of the chain (line volts per pin volt)."""
    num, den = tf(v)
    w = 2.0 * math.pi * hz
    nr, ni = _at(num, w)
    dr, di = _at(den, w)
    return math.sqrt((nr * nr + ni * ni) / (dr * dr + di * di))


def pwm_gain(hz, fs):
    """Linear response of the PWM pulses themselves (synth.py, shaping)."""
    s = math.sin(math.pi * hz / fs)
    return 1.0 - s * s / 8.0


def response(fs, v=PWM_CHAIN):
    """fn(hz) for synth.Renderer(response=...): chain and pulses at sample rate fs."""

    def fn(hz):
        return gain(hz, v) * pwm_gain(hz, fs)

    return fn

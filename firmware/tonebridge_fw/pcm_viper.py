"""Viper kernel for backends/adc_i2s.py: signed 16-bit I2S samples -> unsigned 12-bit codes.

Only ports with a native emitter (esp32: xtensawin; rp2: armv6m) compile this file; elsewhere
(CPython, the simulator, the WebAssembly port) importing it fails and adc_i2s keeps its portable
loop. adc_i2s runs selftest() once before it uses it.

  to_codes(buf, start, count)   buf[i] = (buf[i] ^ 0x8000) >> 4 for i in start..start+count-1
                                (buf: an array('H') read and written through ptr16)
No Python object is touched inside the loop and nothing allocates (one call a chunk).
"""

# ptr16 is a viper built-in, known only inside @micropython.viper functions
# ruff: noqa: F821

import micropython


@micropython.viper
def codes(p: int, q: int, buf):
    # p, q first: viper keeps its first locals (the parameters) in registers
    b = ptr16(buf)
    while p < q:
        b[p] = (b[p] ^ 0x8000) >> 4
        p += 1


def to_codes(buf, start, count):
    codes(start, start + count, buf)


def selftest(portable):
    """True if the kernel gives the portable loop's codes on this port."""
    from array import array

    vals = (0, 1, 0x7FFF, 0x8000, 0xFFFF, 0x1234, 0xFEDC, 0x8001)
    a = array("H", vals)
    b = array("H", vals)
    to_codes(a, 1, 6)
    portable(b, 1, 6)
    return a == b

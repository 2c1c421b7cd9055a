"""Probe code that runs unchanged on the simulated Pico (sim://) and on the MicroPython image on
the emulated RP2040 (emu://), through the same raw REPL; each prints one JSON object of what
the firmware's APIs and registers said. tests/emu/test_sim_agreement.py compares the two and
docs/emulator.md lists every difference found and what was done about it."""

from __future__ import annotations

# machine.PWM / registers / rp2.DMA as the pwm_dma backend uses them
REGISTERS = """
import json, machine, rp2, time
from machine import mem32
B = 0x40050000
out = {}
def regs():
    return [mem32[B + o] for o in (0x0, 0x4, 0x8, 0x0C, 0x10)]
out['freq'] = machine.freq()
out['pwm_fresh'] = regs()
pwm = machine.PWM(machine.Pin(16))
out['pwm_after_ctor'] = regs()
out['funcsel_16'] = mem32[0x40014000 + 8 * 16 + 4] & 0x1F
d = rp2.DMA()
out['dma_channel'] = d.channel
out['pack_default'] = d.pack_ctrl()
out['pack_backend'] = d.pack_ctrl(size=1, inc_read=1, inc_write=0, treq_sel=24,
                                  chain_to=d.channel, irq_quiet=1, high_pri=1)
out['unpack_keys'] = sorted(d.unpack_ctrl(out['pack_backend']))
out['unpack'] = d.unpack_ctrl(out['pack_backend'])
out['dma_fresh'] = [d.read, d.write, d.count, d.ctrl, d.active()]
d.config(write=B + 0x0C, count=7, ctrl=out['pack_backend'], trigger=False)
out['dma_configured'] = [d.write, d.count, d.ctrl, d.active()]
d.close()
from tonebridge_fw.backends.pwm_dma_rp2 import PwmDmaBackend
from tonebridge_fw import boards
be = PwmDmaBackend(boards.profile('pico'))
out['backend_regs'] = [regs()[i] for i in (0, 1, 3, 4)]
out['backend_rate'] = be.rate
out['backend_dma'] = [be._dma[0].channel, be._dma[1].channel, be._dma[0].ctrl, be._dma[1].ctrl]
from tonebridge_fw.dialstring import compile_plan
be.start(compile_plan('1', 'catapult', 40, 40))
out['first_chunk'] = [be._n[0], be._n[1]]  # a short first chunk, then whole ones
be.close()
# a whole first chunk for the timing probes below: 5 ms must stay within one channel's chunk
be = PwmDmaBackend(boards.profile('pico'), first_chunk=1024)
be.start(compile_plan('1', 'catapult', 40, 40))
out['playing'] = [be._dma[0].active(), be._dma[1].active(), be._dma[1].ctrl & 0x1]
c0 = be._dma[0].count
time.sleep_ms(5)
c1 = be._dma[0].count
out['samples_in_5ms'] = c0 - c1
out['count_after_start'] = c0
while be.busy():
    be.service()
    time.sleep_ms(1)
out['after_play'] = [be._dma[0].active(), be._dma[1].active(), be.position(), be.underruns,
                     be.chunks, be.samples_played()]
out['cc_after_play'] = mem32[B + 0x0C]
be.close()
out['csr_after_close'] = mem32[B]
print(json.dumps(out))
"""

# the console as transport.StdioLink uses it: select.poll on sys.stdin, readinto one byte
STDIO = """
import json, select, sys, time
out = {}
p = select.poll()
p.register(sys.stdin, select.POLLIN)
r = p.poll(0)
out['poll0_empty'] = [len(r)] + ([r[0][1]] if r else [])
out['poll0_type'] = type(r).__name__
t = time.ticks_ms()
r = p.poll(30)
out['poll30_empty_ms_ge_30'] = time.ticks_diff(time.ticks_ms(), t) >= 30
out['poll30_empty'] = len(r)
buf = sys.stdin.buffer
out['buffer_type'] = type(buf).__name__
out['has_readinto'] = hasattr(buf, 'readinto')
out['write_returns'] = sys.stdout.buffer.write(b'')
print(json.dumps(out))
"""

# the handshake the engine answers (boot id fixed), and the other firmware dicts that reach the
# wire or the host
HANDSHAKE = """
import json, time
from tonebridge_fw import codec, engine
e = engine.Engine(time.ticks_ms, '0badcafe', info={'board': 'pico', 'backend': 'pwm_dma'},
                  tunable={'twist': 2.0, 'level': 0.5})
e.receive(codec.encode('>', 'h1', 'HELLO'))
e.receive(codec.encode('>', 'h2', 'CONFIG'))
e.receive(codec.encode('>', 'h3', 'STATUS'))
print(json.dumps({'frames': bytes(e.output()).decode()}))
"""

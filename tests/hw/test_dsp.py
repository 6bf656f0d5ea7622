"""hw.dsp: the pipelined multiplier (Amaranth simulation of the behavioural
version against Python's integer product) and what it elaborates to for an
ECP5 (the DSP block with its own registers) and elsewhere."""

from __future__ import annotations

import re

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import signed, unsigned
from amaranth.sim import Simulator

from hw.config import preset
from hw.dsp import ECP5, MUL_LATENCY, PipelinedMultiplier
from hw.pe import PE, pe_params

SHAPES = [(unsigned(9), signed(9)), (signed(9), signed(9)), (unsigned(17), signed(18)),
          (signed(18), signed(18)), (unsigned(3), unsigned(5))]


def _range(shape):
    if shape.signed:
        return -(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1
    return 0, (1 << shape.width) - 1


def _drive(dut, steps):
    """Simulate ``dut`` one cycle per (a, b, en) step (en None: no ``en``
    port); returns ``p`` as seen in each cycle before its clock edge."""
    seen = []

    async def bench(ctx):
        for a, b, en in steps:
            ctx.set(dut.a, a)
            ctx.set(dut.b, b)
            if en is not None:
                ctx.set(dut.en, en)
            seen.append(ctx.get(dut.p))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return seen


@pytest.mark.parametrize("a_shape,b_shape", SHAPES, ids=[f"{a}x{b}" for a, b in SHAPES])
def test_product_arrives_after_mul_latency(a_shape, b_shape):
    """Random operands every cycle (extremes included): p in cycle
    t + MUL_LATENCY is the exact product of the operands of cycle t."""
    dut = PipelinedMultiplier(a_shape=a_shape, b_shape=b_shape)
    rng = np.random.default_rng(7)
    (alo, ahi), (blo, bhi) = _range(a_shape), _range(b_shape)
    ops = [(alo, blo), (ahi, bhi), (alo, bhi), (ahi, blo), (0, 0)]
    ops += [(int(rng.integers(alo, ahi + 1)), int(rng.integers(blo, bhi + 1)))
            for _ in range(200)]
    seen = _drive(dut, [(a, b, None) for a, b in ops + [(0, 0)] * MUL_LATENCY])
    got = seen[MUL_LATENCY:]
    assert len(got) == len(ops)
    for i, ((a, b), p) in enumerate(zip(ops, got)):
        assert p == a * b, f"operands #{i} ({a}, {b}): p = {p}, expected {a * b}"


def _instances(text):
    return re.findall(r"^\s*MULT18X18D\b", text, re.MULTILINE)


def test_ecp5_uses_the_dsp_blocks_registers():
    """For an ECP5 the PE's two multipliers are MULT18X18D instances with the
    operand and output registers on; without a platform there is none."""
    pe_v = verilog.convert(PE(**pe_params(preset("fpga"))), name="pe", platform=ECP5,
                           emit_src=False)
    assert len(_instances(pe_v)) == 2
    for reg in ("INPUTA", "INPUTB", "OUTPUT"):
        assert len(re.findall(rf'\.REG_{reg}_CLK\("CLK0"\)', pe_v)) == 2, reg
    assert len(re.findall(r'\.REG_PIPELINE_CLK\("NONE"\)', pe_v)) == 2
    plain = verilog.convert(PE(**pe_params(preset("fpga"))), name="pe", emit_src=False)
    assert not _instances(plain)


def test_ecp5_too_wide_falls_back_to_inference():
    """Operands wider than the block's 18-bit two's complement: the behavioural
    registers (Yosys splits the product over several blocks)."""
    wide = PipelinedMultiplier(a_shape=unsigned(18), b_shape=signed(9))
    assert not _instances(verilog.convert(wide, name="w", platform=ECP5, emit_src=False))
    assert not wide.use_dsp_registers
    fits = PipelinedMultiplier(a_shape=unsigned(17), b_shape=signed(18))
    assert len(_instances(verilog.convert(fits, name="f", platform=ECP5, emit_src=False))) == 1
    assert fits.use_dsp_registers


def test_enable_stalls_both_registers():
    """With ``enable``: operands are taken only in cycles with ``en`` high, and
    ``p`` holds the product of the operands taken MUL_LATENCY enabled cycles
    earlier (a stalled pipeline neither loses nor repeats a product)."""
    dut = PipelinedMultiplier(a_shape=signed(9), b_shape=unsigned(17), enable=True)
    rng = np.random.default_rng(11)
    steps = [(int(rng.integers(-256, 256)), int(rng.integers(0, 1 << 17)),
              int(rng.random() < 0.6)) for _ in range(300)]
    log = _drive(dut, steps)
    # reference: MUL_LATENCY register stages that load when en is high
    assert MUL_LATENCY == 3
    op_reg, p_reg, p_out = (0, 0), 0, 0
    for i, (a, b, en) in enumerate(steps):
        assert log[i] == p_out, f"cycle {i}: p = {log[i]}, expected {p_out}"
        if en:
            op_reg, p_reg, p_out = (a, b), op_reg[0] * op_reg[1], p_reg

"""hw.saturate.saturate against numpy's clip, every value of a few widths
(Amaranth simulator), and its refusals."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator

from hw.saturate import saturate


@pytest.mark.parametrize("in_width,width", [(7, 4), (5, 1), (9, 8), (4, 4), (3, 5)])
def test_saturate_matches_clip(in_width, width):
    m = Module()
    x = Signal(signed(in_width))
    y = Signal(signed(max(width, in_width)))
    m.d.comb += y.eq(saturate(x, width))
    values = np.arange(-(1 << (in_width - 1)), 1 << (in_width - 1))
    want = np.clip(values, -(1 << (width - 1)), (1 << (width - 1)) - 1)
    got = []

    async def bench(ctx):
        for v in values:
            ctx.set(x, int(v))
            got.append(ctx.get(y))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert got == [int(w) for w in want]


def test_saturate_refuses_unsigned_and_zero_width():
    with pytest.raises(ValueError, match="allowed a signed shape"):
        saturate(Signal(4), 3)
    with pytest.raises(ValueError, match="width = 0 is invalid"):
        saturate(Signal(signed(4)), 0)

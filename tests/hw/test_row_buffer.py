# amaranth: UnusedElaboratable=no
"""Amaranth-simulator check of :class:`hw.row_buffer.SkewedRowBuffer` against
a plain row store: whole rows written, then a read per cycle of element x of
``slots`` consecutive rows (wrapping at ``rows``), pipelined, each checked
``latency`` cycles after it was presented.  Geometries: the Q and K/V buffers
of the presets and corner cases (rows == banks, one lane, one slot, d not a
multiple of banks, banks split into part memories); fewer rows than banks
is refused."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.row_buffer import SkewedRowBuffer

GEOMETRIES = [
    # banks, rows, max_head_dim, slots, sets
    (8, 128, 64, 7, 2),     # fpga K/V buffer
    (4, 8, 64, 4, 1),       # fpga Q buffer (two tiles of 4 rows)
    (4, 16, 10, 3, 2),      # d not a multiple of banks
    (4, 4, 4, 4, 1),        # rows == banks, one lane
    (2, 16, 3, 1, 1),       # one slot, two lanes with a padded one
    (4, 16, 20, 3, 1),      # 5 lanes: two part memories, the second with one lane
]


@pytest.mark.parametrize("banks,rows,dmax,slots,sets", GEOMETRIES)
def test_row_buffer_reads_match_rows(banks, rows, dmax, slots, sets):
    dw = 9
    dut = SkewedRowBuffer(banks=banks, rows=rows, max_head_dim=dmax, data_width=dw,
                          slots=slots, sets=sets)
    rng = np.random.default_rng(banks * 1000 + rows * 10 + dmax)
    lo, hi = -(1 << (dw - 1)), 1 << (dw - 1)
    store = rng.integers(lo, hi, (sets, rows, dmax))
    reads = [(rng.integers(0, rows, sets), rng.integers(0, dmax, sets)) for _ in range(200)]
    lat = dut.latency
    errors = []

    async def bench(ctx):
        for t in range(sets):
            ctx.set(dut.w_en, 1 << t)
            for r in range(rows):
                ctx.set(dut.w_row, r)
                ctx.set(dut.w_data, [int(v) for v in store[t, r]])
                await ctx.tick()
        ctx.set(dut.w_en, 0)
        await ctx.tick()                 # the registered write lands
        for cyc in range(len(reads) + lat):
            if cyc < len(reads):
                row, x = reads[cyc]
                for t in range(sets):
                    ctx.set(dut.r_row[t], int(row[t]))
                    ctx.set(dut.r_x[t], int(x[t]))
            if cyc >= lat:
                row, x = reads[cyc - lat]
                for t in range(sets):
                    for s in range(slots):
                        want = int(store[t, (row[t] + s) % rows, x[t]])
                        got = ctx.get(dut.r_data[t][s])
                        if got != want:
                            errors.append(f"read {cyc - lat} set {t} row {row[t]} x {x[t]} "
                                          f"slot {s}: expected {want}, got {got}")
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert not errors, f"{len(errors)} mismatches, first: {errors[:5]}"


def test_row_buffer_refuses_fewer_rows_than_banks():
    with pytest.raises(ValueError, match="rows = 2 is invalid: allowed >= banks = 8"):
        SkewedRowBuffer(banks=8, rows=2, max_head_dim=5, data_width=9, slots=8)


def test_write_to_read_distance():
    """The docstring's timing: a read presented one cycle after a row's
    write returns the old contents, two cycles after it the new."""
    dw, banks, rows, dmax = 9, 4, 8, 8
    dut = SkewedRowBuffer(banks=banks, rows=rows, max_head_dim=dmax, data_width=dw, slots=1)
    got = {}

    async def bench(ctx):
        for val, gap in ((5, 1), (7, 2)):
            ctx.set(dut.w_en, 1)
            ctx.set(dut.w_row, 3)
            ctx.set(dut.w_data, [val] * dmax)
            await ctx.tick()
            ctx.set(dut.w_en, 0)
            for _ in range(gap - 1):
                await ctx.tick()
            ctx.set(dut.r_row[0], 3)
            ctx.set(dut.r_x[0], 0)
            for _ in range(dut.latency):
                await ctx.tick()
            got[gap] = ctx.get(dut.r_data[0][0])
            for _ in range(4):                  # both writes settled before the next
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    # gap 1: the row still holds its reset contents (0); gap 2: the new row
    assert got == {1: 0, 2: 7}

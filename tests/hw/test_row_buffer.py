# amaranth: UnusedElaboratable=no
"""Amaranth-simulator check of :class:`hw.row_buffer.BankedRowBuffer` against
a plain row store: whole rows written through the chunked writers (both
sets at once, each row as soon as its set is ready, for several head sizes
d), then a read per cycle of element x < d of ``slots`` consecutive rows
(wrapping at ``rows``), pipelined, each checked ``latency`` cycles after it
was presented.  Geometries: the Q and K/V buffers of the presets and corner
cases (rows == banks, one slot, d not a multiple of the chunk, one chunk);
also the writer's ready/idle timing and the refusals."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.row_buffer import BankedRowBuffer

GEOMETRIES = [
    # banks, rows, max_head_dim, slots, sets
    (8, 128, 64, 7, 2),     # fpga K/V buffer
    (4, 8, 64, 4, 1),       # fpga Q buffer (two tiles of 4 rows)
    (4, 16, 10, 3, 2),      # d not a multiple of the chunk
    (4, 4, 4, 4, 1),        # rows == banks, one chunk
    (2, 16, 3, 1, 1),       # one slot
]


def _run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("banks,rows,dmax,slots,sets", GEOMETRIES)
def test_row_buffer_reads_match_rows(banks, rows, dmax, slots, sets):
    dw = 9
    dut = BankedRowBuffer(banks=banks, rows=rows, max_head_dim=dmax, data_width=dw,
                          slots=slots, sets=sets)
    rng = np.random.default_rng(banks * 1000 + rows * 10 + dmax)
    lo, hi = -(1 << (dw - 1)), 1 << (dw - 1)
    lat = dut.latency
    errors = []
    # several d: every chunk count from 1 to the most
    dims = sorted({min(dmax, c * dut.chunk) for c in range(1, dut.max_chunks + 1)} | {dmax})

    async def bench(ctx):
        for d in dims:
            ctx.set(dut.w_chunks_m1, (d - 1) // dut.chunk)
            await ctx.tick()                    # (registered before the first take)
            store = rng.integers(lo, hi, (sets, rows, dmax))
            todo = [[(r, store[t, r]) for r in range(rows)] for t in range(sets)]
            cycles = 0
            while any(todo):
                # one row per cycle on the shared bus: the first set that is ready
                en = 0
                for t in range(sets):
                    if todo[t] and ctx.get(dut.w_ready[t]):
                        r, row = todo[t].pop(0)
                        ctx.set(dut.w_row, r)
                        ctx.set(dut.w_data, [int(v) for v in row])
                        en = 1 << t
                        break
                ctx.set(dut.w_en, en)
                await ctx.tick()
                cycles += 1
                assert cycles < 4 * rows * sets * dut.max_chunks, "writer never ready"
            ctx.set(dut.w_en, 0)
            await ctx.tick()                    # (the last row's chunks: the timing test)
            for _ in range(dut.max_chunks):
                await ctx.tick()
            reads = [(rng.integers(0, rows, sets), rng.integers(0, d, sets)) for _ in range(60)]
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
                                errors.append(f"d {d} read {cyc - lat} set {t} row {row[t]} "
                                              f"x {x[t]} slot {s}: expected {want}, got {got}")
                await ctx.tick()

    _run(dut, bench)
    assert not errors, f"{len(errors)} mismatches, first: {errors[:5]}"


def test_writer_ready_and_write_to_read_timing():
    """A set takes a row every ceil(d/chunk) cycles (ready again in the cycle
    before its last chunk: the next row is staged in the cycle of that
    chunk), and, for a row taken in cycle b, a read of element x presented
    in cycle b + 2 + x div chunk returns the new element while one presented
    a cycle earlier returns the old (the docstring's timing)."""
    dw, dmax = 9, 32
    dut = BankedRowBuffer(banks=4, rows=8, max_head_dim=dmax, data_width=dw, slots=1)
    chunk = dut.chunk
    seen = {"ready": [], "reads": {}}

    async def write(ctx, values):
        ctx.set(dut.w_en, 1)
        ctx.set(dut.w_row, 5)
        ctx.set(dut.w_data, values)
        await ctx.tick()                         # cycle b: the row is taken
        ctx.set(dut.w_en, 0)

    async def read_at(ctx, x, delay):
        # present a read of element x `delay` cycles after the take (delay >= 1)
        for _ in range(delay - 1):
            await ctx.tick()
        ctx.set(dut.r_row[0], 5)
        ctx.set(dut.r_x[0], x)
        for _ in range(dut.latency):
            await ctx.tick()
        return ctx.get(dut.r_data[0][0])

    async def bench(ctx):
        ctx.set(dut.w_chunks_m1, dmax // chunk - 1)       # 4 chunks
        await ctx.tick()
        await write(ctx, [0] * dmax)
        for _ in range(dmax // chunk):
            seen["ready"].append(ctx.get(dut.w_ready[0]))
            await ctx.tick()
        seen["ready"].append(ctx.get(dut.w_ready[0]))
        for x in (0, chunk + 1, 3 * chunk + 2):
            for delay in (2 + x // chunk - 1, 2 + x // chunk):
                await write(ctx, [0] * dmax)             # old contents 0
                for _ in range(dmax // chunk + 1):
                    await ctx.tick()
                await write(ctx, [v + 1 for v in range(dmax)])
                seen["reads"][(x, delay)] = await read_at(ctx, x, delay)
                for _ in range(dmax // chunk + 1):
                    await ctx.tick()

    _run(dut, bench)
    # taken in b, staged in b+1; chunks in b+2 .. b+5; ready again in b+4
    # (a row taken then is staged in b+5 and its first chunk written in b+6)
    assert seen["ready"] == [0, 0, 0, 1, 1]
    for (x, delay), got in seen["reads"].items():
        new = delay >= 2 + x // chunk
        assert got == (x + 1 if new else 0), (x, delay, got)
    assert len(seen["reads"]) == 6


@pytest.mark.parametrize("chunks", [1, 2, 3, 4])
def test_writer_takes_one_row_per_chunk_count(chunks):
    """With a row offered every cycle, a set takes one every ``chunks``
    cycles (every cycle for one-chunk rows), from the first cycle on, and
    the pattern does not drift (the docstring's rate, w_en held high)."""
    dut = BankedRowBuffer(banks=4, rows=8, max_head_dim=32, data_width=9, slots=1)
    assert dut.max_chunks >= chunks
    takes = []

    async def bench(ctx):
        ctx.set(dut.w_chunks_m1, chunks - 1)
        await ctx.tick()
        ctx.set(dut.w_en, 1)
        for cyc in range(8 * chunks + 3):
            if ctx.get(dut.w_ready[0]):
                takes.append(cyc)
            await ctx.tick()

    _run(dut, bench)
    assert takes == list(range(0, 8 * chunks + 3, chunks)), takes


def test_row_buffer_refusals():
    with pytest.raises(ValueError, match="rows = 2 is invalid: allowed >= banks = 8"):
        BankedRowBuffer(banks=8, rows=2, max_head_dim=5, data_width=9, slots=8)
    with pytest.raises(ValueError, match="slots = 9 is invalid"):
        BankedRowBuffer(banks=8, rows=8, max_head_dim=5, data_width=9, slots=9)
    with pytest.raises(ValueError, match="banks = 6 is invalid"):
        BankedRowBuffer(banks=6, rows=8, max_head_dim=5, data_width=9, slots=4)

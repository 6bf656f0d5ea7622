"""Fast Amaranth-simulator checks of the PE units for corner geometries the
presets do not reach (tiny widths, exhaustively): minimum accumulator width
(acc_width = 2*data_width-1, so most-negative squared saturates in one step),
an exp table with no f_low bits (segments = 2**score_frac, no multiplier)
and with one segment.  Expected values from sim.models."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.align_add import AlignAdd
from hw.config import preset
from hw.exp2 import Exp2Pwl
from hw.score_mac import ScoreMac
from hw.weighted_acc import WeightedAcc
from sim.fixed import ashr
from sim.models import align_add, pe_probability, score_mac, weighted_product


def tiny(**kw):
    return dataclasses.replace(preset("small"), **kw)


def run(dut, bench, clock=True):
    sim = Simulator(dut)
    if clock:
        sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_score_mac_min_acc_width():
    cfg = tiny(data_width=4, data_frac=1, acc_width=7, exp_segments=4)
    dut = ScoreMac(data_width=cfg.data_width, acc_width=cfg.acc_width)
    vals = range(-8, 8)
    pairs = list(itertools.product(vals, vals))
    rng = np.random.default_rng(3)
    # every (q, k) pair as the first step, then as the second step after a random first
    firsts = rng.integers(-8, 8, (len(pairs), 2))
    checked = []

    async def bench(ctx):
        ctx.set(dut.en, 1)
        for (q, k), (q0, k0) in zip(pairs, firsts.tolist()):
            ctx.set(dut.clear, 1)
            ctx.set(dut.q, q0)
            ctx.set(dut.k, k0)
            await ctx.tick()
            ctx.set(dut.clear, 0)
            ctx.set(dut.q, q)
            ctx.set(dut.k, k)
            await ctx.tick()
            got = ctx.get(dut.acc)
            exp = int(score_mac(np.array([q0, q]), np.array([k0, k]), cfg))
            assert got == exp, f"q,k = ({q0},{k0}),({q},{k}): expected {exp}, got {got}"
            checked.append(exp)
    run(dut, bench)
    assert max(checked) == 63 and min(checked) == -64      # both saturation limits reached


@pytest.mark.parametrize("segments", [1, 16])
def test_exp2_tiny_exhaustive(segments):
    # score_frac = 4: 16 segments leave no f_low bits, 1 segment has no index bits
    cfg = tiny(data_width=4, data_frac=2, acc_width=8, prob_width=6, prob_frac=4,
               exp_width=3, exp_segments=segments)
    dut = Exp2Pwl(acc_width=cfg.acc_width, score_frac=cfg.score_frac,
                  prob_width=cfg.prob_width, prob_frac=cfg.prob_frac,
                  exp_width=cfg.exp_width, segments=cfg.exp_segments)
    scores = np.arange(-128, 128)
    zeros = (np.arange(256) % 7 == 3).astype(int)
    m_exp, e_exp = pe_probability(scores, zeros == 0, cfg)
    lat = Exp2Pwl.latency

    async def bench(ctx):
        got = []
        for t in range(len(scores) + lat):
            if t < len(scores):
                ctx.set(dut.score, int(scores[t]))
                ctx.set(dut.zero_in, int(zeros[t]))
                ctx.set(dut.valid_in, 1)
            else:
                ctx.set(dut.valid_in, 0)
            await ctx.tick()
            if t + 1 >= lat:
                got.append((ctx.get(dut.mant), ctx.get(dut.exp), ctx.get(dut.valid_out)))
        got = got[:len(scores)]
        for i, (gm, ge, gv) in enumerate(got):
            assert (gm, ge, gv) == (m_exp[i], e_exp[i], 1), \
                f"score={scores[i]} zero={zeros[i]}: expected ({m_exp[i]},{e_exp[i]}), got ({gm},{ge})"
    run(dut, bench)


@pytest.mark.parametrize("signed", [False, True])
def test_align_add_tiny_exhaustive(signed):
    dut = AlignAdd(a_width=3, b_width=2, out_width=4, exp_width=3, signed=signed)
    a_vals = range(-4, 4) if signed else range(8)
    b_vals = range(-2, 2) if signed else range(4)
    e_vals = range(-4, 4)

    v = np.array(list(itertools.product(a_vals, e_vals, b_vals, e_vals)))
    sums, exps = align_add(v[:, 0], v[:, 1], v[:, 2], v[:, 3])

    async def bench(ctx):
        for (a, ea, b, eb), s, e in zip(v.tolist(), sums.tolist(), exps.tolist()):
            ctx.set(dut.a, a)
            ctx.set(dut.ea, ea)
            ctx.set(dut.b, b)
            ctx.set(dut.eb, eb)
            got = (ctx.get(dut.sum), ctx.get(dut.exp), ctx.get(dut.shift_a), ctx.get(dut.shift_b))
            assert got == (s, e, e - ea, e - eb), f"a={a} ea={ea} b={b} eb={eb}: expected {(s, e)}, got {got}"
    run(dut, bench, clock=False)


def test_weighted_acc_tiny_exhaustive():
    dut = WeightedAcc(prob_width=2, data_width=2, in_width=4, out_width=5, shift_width=3)

    shifts = [0, 1, 2, 3, 4, 7]      # 4 = input width, 7 = largest
    vecs = np.array(list(itertools.product(range(-8, 8), shifts, range(4), range(-2, 2), shifts)))
    pi_, sp_, m_, v_, spp_ = vecs.T
    expected = ashr(pi_, sp_) + ashr(weighted_product(m_, v_), spp_)

    async def bench(ctx):
        for (pi, sp, m, v, spp), exp in zip(vecs.tolist(), expected.tolist()):
            ctx.set(dut.partial_in, pi)
            ctx.set(dut.shift_partial, sp)
            ctx.set(dut.mant, m)
            ctx.set(dut.value, v)
            ctx.set(dut.shift_product, spp)
            got = ctx.get(dut.partial_out)
            assert got == exp, f"in={pi}>>{sp} m={m} v={v} >>{spp}: expected {exp}, got {got}"
    run(dut, bench, clock=False)

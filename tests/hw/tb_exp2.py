"""cocotb testbench of hw.exp2.Exp2Pwl, bit-exact vs sim.models.pe_probability.

params: {"preset": name, "latency": int, "exhaustive_max_bits": int, "seed": int}.
Scores: every value of acc_width bits when acc_width <= exhaustive_max_bits;
otherwise every integer part in [exp_min-1, exp_max+1] with all segment
boundaries (and their neighbours) plus random fractions, every fraction of
the integer part 0, the extremes of the acc range and random
samples over the whole range.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from sim.models import pe_probability
from sim.runner import tb_params
from tests.hw.cocotb_util import check_equal, config_from, signed_range


def score_vectors(cfg, exhaustive_max_bits: int, rng) -> tuple[np.ndarray, str]:
    lo, hi = signed_range(cfg.acc_width)
    sf = cfg.score_frac
    if cfg.acc_width <= exhaustive_max_bits:
        return np.arange(lo, hi + 1, dtype=np.int64), f"all {hi - lo + 1} scores"
    one = 1 << sf
    seg_len = one >> cfg.exp_segment_bits
    fr = {0, 1, one - 1, one - 2, one // 2}
    for s in range(cfg.exp_segments + 1):
        for d in (-1, 0, 1):
            if 0 <= s * seg_len + d < one:
                fr.add(s * seg_len + d)
    fr = np.array(sorted(fr), dtype=np.int64)
    parts = [np.arange(0, one, dtype=np.int64)]                 # n = 0: every fraction
    for n in range(cfg.exp_min - 1, cfg.exp_max + 2):
        parts.append(n * one + fr)
        parts.append(n * one + rng.integers(0, one, 256))
    parts.append(np.array([lo, lo + 1, lo + 2, hi, hi - 1, hi - 2, 0, -1, 1], dtype=np.int64))
    parts.append(rng.integers(lo, hi, 4096, endpoint=True))
    s = np.concatenate(parts)
    assert s.min() >= lo and s.max() <= hi
    return s, (f"{len(s)} scores: integer parts {cfg.exp_min - 1}..{cfg.exp_max + 1} "
               f"(boundaries + random fractions), all fractions of n=0, extremes, random")


async def run_stream(dut, scores, valids, zeros, latency):
    """Drive one input per cycle at the falling edge, read outputs at the
    falling edge ``latency`` cycles later.  Returns (mant, exp, valid_out, cycle)."""
    clk = dut.clk
    Clock(clk, 10, unit="ns").start()
    dut.rst.value = 1
    dut.valid_in.value = 0
    dut.zero_in.value = 0
    dut.score.value = 0
    await FallingEdge(clk)
    await FallingEdge(clk)
    dut.rst.value = 0
    n = len(scores)
    mant = np.zeros(n, dtype=np.int64)
    exp = np.zeros(n, dtype=np.int64)
    vout = np.zeros(n, dtype=np.int64)
    cyc = np.arange(n, dtype=np.int64) + latency
    s_list, v_list, z_list = scores.tolist(), valids.tolist(), zeros.tolist()
    fe = FallingEdge(clk)
    d_score, d_valid, d_zero = dut.score, dut.valid_in, dut.zero_in
    d_mant, d_exp, d_vout = dut.mant, dut.exp, dut.valid_out
    for t in range(n + latency):
        await fe
        if t >= latency:
            i = t - latency
            mant[i] = d_mant.value.to_unsigned()
            exp[i] = d_exp.value.to_signed()
            vout[i] = int(d_vout.value)
        if t < n:
            d_score.value = s_list[t]
            d_valid.value = v_list[t]
            d_zero.value = z_list[t]
        elif t == n:
            d_valid.value = 0
    return mant, exp, vout, cyc


async def check(dut, scores, valids, zeros, what):
    p = tb_params()
    cfg = config_from(p)
    m_exp, e_exp = pe_probability(scores, zeros == 0, cfg)
    mant, exp, vout, cyc = await run_stream(dut, scores, valids, zeros, p["latency"])
    check_equal(f"Exp2Pwl {what} ({p.get('preset', 'config')})",
                {"score": scores, "valid_in": valids, "zero_in": zeros},
                {"mant": m_exp, "exp": e_exp, "valid_out": valids},
                {"mant": mant, "exp": exp, "valid_out": vout}, cyc)
    dut._log.info("checked %d vectors: %s", len(scores), what)


@cocotb.test()
async def sweep(dut):
    """Every score (or the documented subset), valid, not masked."""
    p = tb_params()
    cfg = config_from(p)
    rng = np.random.default_rng(p.get("seed", 1))
    scores, what = score_vectors(cfg, p["exhaustive_max_bits"], rng)
    ones = np.ones(len(scores), dtype=np.int64)
    await check(dut, scores, ones, 0 * ones, what)


@cocotb.test()
async def masked_and_bubbles(dut):
    """Random scores with random valid_in and zero_in (masked pairs)."""
    p = tb_params()
    cfg = config_from(p)
    rng = np.random.default_rng(p.get("seed", 1) + 1)
    lo, hi = signed_range(cfg.acc_width)
    n = 4000
    # mostly scores whose probability is not flushed, so masking is visible
    near = rng.integers(cfg.exp_min << cfg.score_frac, (cfg.exp_max + 1) << cfg.score_frac, n)
    wide = rng.integers(lo, hi, n, endpoint=True)
    scores = np.where(rng.random(n) < 0.8, near, wide).astype(np.int64)
    valids = (rng.random(n) < 0.7).astype(np.int64)
    zeros = (rng.random(n) < 0.3).astype(np.int64)
    await check(dut, scores, valids, zeros, f"{n} random scores with bubbles and masks")

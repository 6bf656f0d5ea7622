"""cocotb testbench of hw.align_add.AlignAdd, bit-exact vs sim.models.align_add.

params: {"a_width", "b_width", "out_width", "exp_width", "signed", "a_max", "seed"}.
``a_max`` (optional) bounds a so that every sum fits out_width (the row-sum
geometry, where out_width = a_width); the testbench also asserts that every
expected sum fits out_width, so no vector relies on wrap-around.
Vectors: the cross product of edge values (0, +-1, extremes, extreme
exponents: shifts of the operand width and more) plus random ones.
"""

from __future__ import annotations

import itertools

import cocotb
import numpy as np
from cocotb.triggers import Timer

from sim.models import align_add
from sim.runner import tb_params
from tests.hw.cocotb_util import check_equal, signed_range


def operand_range(width, is_signed):
    return signed_range(width) if is_signed else (0, (1 << width) - 1)


def vectors(p, rng):
    sg = p["signed"]
    a_lo, a_hi = operand_range(p["a_width"], sg)
    if p.get("a_max") is not None:
        a_hi = min(a_hi, p["a_max"])
    b_lo, b_hi = operand_range(p["b_width"], sg)
    e_lo, e_hi = signed_range(p["exp_width"])

    def edges(lo, hi):
        return sorted({v for v in (lo, lo + 1, -1, 0, 1, hi - 1, hi) if lo <= v <= hi})

    rows = list(itertools.product(edges(a_lo, a_hi), edges(e_lo, e_hi),
                                  edges(b_lo, b_hi), edges(e_lo, e_hi)))
    n = 5000
    a = rng.integers(a_lo, a_hi, n, endpoint=True)
    b = rng.integers(b_lo, b_hi, n, endpoint=True)
    ea = rng.integers(e_lo, e_hi, n, endpoint=True)
    # half the random vectors with close exponents (sums with carries)
    eb = np.where(rng.random(n) < 0.5, rng.integers(e_lo, e_hi, n, endpoint=True),
                  np.clip(ea + rng.integers(-3, 4, n), e_lo, e_hi))
    rows += list(zip(a.tolist(), ea.tolist(), b.tolist(), eb.tolist()))
    return np.array(rows, dtype=np.int64)


@cocotb.test()
async def edges_and_random(dut):
    p = tb_params()
    rng = np.random.default_rng(p.get("seed", 1))
    v = vectors(p, rng)
    a, ea, b, eb = v.T
    s_exp, e_exp = align_add(a, ea, b, eb)
    o_lo, o_hi = operand_range(p["out_width"], p["signed"])
    assert s_exp.min() >= o_lo and s_exp.max() <= o_hi, \
        "stimulus error: an expected sum does not fit out_width"
    # the vectors must include shifts by the operand width or more
    assert (e_exp - ea >= p["a_width"]).any() and (e_exp - eb >= p["b_width"]).any()
    if p["signed"]:
        assert ((e_exp - ea >= p["a_width"]) & (a < 0)).any(), "no sign-fill case"

    n = len(v)
    got = {k: np.zeros(n, dtype=np.int64) for k in ("sum", "exp", "shift_a", "shift_b")}
    read_sum = (lambda h: h.value.to_signed()) if p["signed"] else (lambda h: h.value.to_unsigned())
    t = Timer(1, unit="ns")
    for i, (ai, eai, bi, ebi) in enumerate(v.tolist()):
        dut.a.value = ai
        dut.ea.value = eai
        dut.b.value = bi
        dut.eb.value = ebi
        await t
        got["sum"][i] = read_sum(dut.sum)
        got["exp"][i] = dut.exp.value.to_signed()
        got["shift_a"][i] = dut.shift_a.value.to_unsigned()
        got["shift_b"][i] = dut.shift_b.value.to_unsigned()
    check_equal(f"AlignAdd {p}", {"a": a, "ea": ea, "b": b, "eb": eb},
                {"sum": s_exp, "exp": e_exp, "shift_a": e_exp - ea, "shift_b": e_exp - eb},
                got)
    dut._log.info("checked %d vectors", n)

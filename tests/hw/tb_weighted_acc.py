"""cocotb testbench of hw.weighted_acc.WeightedAcc, bit-exact vs the row-chain
formula of docs/arithmetic.md, evaluated with the model functions
(``sim.fixed.ashr``, ``sim.models.weighted_product``):
partial_out = ashr(partial_in, shift_partial) + ashr(weighted_product(mant, value), shift_product).

params: {"prob_width", "data_width", "in_width", "out_width", "shift_width", "seed"}.
partial_in is limited so that every expected result fits out_width (asserted).
"""

from __future__ import annotations

import itertools

import cocotb
import numpy as np
from cocotb.triggers import Timer

from sim.fixed import ashr
from sim.models import weighted_product
from sim.runner import tb_params
from tests.hw.cocotb_util import check_equal, signed_range


def vectors(p, rng):
    pw, dw, sw = p["prob_width"], p["data_width"], p["shift_width"]
    prod_mag = 1 << (pw + dw - 1)          # |mant * value| <= 2**(pw+dw-1)
    o_lo, o_hi = signed_range(p["out_width"])
    i_lo, i_hi = signed_range(p["in_width"])
    pi_lo, pi_hi = max(i_lo, o_lo + prod_mag), min(i_hi, o_hi - prod_mag)
    v_lo, v_hi = signed_range(dw)
    m_hi = (1 << pw) - 1
    s_hi = (1 << sw) - 1
    partial_e = sorted({pi_lo, pi_lo + 1, -1, 0, 1, pi_hi - 1, pi_hi})
    mant_e = sorted({0, 1, 1 << (pw - 1), m_hi})
    value_e = sorted({v_lo, v_lo + 1, -1, 0, 1, v_hi})
    shift_e = sorted({s for s in (0, 1, dw, pw + dw - 1, pw + dw, p["in_width"] - 1,
                                  p["in_width"], s_hi) if s <= s_hi})
    rows = list(itertools.product(partial_e, shift_e, mant_e, value_e, shift_e))
    n = 5000
    rows += list(zip(rng.integers(pi_lo, pi_hi, n, endpoint=True).tolist(),
                     rng.integers(0, min(s_hi, 8), n, endpoint=True).tolist(),
                     rng.integers(0, m_hi, n, endpoint=True).tolist(),
                     rng.integers(v_lo, v_hi, n, endpoint=True).tolist(),
                     rng.integers(0, min(s_hi, 8), n, endpoint=True).tolist()))
    return np.array(rows, dtype=np.int64)


@cocotb.test()
async def edges_and_random(dut):
    p = tb_params()
    rng = np.random.default_rng(p.get("seed", 1))
    v = vectors(p, rng)
    partial, sp, mant, value, spp = v.T
    expected = ashr(partial, sp) + ashr(weighted_product(mant, value), spp)
    o_lo, o_hi = signed_range(p["out_width"])
    assert expected.min() >= o_lo and expected.max() <= o_hi, \
        "stimulus error: an expected result does not fit out_width"
    assert ((sp >= p["in_width"]) & (partial < 0)).any(), "no sign-fill case"

    n = len(v)
    got = np.zeros(n, dtype=np.int64)
    t = Timer(1, unit="ns")
    d_pi, d_sp, d_m, d_v, d_spp, d_out = (dut.partial_in, dut.shift_partial, dut.mant,
                                          dut.value, dut.shift_product, dut.partial_out)
    for i, (a, b, c, d, e) in enumerate(v.tolist()):
        d_pi.value = a
        d_sp.value = b
        d_m.value = c
        d_v.value = d
        d_spp.value = e
        await t
        got[i] = d_out.value.to_signed()
    check_equal(f"WeightedAcc {p}",
                {"partial_in": partial, "shift_partial": sp, "mant": mant, "value": value,
                 "shift_product": spp},
                {"partial_out": expected}, {"partial_out": got})
    dut._log.info("checked %d vectors", n)

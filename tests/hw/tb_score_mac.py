"""cocotb testbench of hw.score_mac.ScoreMac, bit-exact vs sim.models.score_mac.

params: {"preset": name} or {"config": {...}}, "seed": int.
The testbench tracks which (q, k) pairs belong to the current score (``clear``
with ``en`` starts a new one, ``en`` low holds) and asks the model for the
saturated sum of exactly those pairs every cycle.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from sim.models import score_mac
from sim.runner import tb_params
from tests.hw.cocotb_util import check_equal, config_from, signed_range


def stimulus(cfg, rng):
    """Blocks of (q, k, en, clear) rows; each block is one or more scores."""
    lo, hi = signed_range(cfg.data_width)
    d = cfg.max_head_dim
    blocks = []

    def score(qs, ks, en=None):
        qs, ks = np.asarray(qs), np.asarray(ks)
        en = np.ones(len(qs), dtype=np.int64) if en is None else np.asarray(en)
        clear = np.zeros(len(qs), dtype=np.int64)
        clear[np.flatnonzero(en)[0]] = 1   # the first enabled cycle starts the score
        blocks.append(np.stack([qs, ks, en, clear], axis=1))

    # long enough to reach saturation from zero with the largest product
    # (more than max_head_dim steps when acc_width has many guard bits)
    n = max(3 * d, (1 << (cfg.acc_width - 1)) // (lo * lo) + 4)
    score([lo] * n, [lo] * n)                         # most negative squared: + saturation
    score([lo] * n, [hi] * n)                         # - saturation
    score([hi] * n, [hi] * n)                         # + saturation (largest positive)
    score([lo] * d + [hi] * n, [lo] * d + [lo] * n)   # saturate +, then back down through 0 to -
    score([lo] * d + [lo] * n, [hi] * d + [lo] * n)   # saturate -, then back up
    score([0] * d, [lo] * d)                          # zeros
    score([lo, 0, hi, -1, 1], [0, lo, 0, -1, -1])     # zero, +1, ...
    for _ in range(150):                              # random scores, random holds (en = 0)
        length = int(rng.integers(1, 2 * d + 1))
        q = rng.integers(lo, hi, length, endpoint=True)
        k = rng.integers(lo, hi, length, endpoint=True)
        pick = rng.random(length)
        q = np.where(pick < 0.1, lo, np.where(pick > 0.9, hi, q))
        en = (rng.random(length) < 0.85).astype(np.int64)
        en[0] = 1
        score(q, k, en)
    rows = np.concatenate(blocks).astype(np.int64)
    # clear with en low must be ignored: sprinkle a few
    idle = np.flatnonzero(rows[:, 2] == 0)
    rows[idle[::3], 3] = 1
    return rows


def expected_acc(rows, cfg):
    """acc after each cycle: the model's saturated score of the pairs enabled
    since the last clear.  All prefixes of one score in one model call: a
    prefix is padded with (0, 0) pairs, which leave a saturated sum unchanged."""
    n = len(rows)
    expected = np.zeros(n, dtype=np.int64)
    en, clear = rows[:, 2] == 1, (rows[:, 2] == 1) & (rows[:, 3] == 1)
    starts = list(np.flatnonzero(clear)) + [n]
    assert starts[0] == 0, "the stimulus must start with a clear"
    for a, b in zip(starts[:-1], starts[1:]):
        cyc = a + np.flatnonzero(en[a:b])              # cycles that add a pair
        q, k = rows[cyc, 0], rows[cyc, 1]
        length = len(cyc)
        mask = np.tril(np.ones((length, length), dtype=np.int64))
        prefix = score_mac(mask * q, mask * k, cfg)    # prefix[j] = score of pairs 0..j
        # cycles a..b-1 hold the latest prefix (en low holds)
        idx = np.cumsum(en[a:b]) - 1
        expected[a:b] = prefix[idx]
    return expected


@cocotb.test()
async def mac_sequences(dut):
    p = tb_params()
    cfg = config_from(p)
    rng = np.random.default_rng(p.get("seed", 1))
    rows = stimulus(cfg, rng)
    n = len(rows)

    expected = expected_acc(rows, cfg)

    clk = dut.clk
    Clock(clk, 10, unit="ns").start()
    dut.rst.value = 1
    dut.en.value = 0
    dut.clear.value = 0
    dut.q.value = 0
    dut.k.value = 0
    await FallingEdge(clk)
    await FallingEdge(clk)
    dut.rst.value = 0
    got = np.zeros(n, dtype=np.int64)
    fe = FallingEdge(clk)
    lat = p["latency"]
    data = rows.tolist()
    for t in range(n + lat):
        await fe
        if t >= lat:
            got[t - lat] = dut.acc.value.to_signed()
        if t < n:
            q, k, en, clear = data[t]
            dut.q.value = q
            dut.k.value = k
            dut.en.value = en
            dut.clear.value = clear
    check_equal(f"ScoreMac ({p.get('preset', 'config')})",
                {"q": rows[:, 0], "k": rows[:, 1], "en": rows[:, 2], "clear": rows[:, 3]},
                {"acc": expected}, {"acc": got}, np.arange(n) + lat)
    lo_a, hi_a = signed_range(cfg.acc_width)
    # the stimulus must reach both saturation limits (guards the test itself)
    assert (expected == hi_a).any() and (expected == lo_a).any(), "stimulus misses saturation"
    dut._log.info("checked %d cycles", n)

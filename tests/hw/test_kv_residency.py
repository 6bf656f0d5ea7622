# amaranth: UnusedElaboratable=no
"""K/V residency checker (:class:`hw.kv_residency.KvResidency`) against a
plain Python model of the ring buffer (position p in row p mod capacity),
on the Amaranth simulator: random loads, clears and checks, including
negative and too-large bases and sparse used-slot masks."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.config import preset
from hw.kv_residency import KvResidency


def model_fault(held, base, used, slots, index_width):
    """True if a used slot's row does not hold position base + slot."""
    cap = len(held)
    for s in range(slots):
        if used >> s & 1:
            p = base + s
            if not (0 <= p < 1 << index_width) or held[p % cap] != p:
                return True
    return False


@pytest.mark.parametrize("banks,depth,slots,iw", [(8, 16, 7, 12), (16, 8, 15, 12),
                                                  (4, 2, 3, 3), (8, 2, 8, 4)])
def test_residency_matches_ring_model(banks, depth, slots, iw):
    dut = KvResidency(banks=banks, bank_depth=depth, slots=slots, index_width=iw,
                      base_width=iw + 2)
    cap = banks * depth
    rng = np.random.default_rng(banks * 100 + depth)
    held = [-1] * cap
    stats = {"faults": 0, "ok": 0}

    async def bench(ctx):
        window = 0
        for step in range(3000):
            op = rng.random()
            ctx.set(dut.write_en, 0)
            ctx.set(dut.clear, 0)
            ctx.set(dut.check_en, 0)
            if op < 0.5:                        # load a position near the window
                p = int(np.clip(window + rng.integers(-2, slots + 2), 0, (1 << iw) - 1))
                ctx.set(dut.write_en, 1)
                ctx.set(dut.write_pos, p)
                held[p % cap] = p
                if rng.random() < 0.1:
                    window = max(0, min(window + int(rng.integers(0, 3)), (1 << iw) - slots))
            elif op < 0.52:
                ctx.set(dut.clear, 1)
                held[:] = [-1] * cap
            else:
                base = window + int(rng.integers(-3, 4))
                if rng.random() < 0.05:
                    base = int(rng.integers(-(1 << (iw + 1)), 1 << (iw + 1)))
                used = [(1 << slots) - 1, int(rng.integers(0, 1 << slots)),
                        1 << int(rng.integers(0, slots))][int(rng.integers(0, 3))]
                expect = model_fault(held, base, used, slots, iw)
                ctx.set(dut.check_en, 1)
                ctx.set(dut.check_base, base)
                ctx.set(dut.check_used, used)
                await ctx.tick()
                ctx.set(dut.check_en, 0)
                for _ in range(dut.latency - 1):
                    assert ctx.get(dut.fault) == 0      # not before its latency
                    await ctx.tick()
                got = ctx.get(dut.fault)
                assert got == expect, (f"step {step}: base {base} used {used:#x}: "
                                       f"fault {got}, model {expect}")
                stats["faults" if expect else "ok"] += 1
                continue
            await ctx.tick()
            assert ctx.get(dut.fault) == 0      # no check, no fault

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    # both outcomes were exercised many times
    assert stats["faults"] > 50 and stats["ok"] > 50, stats


def test_config_geometry_is_the_checkers():
    cfg = preset("small")
    assert cfg.kv_capacity == cfg.kv_banks * cfg.kv_bank_depth >= cfg.kv_buffer_rows
    assert cfg.kv_banks >= cfg.key_slots


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="banks = 6"):
        KvResidency(banks=6, bank_depth=4, slots=3, index_width=8, base_width=10)
    with pytest.raises(ValueError, match="slots = 9"):
        KvResidency(banks=8, bank_depth=4, slots=9, index_width=8, base_width=10)

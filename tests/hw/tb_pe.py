"""cocotb testbench of a 1 x P row of PEs (``tests/hw/test_pe.py``).

Streams of passes (head sizes 1..max_head_dim, back to back every 2d cycles
and with random gaps) with random q/k/v of several magnitudes (including
saturating and underflowing scores) and random masks.  Idle cycles carry
random junk on every data and control input.  Expected values come only
from ``sim.models.pe_probability``/``score_mac`` and
``sim.array_model.row_chain``; every PE's outputs are checked in every cycle
(valid bits must be exactly where docs/arithmetic.md section 4 puts them).
"""

from __future__ import annotations

import random

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from hw.config import AcceleratorConfig
from sim.array_model import row_chain
from sim.models import pe_probability, score_mac
from sim.runner import tb_params


# ------------------------------------------------------------------ helpers
def pack(values, width: int) -> int:
    """Pack integers (two's complement) LSB-first into one word."""
    word, mask = 0, (1 << width) - 1
    for i, v in enumerate(values):
        word |= (int(v) & mask) << (i * width)
    return word


def unpack(word: int, width: int, n: int, is_signed: bool) -> list[int]:
    mask = (1 << width) - 1
    out = []
    for i in range(n):
        v = (word >> (i * width)) & mask
        if is_signed and v >> (width - 1):
            v -= 1 << width
        out.append(v)
    return out


def random_data(rng: np.random.Generator, shape, cfg, scale=None):
    """Random data words; ``scale`` (real magnitude) or None = full range."""
    lo, hi = -(1 << (cfg.data_width - 1)), (1 << (cfg.data_width - 1)) - 1
    if scale is None:
        return rng.integers(lo, hi + 1, size=shape)
    lim = min(hi, max(1, int(scale * (1 << cfg.data_frac))))
    return rng.integers(-lim, lim + 1, size=shape)


async def run_cycles(dut, inputs: list[dict], outputs: list[str]) -> list[dict]:
    """Drive ``inputs[c]`` (port -> int) in cycle c and sample ``outputs``
    (registered ports) in the same cycle.  Returns one dict per cycle."""
    ports = {name: getattr(dut, name) for name in inputs[0]}
    outs = {name: getattr(dut, name) for name in outputs}
    seen = []
    prev = {}
    for cyc in inputs:
        await FallingEdge(dut.clk)
        seen.append({name: h.value.to_unsigned() for name, h in outs.items()})
        for name, v in cyc.items():
            if prev.get(name) != v:
                ports[name].value = v
                prev[name] = v
    await FallingEdge(dut.clk)
    seen.append({name: h.value.to_unsigned() for name, h in outs.items()})
    return seen


async def reset(dut):
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    for _ in range(2):
        await FallingEdge(dut.clk)
    dut.rst.value = 0


# ---------------------------------------------------------------- PE row test
@cocotb.test()
async def pe_row_random_streams(dut):
    prm = tb_params()
    cfg = AcceleratorConfig.from_dict(prm["config"])
    P, L, W, hop = prm["P"], prm["exp_latency"], prm["ws_latency"], prm["ws_hop"]
    rng = np.random.default_rng(prm["seed"])
    pyrng = random.Random(prm["seed"])
    dw, ew = cfg.data_width, cfg.exp_width
    rsw, wsw = cfg.row_sum_width, cfg.wsum_width
    await reset(dut)

    head_dims = sorted({1, 2, 3, 5, cfg.max_head_dim})
    streams = []
    for d in head_dims:
        if 2 * d < L + 1:
            continue  # the contract needs 2d >= L + 1
        for gap_mode in ("back-to-back", "gaps"):
            streams.append((d, gap_mode))
    total_checked = 0
    for d, gap_mode in streams:
        n_pass = 6
        starts, t = [], 4
        for n in range(n_pass):
            starts.append(t)
            # the next pass starts 2d later (interleaved) or after this pass's V phase
            t += 2 * d + (pyrng.choice([0, 2 * d, 2 * d + 1, 3 * d]) if gap_mode == "gaps" else 0)
        end = starts[-1] + 4 * d + P + L + W + 6
        scales = [pyrng.choice([None, 0.5, 1.0, 2.0, 4.0, 8.0]) for _ in range(n_pass)]
        q = np.stack([random_data(rng, (d,), cfg, s) for s in scales])
        k = np.stack([random_data(rng, (P, d), cfg, s) for s in scales])
        v = np.stack([random_data(rng, (P, d), cfg) for _ in range(n_pass)])
        mask = rng.random((n_pass, P)) < 0.75
        mask[0, :] = True
        if n_pass > 1:
            mask[1, :] = False  # a fully masked pass

        # per-cycle stimulus with junk everywhere it is not used
        cyc = []
        for c in range(end):
            cyc.append({
                "q": pyrng.getrandbits(dw), "q_valid": 0,
                "q_last": pyrng.getrandbits(1), "q_parity": pyrng.getrandbits(1),
                "kv": [pyrng.getrandbits(dw) for _ in range(P)],
                "pair_valid": [pyrng.getrandbits(1) for _ in range(P)],
                "v_valid": 0, "v_parity": pyrng.getrandbits(1)})
        used = set()
        for n, T in enumerate(starts):
            for x in range(d):
                c = cyc[T + x]
                c.update(q=int(q[n, x]) & ((1 << dw) - 1), q_valid=1,
                         q_last=int(x == d - 1), q_parity=n % 2)
                for j in range(P):
                    for when, val in ((T + j + x, k[n, j, x]), (T + 3 * d + j + x, v[n, j, x])):
                        assert (when, j) not in used, "stimulus collision"
                        used.add((when, j))
                        cyc[when]["kv"][j] = int(val)
                cv = cyc[T + 3 * d + x]
                cv.update(v_valid=1, v_parity=n % 2)
            for j in range(P):
                cyc[T + j + d - 1]["pair_valid"][j] = int(mask[n, j])
        inputs = [dict(c, kv=pack(c["kv"], dw), pair_valid=pack(c["pair_valid"], 1))
                  for c in cyc]
        seen = await run_cycles(dut, inputs, ["rs_sum", "rs_exp", "rs_valid", "rs_parity",
                                              "ws", "ws_valid", "ws_parity"])

        # expected (model only)
        s = score_mac(q[:, None, :], k, cfg)                 # (n, P)
        mm, ee = pe_probability(s, mask, cfg)
        exp_rs = {}   # (cycle, j) -> (sum, exp, parity, n)
        exp_ws = {}   # (cycle, j) -> (value, parity, n, x)
        for j in range(P):
            part = row_chain(mm[:, :j + 1], ee[:, :j + 1], v[:, :j + 1, :], cfg)
            for n, T in enumerate(starts):
                exp_rs[(T + j + 1 + d + L, j)] = (int(part.sum[n]), int(part.exp[n]), n % 2, n)
                for x in range(d):
                    # (PE j's weighted-sum control arrives j * hop cycles
                    # after PE 0's: hop = 2 with the config's wsum_stage)
                    exp_ws[(T + j * hop + W + 3 * d + x, j)] = (int(part.out[n, x]), n % 2,
                                                                n, x)

        errors = []
        for c, o in enumerate(seen):
            rsv = unpack(o["rs_valid"], 1, P, False)
            rss = unpack(o["rs_sum"], rsw, P, False)
            rse = unpack(o["rs_exp"], ew, P, True)
            rsp = unpack(o["rs_parity"], 1, P, False)
            wsv = unpack(o["ws_valid"], 1, P, False)
            wsd = unpack(o["ws"], wsw, P, True)
            wsp = unpack(o["ws_parity"], 1, P, False)
            for j in range(P):
                e = exp_rs.get((c, j))
                if e is None:
                    if rsv[j]:
                        errors.append(f"d={d} {gap_mode}: PE {j} cycle {c}: unexpected rs_valid")
                else:
                    got = (rss[j], rse[j], rsp[j]) if rsv[j] else None
                    if got != e[:3]:
                        errors.append(f"d={d} {gap_mode}: pass {n_of(e)} PE {j} cycle {c}: "
                                      f"row sum (sum, exp, parity) {got} != model {e[:3]}")
                    total_checked += 1
                e = exp_ws.get((c, j))
                if e is None:
                    if wsv[j]:
                        errors.append(f"d={d} {gap_mode}: PE {j} cycle {c}: unexpected ws_valid")
                else:
                    got = (wsd[j], wsp[j]) if wsv[j] else None
                    if got != e[:2]:
                        errors.append(f"d={d} {gap_mode}: pass {e[2]} PE {j} element {e[3]} "
                                      f"cycle {c}: weighted sum (value, parity) {got} != "
                                      f"model {e[:2]}")
                    total_checked += 1
        assert not errors, f"{len(errors)} mismatches, first 10:\n" + "\n".join(errors[:10])
        # the checks must have seen every expected event
        assert len(exp_rs) == n_pass * P and len(exp_ws) == n_pass * P * d
    dut._log.info(f"PE row {cfg.describe()}: P={P}, {len(streams)} streams, "
                  f"{total_checked} outputs checked bit-exact")


def n_of(e):
    return e[3]

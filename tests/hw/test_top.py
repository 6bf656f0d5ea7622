"""System tests of the accelerator top (:class:`hw.top.SaloTop`) on Verilator:
compiled programs run bit-exactly against the functional simulator
(``sim.funcsim.simulate`` is the only source of expected values), with and
without random input idles and output back-pressure, and illegal programs
end in the right error state within a bounded number of cycles.

All scenarios of one config run in one cocotb run (``tests/hw/tb_top.py``)
on one top-only Verilator build.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pytest

from hw.config import PRESETS
from hw.isa import Opcode, assemble, encode
from scheduler.pattern import parse_pattern
from scheduler.schedule import compile_pattern
from sim.driver import quantize_inputs
from sim.funcsim import simulate
from sim.rtl_backend import make_job, run_jobs

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example(name: str, **over) -> dict:
    d = json.loads((EXAMPLES / f"{name}.json").read_text())
    d = {k: v for k, v in d.items() if k not in ("description",)}
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(d.get(k), dict):
            d[k] = {**d[k], **v}
        else:
            d[k] = v
    return d


def scenario(cfg, name: str, pat: dict, *, seed: int = 0, **kw):
    """Compile ``pat``, draw N(0,1) Q/K/V, quantize; the job with the
    functional simulator's outputs as expected values."""
    p = parse_pattern(pat)
    s = compile_pattern(p, cfg)
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((p.heads, p.seq_len, p.head_dim)) for _ in range(3))
    qi, ki, vi, _ = quantize_inputs(q, k, v, cfg)
    exp = simulate(s, qi, ki, vi)
    return make_job(s, qi, ki, vi, exp, name=name, seed=seed, **kw), s, exp


def small_scenarios(cfg):
    """Each example workload at reduced size plus odd sizes, spans, heads."""
    N = 128
    spans = [[max(0, i - 3 - (i % 5)), min(N - 1, i + (i % 7))] for i in range(N)]
    return [
        ("longformer", example("longformer-base", seq_len=N, head_dim=16, heads=1,
                               window={"left": 8, "right": 8})),
        ("dilated", example("longformer-dilated", seq_len=N, head_dim=8, heads=1,
                            window={"left": 6, "right": 6, "dilation": 2})),
        ("causal_random", example("swa-causal", seq_len=N, head_dim=8, heads=1,
                                  window={"left": 11, "right": 0},
                                  random={"keys_per_query": 2, "seed": 7})),
        ("vil_8x8", example("vil-stage2", seq_len=65, head_dim=8, heads=1,
                            grid={"height": 8, "width": 8, "radius_h": 2, "radius_w": 2})),
        ("bigbird", example("bigbird-base", seq_len=N, head_dim=8, heads=1,
                            blocks={"block": 8, "window_blocks": 3, "global_blocks": [0, 15],
                                    "random_blocks": 1, "seed": 0})),
        ("odd_sizes_2heads", {"name": "odd", "seq_len": 37, "head_dim": 5, "heads": 2,
                              "window": {"left": 3, "right": 6}, "global_tokens": [4, 20]}),
        ("spans", {"name": "spans", "seq_len": N, "head_dim": 7, "heads": 1, "spans": spans}),
    ]


def error_jobs(cfg, base, sched):
    """Illegal variants of job ``base``: (job, expected error, cycle bound)."""
    wd = 300
    out = []

    def variant(name, err, bound, **changes):
        j = dataclasses.replace(base, name=name, expect_error=err, error_within=bound,
                                watchdog=wd, expected=None, **changes)
        out.append(j)

    words = list(base.words)
    # illegal opcode as the 3rd instruction
    w = list(words)
    w[2] = (w[2] & ~0xF) | 12
    variant("err_illegal_opcode", "ILLEGAL_OPCODE", 2000, words=w)
    # field out of range: a LOAD_Q with count 0
    prog = sched.program
    i_lq = int(np.flatnonzero(prog.opcode == Opcode.LOAD_Q.value)[0])
    w = list(words)
    cnt_off = _field_off(cfg, Opcode.LOAD_Q, "count")
    w[i_lq] &= ~(((1 << cnt_off[1]) - 1) << cnt_off[0])
    variant("err_field_count0", "FIELD_RANGE", 2000, words=w)
    # short hand-written programs (assembly), each failing at its last line
    def asm(text):
        return [int(x) for x in encode(assemble(text, cfg), cfg)]

    # field out of range: global row index >= global_rows (the field has room)
    if (1 << _field_off(cfg, Opcode.LOAD_GQ, "row")[1]) > cfg.global_rows:
        variant("err_gq_row", "FIELD_RANGE", 100,
                words=asm(f"SET_HEAD head=0\nLOAD_GQ row={cfg.global_rows} addr=0\nEND"))
    # LOAD_KV count beyond the K/V buffer
    variant("err_kv_count", "FIELD_RANGE", 100,
            words=asm(f"LOAD_KV addr=0 count={cfg.kv_buffer_rows + 1}\nEND"))
    # protocol: STORE before any tile finished; PASS last=1 outside a tile;
    # local work outside a tile; STORE_G of a global row never loaded
    variant("err_store_early", "PROTOCOL", 100, words=asm("STORE addr=0 count=1\nEND"))
    variant("err_last_outside", "PROTOCOL", 100,
            words=asm("SET_HEAD head=0\nPASS kv_base=0 first=0 last=1\nEND"))
    variant("err_work_outside", "PROTOCOL", 100,
            words=asm("LOAD_Q addr=0 count=4\nPASS kv_base=0 first=0 last=0\nEND"))
    if cfg.global_rows:
        variant("err_store_g_unloaded", "PROTOCOL", 100, words=asm("STORE_G row=0 addr=0\nEND"))
    # program ends early: drop END and the last 5 instructions
    variant("err_program_short", "INSTR_STARVED", 20 * len(words) + 4 * wd,
            words=words[:len(words) // 2])
    # data stream runs short
    variant("err_data_short", "DATA_STARVED", 40 * len(words) + 4 * wd,
            rows=base.rows[: len(base.rows) // 2])
    # mask stream runs short
    variant("err_mask_short", "MASK_STARVED", 40 * len(words) + 4 * wd,
            masks=base.masks[: len(base.masks) // 2])
    # head_dim outside the supported range (0)
    variant("err_head_dim", "BAD_HEAD_DIM", 100, d=0)
    # PASSes reading K/V rows that do not hold their positions (the
    # functional simulator refuses the same programs: tests/sim/test_funcsim.py)
    from tests.sim.residency_cases import residency_cases
    for name, rs, q, k, v in residency_cases(cfg)[:-1]:
        j = make_job(rs, q, k, v, None, name="err_" + name)
        out.append(dataclasses.replace(j, expect_error="KV_NOT_RESIDENT", error_within=200,
                                       watchdog=wd))
    return out


def set_head_after_last_pass(cfg, base, sched):
    """Legal variant of a one-head job: a SET_HEAD (same head; it forgets
    every K/V row) right after the last PASS, before the final stores.  The
    results are unchanged; the last PASS's residency check (after its
    start) must still see the rows it read."""
    prog = sched.program
    i_last = int(np.flatnonzero(prog.opcode == Opcode.PASS.value)[-1])
    set_head = int(encode(assemble("SET_HEAD head=0", cfg), cfg)[0])
    words = list(base.words)
    return dataclasses.replace(base, name="legal_set_head_after_pass",
                               words=words[:i_last + 1] + [set_head] + words[i_last + 1:])


def _field_off(cfg, op, name):
    from hw.isa import instruction_layout
    lay = instruction_layout(cfg)
    opf = lay["operands"]
    f = opf.shape[op.name.lower()].shape[name]
    return opf.offset + f.offset, f.width


def _report(results, cfg):
    for r in results:
        c = r.counters
        util = c["useful_macs"] / max(1, cfg.num_pes * c["cycles_total"])
        print(f"  {r.name:24s} error={r.error:14s} cycles={c['cycles_total']:7d} "
              f"passes={c['passes']:5d} busy={c['cycles_busy']:7d} "
              f"stall_in={c['cycles_stall_in']:6d} stall_out={c['cycles_stall_out']:6d} "
              f"useful_macs={c['useful_macs']:8d} utilization={util:.3f}")


def test_top_small():
    """``small`` preset: every example workload at reduced size, odd sizes,
    spans, two heads, with and without stalls, and the error cases."""
    cfg = PRESETS["small"]
    jobs = []
    t0 = time.monotonic()
    for i, (name, pat) in enumerate(small_scenarios(cfg)):
        j, s, _ = scenario(cfg, name, pat, seed=i)
        jobs.append(j)
        jobs.append(dataclasses.replace(j, name=name + "_stalls", in_idle=0.3,
                                        out_backpressure=0.4, seed=100 + i))
        if name == "longformer":
            base, base_sched = j, s
            # heavy back-pressure: output buffer and merge units fill up
            jobs.append(dataclasses.replace(j, name=name + "_heavy_bp", in_idle=0.5,
                                            out_backpressure=0.9, seed=7))
            # the host reads slower than the array computes: the output
            # buffer fills, the merge units stall, passes wait for a bank
            jobs.append(dataclasses.replace(j, name=name + "_slow_reader",
                                            out_backpressure=0.99, seed=8))
    jobs += error_jobs(cfg, base, base_sched)
    jobs.append(set_head_after_last_pass(cfg, base, base_sched))
    t1 = time.monotonic()
    res = run_jobs(cfg, jobs)
    print(f"\nsmall: {len(jobs)} jobs, host-side preparation {t1 - t0:.1f} s, "
          f"RTL run {time.monotonic() - t1:.1f} s")
    _report(res, cfg)
    for r, j in zip(res, jobs):
        if j.expect_error is None:
            assert r.error == "NONE" and r.done
            assert np.array_equal(r.out, simulate_cached(j)), r.name
    # two global tokens, one global column: most passes reload the column
    # (LOAD_GKV); the reloads overlap the passes in flight (draining the
    # array for each, as the top once did, took 1.9x the pass slots)
    (r, j), = [(r, j) for r, j in zip(res, jobs) if j.name == "odd_sizes_2heads"]
    c = r.counters
    assert c["cycles_total"] < 1.6 * c["passes"] * 2 * j.d, c


def simulate_cached(job):
    """The expected outputs the job carried, back in token order."""
    out = np.zeros_like(job.expected)
    out[:, job.perm] = job.expected
    return out


def test_top_random_cols():
    """4x4 + 1 global row + 1 global column + 2 random key columns, with the
    ``fpga`` preset's timing options (column stage, weighted-sum stage, one
    divider step per cycle; d <= 16 to keep the build small): random keys go
    to the random columns (LOAD_RKV, rcol enables), with and without
    stalls."""
    cfg = dataclasses.replace(PRESETS["fpga"], max_head_dim=16, random_cols=2)
    assert (cfg.column_stage, cfg.wsum_stage, cfg.div_steps) == (1, 1, 1)
    jobs = []
    # (the scheduler keeps BigBird's block-random keys in the local runs;
    # per-query random keys go to the random columns)
    pats = [("band_global_random_rc", {"name": "rnd2", "seq_len": 96, "head_dim": 8,
                                       "window": {"left": 4, "right": 4}, "global_tokens": [0],
                                       "random": {"keys_per_query": 2, "seed": 1}}),
            ("random_keys_rc_2heads", {"name": "rnd", "seq_len": 64, "head_dim": 6, "heads": 2,
                                       "window": {"left": 2, "right": 2},
                                       "random": {"keys_per_query": 3, "seed": 5}})]
    for i, (name, pat) in enumerate(pats):
        j, s, _ = scenario(cfg, name, pat, seed=i)
        assert s.stats["random_keys_in_columns"] > 0, s.stats
        jobs += [j, dataclasses.replace(j, name=name + "_stalls", in_idle=0.3,
                                        out_backpressure=0.4, seed=50 + i)]
    res = run_jobs(cfg, jobs)
    _report(res, cfg)
    for r, j in zip(res, jobs):
        assert np.array_equal(r.out, simulate_cached(j)), r.name


@pytest.mark.slow
def test_top_utilization_band():
    """Utilization measured on the RTL for a longformer-like band (N = 256,
    window 65, 1 global token, d = 16) on ``small``, without and with
    random input idles / output back-pressure; bit-exact as always."""
    cfg = PRESETS["small"]
    pat = example("longformer-base", seq_len=256, head_dim=16, heads=1,
                  window={"left": 32, "right": 32})
    j, s, _ = scenario(cfg, "band256", pat, seed=11)
    jobs = [j, dataclasses.replace(j, name="band256_stalls", in_idle=0.3,
                                   out_backpressure=0.4, seed=12)]
    res = run_jobs(cfg, jobs)
    _report(res, cfg)
    for r, jj in zip(res, jobs):
        assert np.array_equal(r.out, simulate_cached(jj)), r.name


def test_api_rtl_equals_model():
    """``sim.api.run_attention``: the rtl backend gives the model's outputs
    (float and integer) and real counters; the model backend is the
    functional simulator (same path as ``salo run``)."""
    from sim.api import run_attention
    pat = {"name": "api", "seq_len": 24, "head_dim": 8, "heads": 2,
           "window": {"left": 3, "right": 2}, "global_tokens": [5]}
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((2, 24, 8)) for _ in range(3))
    lines = []
    model = run_attention(q, k, v, pat, config="small", backend="model")
    rtl = run_attention(q, k, v, pat, config="small", backend="rtl", progress=lines.append)
    assert np.array_equal(model.out_int, rtl.out_int)
    assert np.array_equal(model.out, rtl.out)
    assert rtl.counters["passes"] > 0 and rtl.counters["useful_macs"] > 0
    assert 0 < rtl.counters["utilization"] <= 1
    with pytest.raises(ValueError, match="backend"):
        run_attention(q, k, v, pat, backend="fpga")
